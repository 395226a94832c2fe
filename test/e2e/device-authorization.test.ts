/**
 * The device authorization grant (RFC 8628) over HTTP, on every store: oauth4webapi (a public CLI client) and
 * openid-client (at a tenant's issuer) ask for a device code, a browser without scripts opens verification_uri_complete,
 * types the code, signs in and approves on the normal pages, and the device's poll gets resource-bound tokens, an ID
 * token and a refresh token that refreshes. Denial is access_denied; polling within the interval is slow_down and the
 * interval grows by 5 s; expiry (an injected clock) is expired_token; of polls racing on two replicas (PostgreSQL,
 * Redis) exactly one is answered with tokens; another client's device code is invalid_grant; a malformed, unknown or
 * used user code is "not recognised", and the user-code page is limited per browser and per address. Also: the grant
 * switched off, dynamic registration of it, and a device approved after an upstream (OpenID provider) sign-in.
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import * as oauth from 'oauth4webapi';
import * as openid from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { upstreamUserId } from '../../src/authorization/upstream-users.js';
import { FormBrowser } from '../helpers/browser.js';
import {
  ALICE as UPSTREAM_ALICE,
  signInUpstream,
  startOidcUpstream,
  type OidcUpstream,
} from '../helpers/oidc-upstream.js';
import { basic, postForm, postJson } from '../helpers/oauth.js';
import { ALICE, freePort, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const RESOURCE = 'https://mcp.example.com/mcp';
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;
/** A static public client: a CLI. */
const CLI = 'device-cli';
/** A static confidential client: a headless agent. */
const AGENT = { id: 'device-agent', secret: 'device-agent-secret-0123456789abcdef-0123' };
/** A code-flow client that did not register the device grant. */
const WEB = 'web-only';
const DANA = { username: 'dana', password: 'dana signs in at acme only' };
const WINDOW_SECONDS = 300;

const serverConfig = (store: Partial<ConfigInput>): Partial<ConfigInput> => ({
  scopes: ['mcp:read', 'mcp:write'],
  clients: [
    {
      client_id: CLI,
      client_name: 'Acme CLI',
      token_endpoint_auth_method: 'none',
      grant_types: [DEVICE_GRANT, 'refresh_token'],
    },
    {
      client_id: AGENT.id,
      client_secret: AGENT.secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [DEVICE_GRANT],
    },
    { client_id: WEB, redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none' },
  ],
  deviceAuthorization: { userCodeAttempts: { perBrowser: 4, perIp: 8, windowSeconds: WINDOW_SECONDS } },
  tenants: [
    {
      id: 'acme',
      scopes: ['mcp:read'],
      users: [DANA],
      clients: [{ client_id: CLI, token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'] }],
      // openid-client waits the interval before each poll: short here.
      deviceAuthorization: { intervalSeconds: 1 },
    },
  ],
  ...store,
});

/** A second replica on the same store, issuer and clock, on its own port. */
async function startReplica(config: Partial<ConfigInput>, issuer: string, clock: ManualClock): Promise<Gatehouse> {
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
    { logger: createLogger('silent'), clock },
  );
  await gatehouse.app.listen({ port, host: '127.0.0.1' });
  return gatehouse;
}

function originOf(gatehouse: Gatehouse): string {
  const address = gatehouse.app.server.address();
  if (!address || typeof address === 'string') throw new Error('replica is not listening');
  return `http://localhost:${address.port}`;
}

/**
 * The user's side: opens `url` (verification_uri or _complete), types `typed` (default: what the form holds), signs in
 * as `user` if asked, and decides on the consent page. Returns every page seen, the last one the result.
 */
async function userApproves(
  browser: FormBrowser,
  url: string,
  origin: string,
  user: { username: string; password: string },
  decision: 'approve' | 'deny' = 'approve',
  typed?: string,
): Promise<{ pages: string[]; last: string; status: number }> {
  let step = await browser.follow(url, origin);
  const pages: string[] = [];
  let html = await step.res.text();
  pages.push(html);
  const prefilled = /name="user_code"[^>]*value="([^"]*)"/.exec(html)?.[1] ?? '';
  step = await browser.submit(html, step.url, origin, { user_code: typed ?? prefilled });
  for (let i = 0; i < 4; i++) {
    html = await step.res.text();
    pages.push(html);
    if (html.includes('name="password"')) {
      step = await browser.submit(html, step.url, origin, { username: user.username, password: user.password });
    } else if (html.includes('name="decision"')) {
      step = await browser.submit(html, step.url, origin, { decision });
    } else {
      return { pages, last: html, status: step.res.status };
    }
  }
  throw new Error('the device flow did not end');
}

