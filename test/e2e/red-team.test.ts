/**
 * Red team: each test is one attack on the running server over HTTP, with a comment of what it tries. Redirect and
 * open-redirect tricks, header injection, XSS through client metadata, CSRF and session fixation, token confusion,
 * audience confusion at the resource toolkit, user enumeration, registration abuse. A test passes when the attack
 * fails in the way the RFCs say it should (error code, status, no redirect to the attacker).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { FormBrowser } from '../helpers/browser.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';
import { createResourceVerifier, ResourceAuthError } from '../../src/resource/index.js';

const GOOD = 'https://good.example.com/cb';
const LOOPBACK = 'http://127.0.0.1/callback';
const RESOURCE_A = 'https://a.example.com/mcp';
const RESOURCE_B = 'https://b.example.com/mcp';
const SESSION_COOKIE = 'gatehouse_session';

let server: TestServer;
let cimd: CimdServer;

beforeAll(async () => {
  cimd = await startCimdServer();
  server = await startServer({
    scopes: ['mcp:read'],
    resources: [RESOURCE_A, RESOURCE_B],
    // The enumeration test makes several failed sign-ins; the throttle is not what it looks at.
    loginRateLimit: { maxFailuresPerUsername: 0, maxFailuresPerIp: 0 },
    clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile, timeoutMs: 2000 },
  });
});
afterAll(async () => {
  await server?.close();
  cimd?.close();
});

const url = (path: string) => server.issuer + path;

async function register(extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const r = await postJson(url('/register'), {
    redirect_uris: [GOOD, LOOPBACK],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    ...extra,
  });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

function authorizeUrl(params: Record<string, string>): string {
  const u = new URL(url('/authorize'));
  for (const [k, v] of Object.entries(params)) u.searchParams.append(k, v);
  return u.href;
}

const pkce = () => {
  const v = verifier();
  return { v, params: { code_challenge: challenge(v), code_challenge_method: 'S256' } };
};

/** GET /authorize without following: status, Location, body. */
async function rawAuthorize(params: Record<string, string>, init: RequestInit = {}) {
  const res = await fetch(authorizeUrl(params), { ...init, redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), headers: res.headers, html: await res.text() };
}

/** A full code flow as ALICE through the real pages; returns the token response. */
async function tokensFor(clientId: string, scope: string, resource?: string, browser = new FormBrowser()) {
  const { v, params } = pkce();
  const cb = await browser.authorize(
    authorizeUrl({
      client_id: clientId,
      redirect_uri: LOOPBACK,
      response_type: 'code',
      scope,
      ...params,
      ...(resource ? { resource } : {}),
    }),
    server.origin,
    ALICE,
  );
  const res = await postForm(url('/token'), {
    grant_type: 'authorization_code',
    client_id: clientId,
    code: cb.searchParams.get('code')!,
    code_verifier: v,
    redirect_uri: LOOPBACK,
    ...(resource ? { resource } : {}),
  });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return { json: res.json as Record<string, string>, browser };
}

describe('redirect_uri tricks at the authorization endpoint', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = (await register()).client_id;
  });

  // Each tries to get the code (or an error) sent to a host the client never registered, or to a different path
  // on the registered host, by a URI that a lax matcher (prefix, host-only, normalising) would accept.
  it.each([
    ['a suffix domain', 'https://good.example.com.evil.com/cb'],
    ['userinfo naming the good host', 'https://good.example.com@evil.com/cb'],
    ['userinfo in the URI', 'https://user:pass@good.example.com/cb'],
    ['path traversal', 'https://good.example.com/cb/../evil'],
    ['encoded path traversal', 'https://good.example.com/cb%2F..%2Fevil'],
    ['an encoded character of the registered path', 'https://good.example.com/%63b'],
    ['a fragment', 'https://good.example.com/cb#evil'],
    ['an extra query', 'https://good.example.com/cb?next=https://evil.com'],
    ['a trailing slash', 'https://good.example.com/cb/'],
    ['upper-case scheme and host', 'HTTPS://GOOD.EXAMPLE.COM/cb'],
    ['a different path case', 'https://good.example.com/CB'],
    ['a trailing-dot host', 'https://good.example.com./cb'],
    ['an explicit default port', 'https://good.example.com:443/cb'],
    ['a backslash (WHATWG reads it as a slash)', 'https://good.example.com\\@evil.com/cb'],
    ['an IDN homograph (Cyrillic о)', 'https://g\u043e\u043ed.example.com/cb'],
    ['its punycode form', 'https://xn--gd-mlca.example.com/cb'],
    ['http instead of https', 'http://good.example.com/cb'],
    ['a loopback suffix domain', 'http://127.0.0.1.evil.com/callback'],
    ['a loopback with userinfo', 'http://127.0.0.1:8080@evil.com/callback'],
    ['a loopback path traversal', 'http://127.0.0.1:5000/callback/../evil'],
    ['another loopback address', 'http://127.0.0.2/callback'],
    ['a loopback with a fragment', 'http://127.0.0.1:5000/callback#x'],
  ])('refuses %s on an error page and never redirects (%s)', async (_name, redirectUri) => {
    const r = await rawAuthorize({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      ...pkce().params,
    });
    expect(r.status).toBe(400);
    expect(r.location).toBeNull();
    expect(r.html).toContain('redirect_uri is not registered for this client');
  });

  // Open redirect through the error path: an unknown client, or a bad request with an unregistered redirect_uri,
  // must not bounce the browser to that URI with an error (RFC 9700 §4.11.2).
  it('an unknown client_id with an attacker redirect_uri gets an error page, not a redirect', async () => {
    const r = await rawAuthorize({
      client_id: 'no-such-client',
      redirect_uri: 'https://evil.com/',
      response_type: 'token',
    });
    expect(r.status).toBe(400);
    expect(r.location).toBeNull();
    expect(r.html).not.toContain('evil.com');
  });

  it('a broken request with an unregistered redirect_uri is not redirected (checks run client and redirect first)', async () => {
    const r = await rawAuthorize({
      client_id: clientId,
      redirect_uri: 'https://evil.com/',
      response_type: 'token',
      scope: 'nope',
    });
    expect(r.status).toBe(400);
    expect(r.location).toBeNull();
  });

  it('duplicate redirect_uri parameters (one good, one evil) are refused on a page', async () => {
    const u = new URL(authorizeUrl({ client_id: clientId, redirect_uri: GOOD, response_type: 'code' }));
    u.searchParams.append('redirect_uri', 'https://evil.com/');
    const res = await fetch(u, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });

  // A loopback redirect gets the RFC 8252 port exemption, but nothing else about it may change.
  it('the loopback port exemption does not extend to the host or path', async () => {
    const ok = await rawAuthorize({
      client_id: clientId,
      redirect_uri: 'http://127.0.0.1:49152/callback',
      response_type: 'code',
      ...pkce().params,
    });
    expect(ok.status).toBe(303);
    expect(ok.location).toMatch(/\/interaction\//);
    const bad = await rawAuthorize({
      client_id: clientId,
      redirect_uri: 'http://localhost:49152/callback',
      response_type: 'code',
      ...pkce().params,
    });
    expect(bad.status).toBe(400);
  });
});

