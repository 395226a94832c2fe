/**
 * In-process Storage: one Node process, nothing shared, nothing persisted. For development, tests and single-replica
 * deployments. Every map is bounded (see {@link BoundedMap}) so a flood of authorization requests or registrations
 * cannot exhaust memory; expired records are swept by a periodic timer and ignored on read before that.
 */
import type { Clock } from '../../core/clock.js';
import { StorageUnavailableError } from '../../model/errors.js';
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
  UserRecord,
} from '../../model/records.js';
import type { JsonObject, RecordPlacement, Storage } from '../../model/ports.js';
import { clientOwner, userOwner } from '../../model/record-kinds.js';
import { RecordBackedStorage } from '../record-ports.js';
import { GRANT_TOMBSTONE_TTL_MS } from '../../model/records.js';
import { rateLimitWindowEnd } from '../../model/ports.js';

/** MemoryStorage options: the common store options plus a per-map size cap. */
export interface MemoryStoreOptions extends StoreOptions {
  /** Most records any single map may hold (default 100000). */
  maxEntries?: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_CLEANUP_INTERVAL_MS = 60_000;

/**
 * A Map with per-entry expiry and a size cap. When a new key would exceed the cap, expired entries are swept first,
 * then the live entries closest to expiry are evicted; entries that never expire (clients, users, secrets) are never
 * evicted, so a map full of them rejects new keys with StorageUnavailableError (503) instead of silently dropping
 * a client or user. `onRemove` runs on every removal so secondary indexes stay in step.
 */
class BoundedMap<V> {
  private readonly entries = new Map<string, V>();

  constructor(
    readonly name: string,
    private readonly max: number,
    private readonly expiryOf: (value: V) => number | undefined,
    private readonly logger: StoreLogger | undefined,
    private readonly onRemove?: (key: string, value: V) => void,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The stored value even if expired (for internal bookkeeping only). */
  raw(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** The value, or undefined when absent or expired (`expiresAt <= now`). */
  get(key: string, now: number): V | undefined {
    const value = this.entries.get(key);
    return value === undefined || this.isExpired(value, now) ? undefined : value;
  }

  set(key: string, value: V, now: number): void {
    if (!this.entries.has(key) && this.entries.size >= this.max) this.makeRoom(now);
    this.entries.set(key, value);
  }

  delete(key: string): boolean {
    const value = this.entries.get(key);
    if (value === undefined) return false;
    this.entries.delete(key);
    this.onRemove?.(key, value);
    return true;
  }

  /** Live entries as a snapshot, so callers may delete while iterating. */
  live(now: number): [string, V][] {
    return [...this.entries].filter(([, value]) => !this.isExpired(value, now));
  }

  /** Removes expired entries; returns how many. */
  sweep(now: number): number {
    let removed = 0;
    for (const [key, value] of [...this.entries]) {
      // An entry may already be gone via another entry's onRemove cascade; count only what this call removed.
      if (this.isExpired(value, now) && this.delete(key)) removed++;
    }
    return removed;
  }

  private isExpired(value: V, now: number): boolean {
    const expiresAt = this.expiryOf(value);
    return expiresAt !== undefined && expiresAt <= now;
  }

  private makeRoom(now: number): void {
    // Free 1% of the capacity at once: a full map then costs one sort per hundred inserts, not a scan per insert.
    const target = this.max - Math.max(1, Math.ceil(this.max / 100));
    this.sweep(now);
    if (this.entries.size > target) {
      // The victims are the expiring entries closest to expiry, ties in insertion order (what a stable sort by
      // expiry gives), found with a linear selection instead of sorting the whole map: at the default cap that
      // sort took ~150 ms on the event loop every thousand inserts.
      const expiries = new Float64Array(this.entries.size);
      let n = 0;
      for (const value of this.entries.values()) {
        const expiresAt = this.expiryOf(value);
        if (expiresAt !== undefined) expiries[n++] = expiresAt;
      }
      const count = Math.min(this.entries.size - target, n);
      const victims: string[] = [];
      if (count > 0) {
        const threshold = kthSmallest(expiries.subarray(0, n), count - 1);
        let ties = count;
        for (let i = 0; i < n; i++) if (expiries[i]! < threshold) ties--;
        for (const [key, value] of this.entries) {
          const expiresAt = this.expiryOf(value);
          if (expiresAt === undefined || expiresAt > threshold) continue;
          if (expiresAt === threshold && ties-- <= 0) continue;
          victims.push(key);
        }
      }
      for (const key of victims) this.delete(key);
      if (victims.length > 0) {
        this.logger?.warn(
          { map: this.name, evicted: victims.length, maxEntries: this.max },
          'memory store full: evicted the live records closest to expiry',
        );
      }
    }
    if (this.entries.size >= this.max) {
      throw new StorageUnavailableError(`memory store is full: ${this.name} holds ${this.max} records`);
    }
  }
}

/** The k-th smallest (0-based) of `values` by quickselect, in linear time on average; reorders `values`. */
function kthSmallest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[lo + ((hi - lo) >> 1)]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k]!;
  }
  return values[k]!;
}

