/**
 * The SQL Storage shared by PostgreSQL (pg) and the embedded store (PGlite), over the executor seam each driver
 * implements (driver.ts). The queries live in one module per feature, each a set of functions over a shared
 * {@link SqlContext}; this class composes them, one line per method. Atomic operations rely on row locks and
 * conditional updates, so they stay exactly-once when many replicas share one database. Lock order is always grant
 * row, then its tokens.
 *
 * Tenants: every row carries a `tenant` (migration 10) and every query filters and writes the context's, so the
 * scoping is the store's, not the callers'. The deployment's store is tenant ''; forTenant returns a view on the same
 * executor whose context names the tenant.
 */
import type { StoreLogger, StoreOptions } from '../options.js';
import type {
  AccessTokenRef,
  AuthorizationCodeRecord,
  ClientRecord,
  CodeLookupResult,
  ConsentRecord,
  ConsumeCodeResult,
  GrantRecord,
  RefreshTokenRecord,
  RotateResult,
  SigningKeyRecord,
  TenantRecord,
  UserRecord,
} from '../../model/records.js';
import type {
  ClientQuery,
  JsonObject,
  Page,
  PageQuery,
  RecordAppend,
  RecordPlacement,
  Storage,
  UserQuery,
} from '../../model/ports.js';
import { isTenantId } from '../../model/tenants.js';
import { RecordBackedStorage } from '../record-ports.js';
import { DEFAULT_CLEANUP_INTERVAL_MS, PeriodicCleanup, cleanup } from './cleanup.js';
import * as clients from './clients.js';
import * as codes from './codes.js';
import * as consents from './consents.js';
import { createSqlContext, scopedContext, type SqlContext } from './context.js';
import * as counters from './counters.js';
import { countingExecutor, type SqlExecutor } from './driver.js';
import * as grants from './grants.js';
import * as keys from './keys.js';
import * as listings from './listings.js';
import { migrate } from './migrations.js';
import * as records from './records.js';
import { sqlFirstUse } from './replay-guard.js';
import * as tenants from './tenants.js';
import * as users from './users.js';

/** Storage over SQL; see {@link SqlExecutor}. `kind` is `postgres` or `embedded`. */
export class SqlStorage extends RecordBackedStorage implements Storage {
  readonly kind: string;
  private readonly ctx: SqlContext;
  private readonly logger: StoreLogger | undefined;
  /** The deployment's store owns the executor and the cleanup timer; a tenant's view has neither (undefined). */
  private readonly periodicCleanup: PeriodicCleanup | undefined;
  /** The deployment's store, on a tenant's view; undefined on the deployment's store itself. */
  private readonly root: SqlStorage | undefined;
  private closing: Promise<void> | undefined;

  constructor(db: SqlExecutor, kind: string, options: StoreOptions);
  /** A tenant's view of `root` (forTenant): same executor, context scoped to `tenant`. */
  constructor(root: SqlStorage, tenant: string);
  constructor(dbOrRoot: SqlExecutor | SqlStorage, kindOrTenant: string, options?: StoreOptions) {
    super();
    if (dbOrRoot instanceof SqlStorage) {
      this.root = dbOrRoot;
      this.kind = dbOrRoot.kind;
      this.ctx = scopedContext(dbOrRoot.ctx, kindOrTenant);
      this.logger = dbOrRoot.logger;
      return;
    }
    const opts = options!;
    this.kind = kindOrTenant;
    const db = opts.onRoundTrip ? countingExecutor(dbOrRoot, opts.onRoundTrip) : dbOrRoot;
    this.ctx = createSqlContext(db, opts.sqlSchema ?? 'public', opts.clock);
    this.logger = opts.logger;
    const intervalMs = opts.cleanupIntervalMs ?? DEFAULT_CLEANUP_INTERVAL_MS;
    this.periodicCleanup = new PeriodicCleanup(this.ctx, intervalMs, opts.logger);
  }

  // ---- lifecycle ----

  /** Migrates and starts the cleanup timer; on a tenant's view a no-op (the deployment's store did both). */
  async init(): Promise<void> {
    if (this.root) return;
    const { db, schema } = this.ctx;
    const applied = await db.transaction((tx) => migrate(tx, schema));
    if (applied.length > 0) this.logger?.info({ schema, versions: applied }, 'storage migrations applied');
    this.periodicCleanup?.start();
  }

