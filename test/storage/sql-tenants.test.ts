/**
 * Tenant scoping of the SQL stores checked in the database itself (the contract's tenants section checks it through
 * the ports), on the embedded PGlite and on PostgreSQL. The scoped tables are read from the catalog (every table of
 * the schema with a `tenant` column), so a table added later is covered without editing this file: purgeTenant must
 * empty it, its keys must lead with the tenant, and SCOPED_TABLES (what purge and the views know) must list it.
 * Also: the views' lifecycle, refused tenant ids, prepared-statement names shared by every scope, and the upgrade of a
 * store written at migration 9 (every row becomes the default scope's).
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { hashToken } from '../../src/core/crypto.js';
import type { Storage } from '../../src/model/ports.js';
import { RECORD_KINDS } from '../../src/model/record-kinds.js';
import {
  HOUR,
  MINUTE,
  accessTokenFixture,
  clientFixture,
  codeFixture,
  consentFixture,
  grantFixture,
  refreshTokenFixture,
  sessionFixture,
  signingKeyFixture,
  successorFixture,
  userFixture,
} from '../../src/storage/contract/fixtures.js';
import { SCOPED_TABLES } from '../../src/storage/sql/context.js';
import type { SqlQueryable } from '../../src/storage/sql/driver.js';
import { createEmbeddedStorageOn } from '../../src/storage/sql/embedded.js';
import { migrate, migrations } from '../../src/storage/sql/migrations.js';
import { createPostgresStorage } from '../../src/storage/sql/postgres.js';
import { requireService } from '../helpers/services.js';

const PG_URL = process.env.GATEHOUSE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

type Row = Record<string, unknown>;

/** One database to test on: raw access beside the store, for what the ports cannot show. */
interface Backend {
  name: string;
  available: boolean;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  rows<R = Row>(text: string, params?: unknown[]): Promise<R[]>;
  /** BEGIN ... COMMIT on one connection. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** A store on `schema`, not yet initialised. */
  open(schema: string, clock: ManualClock): Storage;
}

function embeddedBackend(): Backend {
  let db: PGlite;
  return {
    name: 'embedded (PGlite)',
    available: true,
    async setup() {
      db = new PGlite('memory://');
      await db.waitReady;
    },
    teardown: async () => db?.close(),
    rows: async <R>(text: string, params?: unknown[]) => (await db.query<R>(text, params)).rows,
    transaction: (fn) =>
      db.transaction((t) =>
        fn({
          query: async <R>(text: string, params?: readonly unknown[]) => {
            const res = await t.query<R>(text, params as unknown[] | undefined);
            return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
          },
        }),
      ),
    open: (sqlSchema, clock) => createEmbeddedStorageOn(db, { clock, sqlSchema, cleanupIntervalMs: 0 }),
  };
}

function postgresBackend(available: boolean): Backend {
  let pool: pg.Pool;
  return {
    name: 'postgres',
    available,
    async setup() {
      pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
    },
    teardown: async () => pool?.end(),
    rows: async <R>(text: string, params?: unknown[]) => (await pool.query(text, params)).rows as R[],
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: async <R>(text: string, params?: readonly unknown[]) => {
            const res = await client.query(text, params as unknown[] | undefined);
            return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      } finally {
        client.release();
      }
    },
    open: (sqlSchema, clock) =>
      createPostgresStorage(PG_URL, { clock, sqlSchema, sqlPoolSize: 2, cleanupIntervalMs: 0 }),
  };
}

const backends = [embeddedBackend(), postgresBackend(await requireService('postgres'))];

/** The tables of `schema` with a tenant column, from the catalog. */
async function scopedTablesOf(b: Backend, schema: string): Promise<string[]> {
  const rows = await b.rows<{ table_name: string }>(
    `SELECT table_name FROM information_schema.columns
     WHERE table_schema = $1 AND column_name = 'tenant' ORDER BY table_name`,
    [schema],
  );
  return rows.map((r) => r.table_name);
}

/** Rows per table and tenant: { table: { tenant: count } }, every scoped table present (possibly {}). */
async function rowsByTenant(b: Backend, schema: string): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const table of await scopedTablesOf(b, schema)) {
    const rows = await b.rows<{ tenant: string; n: number }>(
      `SELECT tenant, count(*)::int AS n FROM "${schema}"."${table}" GROUP BY tenant`,
    );
    out[table] = Object.fromEntries(rows.map((r) => [r.tenant, Number(r.n)]));
  }
  return out;
}

