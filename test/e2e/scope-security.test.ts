/**
 * Scope allow-lists, scope errors, /userinfo audience and introspection rights, attacked over HTTP:
 * - an empty allow-list (a registration of only unknown scopes) grants nothing, on every store; a static client without
 *   `scope` gets nothing through client_credentials;
 * - scopes are refused (invalid_scope), not narrowed: client_credentials, refresh, and /authorize (unless lenient);
 * - /userinfo refuses a token bound to a resource server, and a malformed (array) scope claim is a 401, not a 500;
 * - only an allowed resource server, or a client named in the token's audience, learns about an access token.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';

const REDIRECT = 'http://127.0.0.1/callback';
const RESOURCE = 'https://mcp.example.com/mcp';
const POSTGRES = 'postgres://postgres@127.0.0.1:5432/test';
const SECRET = (name: string) => `${name}-secret-0123456789abcdefghijklmnop`;

/** Static clients: a machine client without `scope`, one with an allow-list, a browser client without `scope`. */
const STATIC_CLIENTS: ConfigInput['clients'] = [
  { client_id: 'machine', client_secret: SECRET('machine'), grant_types: ['client_credentials'] },
  { client_id: 'reader', client_secret: SECRET('reader'), grant_types: ['client_credentials'], scope: 'mcp:read' },
  { client_id: 'web', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' },
  { client_id: 'mcp-rs', client_secret: SECRET('mcp-rs'), grant_types: ['client_credentials'] },
];

function authorizeUrl(server: TestServer, params: Record<string, string>): string {
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge_method: 'S256',
    ...params,
  }).toString();
  return u.href;
}