/** One-to-many index (grant id -> refresh token hashes / access token ids). */
class SetIndex {
  private readonly sets = new Map<string, Set<string>>();

  add(key: string, member: string): void {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Set()));
    set.add(member);
  }

  remove(key: string, member: string): void {
    const set = this.sets.get(key);
    if (!set) return;
    set.delete(member);
    if (set.size === 0) this.sets.delete(key);
  }

  /** Members as a snapshot, so callers may remove while iterating. */
  members(key: string): string[] {
    return [...(this.sets.get(key) ?? [])];
  }
}

interface StoredCode {
  code: AuthorizationCodeRecord;
  consumed: boolean;
}

/** An access token id recorded under a live grant, so revoking the grant can revoke it. */
interface StoredAccessToken {
  grantId: string;
  expiresAt: number;
}

/**
 * Deep copy, so no caller ever holds a reference into stored state. Records are plain JSON-like data (strings,
 * numbers, booleans, arrays, plain objects, undefined), so a plain walk does what structuredClone did at about a
 * fifth of the cost; it runs on every read and write.
 */
function copy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(copy) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = copy((value as Record<string, unknown>)[key]);
  return out as T;
}

/** A rate-limit counter: hits in the window ending at `expiresAt`. */
interface RateCounter {
  count: number;
  expiresAt: number;
}

/** An expiring record as kept: its kind (for deleteRecordsOwnedBy's filter), body, expiry and owner. */
interface StoredRecord {
  kind: string;
  value: JsonObject;
  expiresAt: number;
  owner: string | undefined;
}

/** Unambiguous composite key for (kind, id). */
const recordKey = (kind: string, id: string): string => `${kind}\u0000${id}`;

/** Unambiguous composite key for (user, client). */
const pairKey = (userId: string, clientId: string): string => JSON.stringify([userId, clientId]);

/** Storage kept in this process's memory (GATEHOUSE_STORAGE=memory). */
export class MemoryStorage extends RecordBackedStorage implements Storage {
  readonly kind = 'memory';

  private readonly clock: Clock;
  private readonly logger: StoreLogger | undefined;
  private readonly cleanupIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;

  private readonly refreshByGrant = new SetIndex();
  private readonly accessByGrant = new SetIndex();
  private readonly usernames = new Map<string, string>();

  private readonly clients: BoundedMap<ClientRecord>;
  private readonly users: BoundedMap<UserRecord>;
  private readonly signingKeys: BoundedMap<SigningKeyRecord>;
  private readonly secrets: BoundedMap<string>;
  /** Expiring records of every kind, keyed by recordKey(kind, id). */
  private readonly records: BoundedMap<StoredRecord>;
  /** owner -> record keys. */
  private readonly recordsByOwner = new SetIndex();
  private readonly codes: BoundedMap<StoredCode>;
  private readonly grants: BoundedMap<GrantRecord>;
  private readonly refreshTokens: BoundedMap<RefreshTokenRecord>;
  private readonly accessTokens: BoundedMap<StoredAccessToken>;
  private readonly revokedJtis: BoundedMap<number>;
  /** Grant ids revoked before they were created (replayed codes): value = expiry. */
  private readonly grantTombstones: BoundedMap<number>;
  private readonly consents: BoundedMap<ConsentRecord>;
  private readonly rateLimits: BoundedMap<RateCounter>;
  /** Replay-guard keys: value = expiry. */
  private readonly replayGuard: BoundedMap<number>;
  private readonly maps: BoundedMap<unknown>[];