describe('header injection', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = (await register()).client_id;
  });

  // CRLF in state: a server that writes state raw into Location would let the attacker add a Set-Cookie header.
  it('CR/LF in state is percent-encoded in the Location, never a new header', async () => {
    const state = 'x\r\nSet-Cookie: evil=1\r\nX-Injected: yes';
    const r = await rawAuthorize({ client_id: clientId, redirect_uri: GOOD, response_type: 'code', state }); // no PKCE: error redirect
    expect(r.status).toBe(303);
    expect(r.headers.get('x-injected')).toBeNull();
    expect(r.headers.getSetCookie().join('\n')).not.toContain('evil=1');
    const location = new URL(r.location!);
    expect(r.location).not.toMatch(/[\r\n]/);
    expect(location.origin + location.pathname).toBe(GOOD);
    expect(location.searchParams.get('state')).toBe(state);
    expect(location.searchParams.get('iss')).toBe(server.issuer);
  });

  // CRLF in redirect_uri: not registered, so never echoed; a URL parser that strips CR/LF must not make it match.
  it('CR/LF or a tab inside the redirect_uri does not match the registered URI', async () => {
    for (const redirectUri of [
      'https://good.example.com/c\r\nb',
      'https://good.example.com/cb\r\nSet-Cookie: evil=1',
      'https://good.exam\tple.com/cb',
    ]) {
      const r = await rawAuthorize({
        client_id: clientId,
        redirect_uri: redirectUri,
        response_type: 'code',
        ...pkce().params,
      });
      expect(r.status, JSON.stringify(redirectUri)).toBe(400);
      expect(r.location).toBeNull();
      expect(r.headers.getSetCookie().join('\n')).not.toContain('evil=1');
    }
  });

  // Registration that stores a URI with CR/LF/tab/space: WHATWG URL parsing silently drops tab and newlines, so such
  // a URI would validate as a different one than the string that is stored and matched.
  it.each([
    ['CR LF', 'https://good.example.com/c\r\nb', 'invalid_redirect_uri'],
    ['a tab', 'https://good.example.com/\tcb', 'invalid_redirect_uri'],
    ['a space', 'https://good.example.com/c b', 'invalid_redirect_uri'],
    ['a leading space', ' https://good.example.com/cb', 'invalid_redirect_uri'],
    // U+0000 never gets past the HTTP edge (refused in every request value before any endpoint runs).
    ['a NUL', 'https://good.example.com/cb\u0000', 'invalid_request'],
  ])('registration refuses a redirect URI with %s (%s)', async (_name, redirectUri, error) => {
    const r = await postJson(url('/register'), { redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe(error);
  });
});

