/**
 * End to end with a certified client library (oauth4webapi): discovery, dynamic registration, the code flow with
 * PKCE through the real login and consent pages, ID token + userinfo, refresh rotation, revocation, introspection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oauth from 'oauth4webapi';
import { FormBrowser } from '../helpers/browser.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT = 'http://127.0.0.1/callback';
const RESOURCE = 'https://mcp.example.com/mcp';
/** The resource server's own client, allowed to introspect any token (introspection.allowedClients). */
const RS = {
  client: { client_id: 'mcp-rs', token_endpoint_auth_method: 'client_secret_basic' } as oauth.Client,
  secret: 'resource-server-secret-0123456789abcdef',
};

let server: TestServer;
let as: oauth.AuthorizationServer;

beforeAll(async () => {
  server = await startServer({
    scopes: ['mcp:read', 'mcp:write'],
    // Every test registers a client of its own (registration dedupe would hand the same "Test App" out again, with
    // the consents earlier tests gave it).
    registration: { allowClientCredentials: true, dedupe: { windowSeconds: 0 } },
    clients: [{ client_id: RS.client.client_id, client_secret: RS.secret, grant_types: ['client_credentials'] }],
    introspection: { allowedClients: [RS.client.client_id] },
  });
  const issuer = new URL(server.issuer);
  as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
});
afterAll(() => server.close());

async function registerPublicClient(extra: Record<string, unknown> = {}) {
  const res = await oauth.dynamicClientRegistrationRequest(
    as,
    {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      client_name: 'Test App',
      ...extra,
    },
    insecure,
  );
  return (await oauth.processDynamicClientRegistrationResponse(res)) as oauth.Client & {
    registration_access_token: string;
  };
}

/** Runs authorize -> login -> consent -> code exchange; returns the token response and what was used. */
async function codeFlow(
  client: oauth.Client,
  opts: { scope?: string; resource?: string; browser?: FormBrowser; port?: number; nonce?: string } = {},
) {
  const browser = opts.browser ?? new FormBrowser();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const redirectUri = opts.port ? `http://127.0.0.1:${opts.port}/callback` : REDIRECT;
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('client_id', client.client_id);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', state);
  if (opts.scope) url.searchParams.set('scope', opts.scope);
  if (opts.resource) url.searchParams.set('resource', opts.resource);
  if (opts.nonce) url.searchParams.set('nonce', opts.nonce);
  const callback = await browser.authorize(url.href, server.origin, ALICE);
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const res = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    redirectUri,
    verifier,
    insecure,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    res,
    opts.nonce ? { expectedNonce: opts.nonce, requireIdToken: true } : undefined,
  );
  return { tokens, browser, callback };
}

