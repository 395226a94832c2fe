/** An issuer with a path (`…/t`): every discovery form MCP clients try, and a full flow under the path. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oauth from 'oauth4webapi';
import { FormBrowser } from '../helpers/browser.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
let server: TestServer;

beforeAll(async () => {
  server = await startServer({}, { issuerPath: '/t' });
});
afterAll(() => server.close());

describe('issuer with a path', () => {
  it('serves metadata at the RFC 8414 path-inserted and the OIDC forms, with the exact issuer', async () => {
    for (const path of [
      '/.well-known/oauth-authorization-server/t',
      '/.well-known/openid-configuration/t',
      '/t/.well-known/openid-configuration',
    ]) {
      const res = await fetch(server.origin + path);
      expect(res.status, path).toBe(200);
      const meta = await res.json();
      expect(meta.issuer).toBe(`${server.origin}/t`);
      expect(meta.token_endpoint).toBe(`${server.origin}/t/token`);
    }
    // The root forms are not this issuer's.
    expect((await fetch(`${server.origin}/.well-known/oauth-authorization-server`)).status).toBe(404);
  });

  it('runs the code flow under the path, with both discovery algorithms', async () => {
    const issuer = new URL(server.issuer);
    const oidc = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
    );
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    expect(oidc.issuer).toBe(as.issuer);
    const client = (await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' },
        insecure,
      ),
    )) as oauth.Client;
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: 'http://127.0.0.1/cb',
      response_type: 'code',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      scope: 'openid',
      nonce: 'n-0S6_WzA2Mj',
    }).toString();
    const callback = await new FormBrowser().authorize(url.href, server.origin, ALICE);
    const params = oauth.validateAuthResponse(as, client, callback);
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.None(),
      params,
      'http://127.0.0.1/cb',
      verifier,
      insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, res, {
      expectedNonce: 'n-0S6_WzA2Mj',
      requireIdToken: true,
    });
    expect(oauth.getValidatedIdTokenClaims(tokens)!.iss).toBe(`${server.origin}/t`);
  });
});

describe('a tenant below an issuer with a path', () => {
  let below: TestServer;
  beforeAll(async () => {
    below = await startServer({ tenants: [{ id: 'acme' }] }, { issuerPath: '/t' });
  });
  afterAll(() => below.close());

  it('serves the tenant issuer <issuer>/acme in every discovery form, and its endpoints under /t/acme', async () => {
    for (const path of [
      '/.well-known/oauth-authorization-server/t/acme',
      '/.well-known/openid-configuration/t/acme',
      '/t/acme/.well-known/openid-configuration',
      '/t/acme/.well-known/oauth-authorization-server',
    ]) {
      const res = await fetch(below.origin + path);
      expect(res.status, path).toBe(200);
      const meta = await res.json();
      expect(meta.issuer).toBe(`${below.origin}/t/acme`);
      expect(meta.token_endpoint).toBe(`${below.origin}/t/acme/token`);
      expect((await fetch(meta.jwks_uri)).status).toBe(200);
    }
    // Not at the root, and not the deployment's own document.
    expect((await fetch(`${below.origin}/.well-known/oauth-authorization-server/acme`)).status).toBe(404);
    expect((await fetch(`${below.origin}/acme/token`, { method: 'POST' })).status).toBe(404);
    const own = await (await fetch(`${below.origin}/.well-known/oauth-authorization-server/t`)).json();
    expect(own.issuer).toBe(`${below.origin}/t`);
  });
});
