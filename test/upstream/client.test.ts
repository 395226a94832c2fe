/**
 * upstream/client.ts against real servers: oidc-provider as an OpenID Connect upstream and, in plain OAuth 2.0 mode
 * with GitHub's user endpoints, as the oauth2 path (test/helpers/oidc-upstream.ts); hand-made node:http servers only
 * where the upstream must misbehave (down, slow, wrong metadata, a foreign signing key, garbage).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstreamSchema } from '../../src/config/upstreams.js';
import { systemClock } from '../../src/core/clock.js';
import { s256 } from '../../src/core/pkce.js';
import { ConfigError } from '../../src/model/errors.js';
import { createUpstreamProvider, createUpstreamProviders } from '../../src/upstream/client.js';
import { safeUrl } from '../../src/upstream/http.js';
import { UpstreamError, type UpstreamProvider, type UpstreamRequest } from '../../src/upstream/provider.js';
import { ALICE, signInUpstream, startOidcUpstream, type OidcUpstream } from '../helpers/oidc-upstream.js';

const REDIRECT_URI = 'http://127.0.0.1:9/upstream/callback';
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-test-'));

const warnings: { obj: object; msg?: string }[] = [];
const logger = { warn: (obj: object, msg?: string) => void warnings.push({ obj, msg }) };

/** Every URL the providers fetched (the global fetch, watched, not replaced). */
const fetched: string[] = [];
const watchedFetch = (input: string | URL, init?: RequestInit) => {
  fetched.push(String(input));
  return fetch(input, init);
};

function provider(input: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): UpstreamProvider {
  const config = upstreamSchema.parse({ id: 'up', name: 'Upstream', ...input });
  return createUpstreamProvider(config, { clock: systemClock, logger, fetch: watchedFetch, env });
}

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof UpstreamError) return err;
    throw err;
  }
  throw new Error('expected an UpstreamError, it succeeded');
}

const pendingOf = (req: UpstreamRequest) => ({
  nonce: req.nonce,
  codeVerifier: req.codeVerifier,
  redirectUri: REDIRECT_URI,
});

let oidc: OidcUpstream;
let oauth2: OidcUpstream;
let post: OidcUpstream;

