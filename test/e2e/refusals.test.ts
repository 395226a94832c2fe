/**
 * Every refusal the core issue names, driven over HTTP: code replay, PKCE downgrade and mismatch, foreign
 * redirect_uri, scope escalation, unknown client, wrong secret, expired code, duplicates, bad bodies.
 * Each asserts the RFC's error code and status, and that no 500 or stack trace ever reaches the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
let server: TestServer;
const clock = new ManualClock(Date.now());

beforeAll(async () => {
  server = await startServer(
    { scopes: ['mcp:read', 'mcp:write'], registration: { allowClientCredentials: true } },
    { clock },
  );
});
afterAll(() => server.close());

const url = (path: string) => server.issuer + path;

async function registerPublic(extra: Record<string, unknown> = {}) {
  const r = await postJson(url('/register'), {
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    ...extra,
  });
  expect(r.status).toBe(201);
  return r.json.client_id as string;
}

function authorizeUrl(params: Record<string, string | string[]>): string {
  const u = new URL(url('/authorize'));
  for (const [k, v] of Object.entries(params))
    for (const value of Array.isArray(v) ? v : [v]) u.searchParams.append(k, value);
  return u.href;
}

/** Gets a code through the real pages. */
async function getCode(clientId: string, scope = 'mcp:read', browser = new FormBrowser()) {
  const v = verifier();
  const cb = await browser.authorize(
    authorizeUrl({
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      scope,
      state: 's1',
    }),
    server.origin,
    ALICE,
  );
  return { code: cb.searchParams.get('code')!, verifier: v, browser };
}

const redeem = (clientId: string, code: string, v: string, extra: Record<string, string> = {}) =>
  postForm(url('/token'), {
    grant_type: 'authorization_code',
    client_id: clientId,
    code,
    code_verifier: v,
    redirect_uri: REDIRECT,
    ...extra,
  });

describe('token endpoint refusals', () => {
  it('a replayed code is refused and revokes every token the first redemption issued (RFC 6749 §4.1.2)', async () => {
    const clientId = await registerPublic();
    const { code, verifier: v } = await getCode(clientId);
    const first = await redeem(clientId, code, v);
    expect(first.status).toBe(200);
    const replay = await redeem(clientId, code, v);
    expect(replay.status).toBe(400);
    expect(replay.json.error).toBe('invalid_grant');
    const refresh = await postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: first.json.refresh_token as string,
    });
    expect(refresh.json.error).toBe('invalid_grant');
    const revoked = await server.gatehouse.deps.storage.isAccessTokenRevoked(jti(first.json.access_token as string));
    expect(revoked).toBe(true);
  });

  it('PKCE: a wrong verifier is invalid_grant (RFC 7636 §4.6); a missing one is invalid_request (OAuth 2.1 §3.2.4)', async () => {
    const clientId = await registerPublic();
    const a = await getCode(clientId);
    expect((await redeem(clientId, a.code, verifier())).json.error).toBe('invalid_grant');
    const b = await getCode(clientId, 'mcp:read', a.browser);
    const res = await postForm(url('/token'), {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: b.code,
      redirect_uri: REDIRECT,
    });
    expect(res.json.error).toBe('invalid_request');
  });

  it('a code redeemed with another redirect_uri or by another client is refused', async () => {
    const clientId = await registerPublic();
    const other = await registerPublic();
    const a = await getCode(clientId);
    expect((await redeem(clientId, a.code, a.verifier, { redirect_uri: 'http://127.0.0.1/other' })).json.error).toBe(
      'invalid_grant',
    );
    const b = await getCode(clientId, 'mcp:read', a.browser);
    expect((await redeem(other, b.code, b.verifier)).json.error).toBe('invalid_grant');
  });

  it('an expired code is refused (codes live at most authorizationCodeTtl)', async () => {
    const clientId = await registerPublic();
    const { code, verifier: v } = await getCode(clientId);
    clock.advance(61_000);
    try {
      const res = await redeem(clientId, code, v);
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('invalid_grant');
    } finally {
      clock.advance(-61_000);
    }
  });

  it('unknown client and wrong secret are invalid_client 401 with WWW-Authenticate for Basic', async () => {
    const unknown = await postForm(
      url('/token'),
      { grant_type: 'client_credentials' },
      { authorization: basic('nope', 'x'.repeat(40)) },
    );
    expect(unknown.status).toBe(401);
    expect(unknown.json.error).toBe('invalid_client');
    expect(unknown.headers.get('www-authenticate')).toMatch(/^Basic/);
    const reg = await postJson(url('/register'), { grant_types: ['client_credentials'] });
    const wrong = await postForm(
      url('/token'),
      { grant_type: 'client_credentials' },
      { authorization: basic(reg.json.client_id, 'wrong') },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('invalid_client');
    // Registered for basic, a wrong secret via the body is refused too (without the Basic challenge).
    const wrongViaPost = await postForm(url('/token'), {
      grant_type: 'client_credentials',
      client_id: reg.json.client_id,
      client_secret: 'wrong',
    });
    expect(wrongViaPost.status).toBe(401);
    expect(wrongViaPost.json.error).toBe('invalid_client');
    expect(wrongViaPost.headers.get('www-authenticate')).toBeNull();
    const ok = await postForm(
      url('/token'),
      { grant_type: 'client_credentials' },
      { authorization: basic(reg.json.client_id, reg.json.client_secret) },
    );
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
  });

  it('refuses duplicate parameters, unsupported grants, missing grant_type, JSON bodies and oversized bodies', async () => {
    const clientId = await registerPublic();
    const dup = await postForm(url('/token'), {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: ['a', 'b'],
    });
    expect(dup.status).toBe(400);
    expect(dup.json.error).toBe('invalid_request');
    expect((await postForm(url('/token'), { grant_type: 'password', client_id: clientId })).json.error).toBe(
      'unsupported_grant_type',
    );
    expect((await postForm(url('/token'), { client_id: clientId })).json.error).toBe('invalid_request');
    const json = await postJson(url('/token'), { grant_type: 'client_credentials' });
    expect(json.status).toBe(400);
    expect(json.json.error).toBe('invalid_request');
    const big = await postForm(url('/token'), { grant_type: 'client_credentials', pad: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect(big.json.error).toBe('invalid_request');
  });

  it('a public client cannot use client_credentials; a client cannot use a grant it was not registered for', async () => {
    const clientId = await registerPublic();
    const cc = await postForm(url('/token'), { grant_type: 'client_credentials', client_id: clientId });
    expect(cc.json.error).toBe('unauthorized_client');
    const noRefresh = await registerPublic({ grant_types: ['authorization_code'] });
    const { code, verifier: v } = await getCode(noRefresh);
    const tokens = await redeem(noRefresh, code, v);
    expect(tokens.status).toBe(200);
    expect(tokens.json.refresh_token).toBeUndefined();
  });

  it('a refresh token reused after the grace window revokes the family (RFC 9700 §4.14.2)', async () => {
    const clientId = await registerPublic();
    const { code, verifier: v } = await getCode(clientId);
    const t = await redeem(clientId, code, v);
    const r1 = await postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: t.json.refresh_token as string,
    });
    expect(r1.status).toBe(200);
    clock.advance(11_000);
    const reuse = await postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: t.json.refresh_token as string,
    });
    expect(reuse.json.error).toBe('invalid_grant');
    // The legitimate successor is dead too.
    const r2 = await postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: r1.json.refresh_token as string,
    });
    expect(r2.json.error).toBe('invalid_grant');
    expect(await server.gatehouse.deps.storage.isAccessTokenRevoked(jti(r1.json.access_token as string))).toBe(true);
  });

  it('a refresh token of one client cannot be used by another', async () => {
    const a = await registerPublic();
    const b = await registerPublic();
    const { code, verifier: v } = await getCode(a);
    const t = await redeem(a, code, v);
    const res = await postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: b,
      refresh_token: t.json.refresh_token as string,
    });
    expect(res.json.error).toBe('invalid_grant');
  });
});

