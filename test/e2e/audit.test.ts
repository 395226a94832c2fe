/**
 * Audit events (core/audit.ts): each step of a full flow over HTTP emits its event with the request's id, address and
 * user agent, per tenant; no secret, password, code or token used in the flow appears in any event.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import { randomToken } from '../../src/core/crypto.js';
import {
  UpstreamError,
  type UpstreamIdentity,
  type UpstreamProvider,
  type UpstreamStatus,
  type UpstreamTokens,
} from '../../src/upstream/provider.js';
import {
  authorizationRequest,
  backFromUpstream,
  registerClient as registerUpstreamClient,
  toUpstream,
} from '../helpers/upstream-flow.js';
import { FormBrowser } from '../helpers/browser.js';
import { authorizeThroughPages, basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
const RESOURCE = 'https://mcp.example.com/mcp';
const SERVICE = { id: 'audit-service', secret: 'audit-service-secret-0123456789abcdef' };
const WRONG_PASSWORD = 'not-alices-password-4711';
const TENANT_USER = { username: 'tina', password: 'tenant user password 0815' };

let server: TestServer;
const events: AuditRecord[] = [];
/** Every secret value the tests send or receive: none may appear in any event. */
const secrets = new Set<string>([ALICE.password, BOB.password, WRONG_PASSWORD, SERVICE.secret, TENANT_USER.password]);
const keep = <T extends string | undefined>(value: T): T => {
  if (value) secrets.add(value);
  return value;
};

beforeAll(async () => {
  server = await startServer(
    {
      scopes: ['mcp:read'],
      resources: [RESOURCE],
      tokens: { refreshGraceSeconds: 0 },
      loginRateLimit: { maxFailuresPerUsername: 2 },
      clients: [{ client_id: SERVICE.id, client_secret: SERVICE.secret, grant_types: ['client_credentials'] }],
      tenants: [{ id: 'acme', users: [TENANT_USER], registration: { rateLimit: { perIp: 1 } } }],
    },
    { auditSink: (e) => events.push(e) },
  );
});
afterAll(() => server.close());

const ofType = (type: AuditRecord['type']) => events.filter((e) => e.type === type);
const since = (mark: number) => events.slice(mark);

async function register(issuer: string, extra: Record<string, unknown> = {}) {
  const res = await postJson(
    `${issuer}/register`,
    {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      client_name: 'Audit App',
      ...extra,
    },
    { 'user-agent': 'audit-test/1.0' },
  );
  keep(res.json.registration_access_token as string | undefined);
  keep(res.json.client_secret as string | undefined);
  return res;
}