/** Types `typed` into the user-code form of `browser` at `issuer` and returns the answer (not followed). */
async function typeCode(browser: FormBrowser, issuer: string, typed: string) {
  const form = await browser.request(`${issuer}/device`);
  const { action, fields } = FormBrowser.form(await form.text(), `${issuer}/device`);
  const res = await browser.request(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...fields, user_code: typed }).toString(),
  });
  return { status: res.status, location: res.headers.get('location'), html: await res.text(), headers: res.headers };
}

const NOT_RECOGNISED = 'That code was not recognised';

for (const store of E2E_STORES) {
  describe(`device authorization grant on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_dev_${randomBytes(4).toString('hex')}`;
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    let second: Gatehouse | undefined;
    let replicas: string[];
    let as: oauth.AuthorizationServer;
    const cli: oauth.Client = { client_id: CLI };

    beforeAll(async () => {
      if (!(await available)) return;
      const config = serverConfig(store.config(isolation));
      server = await startServer(config, { clock });
      replicas = [server.origin];
      if (store.service) {
        second = await startReplica(config, server.issuer, clock);
        replicas.push(originOf(second));
      }
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
      await store.cleanup?.(isolation);
    });

    const url = (path: string) => server.issuer + path;
    const deviceRequest = (params: Record<string, string | string[]>, headers: Record<string, string> = {}) =>
      postForm(url('/device_authorization'), params, headers);
    const poll = (deviceCode: string, clientId = CLI, on = server.origin, headers: Record<string, string> = {}) =>
      postForm(
        `${on}/token`,
        { grant_type: DEVICE_GRANT, device_code: deviceCode, ...(clientId ? { client_id: clientId } : {}) },
        headers,
      );
    /** A fresh device request of the CLI, the clock then one interval on (so the next poll keeps the interval). */
    const cliRequest = async (scope = 'mcp:read') => {
      const r = await deviceRequest({ client_id: CLI, scope });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      return r.json as { device_code: string; user_code: string; verification_uri_complete: string; interval: number };
    };

    it('discovery advertises the endpoint and the grant type', async (t) => {
      if (!(await available)) return t.skip();
      expect(as.device_authorization_endpoint).toBe(url('/device_authorization'));
      expect(as.grant_types_supported).toContain(DEVICE_GRANT);
    });

    it('oauth4webapi: device request, the user approves on the pages, the poll gets tokens, refresh works', async (t) => {
      if (!(await available)) return t.skip();
      const response = await oauth.processDeviceAuthorizationResponse(
        as,
        cli,
        await oauth.deviceAuthorizationRequest(
          as,
          cli,
          oauth.None(),
          { scope: 'openid profile offline_access mcp:read', resource: RESOURCE },
          insecure,
        ),
      );
      expect(response.user_code).toMatch(USER_CODE);
      expect(response.verification_uri).toBe(url('/device'));
      expect(response.verification_uri_complete).toBe(
        `${url('/device')}?user_code=${encodeURIComponent(response.user_code)}`,
      );
      expect(response.expires_in).toBe(600);
      expect(response.interval).toBe(5);
      expect(response.device_code).toMatch(/^[A-Za-z0-9_-]{43}$/);

      // Before the user decides: authorization_pending.
      await expect(
        oauth.processDeviceCodeResponse(
          as,
          cli,
          await oauth.deviceCodeGrantRequest(as, cli, oauth.None(), response.device_code, insecure),
        ),
      ).rejects.toMatchObject({ error: 'authorization_pending' });

      const browser = new FormBrowser();
      const flow = await userApproves(browser, response.verification_uri_complete!, server.origin, ALICE);
      // The form was prefilled from verification_uri_complete; the consent page names the client and the scopes,
      // and says it authorizes a device.
      expect(flow.pages[0]).toContain(`value="${response.user_code}"`);
      expect(flow.pages[0]).toContain('id="device-phishing"');
      const consent = flow.pages.find((p) => p.includes('name="decision"'))!;
      expect(consent).toContain('id="device-notice"');
      expect(consent).toContain('Acme CLI');
      expect(consent).toContain('<code>mcp:read</code>');
      expect(consent).toContain(RESOURCE);
      expect(flow.last).toContain('data-result="approved"');

      clock.advance(5_000);
      const tokens = await oauth.processDeviceCodeResponse(
        as,
        cli,
        await oauth.deviceCodeGrantRequest(as, cli, oauth.None(), response.device_code, insecure),
      );
      expect(tokens.id_token).toBeTruthy();
      expect(tokens.scope).toBe('openid profile offline_access mcp:read');
      expect(tokens.refresh_token).toBeTruthy();
      expect(oauth.getValidatedIdTokenClaims(tokens)?.preferred_username).toBe('alice');
      const claims = await oauth.validateJwtAccessToken(
        as,
        new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
        RESOURCE,
        insecure,
      );
      expect(claims.client_id).toBe(CLI);
      expect(claims.scope).toBe('openid profile offline_access mcp:read');

      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        cli,
        await oauth.refreshTokenGrantRequest(as, cli, oauth.None(), tokens.refresh_token!, insecure),
      );
      expect(refreshed.access_token).toBeTruthy();
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);

      // Redeemed once: the same device code is now unknown.
      clock.advance(5_000);
      const again = await poll(response.device_code);
      expect(again.status).toBe(400);
      expect(again.json.error).toBe('invalid_grant');
    });

    it("with a DPoP proof the device's tokens are bound to its key, and so are the public client's refreshes", async (t) => {
      if (!(await available)) return t.skip();
      const response = await cliRequest('offline_access mcp:read');
      await userApproves(new FormBrowser(), response.verification_uri_complete, server.origin, ALICE);
      clock.advance(5_000);
      const key = await oauth.generateKeyPair('ES256');
      const dpop = oauth.DPoP(cli, key);
      const tokens = await oauth.processDeviceCodeResponse(
        as,
        cli,
        await oauth.deviceCodeGrantRequest(as, cli, oauth.None(), response.device_code, { DPoP: dpop, ...insecure }),
      );
      expect(tokens.token_type).toBe('dpop');
      const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
      expect(claims.cnf).toEqual({ jkt: await calculateJwkThumbprint(await exportJWK(key.publicKey)) });
      // The refresh token is bound too: without a proof, or with another key, it is refused and not spent.
      const bare = await postForm(`${server.origin}/token`, {
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token!,
        client_id: CLI,
      });
      expect([bare.status, bare.json.error]).toEqual([400, 'invalid_grant']);
      const other = oauth.DPoP(cli, await oauth.generateKeyPair('ES256'));
      await expect(
        oauth.processRefreshTokenResponse(
          as,
          cli,
          await oauth.refreshTokenGrantRequest(as, cli, oauth.None(), tokens.refresh_token!, {
            DPoP: other,
            ...insecure,
          }),
        ),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        cli,
        await oauth.refreshTokenGrantRequest(as, cli, oauth.None(), tokens.refresh_token!, { DPoP: dpop, ...insecure }),
      );
      expect(refreshed.token_type).toBe('dpop');
    });

    it('a confidential client authenticates at both endpoints; the code typed in lower case with spaces works', async (t) => {
      if (!(await available)) return t.skip();
      const auth = { authorization: basic(AGENT.id, AGENT.secret) };
      const r = await deviceRequest({ scope: 'mcp:write' }, auth);
      expect(r.status).toBe(200);
      const { device_code, user_code } = r.json as { device_code: string; user_code: string };
      const typed = ` ${user_code.slice(0, 4).toLowerCase()} ${user_code.slice(5).toLowerCase()} `;
      const flow = await userApproves(new FormBrowser(), url('/device'), server.origin, ALICE, 'approve', typed);
      expect(flow.last).toContain('data-result="approved"');
      clock.advance(5_000);
      // Without its secret the agent is not authenticated.
      const unauthenticated = await poll(device_code, AGENT.id);
      expect(unauthenticated.status).toBe(401);
      expect(unauthenticated.json.error).toBe('invalid_client');
      const tokens = await poll(device_code, '', server.origin, auth);
      expect(tokens.status, JSON.stringify(tokens.json)).toBe(200);
      expect(tokens.json.scope).toBe('mcp:write');
      expect(tokens.json.refresh_token).toBeUndefined();
      expect(tokens.json.id_token).toBeUndefined();
    });

    it('the user denies: the poll gets access_denied, and keeps getting it', async (t) => {
      if (!(await available)) return t.skip();
      const { device_code, verification_uri_complete } = await cliRequest();
      const flow = await userApproves(new FormBrowser(), verification_uri_complete, server.origin, ALICE, 'deny');
      expect(flow.last).toContain('data-result="denied"');
      clock.advance(5_000);
      const denied = await poll(device_code);
      expect(denied.status).toBe(400);
      expect(denied.json.error).toBe('access_denied');
      clock.advance(5_000);
      expect((await poll(device_code)).json.error).toBe('access_denied');
    });

    it('polling within the interval is slow_down, and the interval then grows by 5 seconds', async (t) => {
      if (!(await available)) return t.skip();
      const { device_code } = await cliRequest();
      expect((await poll(device_code)).json.error).toBe('authorization_pending');
      const fast = await poll(device_code);
      expect(fast.status).toBe(400);
      expect(fast.json.error).toBe('slow_down');
      clock.advance(5_000);
      // The first interval kept: pending; the next one is now 10 s.
      expect((await poll(device_code)).json.error).toBe('authorization_pending');
      clock.advance(5_000);
      expect((await poll(device_code)).json.error).toBe('slow_down');
      clock.advance(5_100);
      expect((await poll(device_code)).json.error).toBe('authorization_pending');
    });

    it('an expired device code is expired_token, and its user code is no longer recognised', async (t) => {
      if (!(await available)) return t.skip();
      const { device_code, user_code } = await cliRequest();
      clock.advance(601_000);
      const expired = await poll(device_code);
      expect(expired.status).toBe(400);
      expect(expired.json.error).toBe('expired_token');
      const typed = await typeCode(new FormBrowser(), server.issuer, user_code);
      expect(typed.status).toBe(400);
      expect(typed.html).toContain(NOT_RECOGNISED);
    });

    it('of polls racing on every replica, exactly one gets the tokens', async (t) => {
      if (!(await available)) return t.skip();
      const { device_code, verification_uri_complete } = await cliRequest('offline_access mcp:read');
      await userApproves(new FormBrowser(), verification_uri_complete, server.origin, ALICE);
      clock.advance(5_000);
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => poll(device_code, CLI, replicas[i % replicas.length])),
      );
      const won = answers.filter((a) => a.status === 200);
      expect(won).toHaveLength(1);
      expect(won[0]!.json.refresh_token).toBeTruthy();
      for (const lost of answers.filter((a) => a.status !== 200)) {
        expect(lost.status).toBe(400);
        expect(['slow_down', 'invalid_grant']).toContain(lost.json.error);
      }
      clock.advance(15_000);
      for (const origin of replicas) expect((await poll(device_code, CLI, origin)).json.error).toBe('invalid_grant');
    });

    it("another client's device code is invalid_grant and does not spend it; unknown codes too", async (t) => {
      if (!(await available)) return t.skip();
      const { device_code, verification_uri_complete } = await cliRequest();
      const foreign = await poll(device_code, '', server.origin, { authorization: basic(AGENT.id, AGENT.secret) });
      expect(foreign.status).toBe(400);
      expect(foreign.json.error).toBe('invalid_grant');
      expect((await poll('not-a-device-code')).json.error).toBe('invalid_grant');
      await userApproves(new FormBrowser(), verification_uri_complete, server.origin, ALICE);
      clock.advance(5_000);
      expect((await poll(device_code)).status).toBe(200);
    });

    it('dynamic registration gives the grant to public and confidential clients without redirect URIs', async (t) => {
      if (!(await available)) return t.skip();
      const pub = await postJson(url('/register'), {
        client_name: 'Registered CLI',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_GRANT, 'refresh_token'],
      });
      expect(pub.status, JSON.stringify(pub.json)).toBe(201);
      expect(pub.json.grant_types).toEqual([DEVICE_GRANT, 'refresh_token']);
      const conf = await postJson(url('/register'), {
        client_name: 'Registered agent',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [DEVICE_GRANT],
      });
      expect(conf.status, JSON.stringify(conf.json)).toBe(201);
      const r = await deviceRequest(
        { scope: 'mcp:read' },
        { authorization: basic(conf.json.client_id as string, conf.json.client_secret as string) },
      );
      expect(r.status).toBe(200);
      expect((await poll(r.json.device_code as string, pub.json.client_id as string)).json.error).toBe('invalid_grant');
    });

    it('the device authorization endpoint refuses as the token endpoint and /authorize would', async (t) => {
      if (!(await available)) return t.skip();
      const none = await deviceRequest({ scope: 'mcp:read' });
      expect(none.status).toBe(401);
      expect(none.json.error).toBe('invalid_client');
      const wrongSecret = await deviceRequest({}, { authorization: basic(AGENT.id, 'wrong') });
      expect(wrongSecret.json.error).toBe('invalid_client');
      const web = await deviceRequest({ client_id: WEB });
      expect(web.status).toBe(400);
      expect(web.json.error).toBe('unauthorized_client');
      const scope = await deviceRequest({ client_id: CLI, scope: 'mcp:admin' });
      expect(scope.status).toBe(400);
      expect(scope.json.error).toBe('invalid_scope');
      const resource = await deviceRequest({ client_id: CLI, resource: 'not a uri' });
      expect(resource.status).toBe(400);
      expect(resource.json.error).toBe('invalid_target');
      const twice = await deviceRequest({ client_id: CLI, scope: ['mcp:read', 'mcp:write'] });
      expect(twice.json.error).toBe('invalid_request');
      // A device grant the client has not registered is unauthorized_client at the token endpoint too.
      const token = await poll('whatever', WEB);
      expect(token.json.error).toBe('unauthorized_client');
    });

    it('a garbled, unknown or used user code is "not recognised"; the code is used once', async (t) => {
      if (!(await available)) return t.skip();
      clock.advance(WINDOW_SECONDS * 1000); // a fresh attempt window
      const { user_code } = await cliRequest();
      for (const typed of ['AEIO-UAEI', '12345678', 'BCDF-GHJ', 'BCDF-GHJK-L']) {
        const r = await typeCode(new FormBrowser(), server.issuer, typed);
        expect(r.status, typed).toBe(400);
        expect(r.html).toContain(NOT_RECOGNISED);
      }
      clock.advance(WINDOW_SECONDS * 1000);
      const unknown = await typeCode(new FormBrowser(), server.issuer, 'BCDF-GHJK');
      expect(unknown.status).toBe(400);
      expect(unknown.html).toContain(NOT_RECOGNISED);
      const first = await typeCode(new FormBrowser(), server.issuer, user_code);
      expect(first.status).toBe(303);
      expect(first.location).toMatch(/\/interaction\//);
      const used = await typeCode(new FormBrowser(), server.issuer, user_code);
      expect(used.status).toBe(400);
      expect(used.html).toContain(NOT_RECOGNISED);
      // A form without this browser's CSRF token is refused.
      const forged = await postForm(url('/device'), { user_code, csrf: 'forged' });
      expect(forged.status).toBe(400);
    });

    it('the user-code page is limited per browser and per address (429 with Retry-After, nothing looked up)', async (t) => {
      if (!(await available)) return t.skip();
      clock.advance(WINDOW_SECONDS * 1000); // a fresh window
      const { user_code } = await cliRequest();
      const a = new FormBrowser();
      for (let i = 0; i < 4; i++) expect((await typeCode(a, server.issuer, 'BCDF-BCDF')).status).toBe(400);
      const limited = await typeCode(a, server.issuer, user_code);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      // Another browser from the same address: three more, then the address is over its limit (8).
      const b = new FormBrowser();
      for (let i = 0; i < 3; i++) expect((await typeCode(b, server.issuer, 'BCDF-BCDF')).status).toBe(400);
      expect((await typeCode(b, server.issuer, user_code)).status).toBe(429);
      // The next window: the code was never looked up, so it still works.
      clock.advance(WINDOW_SECONDS * 1000);
      const later = await typeCode(new FormBrowser(), server.issuer, user_code);
      expect(later.status).toBe(303);
    });

    it("openid-client at a tenant's issuer: the tenant's pages and codes, the tenant's user", async (t) => {
      if (!(await available)) return t.skip();
      const tenant = `${server.issuer}/acme`;
      const config = await openid.discovery(new URL(tenant), CLI, undefined, openid.None(), {
        execute: [openid.allowInsecureRequests],
      });
      expect(config.serverMetadata().device_authorization_endpoint).toBe(`${tenant}/device_authorization`);
      const response = await openid.initiateDeviceAuthorization(config, { scope: 'offline_access mcp:read' });
      expect(response.verification_uri).toBe(`${tenant}/device`);
      expect(response.interval).toBe(1);
      // The deployment does not know the tenant's code.
      const elsewhere = await typeCode(new FormBrowser(), server.issuer, response.user_code);
      expect(elsewhere.html).toContain(NOT_RECOGNISED);
      const flow = await userApproves(new FormBrowser(), response.verification_uri_complete!, server.origin, DANA);
      expect(flow.last).toContain('data-result="approved"');
      const tokens = await openid.pollDeviceAuthorizationGrant(config, response);
      expect(tokens.scope).toBe('offline_access mcp:read');
      const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
      expect(claims.iss).toBe(tenant);
      const refreshed = await openid.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.access_token).toBeTruthy();
    });
  });
}

