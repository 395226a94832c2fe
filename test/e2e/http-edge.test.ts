/**
 * The HTTP edge: connection limits against slow and idle clients (config `http`), the registration rate limit and
 * client cap (config `registration.rateLimit`, `registration.maxClients`) shared across replicas, NUL bytes refused
 * before they reach a store, and framework errors (bad URL, over-long path parameter) answered as OAuth errors.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/server.js';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postJson, verifier } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { dropIsolation, requireService } from '../helpers/services.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const server = await startServer(...args);
  servers.push(server);
  return server;
}

/** A raw client socket: what it received and when the server closed it (ms after `opened`). */
interface RawClient {
  socket: Socket;
  opened: number;
  received: () => string;
  /** Resolves with ms from open to close, or Infinity if still open after `capMs`. */
  closedWithin: (capMs: number) => Promise<number>;
}

function rawClient(origin: string): Promise<RawClient> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname === 'localhost' ? '127.0.0.1' : hostname);
    let data = '';
    let closedAt: number | undefined;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', () => undefined); // a reset by the server is the point of some tests
    socket.once('close', () => (closedAt = Date.now()));
    socket.once('connect', () => {
      const opened = Date.now();
      resolve({
        socket,
        opened,
        received: () => data,
        closedWithin: async (capMs) => {
          await Promise.race([closed, new Promise((r) => setTimeout(r, Math.max(0, opened + capMs - Date.now())))]);
          return closedAt === undefined ? Infinity : closedAt - opened;
        },
      });
    });
    socket.once('error', reject);
  });
}

/** Sends full headers announcing a body, then one body byte every `everyMs` (never finishing in time). */
async function slowBody(origin: string, everyMs = 100): Promise<RawClient> {
  const client = await rawClient(origin);
  client.socket.write(
    'POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n\r\ngrant_type=',
  );
  const timer = setInterval(() => (client.socket.writable ? client.socket.write('a') : clearInterval(timer)), everyMs);
  client.socket.once('close', () => clearInterval(timer));
  return client;
}

const stopAll = (clients: RawClient[]) => clients.forEach((c) => c.socket.destroy());

