/**
 * The admin API end to end over HTTP, on every store: clients (paging, search, create, update, rotate secret, delete),
 * users (create held to passwordPolicy, set password, disable / enable, delete, each with its effect on sign-in and
 * tokens), grants and consents (listed by user and by client, revoked), signing keys (rotate, retire). Credentials:
 * the deployment's admin token, or a client_credentials token with gatehouse:admin of a config-file client; a
 * tenant's own token reaches only its tenant. Every call is audited, and no audit line holds a secret.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server.js';
import { authorizeThroughPages, basic, postForm, postJson } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
/** An upstream of tenant b that nothing answers (its discovery fails fast). */
const DOWN_UPSTREAM = {
  id: 'down',
  name: 'Down',
  type: 'oidc',
  issuer: 'http://127.0.0.1:9',
  clientId: 'gatehouse',
  clientSecret: 'a-down-upstream-client-secret-of-length',
  timeoutMs: 1000,
};
const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const OPS_SECRET = randomBytes(24).toString('base64url');
const TENANT_OPS_SECRET = randomBytes(24).toString('base64url');
const B_OPS_SECRET = randomBytes(24).toString('base64url');
const CAROL = { username: 'carol', password: 'carol has a long passphrase' };

const opsClient = (secret: string) => ({
  client_id: 'ops',
  client_secret: secret,
  grant_types: ['client_credentials'],
  scope: 'gatehouse:admin',
});