describe('Host header injection', () => {
  // A server that builds its URLs from Host / X-Forwarded-Host would advertise the attacker's endpoints (or send the
  // browser there): the issuer comes from configuration only.
  it('metadata and the interaction redirect ignore a forged Host and X-Forwarded-Host', async () => {
    const forged = { host: 'evil.example.com', 'x-forwarded-host': 'evil.example.com', 'x-forwarded-proto': 'https' };
    const meta = await server.gatehouse.app.inject({
      method: 'GET',
      url: '/.well-known/oauth-authorization-server',
      headers: forged,
    });
    expect(meta.body).not.toContain('evil.example.com');
    expect(meta.json().authorization_endpoint).toBe(`${server.issuer}/authorize`);
    const clientId = (await register()).client_id;
    const q = new URLSearchParams({
      client_id: clientId,
      redirect_uri: LOOPBACK,
      response_type: 'code',
      ...pkce().params,
    });
    const res = await server.gatehouse.app.inject({ method: 'GET', url: `/authorize?${q}`, headers: forged });
    expect(res.statusCode).toBe(303);
    expect(String(res.headers.location)).toMatch(/^\/interaction\//);
  });
});

describe('XSS through client metadata and reflected input', () => {
  const XSS = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'';

  /** The login page, then the consent page, for a client. */
  async function pages(clientId: string, redirectUri: string) {
    const browser = new FormBrowser();
    const step = await browser.follow(
      authorizeUrl({
        client_id: clientId,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid',
        ...pkce().params,
      }),
      server.origin,
    );
    const login = await step.res.text();
    const csp = step.res.headers.get('content-security-policy') ?? '';
    const next = await browser.submit(login, step.url, server.origin, {
      username: ALICE.username,
      password: ALICE.password,
    });
    return { login, consent: await next.res.text(), csp };
  }

  // client_name is the one client-chosen string the pages render: it must come out as text, never markup.
  it('a client_name with markup is escaped on the login and consent pages, and the CSP forbids scripts', async () => {
    const clientId = (await register({ client_name: XSS })).client_id;
    const { login, consent, csp } = await pages(clientId, GOOD);
    for (const html of [login, consent]) {
      expect(html).not.toContain('<script>alert');
      expect(html).not.toContain('<img src=x');
      expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    }
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/script-src|unsafe-inline/);
    expect(csp).toContain("frame-ancestors 'none'");
  });

  // javascript:/data: URIs in the metadata a page might turn into links: refused at registration.
  it.each(['client_uri', 'logo_uri', 'tos_uri', 'policy_uri'])(
    'registration refuses a javascript: or data: %s',
    async (field) => {
      for (const value of [
        'javascript:alert(1)',
        'data:text/html,<script>alert(1)</script>',
        'http://evil.example.com/',
      ]) {
        const r = await postJson(url('/register'), {
          redirect_uris: [GOOD],
          token_endpoint_auth_method: 'none',
          [field]: value,
        });
        expect(r.status, `${field}=${value}`).toBe(400);
        expect(r.json.error).toBe('invalid_client_metadata');
      }
    },
  );

  // The same through a Client ID Metadata Document: the document is validated like a registration.
  it('a metadata document with a javascript: logo_uri is refused; its markup client_name is escaped', async () => {
    const bad = `${cimd.origin}/xss-logo.json`;
    cimd.docs.set('/xss-logo.json', {
      body: JSON.stringify({
        client_id: bad,
        client_name: 'x',
        redirect_uris: [LOOPBACK],
        logo_uri: 'javascript:alert(1)',
      }),
    });
    const r = await rawAuthorize({ client_id: bad, redirect_uri: LOOPBACK, response_type: 'code', ...pkce().params });
    expect(r.status).toBe(401);
    expect(r.location).toBeNull();
    const named = `${cimd.origin}/xss-name.json`;
    cimd.docs.set('/xss-name.json', {
      body: JSON.stringify({ client_id: named, client_name: XSS, redirect_uris: [LOOPBACK] }),
    });
    const { login, consent } = await pages(named, LOOPBACK);
    for (const html of [login, consent]) expect(html).not.toContain('<script>alert');
  });

  // Reflected input on the error pages: client_id, the interaction id in the path.
  it('a client_id or interaction id with markup is escaped on the error page', async () => {
    const r = await rawAuthorize({ client_id: XSS, response_type: 'code' });
    expect(r.html).not.toContain('<script>alert');
    const page = await fetch(url(`/interaction/${encodeURIComponent(XSS)}`));
    expect(page.status).toBe(400);
    expect(await page.text()).not.toContain('<script>alert');
  });

  // The username is echoed into the login form after a failed attempt: attribute injection.
  it('a username with markup is escaped when the login form comes back', async () => {
    const clientId = (await register()).client_id;
    const browser = new FormBrowser();
    const step = await browser.follow(
      authorizeUrl({ client_id: clientId, redirect_uri: LOOPBACK, response_type: 'code', ...pkce().params }),
      server.origin,
    );
    const res = await browser.submit(await step.res.text(), step.url, server.origin, {
      username: `"><script>alert(1)</script>`,
      password: 'x',
    });
    expect(res.res.status).toBe(401);
    const html = await res.res.text();
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('value="&quot;&gt;&lt;script&gt;');
  });

  // The consent page names the client by a host the user can check, never only by the name it chose.
  it('a client calling itself by another host is shown under its own redirect host first', async () => {
    const clientId = (
      await register({ client_name: 'accounts.google.com', redirect_uris: ['https://evil.example.net/cb'] })
    ).client_id;
    const { consent } = await pages(clientId, 'https://evil.example.net/cb');
    const main = consent.replace(/<[^>]+>/g, ' ');
    expect(main.indexOf('evil.example.net')).toBeGreaterThan(-1);
    expect(main.indexOf('evil.example.net')).toBeLessThan(main.indexOf('accounts.google.com'));
  });
});

