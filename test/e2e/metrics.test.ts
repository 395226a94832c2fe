/**
 * Prometheus metrics (http/metrics.ts): scraped over HTTP and parsed after real flows; the counters move by exactly
 * what the flows did; labels carry route patterns, never a tenant or client id; off unless configured; the token on
 * the main port; a listener of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/core/crypto.js';
import { authorizeThroughPages, basic, postForm, postJson } from '../helpers/oauth.js';
import { ALICE, freePort, startServer, type TestServer } from '../helpers/server.js';

const TOKEN = 'metrics-scrape-token-0123456789abcdef';
const REDIRECT = 'http://127.0.0.1/callback';
const SERVICE = { id: 'metrics-service', secret: 'metrics-service-secret-0123456789ab' };

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Parses the text exposition format (samples only). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the sample `name` whose labels include `labels` (summed over the rest), 0 when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('metrics on the main port, behind a token', () => {
  let server: TestServer;
  const scrapeText = async () => {
    const res = await fetch(`${server.issuer}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return res.text();
  };
  const scrape = async () => parse(await scrapeText());

  beforeAll(async () => {
    server = await startServer({
      metrics: { token: TOKEN },
      tokens: { refreshGraceSeconds: 0 },
      clients: [{ client_id: SERVICE.id, client_secret: SERVICE.secret, grant_types: ['client_credentials'] }],
      tenants: [{ id: 'acme', registration: { rateLimit: { perIp: 1 } } }],
    });
  });
  afterAll(() => server.close());

  it('refuses a scrape without the token or with a wrong one, and on a tenant path', async () => {
    expect((await fetch(`${server.issuer}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${server.issuer}/metrics`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Bearer');
    const tenant = await fetch(`${server.issuer}/acme/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(tenant.status).toBe(404);
  });

  it('counts requests, tokens per grant type, refusals, refresh reuse, store calls, caches, clients and keys', async () => {
    const before = await scrape();
    // Three client_credentials tokens and one wrong secret.
    for (let i = 0; i < 3; i++) {
      const ok = await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        { authorization: basic(SERVICE.id, SERVICE.secret) },
      );
      expect(ok.status).toBe(200);
    }
    const bad = await postForm(
      `${server.issuer}/token`,
      { grant_type: 'client_credentials' },
      { authorization: basic(SERVICE.id, 'wrong-secret-0123456789abcdef') },
    );
    expect(bad.status).toBe(401);
    // A registration, a code flow, a refresh, and the spent refresh token again.
    const reg = await postJson(`${server.issuer}/register`, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    });
    expect(reg.status).toBe(201);
    const clientId = reg.json.client_id as string;
    const { callback, verifier } = await authorizeThroughPages(server, clientId, REDIRECT, ALICE);
    const code = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: callback.searchParams.get('code')!,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    });
    expect(code.status).toBe(200);
    const refresh = {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: code.json.refresh_token as string,
    };
    expect((await postForm(`${server.issuer}/token`, refresh)).status).toBe(200);
    expect((await postForm(`${server.issuer}/token`, refresh)).json.error).toBe('invalid_grant');
    const text = await scrapeText();
    const after = parse(text);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);

    expect(delta('gatehouse_tokens_issued_total', { grant_type: 'client_credentials' })).toBe(3);
    expect(delta('gatehouse_tokens_issued_total', { grant_type: 'authorization_code' })).toBe(1);
    expect(delta('gatehouse_tokens_issued_total', { grant_type: 'refresh_token' })).toBe(1);
    expect(delta('gatehouse_refresh_token_reuse_total')).toBe(1);
    expect(delta('gatehouse_token_refusals_total', { grant_type: 'client_credentials', error: 'invalid_client' })).toBe(
      1,
    );
    expect(delta('gatehouse_token_refusals_total', { grant_type: 'refresh_token', error: 'invalid_grant' })).toBe(1);
    expect(delta('gatehouse_audit_events_total', { type: 'client.registered', outcome: 'success' })).toBe(1);
    expect(delta('gatehouse_audit_events_total', { type: 'refresh.reuse_detected', outcome: 'denied' })).toBe(1);
    // Requests by route pattern and status; the histogram saw every token request.
    expect(delta('gatehouse_http_requests_total', { method: 'POST', route: '/token', status: '200' })).toBe(5);
    expect(delta('gatehouse_http_requests_total', { method: 'POST', route: '/token', status: '401' })).toBe(1);
    expect(delta('gatehouse_http_requests_total', { method: 'POST', route: '/token', status: '400' })).toBe(1);
    expect(delta('gatehouse_http_requests_total', { method: 'POST', route: '/register', status: '201' })).toBe(1);
    expect(delta('gatehouse_http_request_duration_seconds_count', { method: 'POST', route: '/token' })).toBe(7);
    // The store: the registration saved one client, the code was consumed once, every call was timed.
    expect(delta('gatehouse_store_operation_duration_seconds_count', { operation: 'saveClient' })).toBe(1);
    expect(delta('gatehouse_store_operation_duration_seconds_count', { operation: 'consumeAuthorizationCode' })).toBe(
      1,
    );
    expect(delta('gatehouse_store_operation_duration_seconds_count', { operation: 'rotateRefreshToken' })).toBe(1);
    // The spent token's reuse revoked its grant.
    expect(delta('gatehouse_store_operation_duration_seconds_count', { operation: 'revokeGrant' })).toBe(1);
    expect(value(after, 'gatehouse_store_errors_total')).toBe(0);
    // The client cache served the service's repeated requests.
    expect(delta('gatehouse_cache_requests_total', { cache: 'client', result: 'hit' })).toBeGreaterThanOrEqual(2);
    // Gauges read on scrape: the static client plus the registered one; one active key per configured algorithm.
    expect(value(after, 'gatehouse_registered_clients')).toBe(value(before, 'gatehouse_registered_clients') + 1);
    expect(value(after, 'gatehouse_registered_clients')).toBe(2);
    expect(value(after, 'gatehouse_registered_clients', { source: 'static' })).toBe(1);
    expect(value(after, 'gatehouse_registered_clients', { source: 'dynamic' })).toBe(1);
    expect(value(before, 'gatehouse_registered_clients', { source: 'dynamic' })).toBe(0);
    expect(value(after, 'gatehouse_signing_keys', { alg: 'ES256', status: 'active' })).toBe(1);
    // Runtime metrics come along by default.
    expect(value(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    // No client id and no raw path is a label value.
    expect(text).not.toContain(clientId);
    expect(text).not.toContain(SERVICE.id);
  });

  it("a tenant's requests count under the deployment's route pattern; its rate-limit hit is counted", async () => {
    const before = await scrape();
    const body = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' };
    expect((await postJson(`${server.issuer}/acme/register`, body)).status).toBe(201);
    expect((await postJson(`${server.issuer}/acme/register`, body)).status).toBe(429);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) =>
      value(after, name, labels) - value(before, name, labels);
    expect(delta('gatehouse_http_requests_total', { route: '/register', status: '201' })).toBe(1);
    expect(delta('gatehouse_http_requests_total', { route: '/register', status: '429' })).toBe(1);
    expect(delta('gatehouse_rate_limit_hits_total', { endpoint: 'register', key: 'ip' })).toBe(1);
    expect(delta('gatehouse_cache_requests_total', { cache: 'tenant', result: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(after.some((s) => Object.values(s.labels).includes('acme'))).toBe(false);
    // An unknown path counts as unmatched, not under its own name.
    await fetch(`${server.issuer}/no/such/path-4711`);
    const later = await scrapeText();
    expect(later).not.toContain('path-4711');
    expect(value(parse(later), 'gatehouse_http_requests_total', { route: 'unmatched', status: '404' })).toBeGreaterThan(
      0,
    );
  });
});

describe('metrics on a port of their own', () => {
  it('serves /metrics there (token-less when none is set), not on the main port', async () => {
    const port = await freePort();
    const server = await startServer({ metrics: { port, defaultMetrics: false } });
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      const samples = parse(await res.text());
      expect(value(samples, 'gatehouse_signing_keys', { status: 'active' })).toBeGreaterThan(0);
      expect(samples.some((s) => s.name.startsWith('process_'))).toBe(false);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
      expect((await fetch(`${server.issuer}/metrics`)).status).toBe(404);
    } finally {
      await server.close();
    }
    // Closed with the server.
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it('requires the token there when one is configured (tokenSha256 form)', async () => {
    const port = await freePort();
    const server = await startServer({ metrics: { port, tokenSha256: sha256(TOKEN).toString('hex') } });
    try {
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
      const ok = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('metrics off (the default)', () => {
  it('serves no /metrics and measures nothing', async () => {
    const server = await startServer({});
    try {
      expect((await fetch(`${server.issuer}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
        404,
      );
      expect(server.gatehouse.metrics).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});