  cleanup(): Promise<number> {
    return cleanup(this.ctx);
  }

  async ping(): Promise<void> {
    await this.ctx.db.query('SELECT 1');
  }

  /** Closes the executor; on a tenant's view a no-op (the deployment's store owns the connection). */
  close(): Promise<void> {
    if (this.root) return Promise.resolve();
    this.periodicCleanup?.stop();
    this.closing ??= this.ctx.db.close();
    return this.closing;
  }

  // ---- tenants: the list is the deployment's from every view; scopes are views on the same executor ----

  saveTenant(tenant: TenantRecord): Promise<void> {
    return tenants.saveTenant(this.ctx, tenant);
  }
  getTenant(id: string): Promise<TenantRecord | undefined> {
    return tenants.getTenant(this.ctx, id);
  }
  listTenants(): Promise<TenantRecord[]> {
    return tenants.listTenants(this.ctx);
  }
  deleteTenant(id: string): Promise<boolean> {
    return tenants.deleteTenant(this.ctx, id);
  }
  /** A new view of the deployment's store scoped to `id` (never nested); RangeError unless `id` is a TENANT_ID. */
  forTenant(id: string): SqlStorage {
    // '' would alias the deployment's scope: a view is always of a real tenant.
    if (!isTenantId(id)) throw new RangeError(`not a tenant id: ${JSON.stringify(id)}`);
    return new SqlStorage(this.root ?? this, id);
  }
  purgeTenant(id: string): Promise<number> {
    return tenants.purgeTenant(this.ctx, id);
  }

  // ---- clients ----

  getClient(clientId: string): Promise<ClientRecord | undefined> {
    return clients.getClient(this.ctx, clientId);
  }
  saveClient(client: ClientRecord): Promise<void> {
    return clients.saveClient(this.ctx, client);
  }
  deleteClient(clientId: string): Promise<boolean> {
    return clients.deleteClient(this.ctx, clientId);
  }
  countClients(): Promise<number> {
    return clients.countClients(this.ctx);
  }
  listClients(): Promise<ClientRecord[]> {
    return clients.listClients(this.ctx);
  }

  // ---- users ----

  getUser(id: string): Promise<UserRecord | undefined> {
    return users.getUser(this.ctx, id);
  }
  getUserByUsername(username: string): Promise<UserRecord | undefined> {
    return users.getUserByUsername(this.ctx, username);
  }
  saveUser(user: UserRecord): Promise<void> {
    return users.saveUser(this.ctx, user);
  }
  deleteUser(id: string): Promise<boolean> {
    return users.deleteUser(this.ctx, id);
  }
  listUsers(): Promise<UserRecord[]> {
    return users.listUsers(this.ctx);
  }

