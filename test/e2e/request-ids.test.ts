/**
 * Request ids: a safe incoming X-Request-Id is kept, anything else replaced by a generated one; the id comes back on
 * every response, is the `reqId` of the request's log lines (also the error line of a 500 at the default level) and
 * is shown on error pages. Log lines carry ISO timestamps.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server.js';
import { MemoryStorage } from '../../src/storage/memory/memory-storage.js';
import { systemClock } from '../../src/core/clock.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** A client id whose lookup fails with a plain error (a bug, not an outage): the token endpoint answers 500. */
const BROKEN_CLIENT = 'client-whose-lookup-fails';

type LogLine = Record<string, unknown> & { reqId?: string; time?: unknown; msg?: string };

function capture(level: 'debug' | 'info') {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger(level, sink), lines };
}

/** Memory store whose client lookup throws for one id. */
function storeWithBrokenClient() {
  const store = new MemoryStorage({ clock: systemClock, cleanupIntervalMs: 0 });
  const getClient = store.getClient.bind(store);
  store.getClient = async (id: string) => {
    if (id === BROKEN_CLIENT) throw new Error('simulated bug in the client lookup');
    return getClient(id);
  };
  return store;
}

/** Sends raw request bytes and returns the raw response head. */
function rawRequest(port: number, head: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) socket.end();
    });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.write(head);
  });
}