describe('connection limits (config http)', () => {
  const http = { requestTimeoutMs: 1000, headersTimeoutMs: 600, keepAliveTimeoutMs: 400, connectionTimeoutMs: 5000 };

  it('closes a connection whose body trickles in slower than requestTimeoutMs, with 408', async () => {
    const server = await start({ http });
    const client = await slowBody(server.origin);
    const ms = await client.closedWithin(8000);
    stopAll([client]);
    // requestTimeoutMs plus one sweep of Node's connection check (a quarter of the smaller timeout) and slack.
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4000);
    const [head, body] = client.received().split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(head).toMatch(/\r\ncache-control: no-store/i);
    expect(JSON.parse(body!)).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
  });

  it('answers unparsable HTTP with RFC 6749 JSON (400, no-store) and closes', async () => {
    const server = await start({ http });
    const client = await rawClient(server.origin);
    client.socket.write('GET /health?secret-looking HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n');
    expect(await client.closedWithin(4000)).toBeLessThan(4000);
    const [head, body] = client.received().split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/\r\ncache-control: no-store/i);
    expect(JSON.parse(body!)).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
    expect(client.received()).not.toContain('secret-looking');
  });

  it('closes a connection whose headers trickle in slower than headersTimeoutMs', async () => {
    const server = await start({ http });
    const client = await rawClient(server.origin);
    client.socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n');
    const timer = setInterval(() => client.socket.writable && client.socket.write('X-Slow: 1\r\n'), 100);
    const ms = await client.closedWithin(8000);
    clearInterval(timer);
    stopAll([client]);
    expect(ms).toBeLessThan(4000);
  });

  it('many slow-body connections do not stop /health answering, and all of them are closed', async () => {
    const server = await start({ http });
    const clients = await Promise.all(Array.from({ length: 200 }, () => slowBody(server.origin, 200)));
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${server.origin}/health`, { signal: AbortSignal.timeout(2000) });
        expect(res.status).toBe(200);
      }
      const times = await Promise.all(clients.map((c) => c.closedWithin(8000)));
      expect(Math.max(...times)).toBeLessThan(5000);
      expect((await fetch(`${server.origin}/health`, { signal: AbortSignal.timeout(2000) })).status).toBe(200);
    } finally {
      stopAll(clients);
    }
  });

  it('closes an idle keep-alive connection after keepAliveTimeoutMs, and a socket after maxRequestsPerSocket', async () => {
    const server = await start({ http: { ...http, maxRequestsPerSocket: 2 } });
    const client = await rawClient(server.origin);
    const request = 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n';
    client.socket.write(request);
    await new Promise((r) => setTimeout(r, 200));
    const secondAt = Date.now();
    client.socket.write(request);
    const ms = (await client.closedWithin(3000)) - (secondAt - client.opened);
    const responses = client.received().split('HTTP/1.1 ').slice(1);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^200 [\s\S]*connection: keep-alive/i);
    // The second request was the socket's last: the server says so and ends the connection.
    expect(responses[1]).toMatch(/^200 [\s\S]*connection: close/i);
    expect(ms).toBeLessThan(3000);

    const idle = await rawClient(server.origin);
    idle.socket.write(request);
    const idleMs = await idle.closedWithin(3000);
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(idleMs).toBeGreaterThanOrEqual(350);
    expect(idleMs).toBeLessThan(2500);
  });

  it('refuses a headersTimeoutMs above requestTimeoutMs at start', async () => {
    await expect(start({ http: { requestTimeoutMs: 1000, headersTimeoutMs: 2000 } })).rejects.toThrow(
      /headersTimeoutMs/,
    );
  });
});

/** Log lines of a server, to prove a refusal logged no error and no stack trace. */
function logSink(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, logger: createLogger('info', sink) };
}

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const REDIRECT = 'http://127.0.0.1/callback';

/** The stores a NUL byte is driven against: memory keeps it, PostgreSQL (and PGlite) cannot store it. */
const nulStores = [
  {
    name: 'memory',
    config: () => ({ storage: 'memory' }),
    available: async () => true,
    cleanup: async () => undefined,
  },
  {
    name: 'postgres',
    config: (isolation: string) => ({ storage: PG_URL, postgres: { schema: isolation } }),
    available: () => requireService('postgres'),
    cleanup: async (isolation: string) => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${isolation} CASCADE`);
      await client.end();
    },
  },
  {
    name: 'embedded',
    config: (isolation: string) => ({ storage: join(tmpdir(), isolation) }),
    available: async () => true,
    cleanup: async (isolation: string) => rmSync(join(tmpdir(), isolation), { recursive: true, force: true }),
  },
] as const;