/** The code flow through the pages, then the code exchanged; every value is kept as a secret. */
async function codeFlow(
  clientId: string,
  user: { username: string; password: string } = ALICE,
  issuer = server.issuer,
) {
  const { callback, verifier: v } = await authorizeThroughPages(
    { issuer, origin: server.origin },
    clientId,
    REDIRECT,
    user,
    {
      scope: 'openid mcp:read',
      resource: RESOURCE,
    },
  );
  const code = keep(callback.searchParams.get('code')!);
  keep(v);
  const token = await postForm(`${issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code,
    code_verifier: v,
    redirect_uri: REDIRECT,
  });
  expect(token.status, JSON.stringify(token.json)).toBe(200);
  for (const field of ['access_token', 'refresh_token', 'id_token']) keep(token.json[field] as string | undefined);
  return { code, verifier: v, tokens: token.json as Record<string, string> };
}

describe('audit events', () => {
  it('a registration carries the request id, address and user agent', async () => {
    const res = await fetch(`${server.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'audit-test/1.0', 'x-request-id': 'req-audit-1' },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'Audit' }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { client_id: string; registration_access_token: string };
    keep(body.registration_access_token);
    const event = ofType('client.registered').find((e) => e.clientId === body.client_id);
    expect(event).toMatchObject({
      type: 'client.registered',
      outcome: 'success',
      source: 'dynamic',
      clientName: 'Audit',
      redirectUris: [REDIRECT],
      authMethod: 'none',
      requestId: 'req-audit-1',
      ip: '127.0.0.1',
      userAgent: 'audit-test/1.0',
    });
    expect(event).not.toHaveProperty('tenant');
    expect(Date.parse(event!.time)).toBeGreaterThan(0);
  });

  it('sign-in failed, sign-in, consent, code, token, refresh rotation and reuse, each once and in order', async () => {
    const client = (await register(server.issuer)).json.client_id as string;
    const mark = events.length;
    // A wrong password first, then the right one, through the pages.
    const browser = new FormBrowser();
    const v = keep(verifier());
    const url = new URL(`${server.issuer}/authorize`);
    for (const [k, val] of Object.entries({
      client_id: client,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      state: 'st',
      scope: 'mcp:read',
      resource: RESOURCE,
    }))
      url.searchParams.set(k, val);
    const login = await browser.follow(url.href, server.origin);
    const failed = await browser.submit(await login.res.text(), login.url, server.origin, {
      username: ALICE.username,
      password: WRONG_PASSWORD,
    });
    expect(failed.res.status).toBe(401);
    const signedIn = await browser.submit(await failed.res.text(), failed.url, server.origin, {
      username: ALICE.username,
      password: ALICE.password,
    });
    const approved = await browser.submit(await signedIn.res.text(), signedIn.url, server.origin, {
      decision: 'approve',
    });
    const callback = new URL(approved.callback!);
    const code = keep(callback.searchParams.get('code')!);
    const token = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: client,
      code,
      code_verifier: v,
      redirect_uri: REDIRECT,
    });
    expect(token.status).toBe(200);
    const refresh = keep(token.json.refresh_token as string);
    keep(token.json.access_token as string);
    const rotated = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: client,
      refresh_token: refresh,
    });
    expect(rotated.status).toBe(200);
    keep(rotated.json.refresh_token as string);
    keep(rotated.json.access_token as string);
    // The spent token again (no grace window here): reuse, the grant is revoked.
    const reused = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: client,
      refresh_token: refresh,
    });
    expect(reused.json.error).toBe('invalid_grant');

    const flow = since(mark).filter((e) => e.clientId === client);
    expect(flow.map((e) => e.type)).toEqual([
      'authorize.accepted',
      'signin.failed',
      'signin.succeeded',
      'consent.granted',
      'code.issued',
      'token.issued',
      'refresh.rotated',
      'token.issued',
      'refresh.reuse_detected',
      'grant.revoked',
      'token.refused',
    ]);
    // /authorize's event names the flow trace reference, which the code's grant id then carries.
    const accepted = flow.shift()!;
    const alice = flow.find((e) => e.type === 'signin.succeeded')?.subject;
    const code_ = flow.find((e): e is Extract<AuditRecord, { type: 'code.issued' }> => e.type === 'code.issued')!;
    expect(accepted).toMatchObject({ next: 'login', reference: code_.grantId, scopes: ['mcp:read'] });
    expect(alice).toMatch(/\S/);
    expect(flow[0]).toMatchObject({ outcome: 'failure', reason: 'invalid_credentials', username: 'alice' });
    expect(flow[1]).toMatchObject({ outcome: 'success', method: 'password', amr: ['pwd'] });
    expect(flow[2]).toMatchObject({ subject: alice, scopes: ['mcp:read'], resources: [RESOURCE] });
    expect(code_).toMatchObject({ subject: alice, scopes: ['mcp:read'], resources: [RESOURCE] });
    expect(flow[4]).toMatchObject({
      grantType: 'authorization_code',
      subject: alice,
      scopes: ['mcp:read'],
      resources: [RESOURCE],
      grantId: code_.grantId,
      refreshToken: true,
    });
    expect(flow[5]).toMatchObject({ grantId: code_.grantId, subject: alice });
    expect(flow[6]).toMatchObject({ grantType: 'refresh_token', grantId: code_.grantId, subject: alice });
    expect(flow[7]).toMatchObject({ outcome: 'denied', grantId: code_.grantId });
    expect(flow[8]).toMatchObject({ reason: 'refresh_reuse', grantId: code_.grantId });
    expect(flow[9]).toMatchObject({ outcome: 'failure', grantType: 'refresh_token', error: 'invalid_grant' });
    // Every event of the browser steps names the request it came from, as its response did.
    for (const e of flow) {
      expect(e.requestId).toMatch(/\S/);
      expect(e.ip).toBe('127.0.0.1');
    }
    expect(new Set(flow.map((e) => e.requestId)).size).toBeGreaterThanOrEqual(6);
  });

  it('a replayed code revokes its grant; revocation of a refresh token and of an access token', async () => {
    const client = (await register(server.issuer)).json.client_id as string;
    const first = await codeFlow(client);
    const mark = events.length;
    const replay = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: client,
      code: first.code,
      code_verifier: first.verifier,
      redirect_uri: REDIRECT,
    });
    expect(replay.json.error).toBe('invalid_grant');
    expect(since(mark).map((e) => e.type)).toEqual(['code.replayed', 'grant.revoked', 'token.refused']);
    expect(since(mark)[1]).toMatchObject({ reason: 'code_replay', clientId: client });

    const second = await codeFlow(client);
    const mark2 = events.length;
    expect(
      (await postForm(`${server.issuer}/revoke`, { client_id: client, token: second.tokens.refresh_token! })).status,
    ).toBe(200);
    expect(
      (await postForm(`${server.issuer}/revoke`, { client_id: client, token: second.tokens.access_token! })).status,
    ).toBe(200);
    const revoked = since(mark2);
    expect(revoked.map((e) => e.type)).toEqual(['grant.revoked', 'token.revoked']);
    expect(revoked[0]).toMatchObject({ reason: 'revocation_endpoint', clientId: client });
    expect(revoked[1]).toMatchObject({ clientId: client, subject: revoked[0]!.subject });
  });

  it('consent denied, client credentials, a wrong client secret, the login throttle', async () => {
    const client = (await register(server.issuer)).json.client_id as string;
    const mark = events.length;
    const { callback } = await (async () => {
      const u = new URL(`${server.issuer}/authorize`);
      const v = keep(verifier());
      for (const [k, val] of Object.entries({
        client_id: client,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        state: 'st',
      }))
        u.searchParams.set(k, val);
      return { callback: await new FormBrowser().authorize(u.href, server.origin, BOB, 'deny') };
    })();
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(since(mark).map((e) => e.type)).toEqual(['authorize.accepted', 'signin.succeeded', 'consent.denied']);
    expect(since(mark)[2]).toMatchObject({ outcome: 'denied', clientId: client });

    const mark2 = events.length;
    const cc = await postForm(
      `${server.issuer}/token`,
      { grant_type: 'client_credentials', resource: RESOURCE },
      // A form body is parsed from the socket's events: the request's context must survive it.
      { authorization: basic(SERVICE.id, SERVICE.secret), 'x-request-id': 'req-cc-1', 'user-agent': 'svc/2' },
    );
    expect(cc.status).toBe(200);
    keep(cc.json.access_token as string);
    const bad = await postForm(
      `${server.issuer}/token`,
      { grant_type: 'client_credentials' },
      { authorization: basic(SERVICE.id, SERVICE.secret + 'x') },
    );
    expect(bad.status).toBe(401);
    // A body that arrives in two parts, the second later: parsed from socket events outside the request's context.
    const parts = ['grant_type=client_', 'credentials'];
    const slow = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic(SERVICE.id, SERVICE.secret),
        'x-request-id': 'req-cc-slow',
      },
      body: new ReadableStream({
        async pull(controller) {
          const part = parts.shift();
          if (part === undefined) return controller.close();
          await new Promise((resolve) => setTimeout(resolve, 50));
          controller.enqueue(new TextEncoder().encode(part));
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(slow.status).toBe(200);
    keep(((await slow.json()) as { access_token: string }).access_token);
    expect(events.at(-1)).toMatchObject({ type: 'token.issued', requestId: 'req-cc-slow' });
    events.splice(events.length - 1, 1);
    expect(since(mark2)).toMatchObject([
      {
        type: 'token.issued',
        grantType: 'client_credentials',
        clientId: SERVICE.id,
        subject: SERVICE.id,
        resources: [RESOURCE],
        requestId: 'req-cc-1',
        userAgent: 'svc/2',
      },
      { type: 'token.refused', grantType: 'client_credentials', clientId: SERVICE.id, error: 'invalid_client' },
    ]);
    secrets.add(SERVICE.secret + 'x');

    // A DPoP proof (RFC 9449) is a credential too: neither it nor the bound token appears in an event, nor its jti.
    const markDpop = events.length;
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jti = randomToken(16);
    const proof = await new SignJWT({
      htm: 'POST',
      htu: `${server.issuer}/token`,
      jti,
      iat: Math.floor(Date.now() / 1000),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    keep(proof);
    keep(jti);
    for (const expected of [200, 400]) {
      const res = await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        { authorization: basic(SERVICE.id, SERVICE.secret), dpop: proof },
      );
      expect(res.status).toBe(expected);
      keep(res.json.access_token as string | undefined);
    }
    expect(since(markDpop)).toMatchObject([
      { type: 'token.issued', grantType: 'client_credentials' },
      { type: 'token.refused', grantType: 'client_credentials', error: 'invalid_dpop_proof' },
    ]);

    // Two failures per username are allowed; the third attempt is throttled before the password is checked.
    const mark3 = events.length;
    for (let i = 0; i < 3; i++) {
      const browser = new FormBrowser();
      const u = new URL(`${server.issuer}/authorize`);
      for (const [k, val] of Object.entries({
        client_id: client,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: challenge(verifier()),
        code_challenge_method: 'S256',
      }))
        u.searchParams.set(k, val);
      const page = await browser.follow(u.href, server.origin);
      await browser.submit(await page.res.text(), page.url, server.origin, {
        username: 'bob',
        password: WRONG_PASSWORD,
      });
    }
    const attempts = since(mark3).filter((e) => e.type !== 'authorize.accepted');
    expect(attempts.map((e) => e.type)).toEqual(['signin.failed', 'signin.failed', 'signin.throttled']);
    expect(attempts[2]).toMatchObject({ outcome: 'denied', key: 'account', username: 'bob', clientId: client });
  });

  it('client update and delete (RFC 7592)', async () => {
    // A name of its own: the same metadata again would get the shared client of registration dedupe (no management).
    const reg = await register(server.issuer, { client_name: 'Audit Managed App' });
    const {
      client_id: id,
      registration_access_token: rat,
      registration_client_uri: uri,
    } = reg.json as Record<string, string>;
    const mark = events.length;
    const put = await fetch(uri!, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${rat}` },
      body: JSON.stringify({
        client_id: id,
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code'],
      }),
    });
    expect(put.status).toBe(200);
    keep(((await put.json()) as { client_secret?: string }).client_secret);
    const del = await fetch(uri!, { method: 'DELETE', headers: { authorization: `Bearer ${rat}` } });
    expect(del.status).toBe(204);
    expect(since(mark)).toMatchObject([
      { type: 'client.updated', clientId: id, source: 'dynamic', secretRotated: true },
      { type: 'client.deleted', clientId: id, source: 'dynamic' },
    ]);
  });

  it("a tenant's events carry its id; its registration limit hit is audited", async () => {
    const issuer = `${server.issuer}/acme`;
    const mark = events.length;
    const ok = await register(issuer);
    expect(ok.status).toBe(201);
    const limited = await register(issuer);
    expect(limited.status).toBe(429);
    expect(since(mark)).toMatchObject([
      { type: 'client.registered', tenant: 'acme', clientId: ok.json.client_id },
      { type: 'rate_limit.hit', tenant: 'acme', endpoint: 'register', keyKind: 'ip', outcome: 'denied' },
    ]);
    const mark2 = events.length;
    await codeFlow(ok.json.client_id as string, TENANT_USER, issuer);
    const flow = since(mark2);
    expect(flow.map((e) => e.type)).toEqual([
      'authorize.accepted',
      'signin.succeeded',
      'consent.granted',
      'code.issued',
      'token.issued',
    ]);
    for (const e of flow) expect(e.tenant).toBe('acme');
  });

  it('the device grant: requested, a code refused, accepted, authorized, tokens (no code in any event)', async () => {
    const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
    const reg = await postJson(`${server.issuer}/register`, {
      client_name: 'Audit Device CLI',
      token_endpoint_auth_method: 'none',
      grant_types: [DEVICE_GRANT, 'refresh_token'],
    });
    expect(reg.status, JSON.stringify(reg.json)).toBe(201);
    const clientId = reg.json.client_id as string;
    const mark = events.length;
    const device = await postForm(`${server.issuer}/device_authorization`, {
      client_id: clientId,
      scope: 'openid offline_access mcp:read',
      resource: RESOURCE,
    });
    expect(device.status).toBe(200);
    const deviceCode = keep(device.json.device_code as string);
    const userCode = keep(device.json.user_code as string);
    keep(userCode.replace('-', ''));
    const browser = new FormBrowser();
    const wrong = keep('BCDF-BCDF' === userCode ? 'CDFG-CDFG' : 'BCDF-BCDF');
    let step = await browser.follow(`${server.issuer}/device`, server.origin);
    step = await browser.submit(await step.res.text(), step.url, server.origin, { user_code: wrong });
    expect(step.res.status).toBe(400);
    step = await browser.submit(await step.res.text(), step.url, server.origin, { user_code: userCode });
    step = await browser.submit(await step.res.text(), step.url, server.origin, ALICE);
    step = await browser.submit(await step.res.text(), step.url, server.origin, { decision: 'approve' });
    expect(await step.res.text()).toContain('data-result="approved"');
    const token = await postForm(`${server.issuer}/token`, {
      grant_type: DEVICE_GRANT,
      client_id: clientId,
      device_code: deviceCode,
    });
    expect(token.status, JSON.stringify(token.json)).toBe(200);
    for (const field of ['access_token', 'refresh_token', 'id_token']) keep(token.json[field] as string);
    const flow = since(mark);
    expect(flow.map((e) => e.type)).toEqual([
      'device.requested',
      'device.code_refused',
      'device.code_accepted',
      'signin.succeeded',
      'consent.granted',
      'device.authorized',
      'token.issued',
    ]);
    const reference = (flow[0] as { reference: string }).reference;
    expect(flow).toMatchObject([
      { clientId, reference, scopes: ['openid', 'offline_access', 'mcp:read'], resources: [RESOURCE] },
      { reason: 'unknown', outcome: 'denied' },
      { clientId, reference },
      { subject: expect.any(String) },
      { clientId, reference },
      { clientId, reference, outcome: 'success' },
      { grantType: DEVICE_GRANT, clientId, grantId: reference, refreshToken: true, idToken: true },
    ]);
  });

  it('no event holds a secret, password, code or token used above', () => {
    expect(events.length).toBeGreaterThan(40);
    const all = JSON.stringify(events);
    expect(secrets.size).toBeGreaterThan(20);
    for (const secret of secrets) expect(all, 'a secret in an audit event').not.toContain(secret);
  });

  it('every event above names the HTTP request it was emitted for (the context is passed down explicitly)', () => {
    const types = new Set(events.map((e) => e.type));
    expect(types.size).toBeGreaterThan(15);
    for (const e of events) {
      expect(e.requestId, e.type).toMatch(/\S/);
      expect(e.ip, e.type).toBe('127.0.0.1');
    }
  });
});

const UPSTREAM_ORIGIN = 'https://login.corp.example.com';

/** An upstream answering the callback with the user its code names, or the failure set. */
class StubUpstream implements UpstreamProvider {
  readonly id = 'corp';
  readonly name = 'Corp';
  readonly issuer = UPSTREAM_ORIGIN;
  failure?: UpstreamError;
  tokens: string[] = [];
  refresh(): Promise<UpstreamTokens> {
    return Promise.reject(new Error('not used'));
  }
  status(): UpstreamStatus {
    return { status: 'up', discovery: 'static' };
  }
  probe(): Promise<UpstreamStatus> {
    return Promise.resolve(this.status());
  }
  async begin() {
    const state = randomToken();
    return {
      url: `${UPSTREAM_ORIGIN}/authorize?state=${state}`,
      state,
      nonce: randomToken(),
      codeVerifier: randomToken(),
    };
  }
  async complete(callback: URLSearchParams) {
    if (this.failure) throw this.failure;
    const tokens = {
      tokenType: 'Bearer' as const,
      accessToken: `up-at-${randomToken(12)}`,
      refreshToken: `up-rt-${randomToken(12)}`,
    };
    this.tokens.push(tokens.accessToken, tokens.refreshToken);
    const identity: UpstreamIdentity = { upstreamId: this.id, issuer: this.issuer, subject: callback.get('code')! };
    return { identity, tokens };
  }
}

describe('audit events of an upstream sign-in', () => {
  const stub = new StubUpstream();
  const upstreamEvents: AuditRecord[] = [];
  let up: TestServer;
  beforeAll(async () => {
    up = await startServer(
      { users: [], encryptionKey: randomBytes(32).toString('base64') },
      { upstreams: () => new Map([[stub.id, stub]]), auditSink: (e) => upstreamEvents.push(e) },
    );
  });
  afterAll(() => up.close());

  async function viaUpstream(answer: Record<string, string>) {
    // A client of its own per flow (another name: an identical registration would get the earlier client back).
    const client = await registerUpstreamClient(up, `audit-upstream-${answer.code}`);
    const browser = new FormBrowser();
    const request = authorizationRequest(up, client);
    const left = await toUpstream(browser, up, request.url, UPSTREAM_ORIGIN, 'Corp');
    const state = left.upstream!.searchParams.get('state')!;
    const callback = `${up.issuer}/upstream/callback?${new URLSearchParams({ ...answer, state, iss: UPSTREAM_ORIGIN })}`;
    return { client, back: await backFromUpstream(browser, up, callback) };
  }

  it('a sign-in upstream, and one the upstream refused', async () => {
    const { client, back } = await viaUpstream({ code: 'ann' });
    expect(back.client?.searchParams.get('code')).toBeTruthy();
    const ok = upstreamEvents.filter((e) => e.clientId === client.clientId && e.type !== 'client.registered');
    expect(ok.map((e) => e.type)).toEqual([
      'authorize.accepted',
      'upstream.signin',
      'signin.succeeded',
      'consent.granted',
      'code.issued',
    ]);
    expect(ok[1]).toMatchObject({ upstream: 'corp', outcome: 'success', subject: ok[2]!.subject });
    expect(ok[2]).toMatchObject({ method: 'upstream', upstream: 'corp', amr: ['fed'] });

    stub.failure = new UpstreamError('access_denied', 'no');
    const refused = await viaUpstream({ code: 'bea' });
    stub.failure = undefined;
    expect(refused.back.client?.searchParams.get('error')).toBe('access_denied');
    expect(
      upstreamEvents.filter(
        (e) =>
          e.clientId === refused.client.clientId && e.type !== 'client.registered' && e.type !== 'authorize.accepted',
      ),
    ).toMatchObject([{ type: 'upstream.signin', upstream: 'corp', outcome: 'denied', error: 'access_denied' }]);
    const all = JSON.stringify(upstreamEvents);
    expect(stub.tokens.length).toBe(2);
    for (const token of stub.tokens) expect(all).not.toContain(token);
  });
});
