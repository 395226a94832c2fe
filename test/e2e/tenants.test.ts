/**
 * Tenants end to end, on every store: discovery in each form MCP clients try, and the isolation matrix: a token,
 * code, refresh token, registration access token, session cookie or consent of tenant A refused at tenant B; one
 * username, two subjects; one tenant's login throttle leaves the other alone; tenants created, changed and deleted at
 * run time through the admin API, deletion leaving nothing in the store.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oauth from 'oauth4webapi';
import { FormBrowser } from '../helpers/browser.js';
import { authorizeThroughPages, basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const ALICE_A = { username: 'alice', password: 'alice at tenant a, long enough', name: 'Alice A' };
const ALICE_B = { username: 'alice', password: 'alice at tenant b, also long', name: 'Alice B' };
const insecure = { [oauth.allowInsecureRequests]: true } as const;

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
const admin = (init: RequestInit = {}) => ({
  ...init,
  headers: {
    authorization: `Bearer ${ADMIN_TOKEN}`,
    ...(init.body !== undefined && { 'content-type': 'application/json' }),
  },
});

for (const store of E2E_STORES) {
  describe(`tenants (${store.kind})`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_ten_${randomBytes(4).toString('hex')}`;
    let server: TestServer;
    const at = (tenant: string) => ({ issuer: `${server.origin}/${tenant}`, origin: server.origin });
    /** An authorization request of `clientId` at `tenant` (PKCE S256, a verifier nobody keeps). */
    const authorizeUrl = (tenant: string, clientId: string, extra: Record<string, string> = {}) => {
      const u = new URL(`${at(tenant).issuer}/authorize`);
      u.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: challenge(verifier()),
        code_challenge_method: 'S256',
        ...extra,
      }).toString();
      return u.href;
    };

    /** Registers a client at `tenant`: public (code flow) or confidential (client_secret_basic). */
    const register = async (tenant: string, confidential = false) => {
      const res = await postJson(`${at(tenant).issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: confidential ? 'client_secret_basic' : 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        scope: 'openid offline_access',
      });
      expect(res.status).toBe(201);
      return res.json as {
        client_id: string;
        client_secret?: string;
        registration_access_token: string;
        registration_client_uri: string;
      };
    };

    /** A code for `clientId` at `tenant`, through the real pages, as `user`. */
    const codeAt = async (tenant: string, clientId: string, user: { username: string; password: string }) => {
      const { callback, verifier: v } = await authorizeThroughPages(at(tenant), clientId, REDIRECT, user, {
        scope: 'openid offline_access',
      });
      return { code: callback.searchParams.get('code')!, verifier: v, iss: callback.searchParams.get('iss') };
    };

    const redeem = (tenant: string, clientId: string, code: string, v: string, auth?: string) =>
      postForm(
        `${at(tenant).issuer}/token`,
        { grant_type: 'authorization_code', client_id: clientId, code, code_verifier: v, redirect_uri: REDIRECT },
        auth ? { authorization: auth } : {},
      );

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer({
        ...store.config(isolation),
        users: [],
        adminToken: ADMIN_TOKEN,
        tenantRefreshSeconds: 1,
        loginRateLimit: { maxFailuresPerUsername: 3, maxFailuresPerIp: 0 },
        tenants: [
          { id: 'a', users: [ALICE_A], branding: { name: 'Tenant A Inc.', primaryColor: '#aa0000' } },
          { id: 'b', users: [ALICE_B] },
        ],
      });
    });
    afterAll(async () => {
      await server?.close();
      await store.cleanup?.(isolation);
    });

    it('serves each tenant its own metadata in every discovery form, endpoints under its path', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const kids: string[][] = [];
      for (const tenant of ['a', 'b']) {
        for (const path of [
          `/.well-known/oauth-authorization-server/${tenant}`,
          `/.well-known/openid-configuration/${tenant}`,
          `/${tenant}/.well-known/openid-configuration`,
          `/${tenant}/.well-known/oauth-authorization-server`,
        ]) {
          const res = await fetch(server.origin + path);
          expect(res.status, path).toBe(200);
          const meta = await res.json();
          expect(meta.issuer).toBe(`${server.origin}/${tenant}`);
          for (const field of ['authorization_endpoint', 'token_endpoint', 'registration_endpoint', 'jwks_uri']) {
            expect(meta[field]).toMatch(new RegExp(`^${server.origin}/${tenant}/`));
          }
        }
        // Both discovery algorithms of a certified client agree.
        const issuer = new URL(at(tenant).issuer);
        for (const algorithm of ['oidc', 'oauth2'] as const) {
          const as = await oauth.processDiscoveryResponse(
            issuer,
            await oauth.discoveryRequest(issuer, { algorithm, ...insecure }),
          );
          expect(as.issuer).toBe(issuer.href.replace(/\/$/, ''));
        }
        const meta = await (await fetch(`${server.origin}/${tenant}/.well-known/openid-configuration`)).json();
        const jwks = await (await fetch(meta.jwks_uri)).json();
        kids.push(jwks.keys.map((k: { kid: string }) => k.kid));
      }
      // Own signing keys: no kid in common.
      expect(kids[0]!.filter((kid) => kids[1]!.includes(kid))).toEqual([]);
      // The deployment's own issuer keeps working, and an unknown tenant is no issuer.
      expect((await (await fetch(`${server.origin}/.well-known/oauth-authorization-server`)).json()).issuer).toBe(
        server.origin,
      );
      for (const path of [
        '/.well-known/oauth-authorization-server/zz',
        '/zz/token',
        '/zz/.well-known/openid-configuration',
      ]) {
        expect((await fetch(server.origin + path)).status, path).toBe(404);
      }
    });

    it('refuses at B every credential of A: code, access token, refresh token, registration token, client', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const clientA = await register('a');
      const clientB = await register('b', true);
      const authB = basic(clientB.client_id, clientB.client_secret!);

      // A client of A is unknown at B: at /authorize, at the token endpoint and at its registration URI.
      const authorizeAtB = authorizeUrl('b', clientA.client_id);
      const refusedAuthorize = await fetch(authorizeAtB, { redirect: 'manual' });
      expect(refusedAuthorize.status).toBe(400);
      expect(refusedAuthorize.headers.get('location')).toBeNull();
      const rat = await fetch(`${at('b').issuer}/register/${clientA.client_id}`, {
        headers: { authorization: `Bearer ${clientA.registration_access_token}` },
      });
      expect(rat.status).toBe(401);
      expect(clientA.registration_client_uri.startsWith(`${at('a').issuer}/register/`)).toBe(true);

      const { code, verifier: v, iss } = await codeAt('a', clientA.client_id, ALICE_A);
      expect(iss).toBe(at('a').issuer);
      // A's code at B: A's client is unknown there; with B's own client the code is not B's.
      const asPublic = await redeem('b', clientA.client_id, code, v);
      expect(asPublic.status).toBe(401);
      expect(asPublic.json.error).toBe('invalid_client');
      const asB = await redeem('b', clientB.client_id, code, v, authB);
      expect(asB.status).toBe(400);
      expect(asB.json.error).toBe('invalid_grant');

      const tokens = await redeem('a', clientA.client_id, code, v);
      expect(tokens.status).toBe(200);
      const { access_token, refresh_token, id_token } = tokens.json as Record<string, string>;
      expect(claims(access_token!).iss).toBe(at('a').issuer);
      expect(claims(id_token!).iss).toBe(at('a').issuer);

      // The access token: inactive at B's introspection, 401 at B's userinfo; active at A's.
      const introspectB = await postForm(
        `${at('b').issuer}/introspect`,
        { token: access_token! },
        { authorization: authB },
      );
      expect(introspectB.status).toBe(200);
      expect(introspectB.json).toEqual({ active: false });
      const userinfoB = await fetch(`${at('b').issuer}/userinfo`, {
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(userinfoB.status).toBe(401);
      const userinfoA = await fetch(`${at('a').issuer}/userinfo`, {
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(userinfoA.status).toBe(200);
      expect((await userinfoA.json()).sub).toBe(claims(id_token!).sub);

      // The refresh token: invalid_grant at B, revocation at B does nothing, it still works at A.
      const refreshAtB = await postForm(
        `${at('b').issuer}/token`,
        { grant_type: 'refresh_token', refresh_token: refresh_token! },
        { authorization: authB },
      );
      expect(refreshAtB.status).toBe(400);
      expect(refreshAtB.json.error).toBe('invalid_grant');
      const revokeAtB = await postForm(
        `${at('b').issuer}/revoke`,
        { token: refresh_token!, token_type_hint: 'refresh_token' },
        { authorization: authB },
      );
      expect(revokeAtB.status).toBe(200);
      const revokeAccessAtB = await postForm(
        `${at('b').issuer}/revoke`,
        { token: access_token! },
        { authorization: authB },
      );
      expect(revokeAccessAtB.status).toBe(200);
      const stillActive = await fetch(`${at('a').issuer}/userinfo`, {
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(stillActive.status).toBe(200);
      const refreshed = await postForm(`${at('a').issuer}/token`, {
        grant_type: 'refresh_token',
        refresh_token: refresh_token!,
        client_id: clientA.client_id,
      });
      expect(refreshed.status).toBe(200);

      // The deployment's own issuer knows none of it.
      const atRoot = await fetch(`${server.origin}/userinfo`, { headers: { authorization: `Bearer ${access_token}` } });
      expect(atRoot.status).toBe(401);
    });

    it('keeps one username as two subjects, and a browser signed in at A is not signed in at B', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const clientA = await register('a');
      const clientB = await register('b');
      const browser = new FormBrowser();
      const start = (tenant: string, clientId: string) => authorizeUrl(tenant, clientId, { scope: 'openid' });
      // Signing in at A: its cookies are A's by path and by name.
      const first = await browser.request(start('a', clientA.client_id));
      expect(first.status).toBe(303);
      const cookies = first.headers.getSetCookie();
      expect(cookies.some((c) => /^gatehouse_csrf-a=.*Path=\/a(;|$)/.test(c))).toBe(true);
      const signedInAtA = await browser.authorize(start('a', clientA.client_id), server.origin, ALICE_A);
      expect(signedInAtA.searchParams.get('code')).toBeTruthy();
      // The same browser (sending every cookie it holds, whatever the path) meets B's sign-in form: A's password
      // does not open B, B's does.
      const atB = await browser.follow(start('b', clientB.client_id), server.origin);
      const pageB = await atB.res.text();
      expect(pageB).toContain('name="password"');
      expect(pageB).not.toContain('Tenant A Inc.');
      const wrong = await browser.submit(pageB, atB.url, server.origin, {
        username: 'alice',
        password: ALICE_A.password,
      });
      expect(await wrong.res.text()).toContain('name="password"');

      const a = await codeAt('a', clientA.client_id, ALICE_A);
      const b = await codeAt('b', clientB.client_id, ALICE_B);
      const subA = claims((await redeem('a', clientA.client_id, a.code, a.verifier)).json.id_token as string).sub;
      const subB = claims((await redeem('b', clientB.client_id, b.code, b.verifier)).json.id_token as string).sub;
      expect(subA).not.toBe(subB);
    });

    it("shows each tenant's branding on its own pages only", async (ctx) => {
      if (!(await available)) return ctx.skip();
      const clientA = await register('a');
      const browser = new FormBrowser();
      const page = await browser.follow(authorizeUrl('a', clientA.client_id), server.origin);
      const html = await page.res.text();
      expect(html).toContain('Tenant A Inc.');
      expect(html).toContain('background:#aa0000');
      // The colours' stylesheet is allowed by its own hash, nothing more.
      const csp = page.res.headers.get('content-security-policy')!;
      expect(csp.match(/'sha256-/g)?.length).toBe(2);
    });

    it("counts one tenant's failed sign-ins apart from another's", async (ctx) => {
      if (!(await available)) return ctx.skip();
      const clientA = await register('a');
      const clientB = await register('b');
      const tryPassword = async (tenant: string, clientId: string, password: string) => {
        const browser = new FormBrowser();
        const page = await browser.follow(authorizeUrl(tenant, clientId), server.origin);
        return browser.submit(await page.res.text(), page.url, server.origin, { username: 'alice', password });
      };
      for (let i = 0; i < 3; i++) await tryPassword('a', clientA.client_id, 'wrong password number ' + i);
      const throttled = await tryPassword('a', clientA.client_id, ALICE_A.password);
      expect(throttled.res.status).toBe(429);
      const atB = await tryPassword('b', clientB.client_id, ALICE_B.password);
      expect(atB.callback ?? (await atB.res.text())).toMatch(/code=|name="decision"/);
    });

    it('creates, changes and deletes tenants at run time through the admin API; deletion leaves nothing', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const base = `${server.origin}/admin/tenants`;
      expect((await fetch(base)).status).toBe(401);
      expect((await fetch(base, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${server.origin}/a/admin/tenants`, admin())).status).toBe(404);

      const refused = await fetch(base, admin({ method: 'POST', body: JSON.stringify({ id: 'token' }) }));
      expect(refused.status).toBe(400);
      const badSetting = await fetch(
        base,
        admin({ method: 'POST', body: JSON.stringify({ id: 'c', settings: { storage: 'memory' } }) }),
      );
      expect(badSetting.status).toBe(400);
      const plaintext = await fetch(
        base,
        admin({ method: 'POST', body: JSON.stringify({ id: 'c', settings: { users: [ALICE_A] } }) }),
      );
      expect(plaintext.status).toBe(400);
      expect((await plaintext.json()).error_description).toContain('password_hash');
      expect((await fetch(`${server.origin}/c/.well-known/openid-configuration`)).status).toBe(404);

      const created = await fetch(
        base,
        admin({ method: 'POST', body: JSON.stringify({ id: 'c', settings: { tokens: { accessTokenTtl: 120 } } }) }),
      );
      expect(created.status).toBe(201);
      expect((await created.json()).issuer).toBe(`${server.origin}/c`);
      expect((await fetch(base, admin({ method: 'POST', body: JSON.stringify({ id: 'c' }) }))).status).toBe(409);
      expect((await (await fetch(`${server.origin}/c/.well-known/openid-configuration`)).json()).issuer).toBe(
        `${server.origin}/c`,
      );
      const listed = await (await fetch(base, admin())).json();
      expect(listed.tenants.map((t: { id: string }) => t.id)).toEqual(['a', 'b', 'c']);
      // Config tenants are the config file's to change.
      expect((await fetch(`${base}/a`, admin({ method: 'DELETE' }))).status).toBe(409);

      // A flow at the new tenant, so it owns a client, keys, a grant, tokens.
      const client = await register('c');
      const updated = await fetch(
        `${base}/c`,
        admin({ method: 'PUT', body: JSON.stringify({ settings: { branding: { name: 'Tenant C' } } }) }),
      );
      expect(updated.status).toBe(200);
      const page = await new FormBrowser().follow(authorizeUrl('c', client.client_id), server.origin);
      expect(await page.res.text()).toContain('Tenant C');

      const storage = server.gatehouse.deps.storage;
      expect((await storage.forTenant('c').listClients()).length).toBe(1);
      const deleted = await fetch(`${base}/c`, admin({ method: 'DELETE' }));
      expect(deleted.status).toBe(200);
      expect((await deleted.json()).removed).toBeGreaterThan(0);
      expect((await fetch(`${server.origin}/c/.well-known/openid-configuration`)).status).toBe(404);
      expect((await fetch(`${server.origin}/c/userinfo`)).status).toBe(404);
      const view = storage.forTenant('c');
      expect(await view.listClients()).toEqual([]);
      expect(await view.listUsers()).toEqual([]);
      expect(await view.listSigningKeys()).toEqual([]);
      expect(await storage.getTenant('c')).toBeUndefined();
      expect((await fetch(`${base}/c`, admin())).status).toBe(404);
      // The other tenants are untouched.
      expect((await storage.forTenant('a').listUsers()).length).toBe(1);
      expect((await fetch(`${server.origin}/a/.well-known/openid-configuration`)).status).toBe(200);
    });
  });
}
