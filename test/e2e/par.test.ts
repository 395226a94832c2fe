/**
 * Pushed Authorization Requests (RFC 9126) over HTTP, on every store: certified client libraries push (oauth4webapi
 * for a public client, openid-client for a confidential one) and finish the code flow through the real pages; a
 * request_uri is used once, even by replicas racing for it (two on PostgreSQL and Redis), and only by the client that
 * pushed it, within expires_in (an injected clock); /authorize takes the pushed parameters and nothing of its query
 * but client_id; clients and servers that require PAR refuse anything else; a push is checked as /authorize checks
 * a request, with its errors as JSON (§2.3), and client authentication as at the token endpoint.
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import * as openid from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, freePort, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT = 'http://127.0.0.1/callback';
const OTHER_REDIRECT = 'http://127.0.0.1/other';
const RESOURCE = 'https://mcp.example.com/mcp';
const REQUEST_URI = /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/;
/** A confidential static client (client_secret_basic). */
const WEB = { id: 'web-app', secret: 'web-app-secret-0123456789abcdef-0123456789' };
/** A static public client that must push its requests. */
const PAR_ONLY = 'par-only-app';

const serverConfig = (store: Partial<ConfigInput>): Partial<ConfigInput> => ({
  scopes: ['mcp:read', 'mcp:write'],
  clients: [
    {
      client_id: WEB.id,
      client_secret: WEB.secret,
      redirect_uris: [REDIRECT, OTHER_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile mcp:read mcp:write',
    },
    {
      client_id: PAR_ONLY,
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
      require_pushed_authorization_requests: true,
    },
    // Redirect URIs but no code grant: the push gets past the redirect_uri check to the client's grants.
    { client_id: 'machine', client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['client_credentials'] },
  ],
  ...store,
});

/** A second replica on the same store and issuer, on its own port. */
async function startReplica(config: Partial<ConfigInput>, issuer: string): Promise<Gatehouse> {
  const port = await freePort();
  const gatehouse = await createGatehouse(
    parseConfig({
      logLevel: 'silent',
      passwordHashing: { log2N: 14 },
      users: [ALICE],
      ...config,
      port,
      host: '127.0.0.1',
      issuer,
    }),
    { logger: createLogger('silent') },
  );
  await gatehouse.app.listen({ port, host: '127.0.0.1' });
  return gatehouse;
}

/** The base URL a listening replica answers on. */
function originOf(gatehouse: Gatehouse): string {
  const address = gatehouse.app.server.address();
  if (!address || typeof address === 'string') throw new Error('replica is not listening');
  return `http://localhost:${address.port}`;
}

/** An authorization request's parameters with a fresh PKCE pair. */
function requestParams(extra: Record<string, string> = {}) {
  const v = verifier();
  const params: Record<string, string> = {
    response_type: 'code',
    redirect_uri: REDIRECT,
    code_challenge: challenge(v),
    code_challenge_method: 'S256',
    scope: 'mcp:read',
    state: 'pushed-state',
    ...extra,
  };
  return { params, verifier: v };
}

/** A GET without following redirects: status, Location, and the page (for error pages). */
async function get(url: string) {
  const res = await fetch(url, { redirect: 'manual' });
  return {
    status: res.status,
    location: res.headers.get('location'),
    type: res.headers.get('content-type'),
    html: await res.text(),
  };
}

for (const store of E2E_STORES) {
  describe(`pushed authorization requests on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_par_${randomBytes(4).toString('hex')}`;
    /** A second server on its own isolation: every client must push, and its clock is driven by the test. */
    const strictIsolation = `gh_parx_${randomBytes(4).toString('hex')}`;
    let server: TestServer;
    let replicas: string[];
    let second: Gatehouse | undefined;
    let strict: TestServer;
    const clock = new ManualClock(Date.now());
    let as: oauth.AuthorizationServer;

    beforeAll(async () => {
      if (!(await available)) return;
      const config = serverConfig(store.config(isolation));
      server = await startServer(config);
      replicas = [server.origin];
      // Two replicas where the store is shared (memory and embedded belong to one process).
      if (store.service) {
        second = await startReplica(config, server.issuer);
        replicas.push(originOf(second));
      }
      strict = await startServer(
        serverConfig({ ...store.config(strictIsolation), pushedAuthorizationRequests: { required: true } }),
        { clock },
      );
      const issuer = new URL(server.issuer);
      as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
      );
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await second?.close();
      await server?.close();
      await strict?.close();
      await store.cleanup?.(isolation);
      await store.cleanup?.(strictIsolation);
    });

    const url = (path: string, on: TestServer = server) => on.issuer + path;
    const authorizeUrl = (params: Record<string, string>, base = url('/authorize')) => {
      const u = new URL(base);
      for (const [k, v] of Object.entries(params)) u.searchParams.append(k, v);
      return u.href;
    };
    const registerPublic = async (extra: Record<string, unknown> = {}, on: TestServer = server) => {
      const r = await postJson(url('/register', on), {
        redirect_uris: [REDIRECT, OTHER_REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        ...extra,
      });
      expect(r.status).toBe(201);
      return r.json;
    };
    const push = (params: Record<string, string>, headers: Record<string, string> = {}, on: TestServer = server) =>
      postForm(url('/par', on), params, headers);
    const expectErrorPage = (res: Awaited<ReturnType<typeof get>>, error: string) => {
      expect(res.status, res.html).toBe(400);
      expect(res.location).toBeNull();
      expect(res.type).toMatch(/^text\/html/);
      expect(res.html).toContain(`<code>${error}</code>`);
    };

    it('a public client: discovery names /par, oauth4webapi pushes, the browser uses the request_uri, the code redeems', async (t) => {
      if (!(await available)) return t.skip();
      expect(as.pushed_authorization_request_endpoint).toBe(url('/par'));
      expect(as.require_pushed_authorization_requests).toBeUndefined();
      const client = (await registerPublic()) as oauth.Client;

      const codeVerifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const nonce = oauth.generateRandomNonce();
      const pushed = await oauth.pushedAuthorizationRequest(
        as,
        client,
        oauth.None(),
        {
          redirect_uri: REDIRECT,
          response_type: 'code',
          code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: 'S256',
          scope: 'openid mcp:read',
          resource: RESOURCE,
          state,
          nonce,
        },
        insecure,
      );
      expect(pushed.status).toBe(201);
      expect(pushed.headers.get('cache-control')).toBe('no-store');
      const { request_uri, expires_in } = await oauth.processPushedAuthorizationResponse(as, client, pushed);
      expect(request_uri).toMatch(REQUEST_URI);
      expect(expires_in).toBe(60);

      const callback = await new FormBrowser().authorize(
        authorizeUrl({ client_id: client.client_id, request_uri }, as.authorization_endpoint),
        server.origin,
        ALICE,
      );
      const params = oauth.validateAuthResponse(as, client, callback, state);
      const tokens = await oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, codeVerifier, insecure),
        { expectedNonce: nonce, requireIdToken: true },
      );
      expect(tokens.scope).toBe('openid mcp:read');
      const claims = await oauth.validateJwtAccessToken(
        as,
        new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
        RESOURCE,
        insecure,
      );
      expect(claims.client_id).toBe(client.client_id);
    });

    it('a confidential client: openid-client pushes with client_secret_basic, and the code redeems', async (t) => {
      if (!(await available)) return t.skip();
      const config = await openid.discovery(
        new URL(server.issuer),
        WEB.id,
        undefined,
        openid.ClientSecretBasic(WEB.secret),
        { execute: [openid.allowInsecureRequests] },
      );
      const codeVerifier = openid.randomPKCECodeVerifier();
      const state = openid.randomState();
      const redirectTo = await openid.buildAuthorizationUrlWithPAR(config, {
        redirect_uri: REDIRECT,
        scope: 'openid profile mcp:write',
        code_challenge: await openid.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
      });
      // RFC 9126 §4: only client_id and request_uri travel through the browser.
      expect([...redirectTo.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
      const callback = await new FormBrowser().authorize(redirectTo.href, server.origin, ALICE);
      const tokens = await openid.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
      });
      expect(tokens.scope).toBe('openid profile mcp:write');
      expect(tokens.claims()?.aud).toBe(WEB.id);
    });

    it('/authorize uses the pushed parameters and nothing of its query but client_id', async (t) => {
      if (!(await available)) return t.skip();
      // A new client, so no earlier consent adds scopes to the code (incremental authorization).
      const clientId = (await registerPublic()).client_id as string;
      const { params, verifier: v } = requestParams({ scope: 'mcp:read' });
      const pushed = await push({ ...params, client_id: clientId });
      expect(pushed.status).toBe(201);
      const callback = await new FormBrowser().authorize(
        authorizeUrl({
          client_id: clientId,
          request_uri: pushed.json.request_uri as string,
          // None of these count: a pushed request is the request.
          redirect_uri: OTHER_REDIRECT,
          response_type: 'token',
          scope: 'mcp:write',
          state: 'query-state',
          code_challenge_method: 'plain',
          prompt: 'none',
        }),
        server.origin,
        ALICE,
      );
      expect(callback.origin + callback.pathname).toBe(REDIRECT);
      expect(callback.searchParams.get('state')).toBe('pushed-state');
      const tokens = await postForm(url('/token'), {
        grant_type: 'authorization_code',
        client_id: clientId,
        code: callback.searchParams.get('code')!,
        code_verifier: v,
        redirect_uri: REDIRECT,
      });
      expect(tokens.status).toBe(200);
      expect(tokens.json.scope).toBe('mcp:read');
    });

    it('a request_uri is used once: of 10 uses racing over the replicas exactly one proceeds; the rest are error pages', async (t) => {
      if (!(await available)) return t.skip();
      const clientId = (await registerPublic()).client_id as string;
      const pushed = await push({ ...requestParams().params, client_id: clientId });
      expect(pushed.status).toBe(201);
      const requestUri = pushed.json.request_uri as string;
      const uses = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          get(
            authorizeUrl(
              { client_id: clientId, request_uri: requestUri },
              `${replicas[i % replicas.length]}/authorize`,
            ),
          ),
        ),
      );
      const proceeded = uses.filter((u) => u.status === 303);
      expect(proceeded).toHaveLength(1);
      expect(proceeded[0]!.location).toMatch(/^\/interaction\//);
      for (const refused of uses.filter((u) => u.status !== 303)) expectErrorPage(refused, 'invalid_request_uri');
      // A replay later, on any replica, is refused as well.
      for (const origin of replicas)
        expectErrorPage(
          await get(authorizeUrl({ client_id: clientId, request_uri: requestUri }, `${origin}/authorize`)),
          'invalid_request_uri',
        );
    });

    it("another client's request_uri, or one this server never issued, is an error page, never a redirect", async (t) => {
      if (!(await available)) return t.skip();
      const owner = (await registerPublic()).client_id as string;
      const other = (await registerPublic()).client_id as string;
      const pushed = await push({ ...requestParams().params, client_id: owner });
      const requestUri = pushed.json.request_uri as string;
      expectErrorPage(await get(authorizeUrl({ client_id: other, request_uri: requestUri })), 'invalid_request_uri');
      // Its presentation used it up, as any presentation does (whoever holds it could also send the right client_id).
      expectErrorPage(await get(authorizeUrl({ client_id: owner, request_uri: requestUri })), 'invalid_request_uri');
      const forged = `urn:ietf:params:oauth:request_uri:${randomBytes(32).toString('base64url')}`;
      expectErrorPage(await get(authorizeUrl({ client_id: owner, request_uri: forged })), 'invalid_request_uri');
      // A request_uri that is not a pushed request's is still answered as before (no request objects by reference).
      const res = await get(
        authorizeUrl({
          ...requestParams().params,
          client_id: owner,
          request_uri: 'https://client.example.com/request.jwt',
        }),
      );
      expect(res.status).toBe(303);
      expect(new URL(res.location!).searchParams.get('error')).toBe('request_uri_not_supported');
    });

    it('a request_uri lives expires_in seconds (pushedAuthorizationRequests.requestUriTtl), by the store clock', async (t) => {
      if (!(await available)) return t.skip();
      const clientId = (await registerPublic({}, strict)).client_id as string;
      const early = await push({ ...requestParams().params, client_id: clientId }, {}, strict);
      const late = await push({ ...requestParams().params, client_id: clientId }, {}, strict);
      expect(early.json.expires_in).toBe(60);
      clock.advance(59_000);
      const inTime = await get(
        authorizeUrl({ client_id: clientId, request_uri: early.json.request_uri as string }, url('/authorize', strict)),
      );
      expect(inTime.status).toBe(303);
      expect(inTime.location).toMatch(/^\/interaction\//);
      clock.advance(1_000);
      expectErrorPage(
        await get(
          authorizeUrl(
            { client_id: clientId, request_uri: late.json.request_uri as string },
            url('/authorize', strict),
          ),
        ),
        'invalid_request_uri',
      );
    });

    it('a client that requires PAR (registered, or static) is refused at /authorize without a request_uri, and proceeds with one', async (t) => {
      if (!(await available)) return t.skip();
      const registered = await registerPublic({ require_pushed_authorization_requests: true });
      // RFC 9126 §6: the registration response returns the field.
      expect(registered.require_pushed_authorization_requests).toBe(true);
      expect((await registerPublic()).require_pushed_authorization_requests).toBeUndefined();
      for (const clientId of [registered.client_id as string, PAR_ONLY]) {
        const { params } = requestParams();
        expectErrorPage(await get(authorizeUrl({ ...params, client_id: clientId })), 'invalid_request');
        expectErrorPage(
          await get(authorizeUrl({ ...params, client_id: clientId, request_uri: 'https://client.example.com/r' })),
          'invalid_request',
        );
        const pushed = await push({ ...params, client_id: clientId });
        expect(pushed.status, JSON.stringify(pushed.json)).toBe(201);
        const res = await get(authorizeUrl({ client_id: clientId, request_uri: pushed.json.request_uri as string }));
        expect(res.status).toBe(303);
        expect(res.location).toMatch(/^\/interaction\//);
      }
      // Other clients are not affected.
      const free = (await registerPublic()).client_id as string;
      expect((await get(authorizeUrl({ ...requestParams().params, client_id: free }))).status).toBe(303);
    });

    it('required server-wide: discovery says so, and every client needs a request_uri', async (t) => {
      if (!(await available)) return t.skip();
      const doc = await (await fetch(`${strict.origin}/.well-known/oauth-authorization-server`)).json();
      expect(doc.pushed_authorization_request_endpoint).toBe(url('/par', strict));
      expect(doc.require_pushed_authorization_requests).toBe(true);
      const clientId = (await registerPublic({}, strict)).client_id as string;
      const { params } = requestParams();
      expectErrorPage(
        await get(authorizeUrl({ ...params, client_id: clientId }, url('/authorize', strict))),
        'invalid_request',
      );
      const pushed = await push({ ...params, client_id: clientId }, {}, strict);
      const res = await get(
        authorizeUrl(
          { client_id: clientId, request_uri: pushed.json.request_uri as string },
          url('/authorize', strict),
        ),
      );
      expect(res.status).toBe(303);
    });

    it('a push is checked as /authorize checks a request, and refused as JSON (RFC 9126 §2.1, §2.3)', async (t) => {
      if (!(await available)) return t.skip();
      const clientId = (await registerPublic()).client_id as string;
      const refusals: [string, Record<string, string | undefined>, string][] = [
        ['an unregistered redirect_uri', { redirect_uri: 'http://127.0.0.1/elsewhere' }, 'invalid_request'],
        ['no redirect_uri with two registered', { redirect_uri: undefined }, 'invalid_request'],
        ['PKCE plain', { code_challenge_method: 'plain' }, 'invalid_request'],
        ['an unknown scope', { scope: 'admin' }, 'invalid_scope'],
        ['a relative resource', { resource: '/mcp' }, 'invalid_target'],
        ['response_type token', { response_type: 'token' }, 'unsupported_response_type'],
        ['a request object', { request: 'eyJhbGciOiJub25lIn0.e30.' }, 'request_not_supported'],
        ['a request_uri', { request_uri: 'urn:ietf:params:oauth:request_uri:abc' }, 'invalid_request'],
      ];
      for (const [name, change, error] of refusals) {
        const params: Record<string, string> = { ...requestParams().params, client_id: clientId };
        for (const [k, v] of Object.entries(change)) {
          if (v === undefined) delete params[k];
          else params[k] = v;
        }
        const res = await push(params);
        expect(res.status, name).toBe(400);
        expect(res.headers.get('cache-control'), name).toBe('no-store');
        expect(res.json.error, name).toBe(error);
      }
      // A client without the code grant cannot push.
      const machine = await push(
        { ...requestParams().params, client_id: 'machine' },
        { authorization: basic('machine', WEB.secret) },
      );
      expect(machine.status).toBe(400);
      expect(machine.json.error).toBe('unauthorized_client');
    });

    it('client authentication as at the token endpoint: a confidential client must authenticate, a public one may not', async (t) => {
      if (!(await available)) return t.skip();
      const { params } = requestParams();
      const cases: [string, Record<string, string>, Record<string, string>, number, string?][] = [
        ['no credentials', { client_id: WEB.id }, {}, 401, 'invalid_client'],
        ['nothing at all', {}, {}, 401, 'invalid_client'],
        [
          'a wrong secret',
          { client_id: WEB.id },
          { authorization: basic(WEB.id, 'w'.repeat(40)) },
          401,
          'invalid_client',
        ],
        ['an unknown client', { client_id: 'no-such-client' }, {}, 401, 'invalid_client'],
        [
          'a public client with a secret',
          { client_id: PAR_ONLY, client_secret: 'x'.repeat(40) },
          {},
          401,
          'invalid_client',
        ],
        [
          'client_id not the Basic one',
          { client_id: PAR_ONLY },
          { authorization: basic(WEB.id, WEB.secret) },
          400,
          'invalid_request',
        ],
        ['Basic', { client_id: WEB.id }, { authorization: basic(WEB.id, WEB.secret) }, 201],
        ['client_secret_post', { client_id: WEB.id, client_secret: WEB.secret }, {}, 201],
      ];
      for (const [name, credentials, headers, status, error] of cases) {
        const res = await push({ ...params, ...credentials }, headers);
        expect(res.status, name).toBe(status);
        expect(res.json.error, name).toBe(error);
        if (status === 201) expect(res.json.request_uri, name).toMatch(REQUEST_URI);
        if (headers.authorization && status === 401)
          expect(res.headers.get('www-authenticate'), name).toMatch(/^Basic /);
      }
    });
  });
}