describe('authorization endpoint refusals', () => {
  const base = async (clientId: string) => {
    const v = verifier();
    return {
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      state: 'st',
    };
  };
  const get = (u: string) => fetch(u, { redirect: 'manual' });

  it('a foreign redirect_uri is shown on a page, never redirected (no open redirect)', async () => {
    const clientId = await registerPublic();
    const res = await get(authorizeUrl({ ...(await base(clientId)), redirect_uri: 'https://evil.example/cb' }));
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).toContain('invalid_request');
    expect(html).not.toContain('evil.example');
  });

  it('an unknown client is shown on a page and never auto-registered', async () => {
    const res = await get(authorizeUrl({ ...(await base('client_unknown_123')) }));
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await server.gatehouse.deps.storage.getClient('client_unknown_123')).toBeUndefined();
  });

  it('PKCE downgrade (plain or missing) is redirected as invalid_request with state and iss', async () => {
    const clientId = await registerPublic();
    for (const params of [
      { ...(await base(clientId)), code_challenge_method: 'plain' },
      { ...(await base(clientId)), code_challenge: undefined, code_challenge_method: undefined },
    ]) {
      const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<
        string,
        string
      >;
      const res = await get(authorizeUrl(clean));
      expect(res.status).toBe(303);
      const loc = new URL(res.headers.get('location')!);
      expect(loc.origin + loc.pathname).toBe(REDIRECT);
      expect(loc.searchParams.get('error')).toBe('invalid_request');
      expect(loc.searchParams.get('state')).toBe('st');
      expect(loc.searchParams.get('iss')).toBe(server.issuer);
    }
  });

  it('response_type other than code is unsupported_response_type; bad resource is invalid_target', async () => {
    const clientId = await registerPublic();
    const token = await get(authorizeUrl({ ...(await base(clientId)), response_type: 'token' }));
    expect(new URL(token.headers.get('location')!).searchParams.get('error')).toBe('unsupported_response_type');
    const frag = await get(authorizeUrl({ ...(await base(clientId)), resource: 'https://api.example.com/#x' }));
    expect(new URL(frag.headers.get('location')!).searchParams.get('error')).toBe('invalid_target');
    const rel = await get(authorizeUrl({ ...(await base(clientId)), resource: '/relative' }));
    expect(new URL(rel.headers.get('location')!).searchParams.get('error')).toBe('invalid_target');
  });

  it('duplicate parameters are refused', async () => {
    const clientId = await registerPublic();
    const dupScope = await get(authorizeUrl({ ...(await base(clientId)), scope: ['mcp:read', 'mcp:write'] }));
    expect(new URL(dupScope.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
    const dupClient = await get(authorizeUrl({ ...(await base(clientId)), client_id: [clientId, clientId] }));
    expect(dupClient.status).toBe(400);
    expect(dupClient.headers.get('location')).toBeNull();
  });

  it('prompt=none without a session is login_required', async () => {
    const clientId = await registerPublic();
    const res = await get(authorizeUrl({ ...(await base(clientId)), prompt: 'none' }));
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('login_required');
  });

  it('unknown scopes are refused by default, and narrowed away in the lenient mode (strictScopes: false)', async () => {
    const clientId = await registerPublic();
    const res = await get(authorizeUrl({ ...(await base(clientId)), scope: 'mcp:read admin:everything' }));
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('invalid_scope');
    const lenient = await startServer({ strictScopes: false, scopes: ['mcp:read'] });
    try {
      const reg = await postJson(`${lenient.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
      });
      const v = verifier();
      const u = new URL(`${lenient.issuer}/authorize`);
      u.search = new URLSearchParams({
        client_id: reg.json.client_id,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        scope: 'mcp:read admin:everything',
      }).toString();
      const cb = await new FormBrowser().authorize(u.href, lenient.origin, ALICE);
      const t = await postForm(`${lenient.issuer}/token`, {
        grant_type: 'authorization_code',
        client_id: reg.json.client_id,
        code: cb.searchParams.get('code')!,
        code_verifier: v,
        redirect_uri: REDIRECT,
      });
      expect(t.json.scope).toBe('mcp:read');
    } finally {
      await lenient.close();
    }
  });

  it('login with a wrong password shows the form again with 401; a forged CSRF token is refused', async () => {
    const clientId = await registerPublic();
    const browser = new FormBrowser();
    const step = await browser.follow(authorizeUrl(await base(clientId)), server.origin);
    const html = await step.res.text();
    const bad = await browser.submit(html, step.url, server.origin, { username: ALICE.username, password: 'wrong' });
    expect(bad.res.status).toBe(401);
    expect(await bad.res.text()).toContain('Invalid username or password');
    const forged = await browser.submit(html, step.url, server.origin, {
      username: ALICE.username,
      password: ALICE.password,
      csrf: 'forged',
    });
    expect(forged.res.status).toBe(400);
    // A different browser (no CSRF cookie) cannot post the form either.
    const other = await new FormBrowser().submit(html, step.url, server.origin, {
      username: ALICE.username,
      password: ALICE.password,
    });
    expect(other.res.status).toBe(400);
  });
});

describe('registration refusals', () => {
  it('open registration cannot create client_credentials clients unless the server allows it', async () => {
    const closed = await startServer();
    try {
      const r = await postJson(`${closed.issuer}/register`, { grant_types: ['client_credentials'] });
      expect(r.status).toBe(400);
      expect(r.json.error).toBe('invalid_client_metadata');
    } finally {
      await closed.close();
    }
  });
});

describe('input hygiene', () => {
  it('never answers a 500 or leaks a stack trace for garbage input', async () => {
    const probes: Promise<Response>[] = [
      fetch(url('/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: '%%%&&&=',
      }),
      fetch(url('/token'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }),
      fetch(url('/token'), { method: 'POST', headers: { authorization: 'Basic !!!' } }),
      fetch(url('/register'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad json' }),
      fetch(url('/register'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' }),
      fetch(url('/register'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: 'x' }),
      }),
      fetch(url('/introspect'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=abc',
      }),
      fetch(url('/revoke'), { method: 'POST' }),
      fetch(url('/userinfo'), { headers: { authorization: 'Bearer not.a.jwt' } }),
      fetch(url('/authorize?client_id=%ZZ'), { redirect: 'manual' }),
      fetch(url('/interaction/nope'), { redirect: 'manual' }),
      fetch(url('/interaction/nope/login'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=a',
      }),
      fetch(url('/register/abc'), { headers: { authorization: 'Bearer x' } }),
    ];
    for (const res of await Promise.all(probes)) {
      expect(res.status, res.url).toBeGreaterThanOrEqual(400);
      expect(res.status, res.url).toBeLessThan(500);
      const text = await res.text();
      expect(text).not.toMatch(/at .*\.(ts|js):\d+/);
    }
  });
});

function jti(jwt: string): string {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti;
}
