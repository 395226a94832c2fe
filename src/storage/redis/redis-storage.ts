/**
 * Redis Storage: GATEHOUSE_STORAGE=redis://... or rediss://... (TLS), with Sentinel or Cluster through StoreOptions.
 * Every replica shares one Redis, so every multi-key operation that must be atomic is a Lua script (./scripts.ts)
 * over keys of one hash slot; the key layout and the Cluster slot scheme are in ./keys.ts and docs/storage-redis.md.
 *
 * This class only composes: the connection (./connection.ts) is the context every feature module works on, and each
 * port's methods delegate to the module of that feature (clients, users, signing keys, records, codes, grants,
 * consents, counters, replay guard, tenants).
 *
 * Tenants: forTenant returns a view over the same connection whose context builds the tenant's keys (./keys.ts), so
 * every feature module runs unchanged, with no extra round trip, in any scope.
 */
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
import type { StoreOptions } from '../options.js';
import { RecordBackedStorage } from '../record-ports.js';
import * as clients from './clients.js';
import * as codes from './codes.js';
import { RedisConnection } from './connection.js';
import * as consents from './consents.js';
import * as counters from './counters.js';
import * as grants from './grants.js';
import { DEFAULT_REDIS_KEY_PREFIX, redisKeys } from './keys.js';
import * as listings from './listings.js';
import * as records from './records.js';
import { withKeys, type RedisContext } from './redis-context.js';
import * as replayGuard from './replay-guard.js';
import * as signingKeys from './signing-keys.js';
import * as tenants from './tenants.js';
import * as users from './users.js';

export { DEFAULT_REDIS_KEY_PREFIX } from './keys.js';

/** Tenant views the deployment's store keeps for reuse. */
const MAX_CACHED_VIEWS = 1024;

/** Creates the Redis store for a `redis://` or `rediss://` URL; `init()` connects it. */
export function createRedisStorage(url: string, options: StoreOptions): RedisStorage {
  return new RedisStorage(url, options);
}

/** Storage on Redis (standalone, Sentinel or Cluster), or a tenant's view of it. */
export class RedisStorage extends RecordBackedStorage implements Storage {
  readonly kind = 'redis';

  /** The connection: the deployment's store owns it, its tenants' views share it. */
  private readonly connection: RedisConnection;
  /** What the feature modules work on: the connection itself, or (on a view) the connection with the tenant's keys. */
  private readonly redis: RedisContext;
  /** The deployment's store; undefined on itself. */
  private readonly root: RedisStorage | undefined;
  /** The deployment's store's views, one per tenant (they hold no state, so one serves every caller). */
  private readonly views = new Map<string, RedisStorage>();