for (const store of nulStores) {
  describe(`a NUL byte in any request value (${store.name} store)`, () => {
    const isolation = `gh_nul_${randomBytes(4).toString('hex')}`;
    const { lines, logger } = logSink();
    let server: TestServer | undefined;
    let clientId = '';
    let loginPage: { browser: FormBrowser; html: string; url: string } | undefined;
    let available = false;

    beforeAll(async () => {
      available = await store.available();
      if (!available) return;
      server = await startServer(store.config(isolation), { logger });
      const reg = await postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
      });
      expect(reg.status).toBe(201);
      clientId = reg.json.client_id as string;
      const browser = new FormBrowser();
      const url = new URL(`${server.issuer}/authorize`);
      url.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: challenge(verifier()),
        code_challenge_method: 'S256',
        scope: 'openid',
      }).toString();
      const step = await browser.follow(url.href, server.origin);
      const html = await step.res.text();
      expect(html).toContain('name="password"');
      loginPage = { browser, html, url: step.url };
    }, 60_000);

    afterAll(async () => {
      await server?.close();
      if (available) await store.cleanup(isolation);
    });

    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const cases: { name: string; page: boolean; send: (issuer: string) => Promise<Response> }[] = [
      {
        name: 'authorize query',
        page: true,
        send: (issuer) =>
          fetch(`${issuer}/authorize?client_id=a%00b&response_type=code&redirect_uri=${encodeURIComponent(REDIRECT)}`),
      },
      {
        name: 'token form',
        page: false,
        send: (issuer) =>
          fetch(`${issuer}/token`, {
            method: 'POST',
            headers: form,
            body: 'grant_type=authorization_code&code=x&code_verifier=y&client_id=a%00b',
          }),
      },
      {
        name: 'Basic header',
        page: false,
        send: (issuer) =>
          fetch(`${issuer}/token`, {
            method: 'POST',
            headers: { ...form, authorization: basic('a\u0000b', 'secret') },
            body: 'grant_type=client_credentials',
          }),
      },
      {
        name: 'revoke form',
        page: false,
        send: (issuer) => fetch(`${issuer}/revoke`, { method: 'POST', headers: form, body: 'token=x&client_id=a%00b' }),
      },
      {
        name: 'register JSON',
        page: false,
        send: (issuer) =>
          fetch(`${issuer}/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              redirect_uris: [REDIRECT],
              token_endpoint_auth_method: 'none',
              client_name: 'a\u0000b',
            }),
          }),
      },
      {
        name: 'RFC 7592 path',
        page: false,
        send: (issuer) =>
          fetch(`${issuer}/register/a%00b`, { headers: { authorization: 'Bearer some-registration-token' } }),
      },
      {
        name: 'login form',
        page: true,
        send: async (issuer) => {
          const { action, fields } = FormBrowser.form(loginPage!.html, loginPage!.url);
          expect(action.startsWith(`${issuer}/interaction/`)).toBe(true);
          return loginPage!.browser.request(action, {
            method: 'POST',
            headers: form,
            body: new URLSearchParams({ ...fields, username: 'a\u0000b', password: 'whatever it is' }).toString(),
          });
        },
      },
      { name: 'interaction path', page: true, send: (issuer) => fetch(`${issuer}/interaction/a%00b`) },
    ];

    for (const c of cases) {
      it(`${c.name}: 400 invalid_request with no-store, never a 500, and no error or stack in the log`, async (ctx) => {
        if (!available) return ctx.skip();
        const before = lines.length;
        const res = await c.send(server!.issuer);
        const body = await res.text();
        expect(res.status, body.slice(0, 300)).toBe(400);
        expect(res.headers.get('cache-control')).toBe('no-store');
        if (c.page) {
          expect(res.headers.get('content-type')).toMatch(/^text\/html/);
          expect(body).toContain('<code>invalid_request</code>');
        } else {
          expect(JSON.parse(body)).toMatchObject({ error: 'invalid_request' });
        }
        const logged = lines.slice(before);
        expect(logged.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual([]);
        expect(logged.filter((l) => l.includes('"stack"'))).toEqual([]);
      });
    }

    it('a literal "%00" (sent as %2500) is an ordinary value, not refused', async (ctx) => {
      if (!available) return ctx.skip();
      const res = await fetch(`${server!.issuer}/revoke`, {
        method: 'POST',
        headers: form,
        body: `token=x%2500y&client_id=${clientId}`,
      });
      expect(res.status).toBe(200);
    });
  });
}

describe('framework errors are OAuth errors', () => {
  const checkJson = async (res: Response, status: number, notEchoed: string) => {
    const body = await res.text();
    expect(res.status).toBe(status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(body)).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
    expect(body).not.toContain(notEchoed);
  };
  const checkPage = async (res: Response, status: number, notEchoed: string) => {
    const body = await res.text();
    expect(res.status).toBe(status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(body).toContain('<code>invalid_request</code>');
    expect(body).not.toContain(notEchoed);
  };

  it('a malformed URL (/%zz) answers 400 invalid_request JSON, without the URL', async () => {
    const { lines, logger } = logSink();
    const server = await start({}, { logger });
    await checkJson(await fetch(`${server.origin}/%zzsecret-looking-path`), 400, 'secret-looking-path');
    await checkJson(
      await fetch(`${server.origin}/register/%zzsecret`, { headers: { authorization: 'Bearer x' } }),
      400,
      'zzsecret',
    );
    expect(lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual([]);
  });

  it('an over-long path parameter answers 414 invalid_request JSON, without the URL', async () => {
    const server = await start();
    const long = 'L'.repeat(300);
    await checkJson(
      await fetch(`${server.origin}/register/${long}`, { headers: { authorization: 'Bearer x' } }),
      414,
      long.slice(0, 50),
    );
  });

  it('on the browser pages (interaction) the same errors are the error page', async () => {
    const server = await start();
    const long = 'L'.repeat(300);
    await checkPage(await fetch(`${server.origin}/interaction/${long}`), 414, long.slice(0, 50));
    await checkPage(await fetch(`${server.origin}/interaction/%zzsecret`), 400, 'zzsecret');
  });
});

describe('registration rate limit and client cap', () => {
  const WINDOW = 600;
  const metadata = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' };
  const from = (address: string) => ({ 'x-forwarded-for': address });
  /** A clock in the middle of the current window, so a test never straddles a window boundary. */
  const midWindowClock = () =>
    new ManualClock(Math.floor(Date.now() / (WINDOW * 1000)) * WINDOW * 1000 + (WINDOW * 1000) / 2);

  it('N registrations per address, then 429 with Retry-After until the window ends; IPv6 counts per /64', async () => {
    const clock = midWindowClock();
    const server = await start(
      { trustProxy: true, registration: { rateLimit: { perIp: 3, windowSeconds: WINDOW } } },
      { clock },
    );
    const register = (address: string) => postJson(`${server.issuer}/register`, metadata, from(address));
    for (let i = 0; i < 3; i++) expect((await register('203.0.113.7')).status).toBe(201);
    const refused = await register('203.0.113.7');
    expect(refused.status).toBe(429);
    expect(refused.json).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(Number(refused.headers.get('retry-after'))).toBe(WINDOW / 2);
    // Another address has its own count; a whole IPv6 /64 shares one.
    expect((await register('203.0.113.8')).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await register(`2001:db8:1:2::${i + 1}`)).status).toBe(201);
    expect((await register('2001:db8:1:2:ffff:ffff:ffff:ffff')).status).toBe(429);
    expect((await register('2001:db8:1:3::1')).status).toBe(201);
    // The next window starts afresh.
    clock.advance((WINDOW / 2) * 1000);
    expect((await register('203.0.113.7')).status).toBe(201);
  });

  it('is not applied when registration requires an initial access token', async () => {
    const token = 'an-initial-access-token-of-enough-length';
    const server = await start({
      registration: { initialAccessToken: token, rateLimit: { perIp: 1, windowSeconds: WINDOW } },
    });
    for (let i = 0; i < 3; i++) {
      expect((await postJson(`${server.issuer}/register`, metadata, { authorization: `Bearer ${token}` })).status).toBe(
        201,
      );
    }
  });

  it('at registration.maxClients clients: 503 temporarily_unavailable until one is deleted', async () => {
    const server = await start({ registration: { maxClients: 2 } });
    const first = await postJson(`${server.issuer}/register`, metadata);
    expect(first.status).toBe(201);
    expect((await postJson(`${server.issuer}/register`, metadata)).status).toBe(201);
    const full = await postJson(`${server.issuer}/register`, metadata);
    expect(full.status).toBe(503);
    expect(full.json).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.stringMatching(/cannot register more clients/),
    });
    expect(full.headers.get('cache-control')).toBe('no-store');
    const del = await fetch(first.json.registration_client_uri as string, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${first.json.registration_access_token as string}` },
    });
    expect(del.status).toBe(204);
    expect((await postJson(`${server.issuer}/register`, metadata)).status).toBe(201);
  });

  const shared = [
    { kind: 'postgres', config: (isolation: string) => ({ storage: PG_URL, postgres: { schema: isolation } }) },
    {
      kind: 'redis',
      config: (isolation: string) => ({ storage: 'redis://127.0.0.1:6379', redis: { keyPrefix: `${isolation}:` } }),
    },
  ] as const;
  for (const store of shared) {
    it(`counters and the cap are shared by two instances on one ${store.kind} store`, async (ctx) => {
      if (!(await requireService(store.kind))) return ctx.skip();
      const isolation = `gh_reg_${randomBytes(4).toString('hex')}`;
      const clock = midWindowClock();
      const config = {
        ...store.config(isolation),
        trustProxy: true,
        registration: { rateLimit: { perIp: 3, windowSeconds: WINDOW }, maxClients: 5 },
      };
      try {
        const a = await start(config, { clock });
        const b = await start(config, { clock });
        const register = (server: TestServer, address: string) =>
          postJson(`${server.issuer}/register`, metadata, from(address));
        expect((await register(a, '198.51.100.1')).status).toBe(201);
        expect((await register(b, '198.51.100.1')).status).toBe(201);
        expect((await register(a, '198.51.100.1')).status).toBe(201);
        expect((await register(b, '198.51.100.1')).status).toBe(429);
        expect((await register(a, '198.51.100.1')).status).toBe(429);
        // Five clients in the store, registered through either instance: both refuse the sixth.
        expect((await register(b, '198.51.100.2')).status).toBe(201);
        expect((await register(a, '198.51.100.3')).status).toBe(201);
        expect((await register(a, '198.51.100.4')).status).toBe(503);
        expect((await register(b, '198.51.100.4')).status).toBe(503);
      } finally {
        await Promise.all(servers.splice(0).map((s) => s.close()));
        await dropIsolation(store.kind, isolation);
      }
    });
  }
});