describe('CSRF and session fixation', () => {
  /** Opens an interaction in `browser` and returns the login page and its URL. */
  async function openLogin(browser: FormBrowser, clientId: string) {
    const step = await browser.follow(
      authorizeUrl({
        client_id: clientId,
        redirect_uri: LOOPBACK,
        response_type: 'code',
        scope: 'openid',
        ...pkce().params,
      }),
      server.origin,
    );
    return { html: await step.res.text(), url: step.url };
  }

  // Login CSRF: a cross-site form post carries no token (and SameSite=Lax keeps the nonce cookie away).
  it('a sign-in without the CSRF token, or without the browser cookie, is refused', async () => {
    const clientId = (await register()).client_id;
    const browser = new FormBrowser();
    const { html, url: pageUrl } = await openLogin(browser, clientId);
    const { action, fields } = FormBrowser.form(html, pageUrl);
    const noToken = await browser.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: ALICE.username, password: ALICE.password }).toString(),
    });
    expect(noToken.status).toBe(400);
    expect(noToken.headers.getSetCookie().join()).not.toContain(SESSION_COOKIE);
    // The right token but sent by another browser (no nonce cookie): the attacker's forged post.
    const foreign = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, username: ALICE.username, password: ALICE.password }).toString(),
    });
    expect(foreign.status).toBe(400);
    expect(foreign.headers.getSetCookie().join()).not.toContain(SESSION_COOKIE);
  });

  // Consent CSRF: the attacker's own CSRF token (from their interaction) replayed in the victim's browser.
  it("a consent approval with another interaction's CSRF token is refused and issues no code", async () => {
    const clientId = (await register()).client_id;
    const victim = new FormBrowser();
    const a = await openLogin(victim, clientId);
    const consentStep = await victim.submit(a.html, a.url, server.origin, {
      username: ALICE.username,
      password: ALICE.password,
    });
    const consentHtml = await consentStep.res.text();
    expect(consentHtml).toContain('name="decision"');
    const attacker = new FormBrowser();
    const b = await openLogin(attacker, clientId);
    const attackerToken = FormBrowser.form(b.html, b.url).fields.csrf!;
    const { action } = FormBrowser.form(consentHtml, consentStep.url);
    const forged = await victim.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: attackerToken, decision: 'approve' }).toString(),
    });
    expect(forged.status).toBe(400);
    expect(forged.headers.get('location')).toBeNull();
  });

  // Session fixation: the attacker plants their own valid session cookie (or a made-up one) in the victim's browser
  // before the victim signs in; the sign-in must start a new session, and the planted one must stay the attacker's.
  it('signing in issues a new session id; a planted session cookie is not upgraded to the victim', async () => {
    const clientId = (await register()).client_id;
    const attacker = new FormBrowser();
    const ab = await openLogin(attacker, clientId);
    const attackerLogin = await attacker.request(FormBrowser.form(ab.html, ab.url).action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        ...FormBrowser.form(ab.html, ab.url).fields,
        username: BOB.username,
        password: BOB.password,
      }).toString(),
    });
    const planted = /gatehouse_session=([^;]+)/.exec(attackerLogin.headers.getSetCookie().join())![1]!;

    const victim = new FormBrowser();
    const u = authorizeUrl({
      client_id: clientId,
      redirect_uri: LOOPBACK,
      response_type: 'code',
      prompt: 'login',
      ...pkce().params,
    });
    const first = await victim.request(u, { headers: { cookie: `${SESSION_COOKIE}=${planted}` } });
    const interaction = new URL(first.headers.get('location')!, u).href;
    const cookieHeader = (extra: string) =>
      `${SESSION_COOKIE}=${planted}; ${first.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ')}${extra}`;
    const page = await fetch(interaction, { headers: { cookie: cookieHeader('') } });
    const html = await page.text();
    const { action, fields } = FormBrowser.form(html, interaction);
    const login = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader('') },
      body: new URLSearchParams({ ...fields, username: ALICE.username, password: ALICE.password }).toString(),
    });
    expect(login.status).toBe(303);
    const fresh = /gatehouse_session=([^;]+)/.exec(login.headers.getSetCookie().join())?.[1];
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(planted);
    // Not readable by scripts, not sent on cross-site posts.
    expect(login.headers.getSetCookie().find((c) => c.startsWith(SESSION_COOKIE))).toMatch(/HttpOnly.*SameSite=Lax/);
    const { storage } = server.gatehouse.deps;
    const sessionId = (signed: string) => signed.slice(0, signed.lastIndexOf('.'));
    expect((await storage.getSession(sessionId(planted)))?.userId).not.toBe(
      (await storage.getSession(sessionId(fresh!)))?.userId,
    );

    // A made-up (unsigned) cookie value is simply ignored: no session comes from the attacker's choice of id.
    const madeUp = await fetch(u, {
      redirect: 'manual',
      headers: { cookie: `${SESSION_COOKIE}=attacker-chosen-id.bad` },
    });
    expect(madeUp.status).toBe(303);
    expect(madeUp.headers.get('location')).toMatch(/\/interaction\//);
  });
});

