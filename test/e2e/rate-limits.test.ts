/**
 * Shared request limits (config `rateLimits`, `registration.rateLimit.total`) over HTTP: 429 with Retry-After and the
 * endpoint's own error body (JSON `temporarily_unavailable` at token, introspection, revocation and registration; an
 * HTML page at authorize); per client counted after authentication only; per address; windows driven by an injected
 * clock; one tenant's traffic never throttles another's; the defaults let a client_credentials client make 200 token
 * requests at once; and two replicas over one PostgreSQL or Redis store share every counter.
 */
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/server.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { basic, postForm, postJson } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const SVC = { id: 'svc', secret: 'service-client-secret-0123456789abcdef' };
const OTHER = { id: 'other', secret: 'other-client-secret-0123456789abcdefgh' };
const WEB = { id: 'web', redirect: 'http://127.0.0.1/callback' };
const clients: ConfigInput['clients'] = [
  { client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'] },
  { client_id: OTHER.id, client_secret: OTHER.secret, grant_types: ['client_credentials'] },
  { client_id: WEB.id, redirect_uris: [WEB.redirect], token_endpoint_auth_method: 'none' },
];

const token = (server: TestServer, who = SVC, secret = who.secret) =>
  postForm(`${server.issuer}/token`, { grant_type: 'client_credentials' }, { authorization: basic(who.id, secret) });

/** A logger whose lines the test reads. */
function capturedLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: createLogger('info', sink) };
}

describe('with the default limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ clients });
  });
  afterAll(() => server.close());

  it('a client_credentials client making 200 token requests at once is never throttled', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, () => token(server)));
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(200));
  });
});