describe('device authorization switched off (deviceAuthorization.enabled: false)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ deviceAuthorization: { enabled: false } });
  });
  afterAll(() => server?.close());

  it('is not advertised, its endpoints are 404, the grant type is unsupported and cannot be registered', async () => {
    const md = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(md.device_authorization_endpoint).toBeUndefined();
    expect(md.grant_types_supported).not.toContain(DEVICE_GRANT);
    expect((await postForm(`${server.issuer}/device_authorization`, { client_id: 'x' })).status).toBe(404);
    expect((await fetch(`${server.issuer}/device`)).status).toBe(404);
    const token = await postForm(`${server.issuer}/token`, { grant_type: DEVICE_GRANT, device_code: 'x' });
    expect(token.json.error).toBe('unsupported_grant_type');
    const reg = await postJson(`${server.issuer}/register`, {
      token_endpoint_auth_method: 'none',
      grant_types: [DEVICE_GRANT],
    });
    expect(reg.status).toBe(400);
    expect(reg.json.error).toBe('invalid_client_metadata');
  });
});

describe('a device approved after an upstream sign-in (one upstream, no local users)', () => {
  let upstream: OidcUpstream;
  let server: TestServer;
  beforeAll(async () => {
    const port = await freePort();
    upstream = await startOidcUpstream({ redirectUris: [`http://localhost:${port}/upstream/callback`] });
    server = await startServer(
      {
        users: [],
        encryptionKey: randomBytes(32).toString('base64'),
        upstreams: [
          {
            id: 'corp',
            name: 'Corp',
            type: 'oidc',
            issuer: upstream.issuer,
            clientId: upstream.clientId,
            clientSecret: upstream.clientSecret,
            scopes: ['openid', 'email', 'profile'],
          },
        ],
        clients: [{ client_id: CLI, token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'] }],
      },
      { port },
    );
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await upstream?.close();
  });

  it('the code goes to the upstream, back to the device consent, and the device gets tokens for the mapped user', async () => {
    const r = await postForm(`${server.issuer}/device_authorization`, {
      client_id: CLI,
      scope: 'openid offline_access',
    });
    expect(r.status).toBe(200);
    const browser = new FormBrowser();
    const form = await browser.follow(r.json.verification_uri_complete as string, server.origin);
    const entered = await browser.submit(await form.res.text(), form.url, server.origin, {
      user_code: r.json.user_code as string,
    });
    expect(entered.callback?.startsWith(upstream.issuer)).toBe(true);
    const back = await signInUpstream(entered.callback!, { browser });
    expect(back.pathname).toBe('/upstream/callback');
    const consent = await browser.follow(back.href, server.origin);
    const html = await consent.res.text();
    expect(html).toContain('id="device-notice"');
    const done = await browser.submit(html, consent.url, server.origin, { decision: 'approve' });
    expect(await done.res.text()).toContain('data-result="approved"');
    const tokens = await postForm(`${server.issuer}/token`, {
      grant_type: DEVICE_GRANT,
      client_id: CLI,
      device_code: r.json.device_code as string,
    });
    expect(tokens.status, JSON.stringify(tokens.json)).toBe(200);
    const claims = JSON.parse(Buffer.from((tokens.json.access_token as string).split('.')[1]!, 'base64url').toString());
    expect(claims.sub).toBe(upstreamUserId(upstream.issuer, UPSTREAM_ALICE.sub, undefined));
    expect(tokens.json.refresh_token).toBeTruthy();
  });
});

describe('rateLimits.deviceAuthorization', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      clients: [
        { client_id: CLI, token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT] },
        { client_id: 'other-cli', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT] },
      ],
      rateLimits: { deviceAuthorization: { perClient: 2, perIp: 5, windowSeconds: 3600 } },
    });
  });
  afterAll(() => server?.close());

  it('limits requests per authenticated client, then per address: 429 with Retry-After', async () => {
    const ask = (clientId: string) => postForm(`${server.issuer}/device_authorization`, { client_id: clientId });
    expect((await ask(CLI)).status).toBe(200);
    expect((await ask(CLI)).status).toBe(200);
    const limited = await ask(CLI);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await ask('other-cli')).status).toBe(200);
    expect((await ask('other-cli')).status).toBe(200);
    // Five from this address so far: the sixth is refused before any client is looked at.
    const address = await ask('no-such-client');
    expect(address.status).toBe(429);
  });
});