  // ---- signing keys and secrets ----

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return keys.listSigningKeys(this.ctx);
  }
  initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
    return keys.initSigningKeys(this.ctx, initial);
  }
  rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void> {
    return keys.rotateSigningKey(this.ctx, key, retireUntil);
  }
  getOrCreateSecret(name: string, candidate: string): Promise<string> {
    return keys.getOrCreateSecret(this.ctx, name, candidate);
  }

  // ---- expiring records (interactions and sessions are kinds of them: RecordBackedStorage) ----

  putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void> {
    return records.putRecord(this.ctx, kind, id, value, placement);
  }
  getRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return records.getRecord(this.ctx, kind, id);
  }
  takeRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return records.takeRecord(this.ctx, kind, id);
  }
  appendToRecord(kind: string, id: string, append: RecordAppend): Promise<void> {
    return records.appendToRecord(this.ctx, kind, id, append);
  }
  deleteRecord(kind: string, id: string): Promise<void> {
    return records.deleteRecord(this.ctx, kind, id);
  }
  deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number> {
    return records.deleteRecordsOwnedBy(this.ctx, owner, kind);
  }

  // ---- authorization codes ----

  saveAuthorizationCode(code: AuthorizationCodeRecord): Promise<void> {
    return codes.saveAuthorizationCode(this.ctx, code);
  }
  getAuthorizationCode(codeHash: string): Promise<CodeLookupResult> {
    return codes.getAuthorizationCode(this.ctx, codeHash);
  }
  consumeAuthorizationCode(codeHash: string): Promise<ConsumeCodeResult> {
    return codes.consumeAuthorizationCode(this.ctx, codeHash);
  }

  // ---- grants, refresh tokens, access-token ids, revocation list ----

  createGrant(
    grant: GrantRecord,
    refreshToken: RefreshTokenRecord | undefined,
    accessToken: AccessTokenRef,
  ): Promise<{ created: boolean }> {
    return grants.createGrant(this.ctx, grant, refreshToken, accessToken);
  }
  getGrant(id: string): Promise<GrantRecord | undefined> {
    return grants.getGrant(this.ctx, id);
  }
  getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
    return grants.getRefreshToken(this.ctx, tokenHash);
  }
  rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    successor: string,
    accessToken: AccessTokenRef,
    now: number,
    graceMs: number,
  ): Promise<RotateResult> {
    return grants.rotateRefreshToken(this.ctx, oldHash, next, successor, accessToken, now, graceMs);
  }
  addAccessToken(grantId: string, accessToken: AccessTokenRef): Promise<void> {
    return grants.addAccessToken(this.ctx, grantId, accessToken);
  }
  revokeGrant(grantId: string, now: number): Promise<boolean> {
    return grants.revokeGrant(this.ctx, grantId, now);
  }
  revokeGrantsFor(userId: string, clientId: string, now: number): Promise<number> {
    return grants.revokeGrantsFor(this.ctx, userId, clientId, now);
  }
  getAccessTokenGrantId(jti: string): Promise<string | undefined> {
    return grants.getAccessTokenGrantId(this.ctx, jti);
  }
  revokeAccessToken(jti: string, expiresAt: number): Promise<void> {
    return grants.revokeAccessToken(this.ctx, jti, expiresAt);
  }
  isAccessTokenRevoked(jti: string): Promise<boolean> {
    return grants.isAccessTokenRevoked(this.ctx, jti);
  }

  // ---- consents ----

  getConsent(userId: string, clientId: string): Promise<ConsentRecord | undefined> {
    return consents.getConsent(this.ctx, userId, clientId);
  }
  saveConsent(consent: ConsentRecord): Promise<void> {
    return consents.saveConsent(this.ctx, consent);
  }
  deleteConsent(userId: string, clientId: string): Promise<void> {
    return consents.deleteConsent(this.ctx, userId, clientId);
  }
  // ---- listings ----

  pageClients(query: ClientQuery): Promise<Page<ClientRecord>> {
    return listings.pageClients(this.ctx, query);
  }
  pageUsers(query: UserQuery): Promise<Page<UserRecord>> {
    return listings.pageUsers(this.ctx, query);
  }
  listGrantsOfUser(userId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return listings.listGrantsOfUser(this.ctx, userId, query);
  }
  listGrantsOfClient(clientId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return listings.listGrantsOfClient(this.ctx, clientId, query);
  }
  listConsentsOfUser(userId: string, query: PageQuery): Promise<Page<ConsentRecord>> {
    return listings.listConsentsOfUser(this.ctx, userId, query);
  }
  listConsentsOfClient(clientId: string, query: PageQuery): Promise<Page<ConsentRecord>> {
    return listings.listConsentsOfClient(this.ctx, clientId, query);
  }

  // ---- rate limits ----

  hitRateLimit(key: string, windowMs: number, now: number): Promise<number> {
    return counters.hitRateLimit(this.ctx, key, windowMs, now);
  }
  peekRateLimit(key: string, now: number): Promise<number> {
    return counters.peekRateLimit(this.ctx, key, now);
  }
  resetRateLimit(key: string): Promise<void> {
    return counters.resetRateLimit(this.ctx, key);
  }

  // ---- replay guard ----

  firstUse(key: string, expiresAt: number): Promise<boolean> {
    return sqlFirstUse(this.ctx.db, this.ctx.t.replay_guard, this.ctx.tenant, key, expiresAt, this.ctx.clock.now());
  }
}
