/**
 * The SQL Storage shared by PostgreSQL (pg) and the embedded store (PGlite): every query lives here, over a tiny
 * executor interface each driver implements. Atomic operations rely on row locks and conditional updates, so they
 * stay exactly-once when many replicas share one database. Lock order is always grant row, then its tokens.
 */
import type { Clock } from '../../core/clock.js';
import { InvalidRequest } from '../../model/errors.js';
import type { StoreLogger, StoreOptions } from '../options.js';
import type {
  AccessTokenRef,
  AuthorizationCodeRecord,
  ClientRecord,
  ConsentRecord,
  CodeLookupResult,
  ConsumeCodeResult,
  GrantRecord,
  RefreshTokenRecord,
  RotateResult,
  SigningKeyRecord,
  UserRecord,
} from '../../model/records.js';
import type { JsonObject, RecordPlacement, Storage } from '../../model/ports.js';
import { clientOwner, userOwner } from '../../model/record-kinds.js';
import { RecordBackedStorage } from '../record-ports.js';
import { GRANT_TOMBSTONE_TTL_MS } from '../../model/records.js';
import { rateLimitWindowEnd } from '../../model/ports.js';
import { lockKey, migrate, quoteIdent } from './migrations.js';
import { sqlFirstUse } from './replay-guard.js';
import type { SqlExecutor, SqlQueryable, SqlRow } from './driver.js';

export type { SqlExecutor, SqlQueryable, SqlResult, SqlRow } from './driver.js';

/** Default period of the background cleanup, ms. */
export const DEFAULT_CLEANUP_INTERVAL_MS = 60_000;

/**
 * SQLSTATEs of a value PostgreSQL cannot hold: a NUL byte in text (22021) or `\u0000` in jsonb (22P05). The request
 * carried it, so it is the client's error (400), never a server error. The HTTP edge refuses NUL bytes before they get
 * here; this is the backstop for any path it misses.
 */
const UNSTORABLE_VALUE_SQLSTATES = new Set(['22021', '22P05']);

/** Drivers pass every statement error through this: unstorable values become invalid_request, the rest stay. */
export function mapUnstorableValue(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !UNSTORABLE_VALUE_SQLSTATES.has(code)) return err;
  return new InvalidRequest('the request contains a character that is not allowed (U+0000)', { cause: err });
}

/** SQLSTATEs worth retrying a whole transaction for (serialization failure, deadlock). */
const RETRYABLE = new Set(['40001', '40P01']);

const TABLES = [
  'clients',
  'users',
  'signing_keys',
  'secrets',
  'records',
  'authorization_codes',
  'grants',
  'refresh_tokens',
  'access_token_refs',
  'revoked_jtis',
  'consents',
  'rate_limits',
  'replay_guard',
] as const;
type Table = (typeof TABLES)[number];

/** Client metadata kept in the `metadata` jsonb column, by RFC 7591 name. */
const CLIENT_METADATA = {
  clientName: 'client_name',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  clientUri: 'client_uri',
  logoUri: 'logo_uri',
  contacts: 'contacts',
  tosUri: 'tos_uri',
  policyUri: 'policy_uri',
  softwareId: 'software_id',
  softwareVersion: 'software_version',
  jwks: 'jwks',
  jwksUri: 'jwks_uri',
} as const satisfies Partial<Record<keyof ClientRecord, string>>;
/** Key in `metadata` marking a client without a scope allow-list (ClientRecord.scope absent, not []). */
const SCOPE_UNSET = 'scope_unset';

/** Storage over SQL; see {@link SqlExecutor}. `kind` is `postgres` or `embedded`. */
export class SqlStorage extends RecordBackedStorage implements Storage {
  readonly kind: string;
  private readonly db: SqlExecutor;
  private readonly clock: Clock;
  private readonly logger: StoreLogger | undefined;
  private readonly schema: string;
  private readonly cleanupIntervalMs: number;
  private readonly t: Record<Table, string>;
  /** Schema-qualified functions (migration 3). */
  private readonly fn: { rotate: string };
  private timer: NodeJS.Timeout | undefined;
  private cleanupRunning = false;
  private closing: Promise<void> | undefined;

  constructor(db: SqlExecutor, kind: string, options: StoreOptions) {
    super();
    this.db = db;
    this.kind = kind;
    this.clock = options.clock;
    this.logger = options.logger;
    this.schema = options.sqlSchema ?? 'public';
    this.cleanupIntervalMs = options.cleanupIntervalMs ?? DEFAULT_CLEANUP_INTERVAL_MS;
    // Names are schema-qualified rather than relying on search_path, which poolers such as PgBouncer do not keep.
    const s = quoteIdent(this.schema);
    this.t = Object.fromEntries(TABLES.map((name) => [name, `${s}.${name}`])) as Record<Table, string>;
    this.fn = { rotate: `${s}.gatehouse_rotate_refresh_token` };
  }