describe('token confusion', () => {
  let clientId: string;
  let tokens: Record<string, string>;
  beforeAll(async () => {
    // A metadata-document client: its client_id is an https URL, so its ID token's aud could pass for a resource URI.
    clientId = `${cimd.origin}/rp.json`;
    cimd.docs.set('/rp.json', {
      body: JSON.stringify({
        client_id: clientId,
        client_name: 'RP',
        redirect_uris: [LOOPBACK],
        grant_types: ['authorization_code', 'refresh_token'],
      }),
    });
    tokens = (await tokensFor(clientId, 'openid profile')).json;
    expect(tokens.id_token).toBeDefined();
    expect(tokens.refresh_token).toBeDefined();
  });

  const userinfo = (token: string) => fetch(url('/userinfo'), { headers: { authorization: `Bearer ${token}` } });

  it('the access token itself works at /userinfo (the refusals below are about the token, not the setup)', async () => {
    expect((await userinfo(tokens.access_token!)).status).toBe(200);
  });

  // An ID token is signed by the same key and has aud = client_id, like a resource-less access token: only the
  // JWT typ (RFC 9068 at+jwt) tells them apart.
  it('an ID token presented as an access token at /userinfo is invalid_token', async () => {
    expect(decodeJwt(tokens.id_token!).aud).toBe(clientId);
    const res = await userinfo(tokens.id_token!);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('a refresh token or an authorization code presented at /userinfo is invalid_token', async () => {
    for (const token of [tokens.refresh_token!, 'not-a-token']) {
      const res = await userinfo(token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  it('an access token or an ID token presented as a refresh token is invalid_grant', async () => {
    for (const token of [tokens.access_token!, tokens.id_token!]) {
      const res = await postForm(url('/token'), {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: token,
      });
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('invalid_grant');
    }
  });

  // RFC 6750 §2.3 / MCP: access tokens must not travel in the query string, so /userinfo does not read one there.
  it('an access token in the query string of /userinfo is not accepted', async () => {
    const res = await fetch(url(`/userinfo?access_token=${encodeURIComponent(tokens.access_token!)}`));
    expect(res.status).toBe(401);
  });

  // alg=none and a re-signed copy: the claims of a real token with the signature stripped or replaced.
  it('an unsigned (alg=none) or re-signed copy of a real access token is refused at /userinfo and by the toolkit', async () => {
    const [, payload] = tokens.access_token!.split('.');
    const header = (h: object) => Buffer.from(JSON.stringify(h)).toString('base64url');
    const unsigned = `${header({ alg: 'none', typ: 'at+jwt' })}.${payload}.`;
    const hmac = `${header({ alg: 'HS256', typ: 'at+jwt' })}.${payload}.${Buffer.from('forged').toString('base64url')}`;
    const verify = createResourceVerifier({ issuer: server.issuer, resource: clientId });
    for (const forged of [unsigned, hmac]) {
      expect((await userinfo(forged)).status).toBe(401);
      await expect(verify.verify(forged)).rejects.toMatchObject({ code: 'invalid_token' });
    }
  });

  // Gatehouse does not read id_token_hint: an access token (or ID token) as a hint signs nobody in.
  it('an access token or ID token as id_token_hint with prompt=none does not stand in for a session', async () => {
    for (const hint of [tokens.access_token!, tokens.id_token!]) {
      const r = await rawAuthorize({
        client_id: clientId,
        redirect_uri: LOOPBACK,
        response_type: 'code',
        prompt: 'none',
        id_token_hint: hint,
        ...pkce().params,
      });
      expect(r.status).toBe(303);
      const location = new URL(r.location!);
      expect(location.searchParams.get('error')).toBe('login_required');
      expect(location.searchParams.get('code')).toBeNull();
    }
  });

  // The resource toolkit must not take an ID token as an access token either, even one whose aud names it.
  it('the resource verifier refuses an ID token (typ), and a token bound to no resource (aud)', async () => {
    const verify = createResourceVerifier({ issuer: server.issuer, resource: clientId });
    const err = await verify.verify(tokens.id_token!).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ResourceAuthError);
    expect((err as ResourceAuthError).code).toBe('invalid_token');
    expect((err as ResourceAuthError).description).toContain('at+jwt');
    // The resource-less access token (aud = the client_id URL) at that same URI is fine: only typ told them apart.
    await expect(verify.verify(tokens.access_token!)).resolves.toMatchObject({ clientId });
    // The resource-less access token has aud = client_id; a real resource server never has the client's id as its URI.
    const mcp = createResourceVerifier({ issuer: server.issuer, resource: RESOURCE_A });
    await expect(mcp.verify(tokens.access_token!)).rejects.toMatchObject({ code: 'invalid_token' });
  });
});

describe('audience confusion at the resource toolkit', () => {
  let tokenForA: string;
  beforeAll(async () => {
    const clientId = (await register()).client_id;
    tokenForA = (await tokensFor(clientId, 'mcp:read', RESOURCE_A)).json.access_token!;
    expect([decodeJwt(tokenForA).aud].flat()).toEqual([RESOURCE_A]);
  });

  it('the token works at resource A (the refusals below are about the audience, not the setup)', async () => {
    await expect(
      createResourceVerifier({ issuer: server.issuer, resource: RESOURCE_A }).verify(tokenForA),
    ).resolves.toMatchObject({ audience: [RESOURCE_A] });
  });

  // A token issued for A replayed at B (token passthrough), or at URIs that share a prefix with A.
  it.each([
    ['another resource', RESOURCE_B],
    ['a longer path', 'https://a.example.com/mcpx'],
    ['a sub-path', 'https://a.example.com/mcp/admin'],
    ['the parent origin', 'https://a.example.com'],
    ['another port', 'https://a.example.com:8443/mcp'],
    ['http instead of https', 'http://a.example.com/mcp'],
    ['a suffix host', 'https://a.example.com.evil.com/mcp'],
  ])('a token for A is refused at %s', async (_name, resource) => {
    await expect(createResourceVerifier({ issuer: server.issuer, resource }).verify(tokenForA)).rejects.toMatchObject({
      code: 'invalid_token',
    });
  });

  // The toolkit treats A and A/ as one resource (documented); the trailing slash must not open anything else.
  it('a trailing slash names the same resource, and nothing else', async () => {
    await expect(
      createResourceVerifier({ issuer: server.issuer, resource: `${RESOURCE_A}/` }).verify(tokenForA),
    ).resolves.toBeDefined();
    await expect(
      createResourceVerifier({ issuer: server.issuer, resource: `${RESOURCE_A}//` }).verify(tokenForA),
    ).rejects.toMatchObject({ code: 'invalid_token' });
  });

  // Asking the AS for a resource it does not serve, or a look-alike of one it does.
  it.each([
    'https://evil.example.com/mcp',
    'https://a.example.com/mcp#frag',
    'a.example.com/mcp',
    'https://a.example.com/mcp/../admin',
  ])('the authorization endpoint refuses resource=%s with invalid_target', async (resource) => {
    const clientId = (await register()).client_id;
    const r = await rawAuthorize({
      client_id: clientId,
      redirect_uri: LOOPBACK,
      response_type: 'code',
      resource,
      ...pkce().params,
    });
    expect(r.status).toBe(303);
    expect(new URL(r.location!).searchParams.get('error')).toBe('invalid_target');
  });
});

describe('cross-client use and widening', () => {
  // Client B (any registrant) tries to revoke client A's grant: RFC 7009 §2.1 says only the client it was issued to.
  it("another client's revocation request answers 200 but leaves the refresh token working", async () => {
    const a = (await register()).client_id;
    const b = (await register()).client_id;
    const t = (await tokensFor(a, 'mcp:read', RESOURCE_A)).json;
    const revoke = await postForm(url('/revoke'), { client_id: b, token: t.refresh_token! });
    expect(revoke.status).toBe(200);
    const still = await postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: a,
      refresh_token: t.refresh_token!,
    });
    expect(still.status).toBe(200);
  });

  // A refresh (or the code exchange) asking for a resource the user never approved: audience widening.
  it('a refresh token for resource A cannot mint a token for resource B (invalid_target)', async () => {
    const a = (await register()).client_id;
    const t = (await tokensFor(a, 'mcp:read', RESOURCE_A)).json;
    const wider = await postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: a,
      refresh_token: t.refresh_token!,
      resource: RESOURCE_B,
    });
    expect(wider.status).toBe(400);
    expect(wider.json.error).toBe('invalid_target');
  });

  it('a code authorized without a resource cannot be exchanged for a resource-bound token', async () => {
    const a = (await register()).client_id;
    const { v, params } = pkce();
    const cb = await new FormBrowser().authorize(
      authorizeUrl({ client_id: a, redirect_uri: LOOPBACK, response_type: 'code', scope: 'mcp:read', ...params }),
      server.origin,
      ALICE,
    );
    const res = await postForm(url('/token'), {
      grant_type: 'authorization_code',
      client_id: a,
      code: cb.searchParams.get('code')!,
      code_verifier: v,
      redirect_uri: LOOPBACK,
      resource: RESOURCE_A,
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_target');
  });
});

describe('consent reuse', () => {
  // The user approved the client for resource A; a silent request for resource B (or a wider scope) must not ride on it.
  it('consent for resource A is not reused for resource B or for more scope', async () => {
    const clientId = (await register()).client_id;
    const browser = new FormBrowser();
    await tokensFor(clientId, 'mcp:read', RESOURCE_A, browser);
    const silent = async (extra: Record<string, string>) => {
      const r = await browser.request(
        authorizeUrl({
          client_id: clientId,
          redirect_uri: LOOPBACK,
          response_type: 'code',
          prompt: 'none',
          scope: 'mcp:read',
          ...pkce().params,
          ...extra,
        }),
      );
      return new URL(r.headers.get('location')!).searchParams;
    };
    expect((await silent({ resource: RESOURCE_A })).get('code')).toBeTruthy();
    expect((await silent({ resource: RESOURCE_B })).get('error')).toBe('consent_required');
    expect((await silent({ resource: RESOURCE_A, scope: 'mcp:read openid' })).get('error')).toBe('consent_required');
  });

  // Replaying the approval POST (a double submit, or an attacker with the page) must not mint a second code.
  it('a replayed consent approval issues no second code', async () => {
    const clientId = (await register()).client_id;
    const browser = new FormBrowser();
    const step = await browser.follow(
      authorizeUrl({
        client_id: clientId,
        redirect_uri: LOOPBACK,
        response_type: 'code',
        scope: 'openid',
        ...pkce().params,
      }),
      server.origin,
    );
    const consent = await browser.submit(await step.res.text(), step.url, server.origin, {
      username: ALICE.username,
      password: ALICE.password,
    });
    const html = await consent.res.text();
    const first = await browser.submit(html, consent.url, server.origin, { decision: 'approve' });
    expect(new URL(first.callback!).searchParams.get('code')).toBeTruthy();
    const again = await browser.submit(html, consent.url, server.origin, { decision: 'approve' });
    expect(again.callback).toBeUndefined();
    expect(again.res.status).toBe(400);
  });
});

describe('user enumeration', () => {
  /** One failed sign-in: status, page text with the echoed username removed, and elapsed ms. */
  async function attempt(username: string) {
    const clientId = (await register()).client_id;
    const browser = new FormBrowser();
    const step = await browser.follow(
      authorizeUrl({ client_id: clientId, redirect_uri: LOOPBACK, response_type: 'code', ...pkce().params }),
      server.origin,
    );
    const html = await step.res.text();
    const started = performance.now();
    const res = await browser.submit(html, step.url, server.origin, { username, password: 'wrong password entirely' });
    const elapsed = performance.now() - started;
    const page = (await res.res.text())
      .replaceAll(username, 'USER')
      .replace(/value="[A-Za-z0-9_-]{20,}"/g, 'value="T"')
      .replace(/\/interaction\/[^/"]+/g, '/interaction/I');
    return { status: res.res.status, page, elapsed };
  }

  // The response to an unknown username must equal the one to a known username with a wrong password.
  it('an unknown user and a wrong password get the same status and page', async () => {
    const known = await attempt(ALICE.username);
    const unknown = await attempt('nobody-here');
    expect(known.status).toBe(401);
    expect(unknown.status).toBe(known.status);
    expect(unknown.page).toBe(known.page);
  });

  // Timing: an unknown user must cost a password hash too (else a fast answer tells the user does not exist).
  it('an unknown user takes about as long as a wrong password (a dummy hash is computed)', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      known.push((await attempt(ALICE.username)).elapsed);
      unknown.push((await attempt(`nobody-${i}`)).elapsed);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Loose bound (shared CPU): without the dummy hash the unknown case is a small fraction of the known one.
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.5);
  });
});

describe('registration abuse', () => {
  it.each([
    [
      '51 redirect URIs',
      { redirect_uris: Array.from({ length: 51 }, (_, i) => `https://good.example.com/cb${i}`) },
      'invalid_redirect_uri',
    ],
    [
      'a 3000-character redirect URI',
      { redirect_uris: [`https://good.example.com/${'a'.repeat(3000)}`] },
      'invalid_redirect_uri',
    ],
    [
      'a 1000-character client_name',
      { redirect_uris: [GOOD], client_name: 'n'.repeat(1000) },
      'invalid_client_metadata',
    ],
    [
      '21 contacts',
      { redirect_uris: [GOOD], contacts: Array.from({ length: 21 }, (_, i) => `a${i}@example.com`) },
      'invalid_client_metadata',
    ],
    ['a javascript: redirect URI', { redirect_uris: ['javascript:alert(1)//'] }, 'invalid_redirect_uri'],
    ['a data: redirect URI', { redirect_uris: ['data:text/html,<script>alert(1)</script>'] }, 'invalid_redirect_uri'],
    ['a file: redirect URI', { redirect_uris: ['file:///etc/passwd'] }, 'invalid_redirect_uri'],
    [
      'a vbscript: redirect URI',
      { redirect_uris: ['vbscript:msgbox(1)'], application_type: 'native' },
      'invalid_redirect_uri',
    ],
    ['an http non-loopback redirect URI', { redirect_uris: ['http://evil.example.com/cb'] }, 'invalid_redirect_uri'],
    ['an http redirect to 0.0.0.0', { redirect_uris: ['http://0.0.0.0/cb'] }, 'invalid_redirect_uri'],
    ['a redirect URI with a fragment', { redirect_uris: ['https://good.example.com/cb#x'] }, 'invalid_redirect_uri'],
    ['a redirect URI with userinfo', { redirect_uris: ['https://user@good.example.com/cb'] }, 'invalid_redirect_uri'],
    ['a relative redirect URI', { redirect_uris: ['/cb'] }, 'invalid_redirect_uri'],
    [
      'a custom scheme for a web client',
      { redirect_uris: ['com.evil.app:/cb'], application_type: 'web' },
      'invalid_redirect_uri',
    ],
    ['an unknown application_type', { redirect_uris: [GOOD], application_type: 'browser' }, 'invalid_client_metadata'],
    [
      'private_key_jwt without a metadata document',
      { redirect_uris: [GOOD], token_endpoint_auth_method: 'private_key_jwt' },
      'invalid_client_metadata',
    ],
    [
      'client_credentials on open registration',
      { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' },
      'invalid_client_metadata',
    ],
    [
      'an implicit grant',
      { redirect_uris: [GOOD], grant_types: ['implicit'], response_types: ['token'] },
      'invalid_client_metadata',
    ],
    ['redirect_uris as a string', { redirect_uris: GOOD }, 'invalid_redirect_uri'],
  ])('refuses %s', async (_name, body, error) => {
    const r = await postJson(url('/register'), { token_endpoint_auth_method: 'none', ...body });
    expect(r.status, JSON.stringify(r.json)).toBe(400);
    expect(r.json.error).toBe(error);
  });

  // A client that names its own client_id (a static client's, say) must get a server-chosen one, and one that sends
  // its own client_secret must get a fresh secret: the sent one must not authenticate.
  it('a client_id or client_secret sent by the client is ignored', async () => {
    const r = await postJson(url('/register'), {
      client_id: 'admin',
      client_secret: 'attacker-chosen-secret',
      client_id_issued_at: 0,
      redirect_uris: [GOOD],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    expect(r.status).toBe(201);
    expect(r.json.client_id).not.toBe('admin');
    expect(r.json.client_secret).not.toBe('attacker-chosen-secret');
    expect(await server.gatehouse.deps.storage.getClient('admin')).toBeUndefined();
    const withSent = await postForm(
      url('/introspect'),
      { token: 'x' },
      { authorization: basic(r.json.client_id, 'attacker-chosen-secret') },
    );
    expect(withSent.status).toBe(401);
    expect(withSent.json.error).toBe('invalid_client');
    const withIssued = await postForm(
      url('/introspect'),
      { token: 'x' },
      { authorization: basic(r.json.client_id, r.json.client_secret) },
    );
    expect(withIssued.status).toBe(200);
  });

  // One client's registration access token used to read, change or delete another client (RFC 7592).
  it("a registration access token cannot manage another client's registration", async () => {
    const a = await register();
    const b = await register();
    const auth = { authorization: `Bearer ${a.registration_access_token}` };
    const read = await fetch(url(`/register/${encodeURIComponent(b.client_id)}`), { headers: auth });
    expect(read.status).toBe(401);
    const put = await fetch(url(`/register/${encodeURIComponent(b.client_id)}`), {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_id: b.client_id,
        redirect_uris: ['https://evil.example.com/cb'],
        token_endpoint_auth_method: 'none',
      }),
    });
    expect(put.status).toBe(401);
    const del = await fetch(url(`/register/${encodeURIComponent(b.client_id)}`), { method: 'DELETE', headers: auth });
    expect(del.status).toBe(401);
    expect((await server.gatehouse.deps.storage.getClient(b.client_id))?.redirectUris).toEqual([GOOD, LOOPBACK]);
  });

  // RFC 7592 §2.2: an update may not choose the client's secret, nor smuggle in what registration refuses.
  it('an RFC 7592 update cannot set a chosen client_secret, a javascript: redirect or another client_id', async () => {
    const reg = await postJson(url('/register'), {
      redirect_uris: [GOOD],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    expect(reg.status).toBe(201);
    const { client_id: id, client_secret: secret, registration_access_token: rat } = reg.json;
    const put = (body: Record<string, unknown>) =>
      fetch(url(`/register/${encodeURIComponent(id)}`), {
        method: 'PUT',
        headers: { authorization: `Bearer ${rat}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          client_id: id,
          redirect_uris: [GOOD],
          token_endpoint_auth_method: 'client_secret_basic',
          ...body,
        }),
      });
    for (const body of [
      { client_secret: 'attacker-chosen-secret' },
      { client_secret: 42 },
      { redirect_uris: ['javascript:alert(1)'] },
      { client_id: 'admin' },
    ]) {
      const res = await put(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const chosen = await postForm(
      url('/introspect'),
      { token: 'x' },
      { authorization: basic(id, 'attacker-chosen-secret') },
    );
    expect(chosen.status).toBe(401);
    // The current secret may be repeated (RFC 7592 §2.2), and still works afterwards.
    expect((await put({ client_secret: secret, client_name: 'renamed' })).status).toBe(200);
    expect((await postForm(url('/introspect'), { token: 'x' }, { authorization: basic(id, secret) })).status).toBe(200);
  });

  // A registration that tries to plant a metadata-document-shaped client_id to impersonate a CIMD client.
  it('a dynamic client cannot take a URL client_id of a metadata document', async () => {
    const docId = `${cimd.origin}/victim.json`;
    const r = await postJson(url('/register'), {
      client_id: docId,
      redirect_uris: [GOOD],
      token_endpoint_auth_method: 'none',
    });
    expect(r.status).toBe(201);
    expect(r.json.client_id).not.toBe(docId);
  });
});

describe('Client ID Metadata Document URL tricks', () => {
  // URLs that name the same document in another spelling, or a different one behind a lax parser.
  it.each([
    ['a fragment', '/doc.json#x'],
    ['userinfo', '/doc.json', (o: string) => o.replace('https://', 'https://user:pw@')],
    ['a dot segment', '/a/../doc.json'],
    ['an encoded dot segment', '/a/%2e%2e/doc.json'],
    ['no path', ''],
    ['an upper-case host (not normalized)', '/doc.json', (o: string) => o.replace('localhost', 'LOCALHOST')],
  ])('refuses a client_id URL with %s', async (_name, path, rewrite?: (o: string) => string) => {
    cimd.docs.set('/doc.json', {
      body: JSON.stringify({ client_id: `${cimd.origin}/doc.json`, client_name: 'doc', redirect_uris: [LOOPBACK] }),
    });
    const id = (rewrite ? rewrite(cimd.origin) : cimd.origin) + path;
    const r = await rawAuthorize({ client_id: id, redirect_uri: LOOPBACK, response_type: 'code', ...pkce().params });
    expect(r.status, id).toBe(401);
    expect(r.location).toBeNull();
  });

  // A document served as HTML (an upload on the client's site, say) is not a metadata document.
  it('refuses a document not served as JSON', async () => {
    const id = `${cimd.origin}/html.json`;
    cimd.docs.set('/html.json', {
      type: 'text/html',
      body: JSON.stringify({ client_id: id, client_name: 'x', redirect_uris: [LOOPBACK] }),
    });
    const r = await rawAuthorize({ client_id: id, redirect_uri: LOOPBACK, response_type: 'code', ...pkce().params });
    expect(r.status).toBe(401);
    expect(r.html).toContain('application/json');
  });

  // The redirect URI is checked against the document: a redirect the document does not list is refused on a page.
  it('refuses a redirect_uri the document does not list', async () => {
    const id = `${cimd.origin}/listed.json`;
    cimd.docs.set('/listed.json', {
      body: JSON.stringify({ client_id: id, client_name: 'x', redirect_uris: [LOOPBACK] }),
    });
    const r = await rawAuthorize({
      client_id: id,
      redirect_uri: 'https://evil.example.com/cb',
      response_type: 'code',
      ...pkce().params,
    });
    expect(r.status).toBe(400);
    expect(r.location).toBeNull();
  });
});