/** The full browser flow (login, consent) and the code exchange; returns the token response. */
async function userTokens(server: TestServer, clientId: string, scope: string, extra: Record<string, string> = {}) {
  const v = verifier();
  const cb = await new FormBrowser().authorize(
    authorizeUrl(server, { client_id: clientId, code_challenge: challenge(v), scope, ...extra }),
    server.origin,
    ALICE,
  );
  expect(cb.searchParams.get('error'), cb.searchParams.get('error_description') ?? '').toBeNull();
  const t = await postForm(`${server.issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code: cb.searchParams.get('code')!,
    code_verifier: v,
    redirect_uri: REDIRECT,
  });
  expect(t.status).toBe(200);
  return t.json as Record<string, string>;
}

const clientCredentials = (server: TestServer, id: string, secret: string, params: Record<string, string> = {}) =>
  postForm(
    `${server.issuer}/token`,
    { grant_type: 'client_credentials', ...params },
    { authorization: basic(id, secret) },
  );

interface StoreCase {
  name: string;
  available(): Promise<boolean>;
  config(isolation: string): Partial<ConfigInput>;
  cleanup(isolation: string): Promise<void>;
}

const STORES: StoreCase[] = [
  {
    name: 'memory',
    available: async () => true,
    config: () => ({ storage: 'memory' }),
    cleanup: async () => undefined,
  },
  {
    name: 'embedded',
    available: async () => true,
    config: () => ({ storage: join(mkdtempSync(join(tmpdir(), 'gh-scope-')), 'data') }),
    cleanup: async () => undefined,
  },
  {
    name: 'postgres',
    available: () => requireService('postgres'),
    config: (isolation) => ({ storage: POSTGRES, postgres: { schema: isolation, poolSize: 2 } }),
    async cleanup(isolation) {
      const client = new pg.Client({ connectionString: POSTGRES });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${isolation} CASCADE`);
      await client.end();
    },
  },
  {
    name: 'redis',
    available: () => requireService('redis'),
    config: (isolation) => ({ storage: 'redis://127.0.0.1:6379', redis: { keyPrefix: `${isolation}:` } }),
    async cleanup(isolation) {
      const redis = new Redis(6379, '127.0.0.1');
      const keys = await redis.keys(`${isolation}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    },
  },
];

for (const store of STORES) {
  describe(`scope allow-lists on the ${store.name} store`, () => {
    const isolation = `gh_scope_${randomBytes(6).toString('hex')}`;
    let available = false;
    let server: TestServer;

    beforeAll(async () => {
      available = await store.available();
      if (!available) return;
      // Lenient, so a registration of only unknown scopes is accepted (narrowed to an empty allow-list) and can be
      // attacked; enforceRegisteredScope, so that allow-list also binds user grants. No client cache: every request
      // reads the client record back from the store.
      server = await startServer({
        ...store.config(isolation),
        scopes: ['admin', 'mcp:read'],
        strictScopes: false,
        registration: { allowClientCredentials: true, enforceRegisteredScope: true },
        clientCacheSeconds: 0,
        clients: STATIC_CLIENTS,
      });
    }, 60_000);

    afterAll(async () => {
      if (!available) return;
      await server.close();
      await store.cleanup(isolation);
    });

    it('a client registered with only unknown scopes gets nothing through client_credentials, not every scope', async (ctx) => {
      if (!available) return ctx.skip();
      const reg = await postJson(`${server.issuer}/register`, {
        grant_types: ['client_credentials'],
        scope: 'legacy:read legacy:write',
      });
      expect(reg.status).toBe(201);
      expect(reg.json.scope).toBe(''); // told it was narrowed to nothing
      expect((await server.gatehouse.deps.storage.getClient(reg.json.client_id))!.scope).toStrictEqual([]);

      const admin = await clientCredentials(server, reg.json.client_id, reg.json.client_secret, { scope: 'admin' });
      expect(admin.status).toBe(400);
      expect(admin.json.error).toBe('invalid_scope');
      expect(admin.json.error_description).toContain('admin');
      const none = await clientCredentials(server, reg.json.client_id, reg.json.client_secret);
      expect(none.status).toBe(200);
      expect(none.json.scope).toBeUndefined();
      expect(decodeJwt(none.json.access_token as string).scope).toBeUndefined();
    });

    it('a static client without scope gets nothing through client_credentials; one with scope gets only that', async (ctx) => {
      if (!available) return ctx.skip();
      expect((await server.gatehouse.deps.storage.getClient('machine'))!.scope).toBeUndefined();
      const admin = await clientCredentials(server, 'machine', SECRET('machine'), { scope: 'admin' });
      expect(admin.status).toBe(400);
      expect(admin.json.error).toBe('invalid_scope');
      const none = await clientCredentials(server, 'machine', SECRET('machine'));
      expect(none.status).toBe(200);
      expect(decodeJwt(none.json.access_token as string).scope).toBeUndefined();

      const read = await clientCredentials(server, 'reader', SECRET('reader'), { scope: 'mcp:read' });
      expect(read.json.scope).toBe('mcp:read');
      expect((await clientCredentials(server, 'reader', SECRET('reader'))).json.scope).toBe('mcp:read');
      const wider = await clientCredentials(server, 'reader', SECRET('reader'), { scope: 'mcp:read admin' });
      expect(wider.status).toBe(400);
      expect(wider.json.error).toBe('invalid_scope');
      expect(wider.json.error_description).toBe('scope not allowed for this client: admin');
    });

    it('under enforceRegisteredScope an empty registered allow-list binds user grants too (lenient: narrowed to nothing)', async (ctx) => {
      if (!available) return ctx.skip();
      const reg = await postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        scope: 'legacy:read',
      });
      expect(reg.status).toBe(201);
      const tokens = await userTokens(server, reg.json.client_id, 'admin mcp:read');
      expect(tokens.scope).toBeUndefined();
      expect(decodeJwt(tokens.access_token!).scope).toBeUndefined();
    });

    it('a static client without scope has no allow-list for user grants: any server scope the user approves', async (ctx) => {
      if (!available) return ctx.skip();
      const tokens = await userTokens(server, 'web', 'admin mcp:read unknown:thing');
      // Lenient server: the unknown scope is narrowed away, the known ones granted.
      expect(tokens.scope).toBe('admin mcp:read');
    });
  });
}

describe('scope errors instead of silent narrowing (strict by default)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      scopes: ['mcp:write'],
      registration: { allowClientCredentials: true },
      clients: STATIC_CLIENTS.filter((c) => c.client_id !== 'reader'),
      introspection: { allowedClients: ['mcp-rs'] },
    });
  });
  afterAll(() => server.close());

  const get = (u: string) => fetch(u, { redirect: 'manual' });

  it('/authorize: a scope the server does not know is invalid_scope naming it and the "scopes" setting', async () => {
    const res = await get(
      authorizeUrl(server, {
        client_id: 'web',
        code_challenge: challenge(verifier()),
        scope: 'openid mcp:read',
        state: 'st',
      }),
    );
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe('invalid_scope');
    expect(location.searchParams.get('error_description')).toBe(
      'scope not known to this server: mcp:read (the server\'s "scopes" setting declares the scopes it knows)',
    );
    expect(location.searchParams.get('state')).toBe('st');
  });

  it('/authorize: the standard scopes and configured ones stay known', async () => {
    const tokens = await userTokens(server, 'web', 'openid profile email offline_access mcp:write');
    expect(tokens.scope).toBe('openid profile email offline_access mcp:write');
  });

  it('/register: a scope the server does not know is invalid_client_metadata naming it', async () => {
    const reg = await postJson(`${server.issuer}/register`, {
      grant_types: ['client_credentials'],
      scope: 'legacy:read',
    });
    expect(reg.status).toBe(400);
    expect(reg.json.error).toBe('invalid_client_metadata');
    expect(reg.json.error_description).toContain('legacy:read');
  });

  it('refresh: a scope beyond the grant is invalid_scope (400), also on a retry inside the grace window', async () => {
    // A fresh client, so no earlier consent widens the grant (incremental authorization).
    const reg = await postJson(`${server.issuer}/register`, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    });
    const clientId = reg.json.client_id as string;
    const tokens = await userTokens(server, clientId, 'openid mcp:write');
    expect(tokens.scope).toBe('openid mcp:write');
    const wider = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: tokens.refresh_token!,
      scope: 'openid mcp:write profile',
    });
    expect(wider.status).toBe(400);
    expect(wider.json.error).toBe('invalid_scope');
    const ok = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: tokens.refresh_token!,
      scope: 'mcp:write',
    });
    expect(ok.status).toBe(200);
    expect(ok.json.scope).toBe('mcp:write');
    // A concurrent retry of the same (now rotated) token asking for more must not get the pair silently.
    const retry = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: tokens.refresh_token!,
      scope: 'mcp:write profile',
    });
    expect(retry.status).toBe(400);
    expect(retry.json.error).toBe('invalid_scope');
  });

  describe('/userinfo', () => {
    it('refuses a token bound to a resource server (401 invalid_token); accepts one bound to no resource or to the issuer', async () => {
      const bound = await userTokens(server, 'web', 'openid profile', { resource: RESOURCE });
      expect(decodeJwt(bound.access_token!).aud).toEqual(RESOURCE);
      const refused = await fetch(`${server.issuer}/userinfo`, {
        headers: { authorization: `Bearer ${bound.access_token}` },
      });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect((await refused.json()).error).toBe('invalid_token');

      const own = await userTokens(server, 'web', 'openid profile');
      expect(decodeJwt(own.access_token!).aud).toEqual('web');
      const info = await fetch(`${server.issuer}/userinfo`, {
        headers: { authorization: `Bearer ${own.access_token}` },
      });
      expect(info.status).toBe(200);
      expect((await info.json()).name).toBe(ALICE.name);

      const forIssuer = await userTokens(server, 'web', 'openid profile', { resource: server.issuer });
      const viaIssuer = await fetch(`${server.issuer}/userinfo`, {
        headers: { authorization: `Bearer ${forIssuer.access_token}` },
      });
      expect(viaIssuer.status).toBe(200);
    });

    it('a validly signed token whose scope claim is an array is 401 invalid_token, not a 500; introspection calls it inactive', async () => {
      const [key] = await server.gatehouse.deps.storage.listSigningKeys();
      const users = await server.gatehouse.deps.storage.listUsers();
      const alice = users.find((u) => u.username === ALICE.username)!;
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({
        sub: alice.id,
        client_id: 'web',
        aud: 'web',
        jti: `forged-${now}`,
        scope: ['openid', 'profile'],
      })
        .setProtectedHeader({ alg: key!.alg, kid: key!.kid, typ: 'at+jwt' })
        .setIssuer(server.issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(await importJWK(key!.privateJwk, key!.alg));
      const res = await fetch(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
      expect((await res.json()).error).toBe('invalid_token');
      const introspected = await postForm(
        `${server.issuer}/introspect`,
        { token },
        { authorization: basic('mcp-rs', SECRET('mcp-rs')) },
      );
      expect(introspected.status).toBe(200);
      expect(introspected.json).toEqual({ active: false });
    });
  });

  describe('introspection', () => {
    it('an unrelated confidential client registered a second ago learns nothing; the allowed resource server does', async () => {
      const tokens = await userTokens(server, 'web', 'openid mcp:write', { resource: RESOURCE });
      const stranger = await postJson(`${server.issuer}/register`, { grant_types: ['client_credentials'] });
      expect(stranger.status).toBe(201);
      const asStranger = await postForm(
        `${server.issuer}/introspect`,
        { token: tokens.access_token! },
        { authorization: basic(stranger.json.client_id, stranger.json.client_secret) },
      );
      expect(asStranger.status).toBe(200);
      expect(asStranger.json).toEqual({ active: false });
      // Nor about someone else's refresh token.
      const refresh = await postForm(
        `${server.issuer}/introspect`,
        { token: tokens.refresh_token! },
        { authorization: basic(stranger.json.client_id, stranger.json.client_secret) },
      );
      expect(refresh.json).toEqual({ active: false });

      const asRs = await postForm(
        `${server.issuer}/introspect`,
        { token: tokens.access_token! },
        { authorization: basic('mcp-rs', SECRET('mcp-rs')) },
      );
      expect(asRs.json).toMatchObject({ active: true, client_id: 'web', aud: RESOURCE });
      expect(String(asRs.json.scope).split(' ')).toContain('mcp:write');
    });

    it("a client named in the token's audience may introspect it (its own token bound to no resource)", async () => {
      const own = await clientCredentials(server, 'machine', SECRET('machine'));
      expect(own.status).toBe(200);
      const self = await postForm(
        `${server.issuer}/introspect`,
        { token: own.json.access_token as string },
        { authorization: basic('machine', SECRET('machine')) },
      );
      expect(self.json).toMatchObject({ active: true, client_id: 'machine', aud: 'machine' });
      // Bound to a resource, the same client's token is the resource server's to introspect, not the client's.
      const bound = await clientCredentials(server, 'machine', SECRET('machine'), { resource: RESOURCE });
      const selfBound = await postForm(
        `${server.issuer}/introspect`,
        { token: bound.json.access_token as string },
        { authorization: basic('machine', SECRET('machine')) },
      );
      expect(selfBound.json).toEqual({ active: false });
    });
  });
});