for (const store of E2E_STORES) {
  describe(`admin API (${store.kind})`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_adm_${randomBytes(4).toString('hex')}`;
    const lines: string[] = [];
    let server: TestServer;

    /** A call with a bearer token (the admin token unless given), JSON in and out. */
    const call = async (method: string, path: string, body?: unknown, token = ADMIN_TOKEN) => {
      const res = await fetch(`${server.origin}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, any>, headers: res.headers };
    };
    const machineToken = async (issuer: string, id: string, secret: string, scope = 'gatehouse:admin') => {
      const res = await postForm(
        `${issuer}/token`,
        { grant_type: 'client_credentials', scope },
        { authorization: basic(id, secret) },
      );
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return res.json.access_token as string;
    };
    const refresh = (clientId: string, token: string) =>
      postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', client_id: clientId, refresh_token: token });
    /** A public client registered through /register, and a grant of `user` with a refresh token. */
    const signedInGrant = async (user: { username: string; password: string }) => {
      const reg = await postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        scope: 'openid offline_access',
        client_name: 'Notes App',
      });
      expect(reg.status).toBe(201);
      const clientId = reg.json.client_id as string;
      const { callback, verifier } = await authorizeThroughPages(server, clientId, REDIRECT, user, {
        scope: 'openid offline_access',
      });
      const tokens = await postForm(`${server.issuer}/token`, {
        grant_type: 'authorization_code',
        client_id: clientId,
        code: callback.searchParams.get('code')!,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
      });
      expect(tokens.status).toBe(200);
      return { clientId, refreshToken: tokens.json.refresh_token as string };
    };

    beforeAll(async () => {
      if (!(await available)) return;
      const sink = new Writable({
        write(chunk, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      });
      server = await startServer(
        {
          ...store.config(isolation),
          adminToken: ADMIN_TOKEN,
          encryptionKey: randomBytes(32).toString('base64'),
          passwordPolicy: { minLength: 12 },
          clients: [opsClient(OPS_SECRET)],
          tenants: [
            { id: 'a', clients: [opsClient(TENANT_OPS_SECRET)], users: [CAROL] },
            { id: 'b', clients: [opsClient(B_OPS_SECRET)], upstreams: [DOWN_UPSTREAM] },
            { id: 'c' },
          ],
        },
        { logger: createLogger('info', sink) },
      );
    });
    afterAll(async () => {
      await server?.close();
      await store.cleanup?.(isolation);
    });

    it('refuses calls without good credentials, and is off in a scope without admin clients', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const none = await fetch(`${server.origin}/admin/clients`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse-admin"');
      const wrong = await call('GET', '/admin/clients', undefined, 'not-the-token');
      expect(wrong.status).toBe(401);
      expect(wrong.json.error).toBe('invalid_token');
      // Tenant c has no admin client and the deployment's token does not open tenant paths.
      expect((await call('GET', '/c/admin/clients')).status).toBe(404);
      expect((await call('GET', '/a/admin/clients')).status).toBe(401);
      expect((await call('GET', '/a/admin/tenants')).status).toBe(404);
      // Bad input is a 400, never a 500.
      expect((await call('GET', '/admin/clients?limit=0')).status).toBe(400);
      expect((await call('GET', '/admin/clients?cursor=bogus')).json.error).toBe('invalid_request');
      expect((await call('GET', '/admin/clients?what=1')).status).toBe(400);
      expect((await call('GET', '/admin/grants')).status).toBe(400);
      expect((await call('POST', '/admin/clients', { redirect_uris: ['not a url'] })).status).toBe(400);
      expect((await call('GET', '/admin/clients/nope')).status).toBe(404);
      expect((await call('GET', '/admin/tenants/zzz/clients')).status).toBe(404);
      // The admin scope is the config file's to give: dynamic registration refuses it.
      const grab = await postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code'],
        scope: 'openid gatehouse:admin',
      });
      expect(grab.status).toBe(400);
      expect(grab.json.error).toBe('invalid_client_metadata');
    });

    it('creates, pages, searches, updates, rotates and deletes clients', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const created = [];
      for (const name of ['Billing Robot', 'billing dashboard', 'Reports']) {
        const res = await call('POST', '/admin/clients', {
          client_name: name,
          redirect_uris: [],
          grant_types: ['client_credentials'],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'openid',
        });
        expect(res.status, JSON.stringify(res.json)).toBe(201);
        expect(res.json.source).toBe('admin');
        expect(typeof res.json.client_secret).toBe('string');
        created.push(res.json as { client_id: string; client_secret: string });
      }
      const [robot] = created;
      // The secret works at the token endpoint, and is shown only once.
      expect(
        (await machineToken(server.issuer, robot!.client_id, robot!.client_secret, 'openid')).length,
      ).toBeGreaterThan(0);
      const read = await call('GET', `/admin/clients/${robot!.client_id}`);
      expect(read.json.client_secret).toBeUndefined();
      expect(JSON.stringify(read.json)).not.toContain(robot!.client_secret);

      // Paging over every client (the config's ops client included), then a name search.
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await call(
          'GET',
          `/admin/clients?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        expect(page.status).toBe(200);
        expect(page.json.clients.length).toBeLessThanOrEqual(1);
        seen.push(...page.json.clients.map((c: { client_id: string }) => c.client_id));
        cursor = page.json.next_cursor;
      } while (cursor);
      expect(seen.sort()).toEqual(['ops', ...created.map((c) => c.client_id)].sort());
      const billing = await call('GET', '/admin/clients?name_prefix=BILL');
      expect(billing.json.clients.map((c: { client_name: string }) => c.client_name)).toEqual([
        'billing dashboard',
        'Billing Robot',
      ]);

      const updated = await call('PUT', `/admin/clients/${robot!.client_id}`, {
        client_name: 'Invoice Robot',
        redirect_uris: [],
        grant_types: ['client_credentials'],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid',
      });
      expect(updated.status).toBe(200);
      expect(updated.json.client_name).toBe('Invoice Robot');
      expect((await call('GET', '/admin/clients?name_prefix=invoice')).json.clients).toHaveLength(1);

      const rotated = await call('POST', `/admin/clients/${robot!.client_id}/rotate-secret`);
      expect(rotated.status).toBe(200);
      const old = await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        {
          authorization: basic(robot!.client_id, robot!.client_secret),
        },
      );
      expect(old.status).toBe(401);
      await machineToken(server.issuer, robot!.client_id, rotated.json.client_secret, 'openid');

      // A config-file client is the file's.
      expect((await call('DELETE', '/admin/clients/ops')).status).toBe(409);
      expect((await call('DELETE', `/admin/clients/${robot!.client_id}`)).json.deleted).toBe(true);
      expect((await call('GET', `/admin/clients/${robot!.client_id}`)).status).toBe(404);
      const gone = await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        {
          authorization: basic(robot!.client_id, rotated.json.client_secret),
        },
      );
      expect(gone.status).toBe(401);
    });

    it('manages users, and their grants and consents, with the effect on sign-in and tokens', async (ctx) => {
      if (!(await available)) return ctx.skip();
      expect((await call('POST', '/admin/users', { username: 'dave', password: 'short' })).status).toBe(400);
      const dave = await call('POST', '/admin/users', {
        username: 'dave',
        password: 'dave has a long password',
        email: 'dave@example.com',
      });
      expect(dave.status).toBe(201);
      expect(dave.json.password_hash).toBeUndefined();
      expect((await call('POST', '/admin/users', { username: 'dave', password: 'another long password' })).status).toBe(
        409,
      );
      const id = dave.json.id as string;
      const listed = await call('GET', '/admin/users?username_prefix=da');
      expect(listed.json.users.map((u: { username: string }) => u.username)).toEqual(['dave']);

      // A grant of dave's, listed by user and by client, with its consent.
      const first = await signedInGrant({ username: 'dave', password: 'dave has a long password' });
      const grants = await call('GET', `/admin/grants?user_id=${id}`);
      expect(grants.json.grants).toHaveLength(1);
      expect(grants.json.grants[0]).toMatchObject({
        client_id: first.clientId,
        user_id: id,
        scope: 'openid offline_access',
      });
      expect((await call('GET', `/admin/grants?client_id=${first.clientId}`)).json.grants).toHaveLength(1);
      const consents = await call('GET', `/admin/consents?user_id=${id}`);
      expect(consents.json.consents.map((c: { client_id: string }) => c.client_id)).toEqual([first.clientId]);

      // Revoking the grant ends its refresh token.
      const revoked = await call('DELETE', `/admin/grants/${grants.json.grants[0].id}`);
      expect(revoked.json.revoked_at).toBeDefined();
      expect((await refresh(first.clientId, first.refreshToken)).status).toBe(400);
      expect((await call('DELETE', '/admin/grants/unknown-grant')).status).toBe(404);

      // Withdrawing the consent revokes the pair's grants.
      const second = await signedInGrant({ username: 'dave', password: 'dave has a long password' });
      const withdrawn = await call('DELETE', `/admin/consents/${id}/${second.clientId}`);
      expect(withdrawn.json.grants_revoked).toBe(1);
      expect((await refresh(second.clientId, second.refreshToken)).status).toBe(400);
      expect((await call('GET', `/admin/consents?client_id=${second.clientId}`)).json.consents).toEqual([]);

      // Disabling revokes every grant and stops sign-in; enabling lets them in again.
      const third = await signedInGrant({ username: 'dave', password: 'dave has a long password' });
      const disabled = await call('POST', `/admin/users/${id}/disable`);
      expect(disabled.json).toMatchObject({ disabled: true, grants_revoked: 1 });
      expect((await refresh(third.clientId, third.refreshToken)).status).toBe(400);
      await expect(signedInGrant({ username: 'dave', password: 'dave has a long password' })).rejects.toThrow();
      expect((await call('POST', `/admin/users/${id}/enable`)).json.disabled).toBe(false);

      // A new password (held to the policy) replaces the old one.
      expect((await call('PUT', `/admin/users/${id}/password`, { password: 'tiny' })).status).toBe(400);
      expect((await call('PUT', `/admin/users/${id}/password`, { password: 'dave changed his password' })).status).toBe(
        200,
      );
      await expect(signedInGrant({ username: 'dave', password: 'dave has a long password' })).rejects.toThrow();
      const fourth = await signedInGrant({ username: 'dave', password: 'dave changed his password' });

      // Deleting revokes what is left.
      expect((await call('DELETE', `/admin/users/${id}`)).json.deleted).toBe(true);
      expect((await refresh(fourth.clientId, fourth.refreshToken)).status).toBe(400);
      expect((await call('GET', `/admin/users/${id}`)).status).toBe(404);
    });

    it('lists, rotates and retires signing keys', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const before = (await call('GET', '/admin/keys')).json.keys as { kid: string; status: string }[];
      const active = before.find((k) => k.status === 'active')!;
      expect(JSON.stringify(before)).not.toMatch(/"d"|private/);
      const rotated = await call('POST', '/admin/keys/rotate', { alg: 'ES256' });
      expect(rotated.json).toMatchObject({ alg: 'ES256', status: 'active' });
      const after = (await call('GET', '/admin/keys')).json.keys as { kid: string; status: string }[];
      expect(after.find((k) => k.kid === rotated.json.kid)?.status).toBe('active');
      if (active.kid !== rotated.json.kid && before.filter((k) => k.status === 'active').length === 1) {
        expect(after.find((k) => k.kid === active.kid)?.status).toBe('retired');
        expect((await call('POST', `/admin/keys/${active.kid}/retire`)).status).toBe(409);
      }
      const retired = await call('POST', `/admin/keys/${rotated.json.kid}/retire`);
      expect(retired.json.retired).toBe(rotated.json.kid);
      expect((await call('POST', '/admin/keys/nope/retire')).status).toBe(404);
      expect((await call('POST', '/admin/keys/rotate', { alg: 'HS256' })).status).toBe(400);
    });

    it("lists a scope's upstreams, their discovery checked now", async (ctx) => {
      if (!(await available)) return ctx.skip();
      expect((await call('GET', '/admin/upstreams')).json).toEqual({ upstreams: [] });
      const listed = await call('GET', '/admin/tenants/b/upstreams');
      expect(listed.status).toBe(200);
      expect(listed.json).toEqual({
        upstreams: [{ id: 'down', name: 'Down', type: 'oidc', issuer: 'http://127.0.0.1:9', discovery: 'failed' }],
      });
      const unchecked = await call('GET', '/admin/tenants/b/upstreams?check=false');
      expect((unchecked.json.upstreams as { discovery: string }[])[0]!.discovery).toBe('-');
      expect((await call('GET', '/admin/tenants/b/upstreams/links')).json).toEqual({ links: [] });
      expect(JSON.stringify(listed.json)).not.toContain(DOWN_UPSTREAM.clientSecret);
    });

    it('reaches a tenant with the deployment token, and with its own client token only there', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const a = `${server.origin}/a`;
      const tenantToken = await machineToken(a, 'ops', TENANT_OPS_SECRET);
      const deploymentOps = await machineToken(server.issuer, 'ops', OPS_SECRET);
      const bToken = await machineToken(`${server.origin}/b`, 'ops', B_OPS_SECRET);

      const byDeployment = await call('GET', '/admin/tenants/a/users');
      expect(byDeployment.json.users.map((u: { username: string }) => u.username)).toEqual(['carol']);
      const byTenant = await call('GET', '/a/admin/users', undefined, tenantToken);
      expect(byTenant.json).toEqual(byDeployment.json);
      // The deployment's ops client has the deployment's users (alice, bob), not the tenant's.
      const own = await call('GET', '/admin/users', undefined, deploymentOps);
      expect(own.json.users.map((u: { username: string }) => u.username)).toEqual(['alice', 'bob']);

      // A tenant's token opens nothing else: not the deployment, not another tenant, not the tenant list.
      expect((await call('GET', '/admin/users', undefined, tenantToken)).status).toBe(401);
      expect((await call('GET', '/admin/tenants/a/users', undefined, tenantToken)).status).toBe(401);
      expect((await call('GET', '/b/admin/users', undefined, tenantToken)).status).toBe(401);
      expect((await call('GET', '/a/admin/users', undefined, bToken)).status).toBe(401);
      expect((await call('GET', '/admin/tenants', undefined, tenantToken)).status).toBe(401);
      // A client token without the admin scope is refused with insufficient_scope.
      const plain = await postForm(
        `${a}/token`,
        { grant_type: 'client_credentials', scope: '' },
        {
          authorization: basic('ops', TENANT_OPS_SECRET),
        },
      );
      if (plain.status === 200 && !String(plain.json.scope ?? '').includes('gatehouse:admin')) {
        expect((await call('GET', '/a/admin/users', undefined, plain.json.access_token as string)).status).toBe(403);
      }

      // A user created through the tenant's path exists in the tenant only.
      const made = await call(
        'POST',
        '/a/admin/users',
        { username: 'erin', password: 'erin has a long password' },
        tenantToken,
      );
      expect(made.status).toBe(201);
      expect((await call('GET', '/admin/users?username_prefix=erin')).json.users).toEqual([]);
      expect((await call('GET', '/admin/tenants/a/users?username_prefix=erin')).json.users).toHaveLength(1);
    });

    it('audits every call, with no secret in any line', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const before = lines.length;
      await call('GET', '/admin/users');
      await call('GET', '/admin/users', undefined, 'wrong');
      const created = await call('POST', '/admin/users', { username: 'frank', password: 'frank has a long password' });
      const audits = lines
        .slice(before)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.audit === true && l.type === 'admin.call');
      expect(audits.map((a) => [a.method, a.route, a.outcome, a.status, a.actor])).toEqual([
        ['GET', '/admin/users', 'success', 200, 'token'],
        ['GET', '/admin/users', 'failure', 401, 'none'],
        ['POST', '/admin/users', 'success', 201, 'token'],
      ]);
      for (const a of audits) expect(a.requestId).toBeDefined();
      expect(created.status).toBe(201);
      const all = lines.join('\n');
      for (const secret of [
        ADMIN_TOKEN,
        OPS_SECRET,
        TENANT_OPS_SECRET,
        'frank has a long password',
        'dave changed his password',
      ]) {
        expect(all).not.toContain(secret);
      }
    });
  });
}