describe('discovery', () => {
  it('advertises honest metadata', () => {
    expect(as.issuer).toBe(server.issuer);
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
    expect(as.response_types_supported).toEqual(['code']);
    expect(as.grant_types_supported).toContain('client_credentials');
    expect(as.token_endpoint_auth_methods_supported).toContain('none');
  });

  it('serves OIDC discovery too, and JWKS with ES256 and RS256 keys', async () => {
    const oidc = await (await fetch(`${server.origin}/.well-known/openid-configuration`)).json();
    expect(oidc.issuer).toBe(server.issuer);
    const jwks = await (await fetch(as.jwks_uri!)).json();
    expect(jwks.keys.map((k: { alg: string }) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    for (const key of jwks.keys) expect(key.d).toBeUndefined();
  });

  it('answers CORS preflight and simple requests on metadata, token and register', async () => {
    const pre = await fetch(as.token_endpoint!, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    const meta = await fetch(`${server.origin}/.well-known/oauth-authorization-server`, {
      headers: { origin: 'http://localhost:6274' },
    });
    expect(meta.headers.get('access-control-allow-origin')).toBe('*');
    const reg = await fetch(as.registration_endpoint!, {
      method: 'OPTIONS',
      headers: { origin: 'http://x', 'access-control-request-method': 'POST' },
    });
    expect(reg.status).toBe(204);
  });
});

describe('authorization code flow', () => {
  it('completes with PKCE through login and consent, with an ID token and userinfo', async () => {
    const client = await registerPublicClient();
    const nonce = oauth.generateRandomNonce();
    const { tokens, callback, browser } = await codeFlow(client, {
      scope: 'openid profile email mcp:read',
      resource: RESOURCE,
      nonce,
    });
    expect(callback.searchParams.get('iss')).toBe(server.issuer);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('openid profile email mcp:read');
    expect(tokens.refresh_token).toBeTruthy();
    const idClaims = oauth.getValidatedIdTokenClaims(tokens)!;
    expect(idClaims.nonce).toBe(nonce);
    expect(idClaims.auth_time).toBeTypeOf('number');
    expect(idClaims.aud).toBe(client.client_id);

    // The access token is an RFC 9068 JWT bound to the resource.
    const request = new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const claims = await oauth.validateJwtAccessToken(as, request, RESOURCE, insecure);
    expect(claims.client_id).toBe(client.client_id);
    expect(claims.scope).toBe('openid profile email mcp:read');

    // That token is the resource server's: /userinfo refuses it (a resource server cannot replay it for the profile).
    const replayed = await oauth.userInfoRequest(as, client, tokens.access_token, insecure);
    expect(replayed.status).toBe(401);
    expect(replayed.headers.get('www-authenticate')).toContain('error="invalid_token"');
    // A token bound to no resource is the client's own and reads userinfo.
    const own = await codeFlow(client, { scope: 'openid profile email', browser });
    const ownClaims = oauth.getValidatedIdTokenClaims(own.tokens)!;
    const info = await oauth.processUserInfoResponse(
      as,
      client,
      ownClaims.sub,
      await oauth.userInfoRequest(as, client, own.tokens.access_token, insecure),
    );
    expect(info.email).toBe(ALICE.email);
    expect(info.name).toBe(ALICE.name);
  });

  it('skips login and consent for a signed-in user who already approved, and accepts any loopback port', async () => {
    const client = await registerPublicClient();
    const first = await codeFlow(client, { scope: 'mcp:read' });
    // Same browser, same client, port-bearing loopback redirect (RFC 8252 §7.3): no pages this time.
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: 'http://127.0.0.1:49152/callback',
      response_type: 'code',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      scope: 'mcp:read',
    }).toString();
    const res = await first.browser.request(url.href);
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin).toBe('http://127.0.0.1:49152');
    expect(location.searchParams.get('code')).toBeTruthy();
  });

  it('redirects access_denied when the user denies', async () => {
    const client = await registerPublicClient();
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: 'xyz',
    }).toString();
    const callback = await new FormBrowser().authorize(url.href, server.origin, ALICE, 'deny');
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe('xyz');
    expect(callback.searchParams.get('iss')).toBe(server.issuer);
  });
});

describe('refresh tokens', () => {
  it('rotates on every use and detects reuse, revoking the family', async () => {
    const client = await registerPublicClient();
    const { tokens } = await codeFlow(client, { scope: 'mcp:read mcp:write', resource: RESOURCE });
    const r1 = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, insecure),
    );
    expect(r1.refresh_token).toBeTruthy();
    expect(r1.refresh_token).not.toBe(tokens.refresh_token);
    // Scope may narrow...
    const narrowed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), r1.refresh_token!, {
        ...insecure,
        additionalParameters: { scope: 'mcp:read' },
      }),
    );
    expect(narrowed.scope).toBe('mcp:read');
    // ...but never widen.
    const widen = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), narrowed.refresh_token!, {
      ...insecure,
      additionalParameters: { scope: 'mcp:read openid' },
    });
    await expect(oauth.processRefreshTokenResponse(as, client, widen)).rejects.toMatchObject({
      error: 'invalid_scope',
    });
  });

  it('returns the same new pair to a concurrent retry inside the grace window', async () => {
    const client = await registerPublicClient();
    const { tokens } = await codeFlow(client, { scope: 'mcp:read' });
    const results = await Promise.all(
      Array.from({ length: 5 }, async () =>
        oauth.processRefreshTokenResponse(
          as,
          client,
          await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, insecure),
        ),
      ),
    );
    const pairs = new Set(results.map((r) => `${r.access_token}|${r.refresh_token}`));
    expect(pairs.size).toBe(1);
    // The new token works.
    const next = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), results[0]!.refresh_token!, insecure),
    );
    expect(next.access_token).toBeTruthy();
  });
});