  constructor(options: MemoryStoreOptions) {
    super();
    this.clock = options.clock;
    this.logger = options.logger;
    this.cleanupIntervalMs = options.cleanupIntervalMs ?? DEFAULT_CLEANUP_INTERVAL_MS;
    const max = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError('maxEntries must be a positive integer');
    const log = this.logger;
    const never = (): undefined => undefined;
    const byExpiresAt = (record: { expiresAt: number }): number => record.expiresAt;

    this.clients = new BoundedMap('clients', max, never, log);
    this.users = new BoundedMap('users', max, never, log, (_id, user) => {
      if (this.usernames.get(user.username) === user.id) this.usernames.delete(user.username);
    });
    // Active keys never expire; retired ones leave the JWKS at their expiresAt.
    this.signingKeys = new BoundedMap<SigningKeyRecord>(
      'signingKeys',
      max,
      (key) => (key.status === 'retired' ? key.expiresAt : undefined),
      log,
    );
    this.secrets = new BoundedMap('secrets', max, never, log);
    this.records = new BoundedMap<StoredRecord>('records', max, byExpiresAt, log, (key, record) => {
      if (record.owner !== undefined) this.recordsByOwner.remove(record.owner, key);
    });
    // A consumed code stays (as a marker) until its own expiry, so replays are reported as `reused`.
    this.codes = new BoundedMap('codes', max, (entry) => entry.code.expiresAt, log);
    // A grant that goes (expiry, eviction, client deletion) takes its refresh tokens and access token ids with it.
    this.grants = new BoundedMap<GrantRecord>('grants', max, byExpiresAt, log, (grantId) => {
      for (const hash of this.refreshByGrant.members(grantId)) this.refreshTokens.delete(hash);
      for (const jti of this.accessByGrant.members(grantId)) this.accessTokens.delete(jti);
    });
    this.refreshTokens = new BoundedMap<RefreshTokenRecord>('refreshTokens', max, byExpiresAt, log, (hash, token) =>
      this.refreshByGrant.remove(token.grantId, hash),
    );
    this.accessTokens = new BoundedMap<StoredAccessToken>('grantAccessTokens', max, byExpiresAt, log, (jti, ref) =>
      this.accessByGrant.remove(ref.grantId, jti),
    );
    this.revokedJtis = new BoundedMap('revokedAccessTokens', max, (expiresAt) => expiresAt, log);
    this.grantTombstones = new BoundedMap('grantTombstones', max, (expiresAt) => expiresAt, log);
    this.consents = new BoundedMap<ConsentRecord>('consents', max, byExpiresAt, log);
    // Full of live counters, it evicts those whose window ends soonest (a flood of distinct keys can thus shorten
    // some lockouts, but never exhaust memory).
    this.rateLimits = new BoundedMap<RateCounter>('rateLimits', max, byExpiresAt, log);
    // Full of live keys, it evicts those expiring soonest (as the revocation list does): bounded memory over a
    // perfect memory of every use; what a key guards is refused by its own expiry soon after anyway.
    this.replayGuard = new BoundedMap('replayGuard', max, (expiresAt) => expiresAt, log);
    // Grants first, so their cascades run before the token maps are swept.
    this.maps = [
      this.grants,
      this.clients,
      this.users,
      this.signingKeys,
      this.secrets,
      this.records,
      this.codes,
      this.refreshTokens,
      this.accessTokens,
      this.revokedJtis,
      this.grantTombstones,
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

  async ping(): Promise<void> {}

  /** Record counts per map, for diagnostics and tests. */
  stats(): Record<string, number> {
    return Object.fromEntries(this.maps.map((map) => [map.name, map.size]));
  }

  private sweepAll(): number {
    const now = this.clock.now();
    const before = this.totalSize();
    for (const map of this.maps) map.sweep(now);
    // Count cascaded removals too (a swept grant's tokens).
    return before - this.totalSize();
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
    // Cascade even if the client row is gone, so nothing issued to that id can outlive it.
    for (const [grantId, grant] of this.grants.live(now)) {
      if (grant.clientId !== clientId) continue;
      // Revoke first so the grant's access token ids land on the revocation list, then drop the grant.
      this.revokeGrantNow(grantId, now);
      this.grants.delete(grantId);
    }
    for (const [key, consent] of this.consents.live(now)) if (consent.clientId === clientId) this.consents.delete(key);
    for (const [key, entry] of this.codes.live(now)) if (entry.code.clientId === clientId) this.codes.delete(key);
    this.deleteOwned(clientOwner(clientId), undefined, now);
    return existed;
  }

  async countClients(): Promise<number> {
    return this.clients.size; // clients never expire
  }

  async listClients(): Promise<ClientRecord[]> {
    return this.clients.live(this.clock.now()).map(([, client]) => copy(client));
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
    // Everything of theirs first, the user last (as every store does; see UserStore.deleteUser).
    for (const [grantId, grant] of this.grants.live(now)) if (grant.userId === id) this.revokeGrantNow(grantId, now);
    for (const [key, consent] of this.consents.live(now)) if (consent.userId === id) this.consents.delete(key);
    this.deleteOwned(userOwner(id), undefined, now);
    return this.users.delete(id);
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.users.live(this.clock.now()).map(([, user]) => copy(user));
  }

  // ---- signing keys and secrets ----

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    // Insertion order reversed, then a stable sort: equal createdAt still lists the later-added key first.
    return this.signingKeys
      .live(this.clock.now())
      .map(([, key]) => copy(key))
      .reverse()
      .sort((a, b) => b.createdAt - a.createdAt);
  }

  async initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
    const now = this.clock.now();
    const usable = this.signingKeys.live(now).some(([, key]) => key.status === 'active');
    if (!usable) for (const key of initial) this.signingKeys.set(key.kid, copy(key), now);
    return this.listSigningKeys();
  }