  // ---- lifecycle ----

  async init(): Promise<void> {
    const applied = await this.db.transaction((tx) => migrate(tx, this.schema));
    if (applied.length > 0) this.logger?.info({ schema: this.schema, versions: applied }, 'storage migrations applied');
    this.startCleanupTimer();
  }

  async cleanup(): Promise<number> {
    return this.tx((tx) => this.deleteExpired(tx));
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.closing ??= this.db.close();
    return this.closing;
  }

  // ---- clients ----

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const { rows } = await this.db.query(`SELECT * FROM ${this.t.clients} WHERE client_id = $1`, [clientId]);
    return rows[0] && toClient(rows[0]);
  }

  async saveClient(c: ClientRecord): Promise<void> {
    const metadata: Record<string, unknown> = {};
    for (const [key, column] of Object.entries(CLIENT_METADATA)) {
      const value = c[key as keyof typeof CLIENT_METADATA];
      if (value !== undefined) metadata[column] = value;
    }
    // The scope column is NOT NULL (schema v1): "no allow-list" is kept as a marker beside it, so it never reads back as [].
    if (c.scope === undefined) metadata[SCOPE_UNSET] = true;
    await this.db.query(
      `INSERT INTO ${this.t.clients} (client_id, client_secret_hash, registration_access_token_hash, redirect_uris,
         grant_types, response_types, scope, token_endpoint_auth_method, application_type, source, metadata,
         client_secret_expires_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4::text[], $5::text[], $6::text[], $7::text[], $8, $9, $10, $11::text::jsonb, $12, $13, $14)
       ON CONFLICT (client_id) DO UPDATE SET
         client_secret_hash = EXCLUDED.client_secret_hash,
         registration_access_token_hash = EXCLUDED.registration_access_token_hash,
         redirect_uris = EXCLUDED.redirect_uris, grant_types = EXCLUDED.grant_types,
         response_types = EXCLUDED.response_types, scope = EXCLUDED.scope,
         token_endpoint_auth_method = EXCLUDED.token_endpoint_auth_method,
         application_type = EXCLUDED.application_type, source = EXCLUDED.source, metadata = EXCLUDED.metadata,
         client_secret_expires_at = EXCLUDED.client_secret_expires_at,
         created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
      [
        c.clientId,
        c.clientSecretHash ?? null,
        c.registrationAccessTokenHash ?? null,
        c.redirectUris,
        c.grantTypes,
        c.responseTypes,
        c.scope ?? [],
        c.tokenEndpointAuthMethod,
        c.applicationType,
        c.source,
        JSON.stringify(metadata),
        c.clientSecretExpiresAt,
        c.createdAt,
        c.updatedAt,
      ],
    );
  }

  async deleteClient(clientId: string): Promise<boolean> {
    const now = this.clock.now();
    return this.tx(async (tx) => {
      const deleted = await tx.query(`DELETE FROM ${this.t.clients} WHERE client_id = $1`, [clientId]);
      // Access tokens are self-contained JWTs: revoke their ids before their grants (and refs) disappear.
      await tx.query(
        `INSERT INTO ${this.t.revoked_jtis} (jti, expires_at)
         SELECT a.jti, max(a.expires_at) FROM ${this.t.access_token_refs} a
         JOIN ${this.t.grants} g ON g.id = a.grant_id
         WHERE g.client_id = $1 AND a.expires_at > $2 GROUP BY a.jti
         ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(${this.t.revoked_jtis}.expires_at, EXCLUDED.expires_at)`,
        [clientId, now],
      );
      await tx.query(`DELETE FROM ${this.t.grants} WHERE client_id = $1`, [clientId]); // cascades to tokens and refs
      await tx.query(`DELETE FROM ${this.t.consents} WHERE client_id = $1`, [clientId]);
      await tx.query(`DELETE FROM ${this.t.authorization_codes} WHERE client_id = $1`, [clientId]);
      await tx.query(`DELETE FROM ${this.t.records} WHERE owner = $1`, [clientOwner(clientId)]);
      return deleted.rowCount > 0;
    });
  }

  async countClients(): Promise<number> {
    const { rows } = await this.db.query<{ count: unknown }>(`SELECT count(*) AS count FROM ${this.t.clients}`);
    return Number(rows[0]?.count ?? 0);
  }

  async listClients(): Promise<ClientRecord[]> {
    const { rows } = await this.db.query(`SELECT * FROM ${this.t.clients} ORDER BY created_at, client_id`);
    return rows.map(toClient);
  }

  // ---- users ----

  async getUser(id: string): Promise<UserRecord | undefined> {
    const { rows } = await this.db.query(`SELECT * FROM ${this.t.users} WHERE id = $1`, [id]);
    return rows[0] && toUser(rows[0]);
  }

  async getUserByUsername(username: string): Promise<UserRecord | undefined> {
    const { rows } = await this.db.query(`SELECT * FROM ${this.t.users} WHERE username = $1`, [username]);
    return rows[0] && toUser(rows[0]);
  }

  async saveUser(u: UserRecord): Promise<void> {
    // A username taken by another id fails on the UNIQUE constraint (23505), as the contract requires.
    await this.db.query(
      `INSERT INTO ${this.t.users} (id, username, password_hash, email, email_verified, name, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, password_hash = EXCLUDED.password_hash,
         email = EXCLUDED.email, email_verified = EXCLUDED.email_verified, name = EXCLUDED.name,
         created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
      [
        u.id,
        u.username,
        u.passwordHash,
        u.email ?? null,
        u.emailVerified ?? null,
        u.name ?? null,
        u.createdAt,
        u.updatedAt,
      ],
    );
  }

  async deleteUser(id: string): Promise<boolean> {
    const clockNow = this.clock.now();
    // One transaction: the user's grants revoked (as revokeGrant), consents and sessions gone, then the user row.
    return this.tx(async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE ${this.t.grants} SET revoked_at = $2
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING id`,
        [id, clockNow],
      );
      if (rows.length > 0)
        await this.dropGrantTokens(
          tx,
          rows.map((r) => r.id),
          clockNow,
        );
      await tx.query(`DELETE FROM ${this.t.consents} WHERE user_id = $1`, [id]);
      await tx.query(`DELETE FROM ${this.t.records} WHERE owner = $1`, [userOwner(id)]);
      const deleted = await tx.query(`DELETE FROM ${this.t.users} WHERE id = $1`, [id]);
      return deleted.rowCount > 0;
    });
  }

  async listUsers(): Promise<UserRecord[]> {
    const { rows } = await this.db.query(`SELECT * FROM ${this.t.users} ORDER BY created_at, id`);
    return rows.map(toUser);
  }

  // ---- signing keys and secrets ----

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.selectKeys(this.db);
  }

  async initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
    return this.tx(async (tx) => {
      // The lock makes "check then insert" one step across replicas, so they all end up with the same key set.
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey('keys', this.schema)]);
      const { rows } = await tx.query(`SELECT 1 FROM ${this.t.signing_keys} WHERE status = 'active' LIMIT 1`);
      if (rows.length === 0) for (const key of initial) await this.insertKey(tx, key, true);
      return this.selectKeys(tx);
    });
  }

  async rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void> {
    await this.tx(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey('keys', this.schema)]);
      await tx.query(
        `UPDATE ${this.t.signing_keys} SET status = 'retired', expires_at = $3
         WHERE status = 'active' AND alg = $1 AND kid <> $2`,
        [key.alg, key.kid, retireUntil],
      );
      await this.insertKey(tx, { ...key, status: 'active', expiresAt: undefined }, false);
    });
  }

  async getOrCreateSecret(name: string, candidate: string): Promise<string> {
    // Two statements on purpose: after losing the insert race, the SELECT takes a fresh snapshot that sees the winner.
    await this.db.query(
      `INSERT INTO ${this.t.secrets} (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
      [name, candidate, this.clock.now()],
    );
    const { rows } = await this.db.query<{ value: string }>(`SELECT value FROM ${this.t.secrets} WHERE name = $1`, [
      name,
    ]);
    if (!rows[0]) throw new Error(`secret ${name} vanished after insert`);
    return rows[0].value;
  }

  // ---- expiring records ----

  async putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.t.records} (kind, id, owner, value, expires_at) VALUES ($1, $2, $3, $4::jsonb, $5)
       ON CONFLICT (kind, id) DO UPDATE SET owner = EXCLUDED.owner, value = EXCLUDED.value,
         expires_at = EXCLUDED.expires_at`,
      [kind, id, placement.owner ?? null, JSON.stringify(value), placement.expiresAt],
    );
  }

  async getRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    const { rows } = await this.db.query(
      `SELECT value FROM ${this.t.records} WHERE kind = $1 AND id = $2 AND expires_at > $3`,
      [kind, id, this.clock.now()],
    );
    return rows[0] && jsonObject(rows[0].value);
  }

  async takeRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    // DELETE ... RETURNING is the atomic take: of racing callers only one gets the row.
    const { rows } = await this.db.query(
      `DELETE FROM ${this.t.records} WHERE kind = $1 AND id = $2 RETURNING value, expires_at`,
      [kind, id],
    );
    const row = rows[0];
    if (!row || Number(row.expires_at) <= this.clock.now()) return undefined;
    return jsonObject(row.value);
  }

  async deleteRecord(kind: string, id: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.t.records} WHERE kind = $1 AND id = $2`, [kind, id]);
  }

  async deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number> {
    const { rows } = await this.db.query<{ live: unknown }>(
      `WITH gone AS (DELETE FROM ${this.t.records} WHERE owner = $1 AND ($2::text IS NULL OR kind = $2)
         RETURNING expires_at)
       SELECT count(*) FILTER (WHERE expires_at > $3) AS live FROM gone`,
      [owner, kind ?? null, this.clock.now()],
    );
    return Number(rows[0]?.live ?? 0);
  }

  // ---- authorization codes ----

  async saveAuthorizationCode(c: AuthorizationCodeRecord): Promise<void> {
    // DO NOTHING, not an upsert: re-saving must never reset `consumed`.
    await this.db.query(
      `INSERT INTO ${this.t.authorization_codes} (code_hash, grant_id, client_id, user_id, redirect_uri, scope, resource,
         code_challenge, nonce, auth_time, created_at, expires_at, redirect_uri_sent)
       VALUES ($1, $2, $3, $4, $5, $6::text[], $7::text[], $8, $9, $10, $11, $12, $13)
       ON CONFLICT (code_hash) DO NOTHING`,
      [
        c.codeHash,
        c.grantId,
        c.clientId,
        c.userId,
        c.redirectUri,
        c.scope,
        c.resource,
        c.codeChallenge,
        c.nonce ?? null,
        c.authTime,
        c.createdAt,
        c.expiresAt,
        c.redirectUriSent,
      ],
    );
  }

  async getAuthorizationCode(codeHash: string): Promise<CodeLookupResult> {
    const { rows } = await this.db.query(
      `SELECT * FROM ${this.t.authorization_codes} WHERE code_hash = $1 AND expires_at > $2`,
      [codeHash, this.clock.now()],
    );
    const r = rows[0];
    if (!r) return { status: 'not_found' };
    if (r.consumed === true) return { status: 'reused', grantId: String(r.grant_id), clientId: String(r.client_id) };
    return { status: 'live', code: toCode(r) };
  }

  async consumeAuthorizationCode(codeHash: string): Promise<ConsumeCodeResult> {
    const now = this.clock.now();
    // One statement. The conditional UPDATE is the race: concurrent updaters of the row queue on its lock, re-check
    // NOT consumed after the winner commits, and match nothing. The second branch reads the statement's snapshot,
    // which may predate that winner, so it is not asked whether the row is consumed: a live code this UPDATE did not
    // win was redeemed by someone else, now or before.
    const { rows } = await this.db.query(
      `WITH won AS (
         UPDATE ${this.t.authorization_codes} SET consumed = true
         WHERE code_hash = $1 AND NOT consumed AND expires_at > $2 RETURNING *
       )
       SELECT true AS won, * FROM won
       UNION ALL
       SELECT false AS won, c.* FROM ${this.t.authorization_codes} c
       WHERE c.code_hash = $1 AND c.expires_at > $2 AND NOT EXISTS (SELECT 1 FROM won)`,
      [codeHash, now],
    );
    const r = rows[0];
    if (!r) return { status: 'not_found' };
    if (r.won === true) return { status: 'consumed', code: toCode(r) };
    return { status: 'reused', grantId: String(r.grant_id), clientId: String(r.client_id) };
  }

  // ---- grants and tokens ----

  async createGrant(
    grant: GrantRecord,
    refreshToken: RefreshTokenRecord | undefined,
    accessToken: AccessTokenRef,
  ): Promise<{ created: boolean }> {
    const r = refreshToken;
    // One statement. ON CONFLICT on the primary key is the race with revokeGrant's tombstone upsert: whichever
    // inserts the row first makes the other wait for its commit. A tombstoned id inserts nothing (so neither do the
    // token CTEs, which read from g), and the access token id minted for it goes on the revocation list instead.
    const { rows } = await this.retrying(() =>
      this.db.query<{ created: number }>(
        `WITH g AS (
           INSERT INTO ${this.t.grants} (id, client_id, user_id, scope, resource, auth_time, nonce, created_at,
             expires_at, revoked_at)
           VALUES ($1, $2, $3, $4::text[], $5::text[], $6, $7, $8, $9, $10)
           ON CONFLICT (id) DO NOTHING
           RETURNING id
         ), rt AS (
           INSERT INTO ${this.t.refresh_tokens} (token_hash, grant_id, client_id, scope, created_at, expires_at,
             rotated_at, successor)
           SELECT $11::text, g.id, $12, $13::text[], $14::bigint, $15::bigint, $16::bigint, $17::text FROM g
           WHERE $11::text IS NOT NULL
         ), a AS (
           INSERT INTO ${this.t.access_token_refs} AS a (grant_id, jti, expires_at)
           SELECT g.id, $18::text, $19::bigint FROM g
           ON CONFLICT (grant_id, jti) DO UPDATE SET expires_at = GREATEST(a.expires_at, EXCLUDED.expires_at)
         ), dead AS (
           INSERT INTO ${this.t.revoked_jtis} AS d (jti, expires_at)
           SELECT $18::text, $19::bigint WHERE NOT EXISTS (SELECT 1 FROM g) AND $19::bigint > $20::bigint
           ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(d.expires_at, EXCLUDED.expires_at)
         )
         SELECT count(*)::int AS created FROM g`,
        [
          grant.id,
          grant.clientId,
          grant.userId,
          grant.scope,
          grant.resource,
          grant.authTime,
          grant.nonce ?? null,
          grant.createdAt,
          grant.expiresAt,
          grant.revokedAt ?? null,
          r?.tokenHash ?? null,
          r?.clientId ?? null,
          r?.scope ?? null,
          r?.createdAt ?? null,
          r?.expiresAt ?? null,
          r?.rotatedAt ?? null,
          r?.successor ?? null,
          accessToken.jti,
          accessToken.expiresAt,
          this.clock.now(),
        ],
      ),
    );
    return { created: Number(rows[0]?.created) > 0 };
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    const { rows } = await this.db.query(
      `SELECT * FROM ${this.t.grants} WHERE id = $1 AND expires_at > $2 AND NOT tombstone`,
      [id, this.clock.now()],
    );
    return rows[0] && toGrant(rows[0]);
  }

  async getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
    const { rows } = await this.db.query(
      `SELECT rt.token_hash, rt.grant_id, rt.client_id AS rt_client_id, rt.scope AS rt_scope,
         rt.created_at AS rt_created_at, rt.expires_at AS rt_expires_at, rt.rotated_at, rt.successor, g.*
       FROM ${this.t.refresh_tokens} rt JOIN ${this.t.grants} g ON g.id = rt.grant_id
       WHERE rt.token_hash = $1 AND rt.expires_at > $2 AND g.expires_at > $2`,
      [tokenHash, this.clock.now()],
    );
    const r = rows[0];
    if (!r) return undefined;
    const token = toRefreshToken({
      token_hash: r.token_hash,
      grant_id: r.grant_id,
      client_id: r.rt_client_id,
      scope: r.rt_scope,
      created_at: r.rt_created_at,
      expires_at: r.rt_expires_at,
      rotated_at: r.rotated_at,
      successor: r.successor,
    });
    return { token, grant: toGrant(r) };
  }

  async rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    successor: string,
    accessToken: AccessTokenRef,
    now: number,
    graceMs: number,
  ): Promise<RotateResult> {
    // One call: the function (migration 3) runs the steps of the former transaction, each with a fresh snapshot.
    // `next.grantId` is the grant the caller read this token with; a token of another grant is not_found.
    const { rows } = await this.retrying(() =>
      this.db.query<{ o_status: string; o_successor: string | null }>(
        `SELECT o_status, o_successor FROM ${this.fn.rotate}($1, $2, $3, $4, $5, $6, $7, $8, $9::text[], $10, $11, $12, $13)`,
        [
          oldHash,
          next.grantId,
          now,
          this.clock.now(),
          graceMs,
          successor,
          next.tokenHash,
          next.clientId,
          next.scope,
          next.createdAt,
          next.expiresAt,
          accessToken.jti,
          accessToken.expiresAt,
        ],
      ),
    );
    switch (rows[0]?.o_status) {
      case 'rotated':
        return { status: 'rotated' };
      case 'grace':
        return { status: 'grace', successor: rows[0].o_successor ?? '' };
      case 'reused':
        return { status: 'reused', grantId: next.grantId };
      default:
        return { status: 'not_found' };
    }
  }

  async addAccessToken(grantId: string, accessToken: AccessTokenRef): Promise<void> {
    await this.tx(async (tx) => {
      // FOR SHARE holds off a concurrent revokeGrant, so the jti is either copied by it or revoked here.
      const { rows } = await tx.query<{ revoked_at: unknown }>(
        `SELECT revoked_at FROM ${this.t.grants} WHERE id = $1 FOR SHARE`,
        [grantId],
      );
      const g = rows[0];
      if (!g) return;
      await this.insertAccessRef(tx, grantId, accessToken);
      if (g.revoked_at !== null) await this.upsertRevokedJti(tx, accessToken.jti, accessToken.expiresAt);
    });
  }

  async revokeGrant(grantId: string, now: number): Promise<boolean> {
    const clockNow = this.clock.now();
    return this.tx((tx) => this.revokeGrantTx(tx, grantId, now, clockNow));
  }

  async revokeGrantsFor(userId: string, clientId: string, now: number): Promise<number> {
    const clockNow = this.clock.now();
    return this.tx(async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `UPDATE ${this.t.grants} SET revoked_at = $3
         WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL AND expires_at > $4 RETURNING id`,
        [userId, clientId, now, clockNow],
      );
      const ids = rows.map((r) => r.id);
      if (ids.length > 0) await this.dropGrantTokens(tx, ids, clockNow);
      return ids.length;
    });
  }

  // ---- revocation and consent ----

  async revokeAccessToken(jti: string, expiresAt: number): Promise<void> {
    await this.upsertRevokedJti(this.db, jti, expiresAt);
  }

  async isAccessTokenRevoked(jti: string): Promise<boolean> {
    const { rows } = await this.db.query(`SELECT 1 FROM ${this.t.revoked_jtis} WHERE jti = $1 AND expires_at > $2`, [
      jti,
      this.clock.now(),
    ]);
    return rows.length > 0;
  }

  async getConsent(userId: string, clientId: string): Promise<ConsentRecord | undefined> {
    const { rows } = await this.db.query(
      `SELECT * FROM ${this.t.consents} WHERE user_id = $1 AND client_id = $2 AND expires_at > $3`,
      [userId, clientId, this.clock.now()],
    );
    const r = rows[0];
    return (
      r && {
        userId: String(r.user_id),
        clientId: String(r.client_id),
        scope: strings(r.scope),
        resource: strings(r.resource),
        createdAt: Number(r.created_at),
        expiresAt: Number(r.expires_at),
      }
    );
  }

  async saveConsent(c: ConsentRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.t.consents} (user_id, client_id, scope, resource, created_at, expires_at)
       VALUES ($1, $2, $3::text[], $4::text[], $5, $6)
       ON CONFLICT (user_id, client_id) DO UPDATE SET scope = EXCLUDED.scope, resource = EXCLUDED.resource,
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`,
      [c.userId, c.clientId, c.scope, c.resource, c.createdAt, c.expiresAt],
    );
  }

  async deleteConsent(userId: string, clientId: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.t.consents} WHERE user_id = $1 AND client_id = $2`, [userId, clientId]);
  }

  // ---- rate limits ----

  async hitRateLimit(key: string, windowMs: number, now: number): Promise<number> {
    const expiresAt = rateLimitWindowEnd(now, windowMs);
    // One statement, one round trip: concurrent upserts of a key queue on its row lock, and each re-reads the row the
    // previous one committed, so n racing hits return 1..n. An expired row starts over in the current window.
    const { rows } = await this.db.query<{ count: unknown }>(
      `INSERT INTO ${this.t.rate_limits} AS r (key, count, expires_at) VALUES ($1, 1, $3)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN r.expires_at > $2 THEN r.count + 1 ELSE 1 END,
         expires_at = CASE WHEN r.expires_at > $2 THEN r.expires_at ELSE EXCLUDED.expires_at END
       RETURNING count`,
      [key, now, expiresAt],
    );
    return Number(rows[0]?.count);
  }

  async peekRateLimit(key: string, now: number): Promise<number> {
    const { rows } = await this.db.query<{ count: unknown }>(
      `SELECT count FROM ${this.t.rate_limits} WHERE key = $1 AND expires_at > $2`,
      [key, now],
    );
    return rows[0] ? Number(rows[0].count) : 0;
  }

  async resetRateLimit(key: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.t.rate_limits} WHERE key = $1`, [key]);
  }

  // ---- replay guard ----

  async firstUse(key: string, expiresAt: number): Promise<boolean> {
    return sqlFirstUse(this.db, this.t.replay_guard, key, expiresAt, this.clock.now());
  }

  // ---- internals ----

  /** Runs one statement, retrying a few times on deadlock / serialization failure. */
  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (attempt >= 3 || typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
      }
    }
  }

  /** Runs `fn` in a transaction, retrying a few times on deadlock / serialization failure. */
  private async tx<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(fn);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (attempt >= 3 || typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
      }
    }
  }

  /**
   * Marks the grant revoked, or, when there is no such grant (yet), upserts a tombstone row for its id: the primary
   * key makes this and a concurrent createGrant of the id serialise. Then drops a real grant's tokens.
   */
  private async revokeGrantTx(tx: SqlQueryable, grantId: string, now: number, clockNow: number): Promise<boolean> {
    // COALESCE keeps the first revocation time, which makes the call idempotent.
    const { rows } = await tx.query<{ tombstone: boolean }>(
      `INSERT INTO ${this.t.grants} AS g (id, client_id, user_id, scope, resource, auth_time, created_at, expires_at,
         revoked_at, tombstone)
       VALUES ($1, '', '', '{}', '{}', 0, $3, $4, $2, true)
       ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(g.revoked_at, EXCLUDED.revoked_at),
         expires_at = CASE WHEN g.tombstone THEN GREATEST(g.expires_at, EXCLUDED.expires_at) ELSE g.expires_at END
       RETURNING tombstone`,
      [grantId, now, clockNow, clockNow + GRANT_TOMBSTONE_TTL_MS],
    );
    if (rows[0]?.tombstone !== false) return false;
    await this.dropGrantTokens(tx, [grantId], clockNow);
    return true;
  }

  /** Deletes the grants' refresh tokens and copies their live access-token ids to the revocation list. */
  private async dropGrantTokens(tx: SqlQueryable, grantIds: string[], clockNow: number): Promise<void> {
    // One statement: the caller already holds the grant rows' locks, so this snapshot sees every token of theirs.
    await tx.query(
      `WITH dropped AS (DELETE FROM ${this.t.refresh_tokens} WHERE grant_id = ANY($1::text[]))
       INSERT INTO ${this.t.revoked_jtis} (jti, expires_at)
       SELECT jti, max(expires_at) FROM ${this.t.access_token_refs}
       WHERE grant_id = ANY($1::text[]) AND expires_at > $2 GROUP BY jti
       ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(${this.t.revoked_jtis}.expires_at, EXCLUDED.expires_at)`,
      [grantIds, clockNow],
    );
  }

  private async insertAccessRef(tx: SqlQueryable, grantId: string, a: AccessTokenRef): Promise<void> {
    await tx.query(
      `INSERT INTO ${this.t.access_token_refs} (grant_id, jti, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (grant_id, jti) DO UPDATE SET expires_at = GREATEST(${this.t.access_token_refs}.expires_at,
         EXCLUDED.expires_at)`,
      [grantId, a.jti, a.expiresAt],
    );
  }

  private async upsertRevokedJti(q: SqlQueryable, jti: string, expiresAt: number): Promise<void> {
    await q.query(
      `INSERT INTO ${this.t.revoked_jtis} (jti, expires_at) VALUES ($1, $2)
       ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(${this.t.revoked_jtis}.expires_at, EXCLUDED.expires_at)`,
      [jti, expiresAt],
    );
  }

  private async insertKey(tx: SqlQueryable, k: SigningKeyRecord, keepExisting: boolean): Promise<void> {
    await tx.query(
      `INSERT INTO ${this.t.signing_keys} (kid, alg, private_jwk, public_jwk, status, created_at, expires_at)
       VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb, $5, $6, $7)
       ON CONFLICT (kid) DO ${
         keepExisting
           ? 'NOTHING'
           : `UPDATE SET alg = EXCLUDED.alg, private_jwk = EXCLUDED.private_jwk, public_jwk = EXCLUDED.public_jwk,
              status = EXCLUDED.status, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`
       }`,
      [
        k.kid,
        k.alg,
        JSON.stringify(k.privateJwk),
        JSON.stringify(k.publicJwk),
        k.status,
        k.createdAt,
        k.expiresAt ?? null,
      ],
    );
  }

  private async selectKeys(q: SqlQueryable): Promise<SigningKeyRecord[]> {
    const { rows } = await q.query(
      `SELECT * FROM ${this.t.signing_keys}
       WHERE status = 'active' OR expires_at IS NULL OR expires_at > $1
       ORDER BY created_at DESC, kid DESC`,
      [this.clock.now()],
    );
    return rows.map(toKey);
  }

  private async deleteExpired(tx: SqlQueryable): Promise<number> {
    const now = this.clock.now();
    let total = 0;
    // Children before grants so their rows are counted (ON DELETE CASCADE would remove them silently).
    for (const table of [
      'records',
      'authorization_codes',
      'refresh_tokens',
      'access_token_refs',
      'revoked_jtis',
      'consents',
      'grants',
      'rate_limits',
      'replay_guard',
    ] as const) {
      total += (await tx.query(`DELETE FROM ${this.t[table]} WHERE expires_at <= $1`, [now])).rowCount;
    }
    total += (await tx.query(`DELETE FROM ${this.t.signing_keys} WHERE status = 'retired' AND expires_at <= $1`, [now]))
      .rowCount;
    return total;
  }

  private startCleanupTimer(): void {
    if (this.timer || this.cleanupIntervalMs <= 0 || this.closing) return;
    this.timer = setInterval(() => void this.periodicCleanup(), this.cleanupIntervalMs);
    this.timer.unref(); // never keeps the process alive
  }

  /** One replica at a time: the others find the advisory lock taken and skip this round. */
  private async periodicCleanup(): Promise<void> {
    if (this.cleanupRunning || this.closing) return;
    this.cleanupRunning = true;
    try {
      const removed = await this.tx(async (tx) => {
        const { rows } = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [
          lockKey('cleanup', this.schema),
        ]);
        return rows[0]?.ok ? this.deleteExpired(tx) : 0;
      });
      if (removed > 0) this.logger?.info({ removed, schema: this.schema }, 'storage cleanup removed expired rows');
    } catch (err) {
      if (!this.closing) this.logger?.warn({ err }, 'storage cleanup failed');
    } finally {
      this.cleanupRunning = false;
    }
  }
}

// ---- row mapping ----

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

function optString(v: unknown): string | undefined {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a driver value of a text column, never an object
  return v === null || v === undefined ? undefined : String(v);
}

function optNumber(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : Number(v);
}

/** Drops undefined properties so records read back equal the ones saved. */
function compact<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o;
}

function toClient(r: SqlRow): ClientRecord {
  const meta = (r.metadata ?? {}) as Record<string, unknown>;
  const client: ClientRecord = {
    clientId: String(r.client_id),
    clientSecretHash: optString(r.client_secret_hash),
    registrationAccessTokenHash: optString(r.registration_access_token_hash),
    redirectUris: strings(r.redirect_uris),
    grantTypes: strings(r.grant_types),
    responseTypes: strings(r.response_types),
    scope: meta[SCOPE_UNSET] === true ? undefined : strings(r.scope),
    tokenEndpointAuthMethod: String(r.token_endpoint_auth_method) as ClientRecord['tokenEndpointAuthMethod'],
    applicationType: String(r.application_type) as ClientRecord['applicationType'],
    source: String(r.source) as ClientRecord['source'],
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    clientSecretExpiresAt: Number(r.client_secret_expires_at),
  };
  for (const [key, column] of Object.entries(CLIENT_METADATA)) {
    if (meta[column] !== undefined) (client as unknown as Record<string, unknown>)[key] = meta[column];
  }
  return compact(client);
}

function toUser(r: SqlRow): UserRecord {
  return compact({
    id: String(r.id),
    username: String(r.username),
    passwordHash: String(r.password_hash),
    email: optString(r.email),
    emailVerified: r.email_verified === null || r.email_verified === undefined ? undefined : Boolean(r.email_verified),
    name: optString(r.name),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  });
}

function toKey(r: SqlRow): SigningKeyRecord {
  return compact({
    kid: String(r.kid),
    alg: String(r.alg) as SigningKeyRecord['alg'],
    privateJwk: r.private_jwk as Record<string, unknown>,
    publicJwk: r.public_jwk as Record<string, unknown>,
    createdAt: Number(r.created_at),
    status: String(r.status) as SigningKeyRecord['status'],
    expiresAt: optNumber(r.expires_at),
  });
}

/** A jsonb column as a JSON object (pg parses jsonb; PGlite too, but a string is tolerated). */
function jsonObject(value: unknown): JsonObject {
  return (typeof value === 'string' ? JSON.parse(value) : value) as JsonObject;
}

function toCode(r: SqlRow): AuthorizationCodeRecord {
  return compact({
    codeHash: String(r.code_hash),
    grantId: String(r.grant_id),
    clientId: String(r.client_id),
    userId: String(r.user_id),
    redirectUri: String(r.redirect_uri),
    redirectUriSent: r.redirect_uri_sent === true,
    scope: strings(r.scope),
    resource: strings(r.resource),
    codeChallenge: String(r.code_challenge),
    nonce: optString(r.nonce),
    authTime: Number(r.auth_time),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
  });
}

function toGrant(r: SqlRow): GrantRecord {
  return compact({
    id: String(r.id),
    clientId: String(r.client_id),
    userId: String(r.user_id),
    scope: strings(r.scope),
    resource: strings(r.resource),
    authTime: Number(r.auth_time),
    nonce: optString(r.nonce),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    revokedAt: optNumber(r.revoked_at),
  });
}

function toRefreshToken(r: SqlRow): RefreshTokenRecord {
  return compact({
    tokenHash: String(r.token_hash),
    grantId: String(r.grant_id),
    clientId: String(r.client_id),
    scope: strings(r.scope),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    rotatedAt: optNumber(r.rotated_at),
    successor: optString(r.successor),
  });
}