describe('revocation and introspection', () => {
  it('revoking a refresh token revokes its family and its access tokens', async () => {
    const client = await registerPublicClient();
    const { tokens } = await codeFlow(client, { scope: 'mcp:read', resource: RESOURCE });
    const rs = RS;
    const introspect = async (token: string) =>
      oauth.processIntrospectionResponse(
        as,
        rs.client,
        await oauth.introspectionRequest(as, rs.client, oauth.ClientSecretBasic(rs.secret), token, insecure),
      );
    const before = await introspect(tokens.access_token);
    expect(before.active).toBe(true);
    expect(before.aud).toBe(RESOURCE);
    expect(before.client_id).toBe(client.client_id);

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, oauth.None(), tokens.refresh_token!, insecure),
    );
    expect((await introspect(tokens.access_token)).active).toBe(false);
    const refresh = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, insecure);
    await expect(oauth.processRefreshTokenResponse(as, client, refresh)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('revokes a single access token by jti', async () => {
    const rs = await registerConfidential({ grant_types: ['client_credentials'] });
    const cc = await oauth.processClientCredentialsResponse(
      as,
      rs.client,
      await oauth.clientCredentialsGrantRequest(
        as,
        rs.client,
        oauth.ClientSecretBasic(rs.secret),
        new URLSearchParams({ resource: RESOURCE }),
        insecure,
      ),
    );
    const introspect = async (token: string) =>
      oauth.processIntrospectionResponse(
        as,
        RS.client,
        await oauth.introspectionRequest(as, RS.client, oauth.ClientSecretBasic(RS.secret), token, insecure),
      );
    expect((await introspect(cc.access_token)).active).toBe(true);
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, rs.client, oauth.ClientSecretBasic(rs.secret), cc.access_token, insecure),
    );
    expect(await introspect(cc.access_token)).toEqual({ active: false });
  });

  it('refuses introspection by public clients', async () => {
    const client = await registerPublicClient();
    const res = await fetch(as.introspection_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: client.client_id, token: 'x' }),
    });
    expect(res.status).toBe(401);
    expect((await res.json()).error).toBe('invalid_client');
  });
});

describe('client_credentials', () => {
  it('issues a resource-bound JWT to a confidential client (basic and post)', async () => {
    const basic = await registerConfidential({ grant_types: ['client_credentials'], scope: 'mcp:read' });
    const r = await oauth.processClientCredentialsResponse(
      as,
      basic.client,
      await oauth.clientCredentialsGrantRequest(
        as,
        basic.client,
        oauth.ClientSecretBasic(basic.secret),
        new URLSearchParams({ scope: 'mcp:read', resource: RESOURCE }),
        insecure,
      ),
    );
    expect(r.scope).toBe('mcp:read');
    // A scope beyond the client's allow-list is refused, not narrowed (RFC 6749 §5.2).
    const wider = await oauth.clientCredentialsGrantRequest(
      as,
      basic.client,
      oauth.ClientSecretBasic(basic.secret),
      new URLSearchParams({ scope: 'mcp:read mcp:write' }),
      insecure,
    );
    await expect(oauth.processClientCredentialsResponse(as, basic.client, wider)).rejects.toMatchObject({
      error: 'invalid_scope',
    });
    const claims = await oauth.validateJwtAccessToken(
      as,
      new Request(RESOURCE, { headers: { authorization: `Bearer ${r.access_token}` } }),
      RESOURCE,
      insecure,
    );
    expect(claims.sub).toBe(basic.client.client_id);
    const post = await registerConfidential({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const r2 = await oauth.processClientCredentialsResponse(
      as,
      post.client,
      await oauth.clientCredentialsGrantRequest(
        as,
        post.client,
        oauth.ClientSecretPost(post.secret),
        new URLSearchParams(),
        insecure,
      ),
    );
    expect(r2.access_token).toBeTruthy();
  });
});

async function registerConfidential(extra: Record<string, unknown>) {
  const res = await oauth.dynamicClientRegistrationRequest(
    as,
    { token_endpoint_auth_method: 'client_secret_basic', ...extra },
    insecure,
  );
  const client = await oauth.processDynamicClientRegistrationResponse(res);
  const secret = client.client_secret as string;
  return {
    client: {
      client_id: client.client_id,
      token_endpoint_auth_method: client.token_endpoint_auth_method,
    } as oauth.Client,
    secret,
  };
}