  /** A store on its own connection to `url`; or (forTenant) the view of the deployment's store `of` for `tenant`. */
  constructor(url: string, options: StoreOptions);
  constructor(of: RedisStorage, tenant: string);
  constructor(source: string | RedisStorage, scope: StoreOptions | string) {
    super();
    if (typeof source !== 'string') {
      this.root = source.root ?? source;
      this.connection = source.connection;
      // Throws RangeError unless `scope` is a TENANT_ID: the keys' separation of scopes depends on it.
      this.redis = withKeys(source.connection, redisKeys(source.connection.keys.prefix, scope as string));
      return;
    }
    if (!/^rediss?:\/\//i.test(source)) throw new TypeError('Redis storage needs a redis:// or rediss:// URL');
    const options = scope as StoreOptions;
    this.root = undefined;
    this.connection = new RedisConnection(
      source,
      options,
      redisKeys(options.redisKeyPrefix ?? DEFAULT_REDIS_KEY_PREFIX),
    );
    this.redis = this.connection;
  }

  // ---- lifecycle ----

  /**
   * Connects, checks the server answers and upgrades an older layout; throws StorageUnavailableError if it cannot.
   * A no-op on a tenant's view: the deployment's store connects, and tenants' keys never had an older layout.
   */
  async init(): Promise<void> {
    if (this.root === undefined) await this.connection.init();
  }
  /**
   * Redis expires records on its own; this only drops retired signing keys past their expiry: the deployment's store
   * does so in its default scope and in every listed tenant's, a view in its tenant's.
   */
  async cleanup(): Promise<number> {
    let removed = await signingKeys.pruneSigningKeys(this.redis);
    if (this.root !== undefined) return removed;
    for (const id of await tenants.tenantIds(this.redis)) {
      if (isTenantId(id)) removed += await signingKeys.pruneSigningKeys(this.forTenant(id).redis);
    }
    return removed;
  }
  /** Closes the connection; a no-op on a tenant's view (the deployment's store owns the connection). */
  async close(): Promise<void> {
    if (this.root === undefined) await this.connection.close();
  }
  ping(): Promise<void> {
    return this.connection.ping();
  }

  // ---- tenants: the deployment's list in every scope; forTenant views over the same connection ----

  saveTenant(tenant: TenantRecord): Promise<void> {
    return tenants.saveTenant(this.redis, tenant);
  }
  getTenant(id: string): Promise<TenantRecord | undefined> {
    return tenants.getTenant(this.redis, id);
  }
  listTenants(): Promise<TenantRecord[]> {
    return tenants.listTenants(this.redis);
  }
  deleteTenant(id: string): Promise<boolean> {
    return tenants.deleteTenant(this.redis, id);
  }
  /** The view scoped to tenant `id` (a TENANT_ID, else RangeError); on a view, the deployment's view of `id`. */
  forTenant(id: string): RedisStorage {
    const root = this.root ?? this;
    let view = root.views.get(id);
    if (view === undefined) {
      view = new RedisStorage(root, id);
      // Bounded even if a caller scopes to ids it made up: past the limit the cache starts over.
      if (root.views.size >= MAX_CACHED_VIEWS) root.views.clear();
      root.views.set(id, view);
    }
    return view;
  }
  purgeTenant(id: string): Promise<number> {
    (this.root ?? this).views.delete(id);
    return tenants.purgeTenant(this.redis, id);
  }

  // ---- clients ----

  getClient(clientId: string): Promise<ClientRecord | undefined> {
    return clients.getClient(this.redis, clientId);
  }
  saveClient(client: ClientRecord): Promise<void> {
    return clients.saveClient(this.redis, client);
  }
  deleteClient(clientId: string): Promise<boolean> {
    return clients.deleteClient(this.redis, clientId);
  }
  countClients(): Promise<number> {
    return clients.countClients(this.redis);
  }
  listClients(): Promise<ClientRecord[]> {
    return clients.listClients(this.redis);
  }

  // ---- users ----

  getUser(id: string): Promise<UserRecord | undefined> {
    return users.getUser(this.redis, id);
  }
  getUserByUsername(username: string): Promise<UserRecord | undefined> {
    return users.getUserByUsername(this.redis, username);
  }
  saveUser(user: UserRecord): Promise<void> {
    return users.saveUser(this.redis, user);
  }
  deleteUser(id: string): Promise<boolean> {
    return users.deleteUser(this.redis, id);
  }
  listUsers(): Promise<UserRecord[]> {
    return users.listUsers(this.redis);
  }

  // ---- signing keys and secrets ----

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return signingKeys.listSigningKeys(this.redis);
  }
  initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
    return signingKeys.initSigningKeys(this.redis, initial);
  }
  rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void> {
    return signingKeys.rotateSigningKey(this.redis, key, retireUntil);
  }
  getOrCreateSecret(name: string, candidate: string): Promise<string> {
    return signingKeys.getOrCreateSecret(this.redis, name, candidate);
  }

  // ---- expiring records ----

  putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void> {
    return records.putRecord(this.redis, kind, id, value, placement);
  }
  getRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return records.getRecord(this.redis, kind, id);
  }
  takeRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return records.takeRecord(this.redis, kind, id);
  }
  appendToRecord(kind: string, id: string, append: RecordAppend): Promise<void> {
    return records.appendToRecord(this.redis, kind, id, append);
  }
  deleteRecord(kind: string, id: string): Promise<void> {
    return records.deleteRecord(this.redis, kind, id);
  }
  deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number> {
    return records.deleteRecordsOwnedBy(this.redis, owner, kind);
  }

  // ---- authorization codes ----

  saveAuthorizationCode(code: AuthorizationCodeRecord): Promise<void> {
    return codes.saveAuthorizationCode(this.redis, code);
  }
  getAuthorizationCode(codeHash: string): Promise<CodeLookupResult> {
    return codes.getAuthorizationCode(this.redis, codeHash);
  }
  consumeAuthorizationCode(codeHash: string): Promise<ConsumeCodeResult> {
    return codes.consumeAuthorizationCode(this.redis, codeHash);
  }

  // ---- grants, refresh tokens, access token ids, revocations ----

  createGrant(
    grant: GrantRecord,
    refreshToken: RefreshTokenRecord | undefined,
    accessToken: AccessTokenRef,
  ): Promise<{ created: boolean }> {
    return grants.createGrant(this.redis, grant, refreshToken, accessToken);
  }
  getGrant(id: string): Promise<GrantRecord | undefined> {
    return grants.getGrant(this.redis, id);
  }
  getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
    return grants.getRefreshToken(this.redis, tokenHash);
  }
  rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    successor: string,
    accessToken: AccessTokenRef,
    now: number,
    graceMs: number,
  ): Promise<RotateResult> {
    return grants.rotateRefreshToken(this.redis, oldHash, next, successor, accessToken, now, graceMs);
  }
  addAccessToken(grantId: string, accessToken: AccessTokenRef): Promise<void> {
    return grants.addAccessToken(this.redis, grantId, accessToken);
  }
  revokeGrant(grantId: string, now: number): Promise<boolean> {
    return grants.revokeGrant(this.redis, grantId, now);
  }
  revokeGrantsFor(userId: string, clientId: string, now: number): Promise<number> {
    return grants.revokeGrantsFor(this.redis, userId, clientId, now);
  }
  getAccessTokenGrantId(jti: string): Promise<string | undefined> {
    return grants.getAccessTokenGrantId(this.redis, jti);
  }
  revokeAccessToken(jti: string, expiresAt: number): Promise<void> {
    return grants.revokeAccessToken(this.redis, jti, expiresAt);
  }
  isAccessTokenRevoked(jti: string): Promise<boolean> {
    return grants.isAccessTokenRevoked(this.redis, jti);
  }

  // ---- consents ----

  getConsent(userId: string, clientId: string): Promise<ConsentRecord | undefined> {
    return consents.getConsent(this.redis, userId, clientId);
  }
  saveConsent(consent: ConsentRecord): Promise<void> {
    return consents.saveConsent(this.redis, consent);
  }
  deleteConsent(userId: string, clientId: string): Promise<void> {
    return consents.deleteConsent(this.redis, userId, clientId);
  }
  // ---- listings ----

  pageClients(query: ClientQuery): Promise<Page<ClientRecord>> {
    return listings.pageClients(this.redis, query);
  }
  pageUsers(query: UserQuery): Promise<Page<UserRecord>> {
    return listings.pageUsers(this.redis, query);
  }
  listGrantsOfUser(userId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return listings.listGrantsOfUser(this.redis, userId, query);
  }
  listGrantsOfClient(clientId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return listings.listGrantsOfClient(this.redis, clientId, query);
  }
  listConsentsOfUser(userId: string, query: PageQuery): Promise<Page<ConsentRecord>> {
    return listings.listConsentsOfUser(this.redis, userId, query);
  }
  listConsentsOfClient(clientId: string, query: PageQuery): Promise<Page<ConsentRecord>> {
    return listings.listConsentsOfClient(this.redis, clientId, query);
  }

  // ---- rate limits ----

  hitRateLimit(key: string, windowMs: number, now: number): Promise<number> {
    return counters.hitRateLimit(this.redis, key, windowMs, now);
  }
  peekRateLimit(key: string, now: number): Promise<number> {
    return counters.peekRateLimit(this.redis, key, now);
  }
  resetRateLimit(key: string): Promise<void> {
    return counters.resetRateLimit(this.redis, key);
  }

  // ---- replay guard ----

  firstUse(key: string, expiresAt: number): Promise<boolean> {
    return replayGuard.firstUse(this.redis, key, expiresAt);
  }
}