describe('request ids', () => {
  let server: TestServer;
  let lines: LogLine[];
  let publicClient: string;
  let serviceClient: { id: string; secret: string };

  beforeAll(async () => {
    const captured = capture('debug');
    lines = captured.lines;
    server = await startServer(
      { scopes: ['mcp:read'], registration: { allowClientCredentials: true } },
      { logger: captured.logger, storage: storeWithBrokenClient() },
    );
    publicClient = (
      await postJson(`${server.issuer}/register`, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
    ).json.client_id;
    const service = await postJson(`${server.issuer}/register`, {
      grant_types: ['client_credentials'],
      scope: 'mcp:read',
    });
    expect(service.status).toBe(201);
    serviceClient = { id: service.json.client_id, secret: service.json.client_secret };
  });
  afterAll(() => server.close());

  const authorizeUrl = (clientId: string) => {
    const u = new URL(`${server.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(verifier()),
      code_challenge_method: 'S256',
    }).toString();
    return u.href;
  };
  const logged = (id: string) => lines.filter((l) => l.reqId === id);

  it('a valid incoming id is echoed on token JSON, errors, 404s, error pages, redirects and preflights, and logged', async () => {
    const cases: Array<[string, string, () => Promise<Response | { status: number; headers: Headers }>, number]> = [
      [
        'token',
        'tok.1:A_b-c',
        () =>
          postForm(
            `${server.issuer}/token`,
            { grant_type: 'client_credentials', scope: 'mcp:read' },
            { authorization: basic(serviceClient.id, serviceClient.secret), 'x-request-id': 'tok.1:A_b-c' },
          ),
        200,
      ],
      [
        'token error',
        'tok-err-2',
        () => postForm(`${server.issuer}/token`, { grant_type: 'nonsense' }, { 'x-request-id': 'tok-err-2' }),
        400,
      ],
      ['404', 'nf-3', () => fetch(`${server.origin}/no-such-path`, { headers: { 'x-request-id': 'nf-3' } }), 404],
      [
        'error page',
        'page-4',
        () => fetch(authorizeUrl('unknown-client'), { headers: { 'x-request-id': 'page-4' }, redirect: 'manual' }),
        400,
      ],
      [
        'redirect',
        'redir-5',
        () => fetch(authorizeUrl(publicClient), { headers: { 'x-request-id': 'redir-5' }, redirect: 'manual' }),
        303,
      ],
      [
        'preflight',
        'cors-6',
        () =>
          fetch(`${server.issuer}/token`, {
            method: 'OPTIONS',
            headers: {
              'x-request-id': 'cors-6',
              origin: 'https://inspector.example',
              'access-control-request-method': 'POST',
            },
          }),
        204,
      ],
      [
        'metadata',
        'meta-7',
        () =>
          fetch(`${server.issuer}/.well-known/oauth-authorization-server`, { headers: { 'x-request-id': 'meta-7' } }),
        200,
      ],
      ['health', 'health-8', () => fetch(`${server.origin}/health`, { headers: { 'x-request-id': 'health-8' } }), 200],
    ];
    for (const [name, id, send, status] of cases) {
      const res = await send();
      expect(res.status, name).toBe(status);
      expect(res.headers.get('x-request-id'), name).toBe(id);
      expect(logged(id).length, `${name}: log lines with reqId ${id}`).toBeGreaterThan(0);
    }
  });

  it('router refusals (a malformed URL, answered before any route) carry one too', async () => {
    const given = await fetch(`${server.issuer}/%E0%A4%A`, { headers: { 'x-request-id': 'rid-bad-url-1' } });
    expect(given.status).toBe(400);
    expect(given.headers.get('x-request-id')).toBe('rid-bad-url-1');
    const generated = await fetch(`${server.issuer}/register/%ZZ`);
    expect(generated.headers.get('x-request-id')).toMatch(UUID);
  });

  it('browser clients may read it on CORS responses', async () => {
    const res = await fetch(`${server.issuer}/.well-known/oauth-authorization-server`, {
      headers: { origin: 'https://inspector.example' },
    });
    expect(
      res.headers
        .get('access-control-expose-headers')
        ?.split(/,\s*/)
        .map((h) => h.toLowerCase()),
    ).toContain('x-request-id');
  });

  it('an error page shows the request id (given or generated)', async () => {
    const given = await fetch(authorizeUrl('unknown-client'), { headers: { 'x-request-id': 'support-ticket-42' } });
    expect(given.status).toBe(400);
    expect(await given.text()).toContain('Request id: <code>support-ticket-42</code>');

    const generated = await fetch(authorizeUrl('unknown-client'));
    const id = generated.headers.get('x-request-id')!;
    expect(id).toMatch(UUID);
    expect(await generated.text()).toContain(`Request id: <code>${id}</code>`);

    // The interaction pages' error path (pageError) as well: an unknown interaction.
    const interaction = await fetch(`${server.issuer}/interaction/not-a-real-interaction`, {
      headers: { 'x-request-id': 'ix-err-9' },
    });
    expect(interaction.status).toBeGreaterThanOrEqual(400);
    expect(interaction.headers.get('x-request-id')).toBe('ix-err-9');
    expect(await interaction.text()).toContain('Request id: <code>ix-err-9</code>');
  });

  it('without an incoming id, a fresh one is generated per request, returned and logged', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.origin}/health`);
      const id = res.headers.get('x-request-id')!;
      expect(id).toMatch(UUID);
      expect(logged(id).length).toBeGreaterThan(0);
      ids.add(id);
    }
    expect(ids.size).toBe(3);
  });

  it('an unsafe incoming id (too long, odd characters, markup, two headers) is replaced, never reflected', async () => {
    const unsafe = ['a'.repeat(129), 'has space', 'semi;colon', '<script>alert(1)</script>', 'quote"d', 'x,y'];
    for (const value of unsafe) {
      const res = await fetch(authorizeUrl('unknown-client'), { headers: { 'x-request-id': value } });
      const id = res.headers.get('x-request-id')!;
      expect(id, value).toMatch(UUID);
      const body = await res.text();
      expect(body.includes(value), `${value} reflected on the page`).toBe(false);
      expect(body).toContain(`Request id: <code>${id}</code>`);
      expect(
        lines.some((l) => JSON.stringify(l).includes(value)),
        `${value} reflected in the log`,
      ).toBe(false);
    }
    // The longest accepted length is kept.
    const longest = 'b'.repeat(128);
    expect(
      (await fetch(`${server.origin}/health`, { headers: { 'x-request-id': longest } })).headers.get('x-request-id'),
    ).toBe(longest);

    // Two X-Request-Id headers (Node joins them with ", "): replaced.
    const twice = await rawRequest(
      Number(new URL(server.origin).port),
      Buffer.from(
        'GET /health HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: one\r\nX-Request-Id: two\r\nConnection: close\r\n\r\n',
      ),
    );
    expect(twice).toMatch(/^HTTP\/1\.1 200/);
    expect(twice).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/i);

    // Non-ASCII bytes on the wire (obs-text): replaced.
    const unicode = await rawRequest(
      Number(new URL(server.origin).port),
      Buffer.concat([
        Buffer.from('GET /health HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: '),
        Buffer.from('caf\u00e9-\u2603', 'utf8'),
        Buffer.from('\r\nConnection: close\r\n\r\n'),
      ]),
    );
    expect(unicode).toMatch(/^HTTP\/1\.1 200/);
    expect(unicode).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/i);

    // CR/LF inside the value cannot cross a real socket (Node's parser refuses it); in-process injection can carry it.
    for (const value of ['evil\r\nset-cookie: a=b', 'caf\u00e9', '\u2603']) {
      const res = await server.gatehouse.app.inject({
        method: 'GET',
        url: '/health',
        headers: { 'x-request-id': value },
      });
      expect(String(res.headers['x-request-id']), JSON.stringify(value)).toMatch(UUID);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it('a 500 carries the id in its header and in the error log line', async () => {
    const res = await postForm(
      `${server.issuer}/token`,
      { grant_type: 'client_credentials', client_id: BROKEN_CLIENT, client_secret: 'x'.repeat(32) },
      { 'x-request-id': 'boom-10' },
    );
    expect(res.status).toBe(500);
    expect(res.json.error).toBe('server_error');
    expect(res.headers.get('x-request-id')).toBe('boom-10');
    const errorLine = lines.find((l) => l.msg === 'request failed' && l.reqId === 'boom-10');
    expect(errorLine, 'the error line names the request').toBeDefined();
  });

  it('log lines carry an ISO 8601 UTC time', async () => {
    await fetch(`${server.origin}/health`);
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      expect(line.time).toMatch(ISO);
      expect(Math.abs(Date.parse(line.time as string) - Date.now())).toBeLessThan(10 * 60_000);
    }
  });
});

describe('request ids at the default log level', () => {
  it('the error line of a 500 names the request id even when per-request lines are off', async () => {
    const { logger, lines } = capture('info');
    const server = await startServer({}, { logger, storage: storeWithBrokenClient() });
    try {
      const res = await postForm(`${server.issuer}/token`, {
        grant_type: 'client_credentials',
        client_id: BROKEN_CLIENT,
        client_secret: 'x'.repeat(32),
      });
      expect(res.status).toBe(500);
      const id = res.headers.get('x-request-id')!;
      expect(id).toMatch(UUID);
      const errorLine = lines.find((l) => l.msg === 'request failed');
      expect(errorLine?.reqId).toBe(id);
      expect(errorLine?.time).toMatch(ISO);
    } finally {
      await server.close();
    }
  });
});