  async rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void> {
    const now = this.clock.now();
    for (const [kid, existing] of this.signingKeys.live(now)) {
      if (kid !== key.kid && existing.status === 'active' && existing.alg === key.alg) {
        this.signingKeys.set(kid, { ...existing, status: 'retired', expiresAt: retireUntil }, now);
      }
    }
    const active: SigningKeyRecord = { ...copy(key), status: 'active' };
    delete active.expiresAt;
    this.signingKeys.set(key.kid, active, now);
  }

  async getOrCreateSecret(name: string, candidate: string): Promise<string> {
    const now = this.clock.now();
    const existing = this.secrets.get(name, now);
    if (existing !== undefined) return existing;
    this.secrets.set(name, candidate, now);
    return candidate;
  }

  // ---- expiring records ----

  async putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void> {
    const key = recordKey(kind, id);
    const now = this.clock.now();
    const previous = this.records.raw(key);
    if (previous?.owner !== undefined && previous.owner !== placement.owner)
      this.recordsByOwner.remove(previous.owner, key);
    this.records.set(key, { kind, value: copy(value), expiresAt: placement.expiresAt, owner: placement.owner }, now);
    if (placement.owner !== undefined) this.recordsByOwner.add(placement.owner, key);
  }

  async getRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return copy(this.records.get(recordKey(kind, id), this.clock.now())?.value);
  }

  async takeRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    const key = recordKey(kind, id);
    const record = this.records.get(key, this.clock.now());
    this.records.delete(key);
    return record?.value;
  }

  async deleteRecord(kind: string, id: string): Promise<void> {
    this.records.delete(recordKey(kind, id));
  }

  async deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number> {
    return this.deleteOwned(owner, kind, this.clock.now());
  }

  private deleteOwned(owner: string, kind: string | undefined, now: number): number {
    let removed = 0;
    for (const key of this.recordsByOwner.members(owner)) {
      const record = this.records.raw(key);
      if (!record || (kind !== undefined && record.kind !== kind)) continue;
      const live = record.expiresAt > now;
      if (this.records.delete(key) && live) removed++;
    }
    return removed;
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

  // ---- grants, refresh tokens, access token ids ----

  async createGrant(
    grant: GrantRecord,
    refreshToken: RefreshTokenRecord | undefined,
    accessToken: AccessTokenRef,
  ): Promise<{ created: boolean }> {
    const now = this.clock.now();
    if (this.grantTombstones.get(grant.id, now) !== undefined) {
      // Revoked before it existed: store nothing, and make sure the access token minted for it is dead.
      this.revokeJti(accessToken.jti, accessToken.expiresAt, now);
      return { created: false };
    }
    this.grants.set(grant.id, copy(grant), now);
    if (refreshToken) this.putRefreshToken(copy(refreshToken), now);
    this.recordAccessToken(grant.id, accessToken, now);
    return { created: true };
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    return copy(this.grants.get(id, this.clock.now()));
  }

  async getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
    const found = this.liveRefreshToken(tokenHash, this.clock.now());
    return found && { token: copy(found.token), grant: copy(found.grant) };
  }

  async rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    successor: string,
    accessToken: AccessTokenRef,
    now: number,
    graceMs: number,
  ): Promise<RotateResult> {
    const current = this.clock.now();
    const found = this.liveRefreshToken(oldHash, current);
    if (!found) return { status: 'not_found' };
    const { token } = found;
    if (token.rotatedAt === undefined) {
      // Mutating the stored record in place is the atomic compare-and-set: nothing can interleave in one thread.
      token.rotatedAt = now;
      token.successor = successor;
      this.putRefreshToken(copy(next), current);
      this.recordAccessToken(token.grantId, accessToken, current);
      return { status: 'rotated' };
    }
    if (now - token.rotatedAt <= graceMs && token.successor !== undefined) {
      return { status: 'grace', successor: token.successor };
    }
    // Replay of an old token after the grace window: treat the family as stolen (RFC 9700 §4.14.2).
    this.revokeGrantNow(token.grantId, now);
    return { status: 'reused', grantId: token.grantId };
  }

  async addAccessToken(grantId: string, accessToken: AccessTokenRef): Promise<void> {
    this.recordAccessToken(grantId, accessToken, this.clock.now());
  }

  async revokeGrant(grantId: string, now: number): Promise<boolean> {
    if (this.revokeGrantNow(grantId, now)) return true;
    // Unknown (yet): leave a tombstone so a late createGrant of this id stores nothing.
    const current = this.clock.now();
    const until = current + GRANT_TOMBSTONE_TTL_MS;
    this.grantTombstones.set(grantId, Math.max(this.grantTombstones.get(grantId, current) ?? 0, until), current);
    return false;
  }

  async revokeGrantsFor(userId: string, clientId: string, now: number): Promise<number> {
    let count = 0;
    for (const [grantId, grant] of this.grants.live(this.clock.now())) {
      if (grant.userId !== userId || grant.clientId !== clientId || grant.revokedAt !== undefined) continue;
      this.revokeGrantNow(grantId, now);
      count++;
    }
    return count;
  }

  /** A refresh token with its grant, if both are live and the grant is not revoked. Returns stored objects. */
  private liveRefreshToken(hash: string, now: number): { token: RefreshTokenRecord; grant: GrantRecord } | undefined {
    const token = this.refreshTokens.get(hash, now);
    if (!token) return undefined;
    const grant = this.grants.get(token.grantId, now);
    if (!grant || grant.revokedAt !== undefined) return undefined;
    return { token, grant };
  }

  private putRefreshToken(token: RefreshTokenRecord, now: number): void {
    this.refreshTokens.set(token.tokenHash, token, now);
    this.refreshByGrant.add(token.grantId, token.tokenHash);
  }

  private recordAccessToken(grantId: string, ref: AccessTokenRef, now: number): void {
    if (ref.expiresAt <= now) return;
    const grant = this.grants.get(grantId, now);
    if (!grant) return;
    // A token issued under an already-revoked grant (a race with revocation) is born revoked.
    if (grant.revokedAt !== undefined) {
      this.revokeJti(ref.jti, ref.expiresAt, now);
      return;
    }
    this.accessTokens.set(ref.jti, { grantId, expiresAt: ref.expiresAt }, now);
    this.accessByGrant.add(grantId, ref.jti);
  }

  private revokeGrantNow(grantId: string, now: number): boolean {
    const current = this.clock.now();
    const grant = this.grants.get(grantId, current);
    if (!grant) return false;
    grant.revokedAt ??= now;
    for (const hash of this.refreshByGrant.members(grantId)) this.refreshTokens.delete(hash);
    for (const jti of this.accessByGrant.members(grantId)) {
      const ref = this.accessTokens.get(jti, current);
      if (ref) this.revokeJti(jti, ref.expiresAt, current);
      this.accessTokens.delete(jti);
    }
    // The revoked grant itself stays until its expiresAt, so getGrant reports revokedAt.
    return true;
  }

  // ---- revocations ----

  async revokeAccessToken(jti: string, expiresAt: number): Promise<void> {
    this.revokeJti(jti, expiresAt, this.clock.now());
  }

  async isAccessTokenRevoked(jti: string): Promise<boolean> {
    return this.revokedJtis.get(jti, this.clock.now()) !== undefined;
  }

  private revokeJti(jti: string, expiresAt: number, now: number): void {
    // Already expired tokens need no entry; a second revocation never shortens the first.
    if (expiresAt <= now) return;
    const existing = this.revokedJtis.get(jti, now);
    this.revokedJtis.set(jti, Math.max(existing ?? 0, expiresAt), now);
  }

  // ---- consents ----

  async getConsent(userId: string, clientId: string): Promise<ConsentRecord | undefined> {
    return copy(this.consents.get(pairKey(userId, clientId), this.clock.now()));
  }

  async saveConsent(consent: ConsentRecord): Promise<void> {
    this.consents.set(pairKey(consent.userId, consent.clientId), copy(consent), this.clock.now());
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