/** Writes at least one row into every scoped table through `view`'s ports. */
async function populate(view: Storage, clock: ManualClock): Promise<void> {
  const now = clock.now();
  const client = clientFixture(clock);
  const user = userFixture(clock);
  await view.saveClient(client);
  await view.saveUser(user);
  await view.initSigningKeys([signingKeyFixture(clock, 'ES256')]);
  await view.getOrCreateSecret('cookie-key', 'secret');
  await view.saveSession(sessionFixture(clock, { userId: user.id }));
  const grant = grantFixture(clock, { clientId: client.clientId, userId: user.id });
  const first = refreshTokenFixture(clock, grant);
  await view.createGrant(grant, first.record, accessTokenFixture(clock));
  const next = refreshTokenFixture(clock, grant);
  const rotated = await view.rotateRefreshToken(
    first.record.tokenHash,
    next.record,
    successorFixture(first.token, next.token),
    accessTokenFixture(clock),
    now,
    0,
  );
  expect(rotated.status).toBe('rotated');
  await view.saveAuthorizationCode(codeFixture(clock, { clientId: client.clientId, userId: user.id }).record);
  await view.revokeAccessToken('revoked-jti', now + HOUR);
  await view.saveConsent(consentFixture(clock, { userId: user.id, clientId: client.clientId }));
  await view.hitRateLimit('login:user:someone', MINUTE, now);
  await view.firstUse('jwt-assertion:once', now + MINUTE);
}

