/**
 * Flow traces (core/flow-trace.ts) over real HTTP: a refused authorization's error page shows its reference id, and
 * the admin API and the CLI show the step with the decision in plain words; a successful flow through token and
 * refresh shows each step in order with its timing; a tenant's trace is read in its scope only; a trace expires after
 * trace.ttlSeconds (injected clock).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import { ManualClock } from '../../src/core/clock.js';
import { traceIdOf } from '../../src/core/flow-trace.js';
import { traceCommand } from '../../src/cli/trace.js';
import { main } from '../../src/cli/main.js';
import type { ExpiringRecordStore } from '../../src/model/ports.js';
import { authorizeThroughPages, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const ADMIN_TOKEN = 'trace-admin-token-0123456789abcdef';
const REGISTERED = 'http://127.0.0.1:3000/cb';
// Loopback ports may differ (RFC 8252 §7.3): a different path is refused.
const WRONG = 'http://127.0.0.1:3000/elsewhere';
const RESOURCE = 'https://mcp.example.com/mcp';
const TTL_SECONDS = 3600;
const TINA = { username: 'tina', password: 'tenant user password 0815' };

const clock = new ManualClock(Date.parse('2026-12-04T10:00:00.000Z'));
const events: AuditRecord[] = [];
let server: TestServer;

beforeAll(async () => {
  server = await startServer(
    {
      adminToken: ADMIN_TOKEN,
      scopes: ['mcp:read'],
      resources: [RESOURCE],
      tokens: { refreshGraceSeconds: 0 },
      trace: { ttlSeconds: TTL_SECONDS },
      tenants: [{ id: 'acme', users: [TINA] }, { id: 'beta' }],
    },
    { clock, auditSink: (e) => events.push(e) },
  );
});
afterAll(() => server.close());

async function register(issuer: string): Promise<string> {
  const res = await postJson(`${issuer}/register`, {
    redirect_uris: [REGISTERED],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    client_name: 'Trace App',
  });
  expect(res.status).toBe(201);
  return res.json.client_id as string;
}

/** A request with the wrong redirect_uri: the error page, and the reference id it shows. */
async function refusedAtAuthorize(issuer: string, clientId: string) {
  const url = new URL(`${issuer}/authorize`);
  for (const [k, v] of Object.entries({
    client_id: clientId,
    redirect_uri: WRONG,
    response_type: 'code',
    code_challenge: challenge(verifier()),
    code_challenge_method: 'S256',
    state: 'secret-state-value-4711',
  }))
    url.searchParams.set(k, v);
  const res = await fetch(url, { redirect: 'manual' });
  const html = await res.text();
  const reference = /Reference: <code>([A-Za-z0-9_-]+)<\/code>/.exec(html)?.[1];
  return { status: res.status, html, reference };
}

