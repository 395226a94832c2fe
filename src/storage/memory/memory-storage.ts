/**
 * In-process Storage: one Node process, nothing shared, nothing persisted. For development, tests and single-replica
 * deployments. Every map is bounded (see {@link BoundedMap}) so a flood of authorization requests or registrations
 * cannot exhaust memory; expired records are swept by a periodic timer and ignored on read before that. Grants and
 * revocations live in grants.ts, signing keys and secrets in keys.ts, expiring records in records.ts; this class
 * holds the rest and the cascades across them.
 */
import type { Clock } from '../../core/clock.js';
import type { StoreLogger, StoreOptions } from '../options.js';
import type {
  AccessTokenRef,
  AuthorizationCodeRecord,
  CodeLookupResult,
  ClientRecord,
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
import { clientOwner, userOwner } from '../../model/record-kinds.js';
import { RecordBackedStorage } from '../record-ports.js';
import { rateLimitWindowEnd } from '../../model/ports.js';
import { isTenantId } from '../../model/tenants.js';
import { LISTINGS, pageOf, type Listing } from '../paging.js';
import { BoundedMap, SetIndex, copy, type MapLimits } from './bounded-map.js';
import { MemoryGrants } from './grants.js';
import { MemoryKeys } from './keys.js';
import { MemoryRecords } from './records.js';

/** MemoryStorage options: the common store options (its per-map size cap, `maxEntries`, among them). */
export type MemoryStoreOptions = StoreOptions;

const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_CLEANUP_INTERVAL_MS = 60_000;

interface StoredCode {
  code: AuthorizationCodeRecord;
  consumed: boolean;
}

/** A rate-limit counter: hits in the window ending at `expiresAt`. */
interface RateCounter {
  count: number;
  expiresAt: number;
}

/** Unambiguous composite key for (user, client). */
const pairKey = (userId: string, clientId: string): string => JSON.stringify([userId, clientId]);

/** Storage kept in this process's memory (GATEHOUSE_STORAGE=memory). */
export class MemoryStorage extends RecordBackedStorage implements Storage {
  readonly kind = 'memory';

  private readonly clock: Clock;
  private readonly logger: StoreLogger | undefined;
  private readonly cleanupIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;

  private readonly usernames = new Map<string, string>();
  /** Consent keys (pairKey) per user and per client. */
  private readonly consentsByUser = new SetIndex();
  private readonly consentsByClient = new SetIndex();

  private readonly grantStore: MemoryGrants;
  private readonly recordStore: MemoryRecords;
  private readonly keyStore: MemoryKeys;
  private readonly clients: BoundedMap<ClientRecord>;
  private readonly users: BoundedMap<UserRecord>;
  private readonly codes: BoundedMap<StoredCode>;
  private readonly consents: BoundedMap<ConsentRecord>;
  private readonly rateLimits: BoundedMap<RateCounter>;
  /** Replay-guard keys: value = expiry. */
  private readonly replayGuard: BoundedMap<number>;
  private readonly maps: BoundedMap<unknown>[];

  /** The deployment's store: holds the tenant list and the tenants' scopes (per-tenant maps); undefined on itself. */
  private readonly root: MemoryStorage | undefined;
  private readonly options: MemoryStoreOptions;
  private readonly tenants = new Map<string, TenantRecord>();
  private readonly scopes = new Map<string, MemoryStorage>();

  constructor(options: MemoryStoreOptions, root?: MemoryStorage) {
    super();
    this.options = options;
    this.root = root;
    this.clock = options.clock;
    this.logger = options.logger;
    this.cleanupIntervalMs = options.cleanupIntervalMs ?? DEFAULT_CLEANUP_INTERVAL_MS;
    const max = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError('maxEntries must be a positive integer');
    const limits: MapLimits = { max, logger: this.logger };
    const never = (): undefined => undefined;
    const byExpiresAt = (record: { expiresAt: number }): number => record.expiresAt;

    this.grantStore = new MemoryGrants(this.clock, limits);
    this.recordStore = new MemoryRecords(this.clock, limits);
    this.keyStore = new MemoryKeys(this.clock, limits);
    this.clients = new BoundedMap('clients', limits, never);
    this.users = new BoundedMap('users', limits, never, (_id, user) => {
      if (this.usernames.get(user.username) === user.id) this.usernames.delete(user.username);
    });
    // A consumed code stays (as a marker) until its own expiry, so replays are reported as `reused`.
    this.codes = new BoundedMap('codes', limits, (entry) => entry.code.expiresAt);
    this.consents = new BoundedMap<ConsentRecord>('consents', limits, byExpiresAt, (key, consent) => {
      this.consentsByUser.remove(consent.userId, key);
      this.consentsByClient.remove(consent.clientId, key);
    });
    // Full of live counters, it evicts those whose window ends soonest (a flood of distinct keys can thus shorten
    // some lockouts, but never exhaust memory).
    this.rateLimits = new BoundedMap<RateCounter>('rateLimits', limits, byExpiresAt);
    // Full of live keys, it evicts those expiring soonest (as the revocation list does): bounded memory over a
    // perfect memory of every use; what a key guards is refused by its own expiry soon after anyway.
    this.replayGuard = new BoundedMap('replayGuard', limits, (expiresAt) => expiresAt);
    // Grants first, so their cascades run before the token maps are swept.
    this.maps = [
      ...this.grantStore.maps,
      this.clients,
      this.users,
      ...this.keyStore.maps,
      this.recordStore.map,
      this.codes,
      this.consents,
      this.rateLimits,
      this.replayGuard,
    ] as BoundedMap<unknown>[];
  }

  // ---- lifecycle ----

  /** Starts the periodic sweep (idempotent). */
  async init(): Promise<void> {
    if (this.timer !== undefined || this.cleanupIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      try {
        const removed = this.sweepAll();
        if (removed > 0) this.logger?.info({ removed }, 'memory store: swept expired records');
      } catch (err) {
        this.logger?.error({ err }, 'memory store: sweep failed');
      }
    }, this.cleanupIntervalMs);
    // The sweep alone must not keep the process alive.
    this.timer.unref();
  }

  async cleanup(): Promise<number> {
    return this.sweepAll();
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  // ---- tenants: the list lives in the deployment's store, each tenant's items in maps of its own ----

  async saveTenant(tenant: TenantRecord): Promise<void> {
    (this.root ?? this).tenants.set(tenant.id, copy(tenant));
  }

  async getTenant(id: string): Promise<TenantRecord | undefined> {
    return copy((this.root ?? this).tenants.get(id));
  }

  async listTenants(): Promise<TenantRecord[]> {
    return [...(this.root ?? this).tenants.values()].map((t) => copy(t));
  }

  async deleteTenant(id: string): Promise<boolean> {
    return (this.root ?? this).tenants.delete(id);
  }

  forTenant(id: string): MemoryStorage {
    if (!isTenantId(id)) throw new RangeError(`not a tenant id: ${JSON.stringify(id)}`);
    const root = this.root ?? this;
    let scope = root.scopes.get(id);
    if (!scope) {
      // No timer of its own: the deployment store's sweep covers every scope.
      scope = new MemoryStorage({ ...root.options, cleanupIntervalMs: 0 }, root);
      root.scopes.set(id, scope);
    }
    return scope;
  }

  async purgeTenant(id: string): Promise<number> {
    if (!isTenantId(id)) throw new RangeError(`not a tenant id: ${JSON.stringify(id)}`);
    const root = this.root ?? this;
    const scope = root.scopes.get(id);
    if (!scope) return 0;
    root.scopes.delete(id);
    return scope.totalSize();
  }

  async ping(): Promise<void> {}

  /** Record counts per map, for diagnostics and tests. */
  stats(): Record<string, number> {
    return Object.fromEntries(this.maps.map((map) => [map.name, map.size]));
  }

  private sweepAll(): number {
    const now = this.clock.now();
    const before = this.totalSize();
    for (const map of this.maps) map.sweep(now);
    let tenants = 0;
    for (const scope of this.scopes.values()) tenants += scope.sweepAll();
    // Count cascaded removals too (a swept grant's tokens).
    return before - this.totalSize() + tenants;
  }

  private totalSize(): number {
    return this.maps.reduce((sum, map) => sum + map.size, 0);
  }

  // ---- clients ----

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    return copy(this.clients.get(clientId, this.clock.now()));
  }

  async saveClient(client: ClientRecord): Promise<void> {
    this.clients.set(client.clientId, copy(client), this.clock.now());
  }

  async deleteClient(clientId: string): Promise<boolean> {
    const now = this.clock.now();
    const existed = this.clients.delete(clientId);
    // Cascade even if the client row is gone, so nothing issued to that id can outlive it; no await, one step.
    this.grantStore.removeGrantsOfClient(clientId, now);
    for (const key of this.consentsByClient.members(clientId)) this.consents.delete(key);
    for (const [key, entry] of this.codes.live(now)) if (entry.code.clientId === clientId) this.codes.delete(key);
    this.recordStore.deleteOwned(clientOwner(clientId), undefined, now);
    return existed;
  }

  async countClients(): Promise<number> {
    return this.clients.size; // clients never expire
  }

  async listClients(): Promise<ClientRecord[]> {
    return this.clients.live(this.clock.now()).map(([, client]) => copy(client));
  }

  /** Filters and sorts the map (bounded by maxEntries): the memory store keeps no sorted index. */
  async pageClients(query: ClientQuery): Promise<Page<ClientRecord>> {
    const all = this.clients.live(this.clock.now()).map(([, client]) => client);
    let page: Page<ClientRecord>;
    if (query.namePrefix !== undefined && query.namePrefix !== '') {
      const prefix = query.namePrefix.toLowerCase();
      const named = all.filter((c) => c.clientName?.toLowerCase().startsWith(prefix));
      page = pageOf(named, (c) => [(c.clientName ?? '').toLowerCase(), c.clientId], LISTINGS.clientsByName, query);
    } else {
      const prefix = query.idPrefix ?? '';
      const matching = all.filter((c) => c.clientId.startsWith(prefix));
      page = pageOf(matching, (c) => [c.clientId], LISTINGS.clientsById, query);
    }
    return { ...page, items: page.items.map((c) => copy(c)) };
  }

  // ---- users ----

  async getUser(id: string): Promise<UserRecord | undefined> {
    return copy(this.users.get(id, this.clock.now()));
  }

  async getUserByUsername(username: string): Promise<UserRecord | undefined> {
    const id = this.usernames.get(username);
    return id === undefined ? undefined : this.getUser(id);
  }

  async saveUser(user: UserRecord): Promise<void> {
    const owner = this.usernames.get(user.username);
    if (owner !== undefined && owner !== user.id) throw new Error(`username "${user.username}" is taken`);
    const previous = this.users.raw(user.id);
    // Store first: if the map is full this throws before the username index changes.
    this.users.set(user.id, copy(user), this.clock.now());
    if (previous && previous.username !== user.username) this.usernames.delete(previous.username);
    this.usernames.set(user.username, user.id);
  }

  async deleteUser(id: string): Promise<boolean> {
    const now = this.clock.now();
    // Everything of theirs first, the user last (as every store does; see UserStore.deleteUser); no await, one step.
    this.grantStore.revokeGrantsOfUser(id, now);
    for (const key of this.consentsByUser.members(id)) this.consents.delete(key);
    this.recordStore.deleteOwned(userOwner(id), undefined, now);
    return this.users.delete(id);
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.users.live(this.clock.now()).map(([, user]) => copy(user));
  }

  async pageUsers(query: UserQuery): Promise<Page<UserRecord>> {
    const prefix = query.usernamePrefix ?? '';
    const matching = this.users
      .live(this.clock.now())
      .map(([, user]) => user)
      .filter((u) => u.username.startsWith(prefix));
    const page = pageOf(matching, (u) => [u.username], LISTINGS.users, query);
    return { ...page, items: page.items.map((u) => copy(u)) };
  }

  // ---- signing keys and secrets (keys.ts) ----

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.keyStore.listSigningKeys();
  }

  initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
    return this.keyStore.initSigningKeys(initial);
  }

  rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void> {
    return this.keyStore.rotateSigningKey(key, retireUntil);
  }

  getOrCreateSecret(name: string, candidate: string): Promise<string> {
    return this.keyStore.getOrCreateSecret(name, candidate);
  }

  // ---- expiring records (records.ts) ----

  putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void> {
    return this.recordStore.putRecord(kind, id, value, placement);
  }

  getRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return this.recordStore.getRecord(kind, id);
  }

  takeRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return this.recordStore.takeRecord(kind, id);
  }

  appendToRecord(kind: string, id: string, append: RecordAppend): Promise<void> {
    return this.recordStore.appendToRecord(kind, id, append);
  }

  deleteRecord(kind: string, id: string): Promise<void> {
    return this.recordStore.deleteRecord(kind, id);
  }

  deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number> {
    return this.recordStore.deleteRecordsOwnedBy(owner, kind);
  }

  // ---- authorization codes ----

  async saveAuthorizationCode(code: AuthorizationCodeRecord): Promise<void> {
    this.codes.set(code.codeHash, { code: copy(code), consumed: false }, this.clock.now());
  }

  async getAuthorizationCode(codeHash: string): Promise<CodeLookupResult> {
    const entry = this.codes.get(codeHash, this.clock.now());
    if (!entry) return { status: 'not_found' };
    if (entry.consumed) return { status: 'reused', grantId: entry.code.grantId, clientId: entry.code.clientId };
    return { status: 'live', code: copy(entry.code) };
  }

  async consumeAuthorizationCode(codeHash: string): Promise<ConsumeCodeResult> {
    const entry = this.codes.get(codeHash, this.clock.now());
    if (!entry) return { status: 'not_found' };
    if (entry.consumed) return { status: 'reused', grantId: entry.code.grantId, clientId: entry.code.clientId };
    entry.consumed = true;
    return { status: 'consumed', code: copy(entry.code) };
  }

  // ---- grants, refresh tokens, access token ids, revocations (grants.ts) ----

  createGrant(
    grant: GrantRecord,
    refreshToken: RefreshTokenRecord | undefined,
    accessToken: AccessTokenRef,
  ): Promise<{ created: boolean }> {
    return this.grantStore.createGrant(grant, refreshToken, accessToken);
  }

  getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.grantStore.getGrant(id);
  }

  getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
    return this.grantStore.getRefreshToken(tokenHash);
  }

  rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    successor: string,
    accessToken: AccessTokenRef,
    now: number,
    graceMs: number,
  ): Promise<RotateResult> {
    return this.grantStore.rotateRefreshToken(oldHash, next, successor, accessToken, now, graceMs);
  }

  addAccessToken(grantId: string, accessToken: AccessTokenRef): Promise<void> {
    return this.grantStore.addAccessToken(grantId, accessToken);
  }

  revokeGrant(grantId: string, now: number): Promise<boolean> {
    return this.grantStore.revokeGrant(grantId, now);
  }

  revokeGrantsFor(userId: string, clientId: string, now: number): Promise<number> {
    return this.grantStore.revokeGrantsFor(userId, clientId, now);
  }

  getAccessTokenGrantId(jti: string): Promise<string | undefined> {
    return this.grantStore.getAccessTokenGrantId(jti);
  }

  revokeAccessToken(jti: string, expiresAt: number): Promise<void> {
    return this.grantStore.revokeAccessToken(jti, expiresAt);
  }

  isAccessTokenRevoked(jti: string): Promise<boolean> {
    return this.grantStore.isAccessTokenRevoked(jti);
  }

  // ---- consents ----

  async getConsent(userId: string, clientId: string): Promise<ConsentRecord | undefined> {
    return copy(this.consents.get(pairKey(userId, clientId), this.clock.now()));
  }

  async saveConsent(consent: ConsentRecord): Promise<void> {
    const key = pairKey(consent.userId, consent.clientId);
    this.consents.set(key, copy(consent), this.clock.now());
    this.consentsByUser.add(consent.userId, key);
    this.consentsByClient.add(consent.clientId, key);
  }

  listGrantsOfUser(userId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return this.grantStore.listGrantsOfUser(userId, query);
  }

  listGrantsOfClient(clientId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return this.grantStore.listGrantsOfClient(clientId, query);
  }

  async listConsentsOfUser(userId: string, query: PageQuery): Promise<Page<ConsentRecord>> {
    return this.listedConsents(this.consentsByUser.members(userId), (c) => c.clientId, LISTINGS.consentsOfUser, query);
  }

  async listConsentsOfClient(clientId: string, query: PageQuery): Promise<Page<ConsentRecord>> {
    const keys = this.consentsByClient.members(clientId);
    return this.listedConsents(keys, (c) => c.userId, LISTINGS.consentsOfClient, query);
  }

  private listedConsents(
    keys: string[],
    other: (consent: ConsentRecord) => string,
    listing: Listing,
    query: PageQuery,
  ): Page<ConsentRecord> {
    const now = this.clock.now();
    const consents: ConsentRecord[] = [];
    for (const key of keys) {
      const consent = this.consents.get(key, now);
      if (consent) consents.push(consent);
    }
    const page = pageOf(consents, (c) => [c.expiresAt, other(c)], listing, query);
    return { ...page, items: page.items.map((c) => copy(c)) };
  }

  async deleteConsent(userId: string, clientId: string): Promise<void> {
    this.consents.delete(pairKey(userId, clientId));
  }

  // ---- rate limits ----

  async hitRateLimit(key: string, windowMs: number, now: number): Promise<number> {
    const expiresAt = rateLimitWindowEnd(now, windowMs);
    // Read and write run without an await in between: nothing can interleave in one thread.
    const counter = this.rateLimits.get(key, now);
    if (counter) return ++counter.count;
    this.rateLimits.set(key, { count: 1, expiresAt }, now);
    return 1;
  }

  async peekRateLimit(key: string, now: number): Promise<number> {
    return this.rateLimits.get(key, now)?.count ?? 0;
  }

  async resetRateLimit(key: string): Promise<void> {
    this.rateLimits.delete(key);
  }

  // ---- replay guard ----

  async firstUse(key: string, expiresAt: number): Promise<boolean> {
    const now = this.clock.now();
    if (expiresAt <= now) return false;
    // Check and set run without an await in between: nothing can interleave in one thread.
    if (this.replayGuard.get(key, now) !== undefined) return false;
    this.replayGuard.set(key, expiresAt, now);
    return true;
  }
}