for (const b of backends) {
  describe.skipIf(!b.available)(`SQL tenant scoping in the database: ${b.name}`, () => {
    const schemas: string[] = [];
    const opened: Storage[] = [];

    beforeAll(() => b.setup(), 60_000);
    afterAll(async () => {
      await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
      for (const schema of schemas) await b.rows(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await b.teardown();
    });

    function newSchema(): string {
      const schema = `gh_test_${randomBytes(6).toString('hex')}`;
      schemas.push(schema);
      return schema;
    }

    async function fresh(clock = new ManualClock()): Promise<{ store: Storage; schema: string; clock: ManualClock }> {
      const schema = newSchema();
      const store = b.open(schema, clock);
      opened.push(store);
      await store.init();
      return { store, schema, clock };
    }

    it('the catalog and SCOPED_TABLES agree on which tables hold a scope, and the list of tenants is not one of them', async () => {
      const { schema } = await fresh();
      expect(await scopedTablesOf(b, schema)).toEqual([...SCOPED_TABLES].sort());
      const tenants = await b.rows<{ n: number }>(
        `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'tenants'`,
        [schema],
      );
      expect(Number(tenants[0]!.n)).toBe(1);
    });

    it('purgeTenant leaves no row of the tenant in any table, and every row of every other scope in place', async () => {
      const { store, schema, clock } = await fresh();
      await populate(store, clock);
      await populate(store.forTenant('acme'), clock);
      await populate(store.forTenant('globex'), clock);
      await store.saveTenant({ id: 'acme', settings: {}, source: 'admin', createdAt: 1, updatedAt: 1 });
      const before = await rowsByTenant(b, schema);
      // populate reaches every table, so the check below means something for each of them.
      for (const [table, counts] of Object.entries(before)) {
        for (const tenant of ['', 'acme', 'globex'])
          expect(counts[tenant] ?? 0, `${table}/${tenant}`).toBeGreaterThan(0);
      }

      const acmeRows = Object.values(before).reduce((sum, counts) => sum + (counts.acme ?? 0), 0);
      expect(await store.purgeTenant('acme')).toBe(acmeRows);

      const after = await rowsByTenant(b, schema);
      const expected = Object.fromEntries(
        Object.entries(before).map(([table, { acme: _gone, ...rest }]) => [table, rest]),
      );
      expect(after).toEqual(expected);
      expect(await store.purgeTenant('acme')).toBe(0);
      expect((await store.getTenant('acme'))?.id).toBe('acme'); // the registry's record is not purge's to delete
    });

    it('every primary key, unique index and foreign key of a scoped table leads with the tenant; other indexes do too, or are expires_at sweeps', async () => {
      const { schema } = await fresh();
      const tables = await scopedTablesOf(b, schema);
      const indexes = await b.rows<{
        table: string;
        index: string;
        primary: boolean;
        unique: boolean;
        columns: string[];
      }>(
        `SELECT c.relname::text AS table, i.relname::text AS index, x.indisprimary AS primary, x.indisunique AS unique,
           ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
         FROM pg_index x
         JOIN pg_class c ON c.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = ANY($2::text[])
         ORDER BY 1, 2`,
        [schema, tables],
      );
      // Every table has its primary key; every key column list is plain columns (no expression index slips by).
      expect(new Set(indexes.filter((i) => i.primary).map((i) => i.table))).toEqual(new Set(tables));
      for (const i of indexes) {
        expect(i.columns.length, i.index).toBeGreaterThan(0);
        if (i.primary || i.unique) expect(i.columns[0], i.index).toBe('tenant');
        // The cleanup sweeps every tenant at once by expiry: those indexes deliberately lead with expires_at alone.
        else expect(i.columns[0] === 'tenant' || i.columns.join() === 'expires_at', i.index).toBe(true);
      }
      expect(indexes.filter((i) => i.unique && !i.primary).map((i) => i.index)).toEqual(['users_username_key']);

      const foreign = await b.rows<{ def: string }>(
        `SELECT pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND k.contype = 'f'`,
        [schema],
      );
      expect(foreign.length).toBe(2); // refresh_tokens and access_token_refs to grants
      for (const { def } of foreign)
        expect(def).toMatch(/^FOREIGN KEY \(tenant, grant_id\) REFERENCES .*\(tenant, id\)/);
    });

    it('a view shares the store: init() and close() on it are no-ops, forTenant on it scopes anew, bad ids are refused', async () => {
      const { store, schema, clock } = await fresh();
      const acme = store.forTenant('acme');
      await acme.init();
      await acme.close();
      const user = userFixture(clock);
      await acme.saveUser(user); // still usable: closing the view closed nothing
      await store.ping();
      expect(await acme.getUser(user.id)).toEqual(user);
      expect(await store.getUser(user.id)).toBeUndefined();

      // Not nested: a view's forTenant is the deployment store's forTenant.
      const other = userFixture(clock);
      await acme.forTenant('globex').saveUser(other);
      expect(await store.forTenant('globex').getUser(other.id)).toEqual(other);
      expect(await acme.getUser(other.id)).toBeUndefined();
      const tenants = await b.rows<{ tenant: string }>(`SELECT DISTINCT tenant FROM "${schema}".users ORDER BY 1`);
      expect(tenants.map((r) => r.tenant)).toEqual(['acme', 'globex']);

      // The default scope is not a tenant: no view of it, no purge of it.
      expect(() => store.forTenant('')).toThrow(RangeError);
      expect(() => store.forTenant('Not_A_Tenant')).toThrow(RangeError);
      await expect(store.purgeTenant('')).rejects.toThrow(RangeError);
      await expect(acme.purgeTenant('')).rejects.toThrow(RangeError);
      await expect(store.purgeTenant('../x')).rejects.toThrow(RangeError);
    });

    it('a view cleans up only its own expired rows; the deployment store cleans up every tenant', async () => {
      const { store, schema, clock } = await fresh();
      for (const view of [store, store.forTenant('acme'), store.forTenant('globex')]) {
        await view.saveSession(sessionFixture(clock, { expiresAt: clock.now() + MINUTE }));
      }
      clock.advance(MINUTE);
      expect(await store.forTenant('acme').cleanup()).toBe(1);
      const left = async () =>
        (await b.rows<{ tenant: string }>(`SELECT tenant FROM "${schema}".records ORDER BY 1`)).map((r) => r.tenant);
      expect(await left()).toEqual(['', 'globex']);
      expect(await store.cleanup()).toBe(2);
      expect(await left()).toEqual([]);
    });

    it('a store written at migration 9 upgrades: every row becomes the default scope, which reads it all; a tenant sees none', async () => {
      const clock = new ManualClock();
      const now = clock.now();
      const schema = newSchema();
      const client = clientFixture(clock);
      const user = userFixture(clock);
      const key = signingKeyFixture(clock, 'ES256');
      const session = sessionFixture(clock, { userId: user.id });
      // Written before DPoP (migration 13): no key binding on the grant or the code.
      const { dpopJkt: _grantKey, ...grant } = grantFixture(clock, { clientId: client.clientId, userId: user.id });
      const refresh = refreshTokenFixture(clock, grant);
      const { dpopJkt: _codeKey, ...code } = codeFixture(clock, { clientId: client.clientId, userId: user.id }).record;
      const consent = consentFixture(clock, { userId: user.id, clientId: client.clientId });
      const jti = accessTokenFixture(clock);

      // The version-9 schema, written with version-9 column lists (no tenant anywhere).
      await b.transaction(async (tx) => {
        expect(
          await migrate(
            tx,
            schema,
            migrations.filter((m) => m.version <= 9),
          ),
        ).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        const s = `"${schema}"`;
        await tx.query(
          `INSERT INTO ${s}.clients (client_id, client_secret_hash, redirect_uris, grant_types, response_types, scope,
             token_endpoint_auth_method, application_type, source, metadata, created_at, updated_at)
           VALUES ($1, $2, $3::text[], $4::text[], $5::text[], $6::text[], $7, $8, $9, $10::jsonb, $11, $12)`,
          [
            client.clientId,
            client.clientSecretHash,
            client.redirectUris,
            client.grantTypes,
            client.responseTypes,
            client.scope,
            client.tokenEndpointAuthMethod,
            client.applicationType,
            client.source,
            JSON.stringify({ client_name: client.clientName }),
            client.createdAt,
            client.updatedAt,
          ],
        );
        await tx.query(
          `INSERT INTO ${s}.users (id, username, password_hash, email, email_verified, name, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [user.id, user.username, user.passwordHash, user.email, user.emailVerified, user.name, now, now],
        );
        await tx.query(
          `INSERT INTO ${s}.signing_keys (kid, alg, private_jwk, public_jwk, status, created_at)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, 'active', $5)`,
          [key.kid, key.alg, JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk), key.createdAt],
        );
        await tx.query(`INSERT INTO ${s}.secrets (name, value, created_at) VALUES ('cookie-key', 'old', $1)`, [now]);
        await tx.query(
          `INSERT INTO ${s}.records (kind, id, owner, value, expires_at) VALUES ($1, $2, $3, $4::jsonb, $5)`,
          [RECORD_KINDS.session.name, session.id, `user:${user.id}`, JSON.stringify(session), session.expiresAt],
        );
        await tx.query(
          `INSERT INTO ${s}.grants (id, client_id, user_id, scope, resource, auth_time, nonce, created_at, expires_at, amr)
           VALUES ($1, $2, $3, $4::text[], $5::text[], $6, $7, $8, $9, $10::text[])`,
          [
            grant.id,
            grant.clientId,
            grant.userId,
            grant.scope,
            grant.resource,
            grant.authTime,
            grant.nonce,
            grant.createdAt,
            grant.expiresAt,
            grant.amr,
          ],
        );
        const r = refresh.record;
        await tx.query(
          `INSERT INTO ${s}.refresh_tokens (token_hash, grant_id, client_id, scope, created_at, expires_at)
           VALUES ($1, $2, $3, $4::text[], $5, $6)`,
          [r.tokenHash, r.grantId, r.clientId, r.scope, r.createdAt, r.expiresAt],
        );
        await tx.query(`INSERT INTO ${s}.access_token_refs (grant_id, jti, expires_at) VALUES ($1, $2, $3)`, [
          grant.id,
          jti.jti,
          jti.expiresAt,
        ]);
        await tx.query(
          `INSERT INTO ${s}.authorization_codes (code_hash, grant_id, client_id, user_id, redirect_uri, scope,
             resource, code_challenge, nonce, auth_time, created_at, expires_at, redirect_uri_sent, amr)
           VALUES ($1, $2, $3, $4, $5, $6::text[], $7::text[], $8, $9, $10, $11, $12, $13, $14::text[])`,
          [
            code.codeHash,
            code.grantId,
            code.clientId,
            code.userId,
            code.redirectUri,
            code.scope,
            code.resource,
            code.codeChallenge,
            code.nonce,
            code.authTime,
            code.createdAt,
            code.expiresAt,
            code.redirectUriSent,
            code.amr,
          ],
        );
        await tx.query(`INSERT INTO ${s}.revoked_jtis (jti, expires_at) VALUES ('old-revoked', $1)`, [now + HOUR]);
        await tx.query(
          `INSERT INTO ${s}.consents (user_id, client_id, scope, resource, created_at, expires_at)
           VALUES ($1, $2, $3::text[], $4::text[], $5, $6)`,
          [consent.userId, consent.clientId, consent.scope, consent.resource, consent.createdAt, consent.expiresAt],
        );
        await tx.query(`INSERT INTO ${s}.rate_limits (key, count, expires_at) VALUES ('login:user:old', 3, $1)`, [
          now + MINUTE,
        ]);
        await tx.query(`INSERT INTO ${s}.replay_guard (key, expires_at) VALUES ('jwt-assertion:old', $1)`, [
          now + MINUTE,
        ]);
      });

      const store = b.open(schema, clock);
      opened.push(store);
      await store.init();
      const versions = await b.rows<{ version: number }>(
        `SELECT version FROM "${schema}".gatehouse_migrations WHERE version > 9 ORDER BY 1`,
      );
      expect(versions.map((v) => Number(v.version))).toEqual([10, 11, 12, 13, 14]);

      // Every row of every table is the default scope's; none is missing.
      const counts = await rowsByTenant(b, schema);
      for (const table of SCOPED_TABLES) expect(counts[table], table).toEqual({ '': 1 });

      // The default scope reads every one of them through the ports.
      expect((await store.getClient(client.clientId))?.clientName).toBe(client.clientName);
      expect(await store.getUserByUsername(user.username)).toMatchObject({ id: user.id, email: user.email });
      expect((await store.listSigningKeys()).map((k) => k.kid)).toEqual([key.kid]);
      expect(await store.getOrCreateSecret('cookie-key', 'new')).toBe('old');
      expect(await store.getSession(session.id)).toEqual(session);
      expect(await store.getGrant(grant.id)).toEqual(grant);
      expect(await store.getRefreshToken(refresh.record.tokenHash)).toEqual({ token: refresh.record, grant });
      expect(await store.getAuthorizationCode(code.codeHash)).toEqual({ status: 'live', code });
      expect(await store.isAccessTokenRevoked('old-revoked')).toBe(true);
      expect(await store.getConsent(user.id, client.clientId)).toEqual(consent);
      expect(await store.peekRateLimit('login:user:old', now)).toBe(3);
      expect(await store.firstUse('jwt-assertion:old', now + MINUTE)).toBe(false);

      // A tenant's view sees none of it.
      const acme = store.forTenant('acme');
      expect(await acme.getClient(client.clientId)).toBeUndefined();
      expect(await acme.getUserByUsername(user.username)).toBeUndefined();
      expect(await acme.listSigningKeys()).toEqual([]);
      expect(await acme.getSession(session.id)).toBeUndefined();
      expect(await acme.getRefreshToken(refresh.record.tokenHash)).toBeUndefined();
      expect(await acme.getAuthorizationCode(code.codeHash)).toEqual({ status: 'not_found' });
      expect(await acme.isAccessTokenRevoked('old-revoked')).toBe(false);

      // The old token rotates through the new function; replayed past the grace, it revokes its grant's tokens.
      const next = refreshTokenFixture(clock, grant);
      const rotate = (graceMs: number) =>
        store.rotateRefreshToken(
          refresh.record.tokenHash,
          next.record,
          successorFixture(refresh.token, next.token),
          accessTokenFixture(clock),
          clock.now(),
          graceMs,
        );
      expect(await acme.rotateRefreshToken(refresh.record.tokenHash, next.record, 's', jti, now, 0)).toEqual({
        status: 'not_found',
      });
      expect(await rotate(0)).toEqual({ status: 'rotated' });
      clock.advance(MINUTE); // past the (zero) grace, within the old access token's hour
      expect(await rotate(0)).toEqual({ status: 'reused', grantId: grant.id });
      expect(await store.isAccessTokenRevoked(jti.jti)).toBe(true);
      expect(await store.getRefreshToken(next.record.tokenHash)).toBeUndefined();
    });
  });
}

describe.skipIf(!backends[1]!.available)('SQL tenant scoping: prepared statements', () => {
  it('a tenant view runs the very statements of the default scope (same texts, same prepared-statement names)', async () => {
    const clock = new ManualClock();
    const sqlSchema = `gh_test_${randomBytes(6).toString('hex')}`;
    const names: string[] = [];
    const original = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0];
      if (typeof config === 'object' && config !== null && 'name' in config) names.push(String(config.name));
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    const store = createPostgresStorage(PG_URL, { clock, sqlSchema, sqlPoolSize: 1, cleanupIntervalMs: 0 });
    try {
      await store.init();
      const namesOf = async (view: Storage): Promise<string[]> => {
        names.length = 0;
        await populate(view, clock);
        await view.getUser('nobody');
        await view.consumeAuthorizationCode(hashToken('nothing'));
        return [...new Set(names)].sort();
      };
      const byDefault = await namesOf(store);
      expect(byDefault.length).toBeGreaterThan(10);
      expect(await namesOf(store.forTenant('acme'))).toEqual(byDefault);
      expect(await namesOf(store.forTenant('globex'))).toEqual(byDefault);
    } finally {
      pg.Client.prototype.query = original;
      await store.close();
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${sqlSchema}" CASCADE`);
      await admin.end();
    }
  });
});