async function admin(path: string, token = ADMIN_TOKEN) {
  const res = await fetch(`${server.origin}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

interface Step {
  time: string;
  elapsedMs: number;
  step: string;
  outcome: string;
  detail: string;
  requestId?: string;
}

/** The CLI's command on the server's own store (the memory store is not reachable from another process). */
async function cli(id: string, args: string[] = []) {
  const store = server.gatehouse.deps.storage;
  const view = {
    getRecord: (kind: string, key: string) => store.getRecord(kind, key),
    close: async () => undefined,
  } as unknown as ExpiringRecordStore & { close(): Promise<void> };
  let out = '';
  let err = '';
  const code = await traceCommand(
    id,
    args,
    async () => ({ storage: view }),
    (t) => (out += t),
    (t) => (err += t),
  );
  return { code, out, err };
}

describe('flow traces', () => {
  let refusedReference: string;

  it('a wrong redirect_uri: the page shows the reference; the admin API and the CLI show the decision', async () => {
    const clientId = await register(server.issuer);
    const refused = await refusedAtAuthorize(server.issuer, clientId);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('Request id:');
    expect(refused.reference).toMatch(/^[A-Za-z0-9_-]{22}$/);
    refusedReference = refused.reference!;
    await server.gatehouse.traces!.flush();

    const read = await admin(`/admin/traces/${refusedReference}`);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: refusedReference, clientId });
    const steps = read.json.steps as Step[];
    expect(steps).toHaveLength(1);
    expect(steps[0]).toMatchObject({
      step: 'authorize.refused',
      outcome: 'denied',
      elapsedMs: 0,
      detail: `redirect_uri refused: registered ${REGISTERED}, got ${WRONG} (invalid_request, shown on the error page)`,
    });
    expect(steps[0]!.requestId).toMatch(/\S/);
    // The client's registration, linked by its client_id.
    expect((read.json.registration as Step[]).map((s) => s.step)).toEqual(['client.registered']);
    expect((read.json.registration as Step[])[0]!.detail).toContain(`client ${clientId} registered (dynamic`);
    // The state value never reaches the trace.
    expect(JSON.stringify(read.json)).not.toContain('secret-state-value-4711');

    const text = await cli(refusedReference);
    expect(text.code).toBe(0);
    expect(text.out).toContain(`trace ${refusedReference} (client ${clientId})`);
    expect(text.out).toMatch(
      new RegExp(`\\+0ms  authorize\\.refused  denied  redirect_uri refused: registered ${REGISTERED}, got ${WRONG}`),
    );
    expect(text.out).toContain('earlier  client.registered');
    const json = await cli(refusedReference, ['--json']);
    expect(JSON.parse(json.out)).toEqual(read.json);

    // Credentials as for every admin call; an unknown id is a 404.
    expect((await admin(`/admin/traces/${refusedReference}`, 'wrong-token')).status).toBe(401);
    expect((await admin('/admin/traces/no-such-trace')).status).toBe(404);
    expect(await cli('no-such-trace')).toMatchObject({
      code: 1,
      err: expect.stringContaining('no trace no-such-trace'),
    });
    // The command is wired into the CLI (without an id it prints its usage and touches no store).
    expect(await main(['trace'])).toBe(2);
  });

  it('a successful flow: authorize, sign-in, consent, code, token and refresh, in order with their timings', async () => {
    const clientId = await register(server.issuer);
    const mark = events.length;
    const { callback, verifier: v } = await authorizeThroughPages(server, clientId, REGISTERED, ALICE, {
      scope: 'mcp:read',
      resource: RESOURCE,
    });
    const issued = events.slice(mark).find((e) => e.type === 'code.issued') as { grantId: string } | undefined;
    const reference = issued!.grantId;
    clock.advance(2000);
    const token = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: callback.searchParams.get('code')!,
      code_verifier: v,
      redirect_uri: REGISTERED,
    });
    expect(token.status).toBe(200);
    clock.advance(3000);
    const refreshed = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: token.json.refresh_token as string,
    });
    expect(refreshed.status).toBe(200);
    await server.gatehouse.traces!.flush();

    const read = await admin(`/admin/traces/${reference}`);
    expect(read.status).toBe(200);
    const steps = read.json.steps as Step[];
    expect(steps.map((s) => [s.step, s.outcome, s.elapsedMs])).toEqual([
      ['authorize.accepted', 'success', 0],
      ['signin.succeeded', 'success', 0],
      ['consent.granted', 'success', 0],
      ['code.issued', 'success', 0],
      ['token.issued', 'success', 2000],
      ['refresh.rotated', 'success', 5000],
      ['token.issued', 'success', 5000],
    ]);
    expect(steps[0]!.detail).toBe(
      `request accepted for client ${clientId}: scopes mcp:read; resources ${RESOURCE}; next: the sign-in page`,
    );
    expect(steps[4]!.detail).toBe(
      `authorization_code: access token + refresh token issued; scopes mcp:read; resources ${RESOURCE}`,
    );
    expect(steps[6]!.detail).toContain('refresh_token: access token + refresh token issued');
    expect(Date.parse(steps[4]!.time) - Date.parse(steps[0]!.time)).toBe(2000);
    // Each browser step names the request it came from.
    expect(new Set(steps.map((s) => s.requestId)).size).toBeGreaterThanOrEqual(5);
    // No code or token in the trace.
    const all = JSON.stringify(read.json);
    for (const secret of [
      callback.searchParams.get('code')!,
      v,
      token.json.access_token,
      token.json.refresh_token,
      refreshed.json.refresh_token,
      ALICE.password,
    ]) {
      expect(all).not.toContain(secret as string);
    }
  });

  it("a tenant's trace is read in its scope only", async () => {
    const acme = `${server.origin}/acme`;
    const clientId = await register(acme);
    const refused = await refusedAtAuthorize(acme, clientId);
    expect(refused.status).toBe(400);
    const reference = refused.reference!;
    await server.gatehouse.traces!.flush();

    const inScope = await admin(`/admin/tenants/acme/traces/${reference}`);
    expect(inScope.status).toBe(200);
    expect((inScope.json.steps as Step[])[0]!.detail).toContain(`redirect_uri refused: registered ${REGISTERED}`);
    expect((await admin(`/admin/traces/${reference}`)).status).toBe(404);
    expect((await admin(`/admin/tenants/beta/traces/${reference}`)).status).toBe(404);
    // Nor the deployment's trace through a tenant.
    expect((await admin(`/admin/tenants/acme/traces/${refusedReference}`)).status).toBe(404);
    expect((await admin(`/admin/traces/${refusedReference}`)).status).toBe(200);
  });

  it('machine grants write no trace: a client_credentials token carries no reference or grant id', () => {
    const record = {
      type: 'token.issued',
      grantType: 'client_credentials',
      clientId: 'svc',
      scopes: [],
      resources: [],
      time: new Date().toISOString(),
      outcome: 'success',
    } as AuditRecord;
    expect(traceIdOf(record)).toBeUndefined();
    expect(traceIdOf({ ...record, grantType: 'refresh_token', grantId: 'g1' } as AuditRecord)).toBe('g1');
  });

  it('a trace is gone after trace.ttlSeconds', async () => {
    expect((await admin(`/admin/traces/${refusedReference}`)).status).toBe(200);
    clock.advance(TTL_SECONDS * 1000 + 1000);
    expect((await admin(`/admin/traces/${refusedReference}`)).status).toBe(404);
    expect((await cli(refusedReference)).code).toBe(1);
  });
});
