/**
 * Upgrades: data written by release b1715a8 (fixtures made by generate-fixtures.ts with that release's own server,
 * over HTTP) keeps working when this release starts on it. Each store: load the old rows / keys into a fresh schema /
 * key prefix, start the new server on them, and use the old credentials.
 *
 * Time: the new server runs on a ManualClock set just after the fixture was made, so the old access tokens (1 hour)
 * and refresh tokens (30 days) are as fresh as they were then, whatever today's date. Redis keys are restored with
 * their remaining PTTL (relative, so the wall clock does not matter there either).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ManualClock } from '../../src/core/clock.js';
import { migrations } from '../../src/storage/sql/migrations.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { authorizeThroughPages, basic, postForm } from '../helpers/oauth.js';
import { freePort } from '../helpers/server.js';
import { dropIsolation, requireService } from '../helpers/services.js';
import {
  FIXTURE_SCOPE,
  FIXTURE_USER,
  PG_SCHEMA_PLACEHOLDER,
  REDIS_PREFIX_PLACEHOLDER,
  fixtureConfig,
} from './fixture-config.js';

const RELEASE = 'b1715a8';
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

interface FixtureTokens {
  issuer: string;
  createdAt: number;
  staticClient: { client_id: string; client_secret: string; access_token: string };
  publicClient: {
    client_id: string;
    registration_access_token: string;
    registration_client_uri: string;
    access_token: string;
    refresh_token: string;
    scope: string;
  };
  confidentialClient: {
    client_id: string;
    client_secret: string;
    registration_access_token: string;
    access_token: string;
    refresh_token: string;
    scope: string;
  };
  jwks: { keys: Array<{ kid: string }> };
}

const readTokens = (kind: string): FixtureTokens =>
  JSON.parse(readFileSync(join(fixtures, `tokens-${kind}-${RELEASE}.json`), 'utf8'));

/** Loads the pg_dump of the old schema into `schema` (the dump creates it, with the old gatehouse_migrations rows). */
async function loadPostgres(schema: string): Promise<void> {
  const sql = readFileSync(join(fixtures, `postgres-${RELEASE}.sql`), 'utf8').replaceAll(PG_SCHEMA_PLACEHOLDER, schema);
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Restores every dumped key under `prefix`, by type, with its remaining time to live. */
async function loadRedis(prefix: string): Promise<number> {
  const dump = JSON.parse(readFileSync(join(fixtures, `redis-${RELEASE}.json`), 'utf8')) as {
    keys: Array<{ key: string; type: string; pttl: number; value: any }>;
  };
  const redis = new Redis(6379, '127.0.0.1');
  try {
    for (const { key: placeholderKey, type, pttl, value } of dump.keys) {
      const key = placeholderKey.replace(REDIS_PREFIX_PLACEHOLDER, prefix);
      if (type === 'string') await redis.set(key, value);
      else if (type === 'hash') await redis.hset(key, value);
      else if (type === 'set') await redis.sadd(key, ...value);
      else if (type === 'zset') {
        const pairs: string[] = value;
        const args: string[] = [];
        for (let i = 0; i < pairs.length; i += 2) args.push(pairs[i + 1]!, pairs[i]!);
        await redis.zadd(key, ...args);
      } else if (type === 'list') await redis.rpush(key, ...value);
      else throw new Error(`fixture key of unknown type ${type}`);
      if (pttl > 0) await redis.pexpire(key, pttl);
    }
  } finally {
    redis.disconnect();
  }
  return dump.keys.length;
}

/** The kids the server publishes, found through its metadata as a client would. */
async function publishedKids(origin: string): Promise<string[]> {
  const metadata = (await (await fetch(`${origin}/.well-known/oauth-authorization-server`)).json()) as {
    jwks_uri: string;
  };
  const jwks = (await (await fetch(`${origin}${new URL(metadata.jwks_uri).pathname}`)).json()) as {
    keys: Array<{ kid: string }>;
  };
  return jwks.keys.map((k) => k.kid);
}

interface Running {
  gatehouse: Gatehouse;
  origin: string;
  clock: ManualClock;
}

/** Starts this release on the old data, with the old issuer (the tokens' iss) and the old config. */
async function startNew(
  tokens: FixtureTokens,
  store: Record<string, unknown>,
  isolation: { schema?: string; keyPrefix?: string },
): Promise<Running> {
  const port = await freePort();
  const clock = new ManualClock(tokens.createdAt + 60_000);
  const config = parseConfig({
    ...fixtureConfig(isolation),
    ...store,
    logLevel: 'silent',
    // A resource server allowed to introspect any token: the old static client (RFC 7662).
    introspection: { allowedClients: [tokens.staticClient.client_id] },
    // So a dynamic client's registered scope (or its absence) decides what a user may grant it.
    registration: { enforceRegisteredScope: true },
    port,
    host: '127.0.0.1',
    issuer: tokens.issuer,
  });
  const gatehouse = await createGatehouse(config, { logger: createLogger('silent'), clock });
  await gatehouse.app.listen({ port, host: '127.0.0.1' });
  return { gatehouse, origin: `http://127.0.0.1:${port}`, clock };
}

const stores = [
  {
    kind: 'postgres' as const,
    store: { storage: PG_URL },
    isolation: (): { schema?: string; keyPrefix?: string } => ({
      schema: `gh_upgrade_${randomBytes(6).toString('hex')}`,
    }),
    load: (iso: { schema?: string }) => loadPostgres(iso.schema!),
    drop: (iso: { schema?: string }) => dropIsolation('postgres', iso.schema!),
  },
  {
    kind: 'redis' as const,
    store: { storage: 'redis://127.0.0.1:6379' },
    isolation: (): { schema?: string; keyPrefix?: string } => ({
      keyPrefix: `gh_upgrade_${randomBytes(6).toString('hex')}:`,
    }),
    load: (iso: { keyPrefix?: string }) => loadRedis(iso.keyPrefix!),
    drop: (iso: { keyPrefix?: string }) => dropIsolation('redis', iso.keyPrefix!.slice(0, -1)),
  },
];

for (const s of stores) {
  const available = await requireService(s.kind);
  const tokens = readTokens(s.kind);

  describe.skipIf(!available)(`upgrade from ${RELEASE} on ${s.kind}`, () => {
    let server: Running;
    const iso = s.isolation();
    const token = (params: Record<string, string>, headers: Record<string, string> = {}) =>
      postForm(`${server.origin}/token`, params, headers);
    const introspect = (t: string) =>
      postForm(
        `${server.origin}/introspect`,
        { token: t },
        { authorization: basic(tokens.staticClient.client_id, tokens.staticClient.client_secret) },
      );
    const registrationPath = (uri: string) => new URL(uri).pathname;
    /** The refresh token that replaced the confidential client's old one (a live grant made by the old release). */
    let confidentialSuccessor = '';

    beforeAll(async () => {
      await s.load(iso);
      server = await startNew(tokens, s.store, iso);
    });
    afterAll(async () => {
      await server?.gatehouse.close();
      await s.drop(iso);
    });

    if (s.kind === 'postgres') {
      it('applies the new migrations on top of the old ones (1-3 kept, every newer version recorded once)', async () => {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        const { rows } = await client.query<{ version: number; applied_at: Date }>(
          `SELECT version, applied_at FROM ${iso.schema}.gatehouse_migrations ORDER BY version`,
        );
        await client.end();
        expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
        expect(rows.length).toBeGreaterThan(3);
        // The old rows are the fixture's (applied before the fixture was dumped), the new ones were applied now.
        expect(rows[2]!.applied_at.getTime()).toBeLessThan(rows[3]!.applied_at.getTime());
      });

      it("the old rows are the default scope's (tenant ''), in every table that has a tenant column", async () => {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        try {
          const { rows: tables } = await client.query<{ table_name: string }>(
            `SELECT table_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'tenant'`,
            [iso.schema],
          );
          const counts: Record<string, { scoped: number; other: number }> = {};
          for (const { table_name: table } of tables) {
            const { rows } = await client.query<{ scoped: number; other: number }>(
              `SELECT count(*) FILTER (WHERE tenant = '')::int AS scoped,
                 count(*) FILTER (WHERE tenant <> '')::int AS other
               FROM ${iso.schema}.${table}`,
            );
            counts[table] = rows[0]!;
          }
          // What b1715a8 wrote (sessions now live in records) is all there, in the default scope, and nothing else is.
          for (const table of [
            'clients',
            'users',
            'signing_keys',
            'secrets',
            'records',
            'authorization_codes',
            'grants',
            'refresh_tokens',
            'access_token_refs',
            'consents',
          ]) {
            expect(counts[table]?.scoped, table).toBeGreaterThan(0);
          }
          for (const [table, { other }] of Object.entries(counts)) expect(other, table).toBe(0);
        } finally {
          await client.end();
        }
      });
    }

    it('the old signing keys are still published and still verify the old access tokens (introspection active)', async () => {
      const kids = await publishedKids(server.origin);
      expect(tokens.jwks.keys.length).toBeGreaterThan(0);
      for (const old of tokens.jwks.keys) expect(kids).toContain(old.kid);

      const user = await introspect(tokens.publicClient.access_token);
      expect(user.status).toBe(200);
      expect(user.json).toMatchObject({ active: true, client_id: tokens.publicClient.client_id, iss: tokens.issuer });
      const machine = await introspect(tokens.staticClient.access_token);
      expect(machine.json).toMatchObject({
        active: true,
        client_id: tokens.staticClient.client_id,
        scope: FIXTURE_SCOPE,
      });
    });

    it('the old static client authenticates (client_credentials), and a wrong secret is still refused', async () => {
      const ok = await token(
        { grant_type: 'client_credentials', scope: FIXTURE_SCOPE },
        { authorization: basic(tokens.staticClient.client_id, tokens.staticClient.client_secret) },
      );
      expect(ok.status).toBe(200);
      expect(ok.json.scope).toBe(FIXTURE_SCOPE);
      const bad = await token(
        { grant_type: 'client_credentials' },
        { authorization: basic(tokens.staticClient.client_id, tokens.staticClient.client_secret + 'x') },
      );
      expect(bad.status).toBe(401);
    });

    it('the old dynamically registered clients read their registration with the old registration access token (RFC 7592)', async () => {
      for (const c of [tokens.publicClient, tokens.confidentialClient]) {
        const path = registrationPath(tokens.publicClient.registration_client_uri).replace(
          tokens.publicClient.client_id,
          c.client_id,
        );
        const res = await fetch(`${server.origin}${path}`, {
          headers: { authorization: `Bearer ${c.registration_access_token}` },
        });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { client_id: string }).client_id).toBe(c.client_id);
      }
    });

    it('an old client registered without scope still has no allow-list (b1715a8 stored "none" as []; not "nothing")', async () => {
      const conf = tokens.confidentialClient;
      const path = registrationPath(tokens.publicClient.registration_client_uri).replace(
        tokens.publicClient.client_id,
        conf.client_id,
      );
      const reg = (await (
        await fetch(`${server.origin}${path}`, {
          headers: { authorization: `Bearer ${conf.registration_access_token}` },
        })
      ).json()) as Record<string, unknown>;
      expect(reg).not.toHaveProperty('scope');
      // With enforceRegisteredScope, "no allow-list" lets the user grant any supported scope, as under b1715a8.
      const redirectUri = 'http://127.0.0.1:9/callback';
      const { callback, verifier } = await authorizeThroughPages(
        { issuer: server.origin, origin: server.origin },
        conf.client_id,
        redirectUri,
        FIXTURE_USER,
        {
          scope: `openid ${FIXTURE_SCOPE}`,
        },
      );
      const code = callback.searchParams.get('code');
      expect(code, callback.href).toEqual(expect.any(String));
      const res = await token(
        { grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri, code_verifier: verifier },
        { authorization: basic(conf.client_id, conf.client_secret) },
      );
      expect(res.status).toBe(200);
      // The old user signs in with the password alone (no second factor, none required), and the ID token says so.
      expect(decodeJwt(String(res.json.id_token))).toMatchObject({ amr: ['pwd'], acr: 'urn:gatehouse:acr:pwd' });
      // (The user's old consent adds offline_access: consented scopes carry over.)
      expect(String(res.json.scope).split(' ')).toEqual(expect.arrayContaining(['openid', FIXTURE_SCOPE]));
    });

    it('the old refresh tokens rotate (public client; confidential client authenticating with its old secret), and so do their successors', async () => {
      const pub = await token({
        grant_type: 'refresh_token',
        refresh_token: tokens.publicClient.refresh_token,
        client_id: tokens.publicClient.client_id,
      });
      expect(pub.status).toBe(200);
      expect(pub.json.refresh_token).toEqual(expect.any(String));
      expect(pub.json.refresh_token).not.toBe(tokens.publicClient.refresh_token);
      expect(String(pub.json.scope).split(' ').sort()).toEqual(tokens.publicClient.scope.split(' ').sort());
      const next = await token({
        grant_type: 'refresh_token',
        refresh_token: String(pub.json.refresh_token),
        client_id: tokens.publicClient.client_id,
      });
      expect(next.status).toBe(200);

      const conf = tokens.confidentialClient;
      const confRes = await token(
        { grant_type: 'refresh_token', refresh_token: conf.refresh_token },
        { authorization: basic(conf.client_id, conf.client_secret) },
      );
      expect(confRes.status).toBe(200);
      expect(confRes.json.refresh_token).not.toBe(conf.refresh_token);
      // A grant from before amr was recorded was a password sign-in: its refreshed ID token says pwd.
      expect(decodeJwt(String(confRes.json.id_token))).toMatchObject({ amr: ['pwd'], acr: 'urn:gatehouse:acr:pwd' });
      confidentialSuccessor = String(confRes.json.refresh_token);
      // The new access token verifies too (the new release signs with the old key or a new one it publishes).
      expect((await introspect(String(confRes.json.access_token))).json).toMatchObject({
        active: true,
        client_id: conf.client_id,
      });
    });

    it('an old refresh token used again after its rotation is reuse: the whole old grant is revoked (RFC 9700 §4.14.2)', async () => {
      // The public client's old token was rotated in the test above; past the grace window it is a replay.
      server.clock.advance(60_000);
      const replay = await token({
        grant_type: 'refresh_token',
        refresh_token: tokens.publicClient.refresh_token,
        client_id: tokens.publicClient.client_id,
      });
      expect(replay.status).toBe(400);
      expect(replay.json.error).toBe('invalid_grant');
      expect((await introspect(tokens.publicClient.access_token)).json).toEqual({ active: false });
    });

    it('deleting the user revokes the grants the old release made for them (found without the new per-user index)', async () => {
      const conf = tokens.confidentialClient;
      const auth = { authorization: basic(conf.client_id, conf.client_secret) };
      const sub = (await introspect(conf.access_token)).json.sub as string;
      expect(sub).toEqual(expect.any(String));
      const ownIntrospect = (t: string) => postForm(`${server.origin}/introspect`, { token: t }, auth);
      expect((await ownIntrospect(confidentialSuccessor)).json).toMatchObject({ active: true });
      expect((await introspect(conf.access_token)).json).toMatchObject({ active: true });
      expect(await server.gatehouse.deps.storage.deleteUser(sub)).toBe(true);
      expect((await ownIntrospect(confidentialSuccessor)).json).toEqual({ active: false });
      // The access token the old release issued under that grant is revoked with it.
      expect((await introspect(conf.access_token)).json).toEqual({ active: false });
      const refused = await token({ grant_type: 'refresh_token', refresh_token: confidentialSuccessor }, auth);
      expect(refused.json.error).toBe('invalid_grant');
    });
  });

  describe.skipIf(!available)(`upgrade fixtures on ${s.kind}: the same checks fail on an empty store`, () => {
    let server: Running;
    const iso = s.isolation();
    beforeAll(async () => {
      server = await startNew(tokens, s.store, iso);
    });
    afterAll(async () => {
      await server?.gatehouse.close();
      await s.drop(iso);
    });

    it('without the fixture, the old refresh token, registration token, access token and kids are unknown', async () => {
      const refresh = await postForm(`${server.origin}/token`, {
        grant_type: 'refresh_token',
        refresh_token: tokens.publicClient.refresh_token,
        client_id: tokens.publicClient.client_id,
      });
      expect(refresh.status).toBe(401); // the client itself is unknown
      const reg = await fetch(`${server.origin}${new URL(tokens.publicClient.registration_client_uri).pathname}`, {
        headers: { authorization: `Bearer ${tokens.publicClient.registration_access_token}` },
      });
      expect(reg.status).toBe(401);
      const kids = await publishedKids(server.origin);
      expect(kids.length).toBeGreaterThan(0);
      for (const old of tokens.jwks.keys) expect(kids).not.toContain(old.kid);
      const active = await postForm(
        `${server.origin}/introspect`,
        { token: tokens.staticClient.access_token },
        { authorization: basic(tokens.staticClient.client_id, tokens.staticClient.client_secret) },
      );
      expect(active.json).toEqual({ active: false });
    });
  });
}