beforeAll(async () => {
  [oidc, oauth2, post] = await Promise.all([
    startOidcUpstream({ redirectUris: [REDIRECT_URI] }),
    startOidcUpstream({ redirectUris: [REDIRECT_URI], mode: 'oauth2' }),
    startOidcUpstream({
      redirectUris: [REDIRECT_URI],
      tokenEndpointAuthMethod: 'client_secret_post',
      idTokenClaims: true,
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([oidc?.close(), oauth2?.close(), post?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const oidcConfig = (up: OidcUpstream = oidc, extra: Record<string, unknown> = {}) => ({
  type: 'oidc',
  issuer: up.issuer,
  clientId: up.clientId,
  clientSecret: up.clientSecret,
  ...extra,
});

/** oidc-provider honours offline_access only with prompt=consent (OpenID Connect Core §11). */
const offline = {
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  authorizationParams: { prompt: 'consent' },
};

describe('begin', () => {
  it('an authorization request with state, nonce and PKCE S256 at the discovered endpoint', async () => {
    const p = provider(oidcConfig());
    const req = await p.begin(REDIRECT_URI);
    const url = new URL(req.url);
    expect(`${url.origin}${url.pathname}`).toBe(`${oidc.issuer}/auth`);
    const q = url.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe(oidc.clientId);
    expect(q.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(q.get('scope')).toBe('openid email profile');
    expect(q.get('state')).toBe(req.state);
    expect(q.get('nonce')).toBe(req.nonce);
    expect(q.get('code_challenge')).toBe(s256(req.codeVerifier));
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(req.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const again = await p.begin(REDIRECT_URI);
    expect(new Set([req.state, req.nonce, req.codeVerifier, again.state, again.nonce, again.codeVerifier]).size).toBe(
      6,
    );
    expect(p).toMatchObject({ id: 'up', name: 'Upstream', issuer: oidc.issuer });
  });

  it('google: access_type=offline and prompt=consent; configured parameters over them', async () => {
    const q = new URL((await provider(oidcConfig(oidc, { preset: 'google' })).begin(REDIRECT_URI)).url).searchParams;
    expect(q.get('access_type')).toBe('offline');
    expect(q.get('prompt')).toBe('consent');
    const own = provider(
      oidcConfig(oidc, { preset: 'google', authorizationParams: { prompt: 'select_account', hd: 'example.com' } }),
    );
    const q2 = new URL((await own.begin(REDIRECT_URI)).url).searchParams;
    expect(q2.get('prompt')).toBe('select_account');
    expect(q2.get('hd')).toBe('example.com');
  });

  it('entra: .default scopes go as they are, and never a resource parameter', async () => {
    const p = provider(
      oidcConfig(oidc, { preset: 'entra', scopes: ['openid', 'api://8e1f0c2a/.default', 'offline_access'] }),
    );
    const q = new URL((await p.begin(REDIRECT_URI)).url).searchParams;
    expect(q.get('scope')).toBe('openid api://8e1f0c2a/.default offline_access');
    expect(q.has('resource')).toBe(false);
  });

  it('oauth2: no nonce, the configured scopes, PKCE still sent', async () => {
    const p = provider(githubShaped());
    const req = await p.begin(REDIRECT_URI);
    const q = new URL(req.url).searchParams;
    expect(req.url.startsWith(`${oauth2.issuer}/auth?`)).toBe(true);
    expect(q.get('scope')).toBe('read:user user:email');
    expect(q.has('nonce')).toBe(false);
    expect(q.get('code_challenge')).toBe(s256(req.codeVerifier));
  });
});

describe('complete: OpenID Connect against oidc-provider', () => {
  it('the identity from the ID token (and userinfo for email and name), the tokens with a refresh token', async () => {
    const p = provider(oidcConfig(oidc, offline));
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    expect(callback.searchParams.get('state')).toBe(req.state);
    const before = Date.now();
    const { identity, tokens } = await p.complete(callback.searchParams, pendingOf(req));
    expect(identity).toEqual({
      upstreamId: 'up',
      issuer: oidc.issuer,
      subject: 'alice',
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice Example',
    });
    expect(tokens).toMatchObject({
      tokenType: 'Bearer',
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      idToken: expect.stringMatching(/^ey/),
      scope: 'openid email profile offline_access',
    });
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(tokens.expiresAt).toBeLessThanOrEqual(Date.now() + 3600_000);
    // oidc-provider keeps email and name out of code-flow ID tokens: they came from userinfo.
    expect(fetched).toContain(`${oidc.issuer}/me`);
  });

  it('no refresh token without offline_access; client_secret_post; claims in the ID token need no userinfo', async () => {
    const p = provider(oidcConfig(post, { tokenEndpointAuthMethod: 'client_secret_post' }));
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    fetched.length = 0;
    const { identity, tokens } = await p.complete(callback.searchParams, pendingOf(req));
    expect(identity).toMatchObject({
      subject: 'alice',
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice Example',
    });
    expect(tokens.refreshToken).toBeUndefined();
    expect(fetched).toEqual([`${post.issuer}/token`, `${post.issuer}/jwks`]);
  });

  it('discovery is fetched once and kept', async () => {
    const p = provider(oidcConfig());
    fetched.length = 0;
    await Promise.all([p.begin(REDIRECT_URI), p.begin(REDIRECT_URI)]);
    await p.begin(REDIRECT_URI);
    expect(fetched).toEqual([`${oidc.issuer}/.well-known/openid-configuration`]);
  });

  it('access_denied when the user cancels at the upstream', async () => {
    const p = provider(oidcConfig());
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url, { decision: 'deny' });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const err = await failure(p.complete(callback.searchParams, pendingOf(req)));
    expect(err.failure).toBe('access_denied');
    expect(err.message).toMatch(/^upstream "up": the user did not allow the sign-in \(access_denied/);
  });

  it('another error from the upstream is invalid_response', async () => {
    const p = provider(oidcConfig());
    const req = await p.begin(REDIRECT_URI);
    const callback = new URLSearchParams({ error: 'server_error', state: req.state, iss: oidc.issuer });
    const err = await failure(p.complete(callback, pendingOf(req)));
    expect(err.failure).toBe('invalid_response');
    expect(err.message).toMatch(/server_error/);
  });

  it('RFC 9207: an iss that is not the upstream, or none when its metadata promises one', async () => {
    const p = provider(oidcConfig());
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    const wrong = new URLSearchParams(callback.searchParams);
    wrong.set('iss', 'https://evil.example.com');
    const err = await failure(p.complete(wrong, pendingOf(req)));
    expect(err.failure).toBe('invalid_response');
    expect(err.message).toMatch(/iss is not the upstream's issuer/);
    const none = new URLSearchParams(callback.searchParams);
    none.delete('iss');
    expect((await failure(p.complete(none, pendingOf(req)))).message).toMatch(/no iss/);
    // The error response is checked too: a mix-up attacker's access_denied is not believed.
    const deniedElsewhere = new URLSearchParams({ error: 'access_denied', iss: 'https://evil.example.com' });
    expect((await failure(p.complete(deniedElsewhere, pendingOf(req)))).failure).toBe('invalid_response');
    // The code itself was never sent anywhere: it still works.
    expect((await p.complete(callback.searchParams, pendingOf(req))).identity.subject).toBe('alice');
  });

  it('a nonce that is not this sign-in’s', async () => {
    const p = provider(oidcConfig());
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    const other = await p.begin(REDIRECT_URI);
    const err = await failure(p.complete(callback.searchParams, { ...pendingOf(req), nonce: other.nonce }));
    expect(err.failure).toBe('invalid_response');
    expect(err.message).toBe('upstream "up": the ID token nonce is not the one this sign-in sent');
  });

  it('a bad code, a wrong verifier, a wrong secret: the token endpoint refuses them', async () => {
    const p = provider(oidcConfig());
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    const bad = new URLSearchParams(callback.searchParams);
    bad.set('code', 'not-a-code-the-upstream-issued');
    const err = await failure(p.complete(bad, pendingOf(req)));
    expect(err.failure).toBe('invalid_response');
    expect(err.message).toMatch(
      new RegExp(`^upstream "up": token endpoint ${oidc.issuer}/token refused the code: HTTP 400 \\(invalid_grant`),
    );
    expect(err.message).not.toContain('not-a-code-the-upstream-issued');
    const verifier = await failure(
      p.complete(callback.searchParams, { ...pendingOf(req), codeVerifier: 'x'.repeat(43) }),
    );
    expect(verifier.failure).toBe('invalid_response');

    const wrongSecret = provider(oidcConfig(oidc, { clientSecret: 'not-the-secret-at-all' }));
    const req2 = await wrongSecret.begin(REDIRECT_URI);
    const callback2 = await signInUpstream(req2.url);
    const denied = await failure(wrongSecret.complete(callback2.searchParams, pendingOf(req2)));
    expect(denied.failure).toBe('invalid_response');
    expect(denied.message).toMatch(/HTTP 401 \(invalid_client/);
    expect(denied.message).not.toContain('not-the-secret-at-all');
  });

  it('the client secret from an environment variable or a file', async () => {
    const file = join(dir, 'secret');
    writeFileSync(file, `${oidc.clientSecret}\n`);
    const { clientSecret: _, ...config } = oidcConfig();
    for (const p of [
      provider({ ...config, clientSecretEnv: 'UP_SECRET' }, { UP_SECRET: oidc.clientSecret }),
      provider({ ...config, clientSecretFile: file }),
    ]) {
      const req = await p.begin(REDIRECT_URI);
      const callback = await signInUpstream(req.url);
      expect((await p.complete(callback.searchParams, pendingOf(req))).identity.subject).toBe('alice');
    }
    expect(() => provider({ ...config, clientSecretEnv: 'UP_SECRET' }, {})).toThrow(ConfigError);
    expect(() => provider({ ...config, clientSecretEnv: 'UP_SECRET' }, {})).toThrow(
      /upstreams\[up\]\.clientSecretEnv: environment variable UP_SECRET is not set/,
    );
    expect(() => provider({ ...config, clientSecretFile: join(dir, 'missing') })).toThrow(
      /clientSecretFile: cannot read/,
    );
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => provider({ ...config, clientSecretFile: join(dir, 'empty') })).toThrow(/is empty/);
  });

  it('an inline secret is warned about at creation; plain http off loopback too', () => {
    warnings.length = 0;
    provider(oidcConfig());
    expect(warnings.map((w) => w.msg)).toEqual([
      'upstream client secret is inline in the config; use clientSecretEnv or clientSecretFile',
    ]);
    warnings.length = 0;
    provider({ type: 'oidc', issuer: 'http://kc.lan/realms/acme', clientId: 'c', clientSecretEnv: 'S' }, { S: 's' });
    expect(warnings.map((w) => w.msg)).toEqual([expect.stringMatching(/plain http/)]);
  });

  it('createUpstreamProviders: one provider per id', () => {
    const configs = ['a', 'b'].map((id) => upstreamSchema.parse({ id, name: id.toUpperCase(), ...oidcConfig() }));
    const map = createUpstreamProviders(configs, { clock: systemClock, logger });
    expect([...map.keys()]).toEqual(['a', 'b']);
    expect(map.get('b')?.name).toBe('B');
    expect(() => createUpstreamProviders([configs[0]!, configs[0]!], { clock: systemClock, logger })).toThrow(
      /duplicate id "a"/,
    );
  });
});

/** The oauth2 instance as GitHub: the preset's quirks, its endpoints pointed at the local stand-in. */
function githubShaped(extra: Record<string, unknown> = {}) {
  return {
    type: 'oauth2',
    preset: 'github',
    issuer: oauth2.issuer,
    authorizationEndpoint: `${oauth2.issuer}/auth`,
    tokenEndpoint: `${oauth2.issuer}/token`,
    userinfoEndpoint: `${oauth2.issuer}/user`,
    emailsEndpoint: `${oauth2.issuer}/user/emails`,
    clientId: oauth2.clientId,
    clientSecret: oauth2.clientSecret,
    ...extra,
  };
}

describe('complete: plain OAuth 2.0 (GitHub-shaped) against oidc-provider', () => {
  it('the identity from /user (id, login for a missing name) and the primary verified address of /user/emails', async () => {
    const p = provider(githubShaped());
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    fetched.length = 0;
    const { identity, tokens } = await p.complete(callback.searchParams, pendingOf(req));
    expect(identity).toEqual({
      upstreamId: 'up',
      issuer: oauth2.issuer,
      subject: String(ALICE.github!.id),
      email: 'alice@users.example.com',
      emailVerified: true,
      name: 'alice-gh',
    });
    expect(tokens).toMatchObject({
      tokenType: 'Bearer',
      accessToken: expect.any(String),
      scope: 'read:user user:email',
    });
    expect(tokens.idToken).toBeUndefined();
    expect(fetched).toEqual([`${oauth2.issuer}/token`, `${oauth2.issuer}/user`, `${oauth2.issuer}/user/emails`]);
  });

  it('a claim mapping of its own, without an emails endpoint', async () => {
    const p = provider({
      type: 'oauth2',
      issuer: oauth2.issuer,
      authorizationEndpoint: `${oauth2.issuer}/auth`,
      tokenEndpoint: `${oauth2.issuer}/token`,
      userinfoEndpoint: `${oauth2.issuer}/user`,
      tokenEndpointAuthMethod: 'client_secret_post',
      scopes: ['read:user'],
      claims: { subject: 'login', name: ['name', 'login'] },
      clientId: oauth2.clientId,
      clientSecret: oauth2.clientSecret,
    });
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    const { identity } = await p.complete(callback.searchParams, pendingOf(req));
    expect(identity).toEqual({ upstreamId: 'up', issuer: oauth2.issuer, subject: 'alice-gh', name: 'alice-gh' });
  });

  it('no subject in the user answer is invalid_response; so is an iss of another server', async () => {
    const p = provider(githubShaped({ claims: { subject: 'sub' } }));
    const req = await p.begin(REDIRECT_URI);
    const callback = await signInUpstream(req.url);
    const wrong = new URLSearchParams(callback.searchParams);
    wrong.set('iss', oidc.issuer);
    expect((await failure(p.complete(wrong, pendingOf(req)))).failure).toBe('invalid_response');
    const err = await failure(p.complete(callback.searchParams, pendingOf(req)));
    expect(err.failure).toBe('invalid_response');
    expect(err.message).toMatch(/user endpoint .*\/user answered no subject \(sub\)/);
  });
});

// ---- Upstreams that misbehave: hand-made servers ------------------------------------------------------------------

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface FakeUpstream {
  issuer: string;
  routes: Map<string, Handler>;
  close(): Promise<void>;
}

async function startFake(): Promise<FakeUpstream> {
  const routes = new Map<string, Handler>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const handler = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
      if (handler) handler(req, res, body);
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    issuer: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    routes,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (res: ServerResponse, status: number, value: unknown) =>
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(typeof value === 'string' ? value : JSON.stringify(value));

describe('failures of a misbehaving upstream', () => {
  let fake: FakeUpstream;
  let signer: { privateKey: CryptoKey; jwk: JWK };
  let stranger: CryptoKey;
  beforeAll(async () => {
    fake = await startFake();
    const pair = await generateKeyPair('RS256', { extractable: true });
    signer = {
      privateKey: pair.privateKey,
      jwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' },
    };
    stranger = (await generateKeyPair('RS256')).privateKey;
  });
  afterAll(() => fake?.close());

  const metadata = () => ({
    issuer: fake.issuer,
    authorization_endpoint: `${fake.issuer}/authorize`,
    token_endpoint: `${fake.issuer}/token`,
    jwks_uri: `${fake.issuer}/jwks`,
    id_token_signing_alg_values_supported: ['RS256'],
  });
  /** A well-behaved fake, each route replaceable. */
  function behave(): void {
    fake.routes.clear();
    fake.routes.set('/.well-known/openid-configuration', (_q, res) => json(res, 200, metadata()));
    fake.routes.set('/jwks', (_q, res) => json(res, 200, { keys: [signer.jwk] }));
  }
  const idToken = (claims: JWTPayload, key: CryptoKey = signer.privateKey, kid = 'k1') =>
    new SignJWT({ sub: 'u1', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(fake.issuer)
      .setAudience('gh')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key);
  const fakeProvider = (extra: Record<string, unknown> = {}) =>
    provider({
      type: 'oidc',
      issuer: fake.issuer,
      clientId: 'gh',
      clientSecret: 'fake-secret',
      timeoutMs: 1000,
      ...extra,
    });
  /** begin, then complete with a code the token route answers as `answer(nonce)` says. */
  async function signIn(answer: (nonce: string) => unknown, p = fakeProvider()) {
    const req = await p.begin(REDIRECT_URI);
    fake.routes.set('/token', (_q, res) => void Promise.resolve(answer(req.nonce)).then((v) => json(res, 200, v)));
    return p.complete(new URLSearchParams({ code: 'the-code', state: req.state }), pendingOf(req));
  }

  it('a well-behaved fake signs in (and its token endpoint got the secret, PKCE and no expiry)', async () => {
    behave();
    let form = new URLSearchParams();
    let authorization = '';
    const p = fakeProvider();
    const req = await p.begin(REDIRECT_URI);
    fake.routes.set('/token', (q, res, body) => {
      form = new URLSearchParams(body);
      authorization = q.headers.authorization ?? '';
      void idToken({ nonce: req.nonce, email: 'u1@example.com', email_verified: 'true' }).then((t) =>
        json(res, 200, { access_token: 'at', token_type: 'bearer', id_token: t }),
      );
    });
    const { identity, tokens } = await p.complete(new URLSearchParams({ code: 'the-code' }), pendingOf(req));
    expect(identity).toEqual({
      upstreamId: 'up',
      issuer: fake.issuer,
      subject: 'u1',
      email: 'u1@example.com',
      emailVerified: true,
    });
    expect(tokens).toEqual({ tokenType: 'bearer', accessToken: 'at', idToken: expect.any(String) });
    expect(authorization).toBe(`Basic ${Buffer.from('gh:fake-secret').toString('base64')}`);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'authorization_code',
      code: 'the-code',
      redirect_uri: REDIRECT_URI,
      code_verifier: req.codeVerifier,
    });
  });

  it('down (connection refused): unavailable at once, and discovery is tried again later', async () => {
    const closed = await startFake();
    const issuer = closed.issuer;
    await closed.close();
    const p = provider({ type: 'oidc', issuer, clientId: 'gh', clientSecret: 's' });
    const started = Date.now();
    const err = await failure(p.begin(REDIRECT_URI));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.failure).toBe('unavailable');
    expect(err.message).toBe(
      `upstream "up": discovery ${issuer}/.well-known/openid-configuration cannot be reached (ECONNREFUSED)`,
    );
    behave();
    fake.routes.set('/.well-known/openid-configuration', (_q, res) => json(res, 503, 'down'));
    const p2 = fakeProvider();
    expect((await failure(p2.begin(REDIRECT_URI))).message).toMatch(/discovery .* answered HTTP 503$/);
    behave();
    expect((await p2.begin(REDIRECT_URI)).url).toMatch(new RegExp(`^${fake.issuer}/authorize\\?`));
  });

  it('no answer: unavailable within timeoutMs', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const issuer = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const p = provider({ type: 'oidc', issuer, clientId: 'gh', clientSecret: 's', timeoutMs: 300 });
      const started = Date.now();
      const err = await failure(p.begin(REDIRECT_URI));
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(err.failure).toBe('unavailable');
      expect(err.message).toMatch(/^upstream "up": discovery .* did not answer within 300 ms$/);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('a token endpoint that stalls mid-answer: unavailable within timeoutMs', async () => {
    behave();
    const p = fakeProvider({ timeoutMs: 300 });
    const req = await p.begin(REDIRECT_URI);
    fake.routes.set(
      '/token',
      (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).write('{"acc'),
    );
    const started = Date.now();
    const err = await failure(p.complete(new URLSearchParams({ code: 'the-code' }), pendingOf(req)));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(err.failure).toBe('unavailable');
    expect(err.message).toMatch(/token endpoint .* did not answer within 300 ms/);
  });

  it('5xx, malformed JSON, an oversized answer, an error in HTTP 200 at the token endpoint', async () => {
    behave();
    const p = fakeProvider();
    const complete = async (handler: Handler) => {
      const req = await p.begin(REDIRECT_URI);
      fake.routes.set('/token', handler);
      return failure(p.complete(new URLSearchParams({ code: 'the-code' }), pendingOf(req)));
    };
    const e5 = await complete((_q, res) => json(res, 502, { error: 'bad_gateway' }));
    expect([e5.failure, e5.message]).toEqual([
      'unavailable',
      `upstream "up": token endpoint ${fake.issuer}/token answered HTTP 502 (bad_gateway)`,
    ]);
    const garbage = await complete((_q, res) => json(res, 200, '{"access_token": '));
    expect([garbage.failure, garbage.message]).toEqual([
      'unavailable',
      `upstream "up": token endpoint ${fake.issuer}/token answered malformed JSON`,
    ]);
    const big = await complete((_q, res) => json(res, 200, { access_token: 'x'.repeat(70 * 1024) }));
    expect([big.failure, big.message]).toEqual([
      'unavailable',
      `upstream "up": token endpoint ${fake.issuer}/token answered more than 64 KiB`,
    ]);
    const github = await complete((_q, res) =>
      json(res, 200, { error: 'bad_verification_code', error_description: 'The code the-code is incorrect' }),
    );
    expect([github.failure, github.message]).toEqual([
      'invalid_response',
      `upstream "up": token endpoint ${fake.issuer}/token refused the code (bad_verification_code: The code [redacted] is incorrect)`,
    ]);
    const none = await complete((_q, res) => json(res, 200, { token_type: 'Bearer' }));
    expect([none.failure, none.message]).toEqual([
      'invalid_response',
      `upstream "up": token endpoint ${fake.issuer}/token answered no access_token`,
    ]);
  });

  it('metadata naming another issuer, malformed metadata', async () => {
    behave();
    fake.routes.set('/.well-known/openid-configuration', (_q, res) =>
      json(res, 200, { ...metadata(), issuer: 'https://idp.example.com' }),
    );
    const wrong = await failure(fakeProvider().begin(REDIRECT_URI));
    expect(wrong.failure).toBe('invalid_response');
    expect(wrong.message).toBe(
      `upstream "up": discovery ${fake.issuer}/.well-known/openid-configuration names issuer https://idp.example.com, not the configured ${fake.issuer}`,
    );
    fake.routes.set('/.well-known/openid-configuration', (_q, res) => json(res, 200, '<html>'));
    expect(await failure(fakeProvider().begin(REDIRECT_URI))).toMatchObject({
      failure: 'unavailable',
      message: expect.stringMatching(/malformed JSON$/),
    });
    fake.routes.set('/.well-known/openid-configuration', (_q, res) =>
      json(res, 200, { ...metadata(), token_endpoint: 'not a url' }),
    );
    expect(await failure(fakeProvider().begin(REDIRECT_URI))).toMatchObject({
      failure: 'invalid_response',
      message: expect.stringMatching(/no valid token_endpoint$/),
    });
  });

  it('an ID token signed by a key the JWKS does not hold, or under its kid by another key', async () => {
    behave();
    const other = await failure(
      signIn((nonce) => idToken({ nonce }, stranger, 'k2').then((t) => ({ access_token: 'a', id_token: t }))),
    );
    expect([other.failure, other.message]).toEqual([
      'invalid_response',
      `upstream "up": no key of the upstream's JWKS matches the ID token (signed by another key?)`,
    ]);
    const forged = await failure(
      signIn((nonce) => idToken({ nonce }, stranger, 'k1').then((t) => ({ access_token: 'a', id_token: t }))),
    );
    expect([forged.failure, forged.message]).toEqual([
      'invalid_response',
      `upstream "up": the ID token's signature does not verify with the upstream's JWKS`,
    ]);
  });

  it('ID token claims: no sub, another audience, several audiences without azp, expired, issued in the future', async () => {
    behave();
    const claimsFail = async (claims: JWTPayload, edit?: (jwt: SignJWT) => SignJWT) =>
      failure(
        signIn(async (nonce) => {
          let jwt = new SignJWT({ nonce, ...claims })
            .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
            .setIssuer(fake.issuer);
          jwt = (edit ?? ((j) => j.setAudience('gh').setIssuedAt().setExpirationTime('5m')))(jwt);
          return { access_token: 'a', id_token: await jwt.sign(signer.privateKey) };
        }),
      );
    const now = Math.floor(Date.now() / 1000);
    expect((await claimsFail({})).message).toMatch(/sub claim is not valid \(missing\)/);
    expect(
      (await claimsFail({ sub: 'u' }, (j) => j.setAudience('someone-else').setIssuedAt().setExpirationTime('5m')))
        .message,
    ).toMatch(/aud claim is not valid/);
    expect(
      (await claimsFail({ sub: 'u' }, (j) => j.setAudience(['gh', 'api']).setIssuedAt().setExpirationTime('5m')))
        .message,
    ).toMatch(/another authorized party \(azp\)/);
    expect((await claimsFail({ sub: 'u', azp: 'api' })).message).toMatch(/azp/);
    expect(
      (
        await claimsFail({ sub: 'u' }, (j) =>
          j
            .setAudience('gh')
            .setIssuedAt(now - 600)
            .setExpirationTime(now - 300),
        )
      ).message,
    ).toMatch(/has expired/);
    expect(
      (
        await claimsFail({ sub: 'u' }, (j) =>
          j
            .setAudience('gh')
            .setIssuedAt(now + 600)
            .setExpirationTime(now + 900),
        )
      ).message,
    ).toMatch(/issued in the future/);
    const noToken = await failure(signIn(() => ({ access_token: 'a' })));
    expect(noToken.message).toBe('upstream "up": the token response has no id_token');
    // Several audiences with our azp are fine.
    const ok = await signIn(async (nonce) => ({
      access_token: 'a',
      id_token: await new SignJWT({ sub: 'u', nonce, azp: 'gh' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(fake.issuer)
        .setAudience(['gh', 'api'])
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(signer.privateKey),
    }));
    expect(ok.identity.subject).toBe('u');
  });

  it('a JWKS endpoint that is down or serves garbage is unavailable', async () => {
    behave();
    fake.routes.set('/jwks', (_q, res) => json(res, 500, 'oops'));
    const down = await failure(signIn((nonce) => idToken({ nonce }).then((t) => ({ access_token: 'a', id_token: t }))));
    expect([down.failure, down.message]).toEqual([
      'unavailable',
      `upstream "up": jwks_uri ${fake.issuer}/jwks answered HTTP 500`,
    ]);
    fake.routes.set('/jwks', (_q, res) => json(res, 200, { nope: true }));
    const garbage = await failure(
      signIn((nonce) => idToken({ nonce }).then((t) => ({ access_token: 'a', id_token: t }))),
    );
    expect(garbage.failure).toBe('unavailable');
  });

  it('refresh: grant_type=refresh_token with client authentication; no rotation carries the token forward', async () => {
    behave();
    let form = new URLSearchParams();
    let authorization = '';
    fake.routes.set('/token', (q, res, body) => {
      form = new URLSearchParams(body);
      authorization = q.headers.authorization ?? '';
      // A refreshed ID token has no nonce (OpenID Connect Core §12.2).
      void idToken({}).then((t) => json(res, 200, { access_token: 'at-2', expires_in: 60, id_token: t }));
    });
    const p = fakeProvider();
    const tokens = await p.refresh('rt-1');
    expect(Object.fromEntries(form)).toEqual({ grant_type: 'refresh_token', refresh_token: 'rt-1' });
    expect(authorization).toBe(`Basic ${Buffer.from('gh:fake-secret').toString('base64')}`);
    expect(tokens).toMatchObject({ tokenType: 'Bearer', accessToken: 'at-2', refreshToken: 'rt-1' });
    expect(tokens.expiresAt).toBeGreaterThan(Date.now());
    // Rotated: the new one.
    fake.routes.set('/token', (_q, res) => json(res, 200, { access_token: 'at-3', refresh_token: 'rt-2' }));
    expect(await p.refresh('rt-1')).toMatchObject({ accessToken: 'at-3', refreshToken: 'rt-2' });
  });

  it('refresh: invalid_grant (HTTP 400, or GitHub-style in HTTP 200) is its own failure; a bad ID token is refused', async () => {
    behave();
    const p = fakeProvider();
    fake.routes.set('/token', (_q, res) => json(res, 400, { error: 'invalid_grant', error_description: 'rt-1 spent' }));
    const refused = await failure(p.refresh('rt-1'));
    expect(refused.failure).toBe('invalid_grant');
    expect(refused.message).not.toContain('rt-1');
    fake.routes.set('/token', (_q, res) => json(res, 200, { error: 'bad_refresh_token' }));
    expect((await failure(p.refresh('rt-1'))).failure).toBe('invalid_grant');
    fake.routes.set('/token', (_q, res) => json(res, 400, { error: 'invalid_client' }));
    expect((await failure(p.refresh('rt-1'))).failure).toBe('invalid_response');
    fake.routes.set('/token', (_q, res) => json(res, 503, {}));
    expect((await failure(p.refresh('rt-1'))).failure).toBe('unavailable');
    fake.routes.set(
      '/token',
      (_q, res) => void idToken({}, stranger).then((t) => json(res, 200, { access_token: 'a', id_token: t })),
    );
    expect((await failure(p.refresh('rt-1'))).failure).toBe('invalid_response');
  });

  it('status and probe: unknown before any check, up after one, degraded when the JWKS fails', async () => {
    behave();
    const p = fakeProvider();
    expect(p.status()).toEqual({ status: 'unknown', discovery: 'unchecked' });
    expect(await p.probe()).toMatchObject({ status: 'up', discovery: 'ok', checkedAt: expect.any(Number) });
    fake.routes.set('/jwks', (_q, res) => json(res, 500, {}));
    // Within the interval: the last outcome, no request.
    expect((await p.probe(60_000)).status).toBe('up');
    const after = await p.probe(0);
    expect(after).toMatchObject({ status: 'degraded', discovery: 'failed' });
    expect(after.error).toContain('jwks_uri');
    expect(p.status()).toEqual(after);
  });

  it('oauth2: status is static (nothing to discover)', async () => {
    const p = provider({
      type: 'oauth2',
      clientId: 'gh',
      clientSecret: 'x',
      issuer: 'https://github.com',
      authorizationEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      userinfoEndpoint: 'https://api.github.com/user',
    });
    expect(await p.probe()).toEqual({ status: 'up', discovery: 'static' });
  });

  it('safeUrl keeps scheme, host and path', () => {
    expect(safeUrl('https://user:pw@idp.example.com:8443/a/b?code=x#frag')).toBe('https://idp.example.com:8443/a/b');
    expect(safeUrl('not a url')).toBe('(not a URL)');
  });

  it('messages carry no query or fragment of a URL, nor the secret', async () => {
    behave();
    fake.routes.set('/token', (_q, res) =>
      json(res, 503, { error: 'temporarily_unavailable', error_description: 'secret=fake-secret' }),
    );
    const p = provider({
      type: 'oauth2',
      authorizationEndpoint: `${fake.issuer}/authorize`,
      tokenEndpoint: `${fake.issuer}/token?key=topsecret#frag`,
      userinfoEndpoint: `${fake.issuer}/user`,
      clientId: 'gh',
      clientSecret: 'fake-secret',
    });
    const req = await p.begin(REDIRECT_URI);
    const err = await failure(p.complete(new URLSearchParams({ code: 'the-code' }), pendingOf(req)));
    expect(err.failure).toBe('unavailable');
    expect(err.message).toBe(
      `upstream "up": token endpoint ${fake.issuer}/token answered HTTP 503 (temporarily_unavailable: secret=[redacted])`,
    );
  });

  it('oauth2: a token that never expires, a user endpoint refusing the token', async () => {
    behave();
    const p = provider({
      type: 'oauth2',
      authorizationEndpoint: `${fake.issuer}/authorize`,
      tokenEndpoint: `${fake.issuer}/token`,
      userinfoEndpoint: `${fake.issuer}/user`,
      clientId: 'gh',
      clientSecret: 'fake-secret',
    });
    fake.routes.set('/token', (_q, res) =>
      json(res, 200, { access_token: 'gho_x', token_type: 'bearer', scope: 'read:user' }),
    );
    fake.routes.set('/user', (q, res) =>
      q.headers.authorization === 'Bearer gho_x'
        ? json(res, 200, { sub: 'u9', email: 'u9@example.com', email_verified: false })
        : json(res, 401, {}),
    );
    const req = await p.begin(REDIRECT_URI);
    const { identity, tokens } = await p.complete(new URLSearchParams({ code: 'the-code' }), pendingOf(req));
    expect(identity).toEqual({
      upstreamId: 'up',
      issuer: fake.issuer,
      subject: 'u9',
      email: 'u9@example.com',
      emailVerified: false,
    });
    expect(tokens).toEqual({ tokenType: 'bearer', accessToken: 'gho_x', scope: 'read:user' });
    fake.routes.set('/user', (_q, res) => json(res, 401, { message: 'Bad credentials' }));
    const err = await failure(p.complete(new URLSearchParams({ code: 'the-code' }), pendingOf(req)));
    expect([err.failure, err.message]).toEqual([
      'invalid_response',
      `upstream "up": user endpoint ${fake.issuer}/user answered HTTP 401`,
    ]);
  });

  it('PKCE is not sent when the metadata lists methods without S256', async () => {
    behave();
    fake.routes.set('/.well-known/openid-configuration', (_q, res) =>
      json(res, 200, { ...metadata(), code_challenge_methods_supported: ['plain'] }),
    );
    const q = new URL((await fakeProvider().begin(REDIRECT_URI)).url).searchParams;
    expect(q.has('code_challenge')).toBe(false);
    expect(q.has('code_challenge_method')).toBe(false);
  });
});