describe('configured limits on one store', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 5));
  const { lines, logger } = capturedLogger();
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(
      {
        clients,
        rateLimits: {
          token: { perClient: 5, windowSeconds: 60 },
          introspect: { perClient: 2 },
          revoke: { perClient: 2 },
          authorize: { perClient: 3, perIp: 5 },
        },
        registration: { rateLimit: { perIp: 1000, total: 3, windowSeconds: 60 } },
        tenants: [{ id: 'acme', clients }],
      },
      { clock, logger },
    );
  });
  afterAll(() => server.close());

  it('token: per client after authentication, 429 temporarily_unavailable with Retry-After to the window end', async () => {
    for (let i = 0; i < 5; i++) expect((await token(server)).status).toBe(200);
    // Wrong secrets for svc count nothing against svc (they never authenticate as it).
    for (let i = 0; i < 3; i++) expect((await token(server, SVC, 'wrong-secret-wrong-secret-wrong')).status).toBe(401);
    const over = await token(server);
    expect(over.status).toBe(429);
    expect(over.json.error).toBe('temporarily_unavailable');
    expect(over.json.error_description).toContain('client');
    expect(over.headers.get('retry-after')).toBe('55'); // the window ends at 00:01:00; the clock says 00:00:05
    expect(over.headers.get('cache-control')).toBe('no-store');
    // Another client, and the same client in a tenant, have counters of their own.
    expect((await token(server, OTHER)).status).toBe(200);
    const tenantToken = await postForm(
      `${server.issuer}/acme/token`,
      { grant_type: 'client_credentials' },
      { authorization: basic(SVC.id, SVC.secret) },
    );
    expect(tenantToken.status).toBe(200);
    // One audit event: the endpoint, what was counted and the wait; the request's address like every audit event.
    const hits = lines.map((l) => JSON.parse(l)).filter((l) => l.audit && l.type === 'rate_limit.hit');
    expect(hits).toHaveLength(1);
    expect(hits[0]).toMatchObject({ endpoint: 'token', keyKind: 'client', retryAfterSeconds: 55, outcome: 'denied' });
    expect(hits[0].ip).toBeDefined();
    // The next window starts afresh.
    clock.advance(60_000);
    expect((await token(server)).status).toBe(200);
  });

  it('introspection and revocation: per authenticated client', async () => {
    clock.advance(60_000);
    const access = (await token(server, OTHER)).json.access_token as string;
    const auth = { authorization: basic(OTHER.id, OTHER.secret) };
    for (const endpoint of ['introspect', 'revoke']) {
      for (let i = 0; i < 2; i++)
        expect((await postForm(`${server.issuer}/${endpoint}`, { token: access }, auth)).status).toBe(200);
      const over = await postForm(`${server.issuer}/${endpoint}`, { token: access }, auth);
      expect(over.status, endpoint).toBe(429);
      expect(over.json.error).toBe('temporarily_unavailable');
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('authorize: per registered client, then per address, as a 429 page with Retry-After', async () => {
    clock.advance(60_000);
    const authorize = (clientId: string) =>
      fetch(
        `${server.issuer}/authorize?${new URLSearchParams({
          client_id: clientId,
          response_type: 'code',
          redirect_uri: WEB.redirect,
          code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
          code_challenge_method: 'S256',
        })}`,
        { redirect: 'manual' },
      );
    for (let i = 0; i < 3; i++) expect((await authorize(WEB.id)).status).toBe(303);
    const page = await authorize(WEB.id);
    expect(page.status).toBe(429);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(Number(page.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await page.text()).toContain('temporarily_unavailable');
    // Unknown client ids make no per-client counters, but every request counts against the address (5 per window).
    expect((await authorize('nobody')).status).toBe(400);
    expect((await authorize('nobody')).status).toBe(429);
  });

  it('registration: a total limit over every address, 429 with Retry-After', async () => {
    clock.advance(60_000);
    const reg = () =>
      postJson(`${server.issuer}/register`, { redirect_uris: [WEB.redirect], token_endpoint_auth_method: 'none' });
    for (let i = 0; i < 3; i++) expect((await reg()).status).toBe(201);
    const over = await reg();
    expect(over.status).toBe(429);
    expect(over.json.error).toBe('temporarily_unavailable');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    // The tenant's registrations are counted apart.
    expect(
      (
        await postJson(`${server.issuer}/acme/register`, {
          redirect_uris: [WEB.redirect],
          token_endpoint_auth_method: 'none',
        })
      ).status,
    ).toBe(201);
  });
});

describe('per-address token limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ clients, rateLimits: { token: { perIp: 3 } }, tenants: [{ id: 'acme', clients }] });
  });
  afterAll(() => server.close());

  it('counts every request of the address, whatever the client, per tenant', async () => {
    expect((await token(server)).status).toBe(200);
    expect((await token(server, OTHER)).status).toBe(200);
    expect((await token(server, SVC, 'wrong-secret-wrong-secret-wrong')).status).toBe(401);
    const over = await token(server);
    expect(over.status).toBe(429);
    expect(over.json.error_description).toContain('address');
    const tenant = await postForm(
      `${server.issuer}/acme/token`,
      { grant_type: 'client_credentials' },
      { authorization: basic(SVC.id, SVC.secret) },
    );
    expect(tenant.status).toBe(200);
  });
});

for (const store of E2E_STORES.filter((s) => s.service)) {
  describe(`two replicas on one ${store.kind} store share the counters`, () => {
    const available = requireService(store.service!);
    const isolation = `gh_rl_${randomBytes(4).toString('hex')}`;
    let a: TestServer;
    let b: TestServer;
    // One clock for both replicas, in the middle of an hour's window, so the window cannot end during the test.
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 10, 30));
    beforeAll(async () => {
      if (!(await available)) return;
      const config: Partial<ConfigInput> = {
        ...store.config(isolation),
        clients,
        rateLimits: { token: { perClient: 10, windowSeconds: 3600 } },
        tenants: [{ id: 'acme', clients }],
      };
      a = await startServer(config, { clock });
      b = await startServer(config, { clock });
    }, 60_000);
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await store.cleanup?.(isolation);
    });

    it('a client gets its allowance once across both replicas, and only in its own tenant', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const statuses = await Promise.all(
        Array.from({ length: 16 }, (_, i) => token(i % 2 ? a : b).then((r) => r.status)),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(6);
      expect((await token(a)).status).toBe(429);
      expect((await token(b)).status).toBe(429);
      for (const server of [a, b]) {
        const tenant = await postForm(
          `${server.issuer}/acme/token`,
          { grant_type: 'client_credentials' },
          { authorization: basic(SVC.id, SVC.secret) },
        );
        expect(tenant.status).toBe(200);
      }
    });
  });
}
