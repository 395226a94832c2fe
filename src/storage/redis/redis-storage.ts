/**
 * Redis Storage: GATEHOUSE_STORAGE=redis://... or rediss://... (TLS), with Sentinel or Cluster through StoreOptions.
 * Every replica shares one Redis, so every multi-key operation that must be atomic is a Lua script (./scripts.ts)
 * over keys of one hash slot; the key layout and the Cluster slot scheme are in ./keys.ts and docs/storage-redis.md.
 *
 * Expiry: each expiring record is written with a PX computed from `expiresAt - clock.now()` (so Redis drops it on its
 * own), and every read checks `expiresAt` against the injected clock too (so a ManualClock drives expiry in tests).
 *
 * Availability: the client never queues or replays commands while disconnected. A call made while Redis is down
 * fails at once with StorageUnavailableError (503 upstream); ioredis keeps reconnecting in the background, and the
 * connection state is logged once per change, not per request.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
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
import { keyPart, ownedMember, redisKeys, type RedisKeys } from './keys.js';
import { SCRIPTS, type ScriptName } from './scripts.js';

/** Default key prefix. */
export const DEFAULT_REDIS_KEY_PREFIX = 'gatehouse:';

/** How long init() waits for the first connection, and one command for its reply, before giving up. */
const CONNECT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 5_000;
/** Fan-out of cascades (deleteClient, revokeGrantsFor) and the size of MGET batches. */
const BATCH = 100;
/** Data layout this code reads and writes (see upgradeLayout). */
const LAYOUT_VERSION = 2;

/**
 * Replies that mean "Redis is there but cannot serve now" (loading, failover, cluster resharding, out of memory,
 * persistence failing): reported as unavailability, like a lost connection, not as a bug.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|OOM)\b/;

type Client = Redis | Cluster;
type ScriptArg = string | number;
type ScriptCommands = Record<ScriptName, (...args: ScriptArg[]) => Promise<unknown>>;

/** Creates the Redis store for a `redis://` or `rediss://` URL; `init()` connects it. */
export function createRedisStorage(url: string, options: StoreOptions): RedisStorage {
  return new RedisStorage(url, options);
}

/** Storage on Redis (standalone, Sentinel or Cluster). */
/** A stored expiring record: owner (null when none), expiresAt, body. */
interface StoredRecord {
  o: string | null;
  e: number;
  v: JsonObject;
}

export class RedisStorage extends RecordBackedStorage implements Storage {
  readonly kind = 'redis';

  private readonly url: string;
  private readonly options: StoreOptions;
  private readonly clock: Clock;
  private readonly logger: StoreLogger | undefined;
  private readonly keys: RedisKeys;
  private client: Client;
  /** Connection state as last logged, so each change is logged once. */
  private link: 'unknown' | 'up' | 'down' = 'unknown';
  /** Per-node state on Cluster, logged the same way. */
  private readonly nodeLinks = new Map<string, 'up' | 'down'>();
  private closing = false;
  /** The last socket error, so a failed first connect reports ECONNREFUSED rather than "Connection is closed." */
  private lastError: unknown;

  constructor(url: string, options: StoreOptions) {
    super();
    if (!/^rediss?:\/\//i.test(url)) throw new TypeError('Redis storage needs a redis:// or rediss:// URL');
    this.url = url;
    this.options = options;
    this.clock = options.clock;
    this.logger = options.logger;
    this.keys = redisKeys(options.redisKeyPrefix ?? DEFAULT_REDIS_KEY_PREFIX);
    this.client = this.createClient();
  }

  // ---- lifecycle ----

  /** Connects and checks the server answers; throws StorageUnavailableError if it cannot within a few seconds. */
  async init(): Promise<void> {
    this.closing = false;
    this.lastError = undefined;
    try {
      const client = this.client;
      if (client.status === 'wait' || client.status === 'end') {
        await withTimeout(client.connect(), CONNECT_TIMEOUT_MS, 'connect');
      }
      await client.ping();
      await this.upgradeLayout();
    } catch (err) {
      this.linkDown(err);
      // A client whose first connect failed would keep a reconnect timer alive for a store the caller gives up on;
      // drop it, and let a later init() start over with a fresh one.
      const failed = this.client;
      this.client = this.createClient();
      failed.disconnect();
      const reason = this.lastError ?? err;
      this.lastError = undefined;
      throw new StorageUnavailableError(`redis: cannot connect (${errorMessage(reason)})`, { cause: reason });
    }
  }

  /**
   * Brings data written by an older release to this layout, once per prefix (idempotent, so replicas starting
   * together may both run it). Layout 2: b1715a8 stored a client without a scope allow-list as `scope: []`; since
   * then that is an absent `scope`, and [] means "nothing". And b1715a8 kept no per-user grant index: deleteUser
   * would miss that release's grants, so each client's grant index is copied into its users' (grant expiry as score).
   */
  private async upgradeLayout(): Promise<void> {
    const k = this.keys;
    if (Number(await this.client.get(k.layoutVersion)) >= LAYOUT_VERSION) return;
    const ids = await this.client.smembers(k.clients);
    for (let i = 0; i < ids.length; i += BATCH) {
      const keys = ids.slice(i, i + BATCH).map((id) => k.client(id));
      const values = await this.client.mget(keys);
      for (const [j, value] of values.entries()) {
        if (value === null) continue;
        const record = JSON.parse(value) as ClientRecord;
        if (!Array.isArray(record.scope) || record.scope.length > 0) continue;
        delete record.scope;
        await this.script('replaceIfUnchanged', [keys[j]!], [this.clock.now(), value, JSON.stringify(record)]);
      }
    }
    for (const clientId of ids) {
      const entries = await this.client.zrange(k.clientGrants(clientId), 0, -1, 'WITHSCORES');
      for (let i = 0; i < entries.length; i += 2) {
        const grantId = entries[i]!;
        const data = await this.client.hget(k.grant(grantId), 'd');
        if (data === null) continue;
        const { userId } = JSON.parse(data) as { userId: string };
        await this.script('indexAdd', [k.userGrants(userId)], [this.clock.now(), grantId, entries[i + 1]!]);
      }
    }
    await this.client.set(k.layoutVersion, String(LAYOUT_VERSION));
  }

  /** Redis expires records on its own; this only drops retired signing keys past their expiry. */
  async cleanup(): Promise<number> {
    const removed = await this.script<number>(
      'pruneSigningKeys',
      [this.keys.signingKeys, this.keys.signingMeta],
      [this.clock.now()],
    );
    return Number(removed);
  }

  async close(): Promise<void> {
    this.closing = true;
    const client = this.client;
    if (client.status === 'ready') {
      try {
        await client.quit();
        return;
      } catch {
        // Fall through: the connection is going anyway.
      }
    }
    client.disconnect();
  }

  async ping(): Promise<void> {
    await this.guard(() => this.client.ping());
  }

  // ---- clients ----

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    return parse<ClientRecord>(await this.guard(() => this.client.get(this.keys.client(clientId))));
  }

  async saveClient(client: ClientRecord): Promise<void> {
    await this.exec(
      this.client
        .multi()
        .set(this.keys.client(client.clientId), JSON.stringify(client))
        .sadd(this.keys.clients, client.clientId),
    );
  }

  async deleteClient(clientId: string): Promise<boolean> {
    const k = this.keys;
    const now = this.clock.now();
    const [deleted] = await this.exec(this.client.multi().del(k.client(clientId)).srem(k.clients, clientId));
    // Cascade even when the client record is gone, so nothing issued to that id outlives it.
    const grantIds = await this.guard(() => this.client.zrange(k.clientGrants(clientId), 0, -1));
    const userIds = new Set<string>();
    await inBatches(grantIds, async (grantId) => {
      const userId = await this.purgeGrant(grantId, now);
      if (userId !== undefined) userIds.add(userId);
    });
    const consentUsers = await this.guard(() => this.client.zrange(k.clientConsents(clientId), 0, -1));
    await inBatches(consentUsers, (userId) =>
      this.script('putIndexed', [k.consent(userId, clientId), k.userConsents(userId)], [now, '', 0, clientId]),
    );
    // Codes and the client's records (pending interactions) live outside the client's slot.
    const codes = await this.guard(() => this.client.zrange(k.clientCodes(clientId), 0, -1));
    await inBatches(codes, (h) => this.guard(() => this.client.del(k.code(h))));
    await this.deleteOwned(clientOwner(clientId), undefined, now);
    const indexes = [k.clientGrants(clientId), k.clientConsents(clientId), k.clientCodes(clientId)];
    for (const userId of userIds) indexes.push(k.userClientGrants(userId, clientId));
    await this.guard(() => this.client.del(...indexes));
    return deleted === 1;
  }

  async countClients(): Promise<number> {
    return this.guard(() => this.client.scard(this.keys.clients));
  }

  async listClients(): Promise<ClientRecord[]> {
    const ids = await this.guard(() => this.client.smembers(this.keys.clients));
    const clients = await this.mget<ClientRecord>(ids.map((id) => this.keys.client(id)));
    return clients.sort((a, b) => a.createdAt - b.createdAt || compare(a.clientId, b.clientId));
  }

  // ---- users ----

  async getUser(id: string): Promise<UserRecord | undefined> {
    return parse<UserRecord>(await this.guard(() => this.client.get(this.keys.user(id))));
  }

  async getUserByUsername(username: string): Promise<UserRecord | undefined> {
    const id = await this.guard(() => this.client.get(this.keys.username(username)));
    if (id === null) return undefined;
    const user = await this.getUser(id);
    return user?.username === username ? user : undefined;
  }

  async saveUser(user: UserRecord): Promise<void> {
    const k = this.keys;
    const saved = await this.script<number>(
      'saveUser',
      [k.user(user.id), k.username(user.username), k.users],
      [this.clock.now(), user.id, JSON.stringify(user), user.username, k.usernamePrefix],
    );
    if (saved !== 1) throw new Error(`username "${user.username}" is taken`);
  }

  /**
   * Spans slots (grants, sessions, consents, the user catalogue), so it is a sequence, not one script: each step is
   * idempotent and the user record goes last, so an interrupted call leaves the user in place and a retry completes it.
   */
  async deleteUser(id: string): Promise<boolean> {
    const k = this.keys;
    const now = this.clock.now();
    // 1. Every grant of theirs, as revokeGrant. With a tombstone: a grant whose index entry is written but whose
    // createGrant has not run yet (a code redeemed right now) is then never created.
    const grantIds = await this.guard(() => this.client.zrange(k.userGrants(id), 0, -1));
    await inBatches(grantIds, (grantId) => this.revoke(grantId, now, true));
    // 2. Their records (sessions; each key in its own slot), then the index.
    await this.deleteOwned(userOwner(id), undefined, now);
    // 3. Their consents leave the clients' indexes, then go with the user's index.
    const clientIds = await this.guard(() => this.client.zrange(k.userConsents(id), 0, -1));
    await inBatches(clientIds, (clientId) => this.script('indexRemove', [k.clientConsents(clientId)], [now, id]));
    await this.script<string[]>('dropIndexed', [k.userConsents(id)], [now, k.consentPrefix(id)]);
    // 4. The user.
    const existed = await this.script<number>('deleteUser', [k.user(id), k.users], [now, id, k.usernamePrefix]);
    return existed === 1;
  }

  async listUsers(): Promise<UserRecord[]> {
    const ids = await this.guard(() => this.client.hkeys(this.keys.users));
    const users = await this.mget<UserRecord>(ids.map((id) => this.keys.user(id)));
    return users.sort((a, b) => a.createdAt - b.createdAt || compare(a.id, b.id));
  }

  // ---- signing keys and secrets ----

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const k = this.keys;
    const [records, meta] = await Promise.all([
      this.guard(() => this.client.hgetall(k.signingKeys)),
      this.guard(() => this.client.hgetall(k.signingMeta)),
    ]);
    const now = this.clock.now();
    const keys: { key: SigningKeyRecord; seq: number }[] = [];
    for (const [kid, json] of Object.entries(records)) {
      const state = parseSigningMeta(meta[kid]);
      if (!state) continue;
      if (state.status === 'retired' && state.expiresAt !== undefined && state.expiresAt <= now) continue;
      const key: SigningKeyRecord = { ...(JSON.parse(json) as SigningKeyRecord), status: state.status };
      if (state.expiresAt !== undefined) key.expiresAt = state.expiresAt;
      keys.push({ key, seq: state.seq });
    }
    // Newest first; among keys created in the same millisecond, the one added last.
    return keys.sort((a, b) => b.key.createdAt - a.key.createdAt || b.seq - a.seq).map((entry) => entry.key);
  }

  async initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
    const k = this.keys;
    const args: ScriptArg[] = [this.clock.now()];
    for (const key of initial) {
      const expiresAt = key.status === 'retired' && key.expiresAt !== undefined ? String(key.expiresAt) : '';
      args.push(key.kid, signingJson(key), key.status, key.alg, expiresAt);
    }
    await this.script('initSigningKeys', [k.signingKeys, k.signingMeta, k.signingSeq], args);
    return this.listSigningKeys();
  }

  async rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void> {
    const k = this.keys;
    await this.script(
      'rotateSigningKey',
      [k.signingKeys, k.signingMeta, k.signingSeq],
      [this.clock.now(), key.kid, signingJson(key), key.alg, retireUntil],
    );
  }

  async getOrCreateSecret(name: string, candidate: string): Promise<string> {
    return this.script<string>('getOrCreateSecret', [this.keys.secret(name)], [this.clock.now(), candidate]);
  }

  // ---- expiring records ----

  async putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void> {
    const now = this.clock.now();
    const ttl = ttlMs(placement.expiresAt, now);
    const key = this.keys.record(kind, id);
    if (ttl === undefined) {
      await this.guard(() => this.client.del(key));
      return;
    }
    const envelope: StoredRecord = { o: placement.owner ?? null, e: placement.expiresAt, v: value };
    await this.guard(() => this.client.set(key, JSON.stringify(envelope), 'PX', ttl));
    // After the record, so the index over-approximates (deleteRecordsOwnedBy checks the owner in the record).
    if (placement.owner !== undefined) {
      await this.script(
        'indexAdd',
        [this.keys.ownedRecords(placement.owner)],
        [now, ownedMember(kind, id), placement.expiresAt],
      );
    }
  }

  async getRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return this.liveRecord(await this.guard(() => this.client.get(this.keys.record(kind, id))));
  }

  async takeRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    // GETDEL is the atomic take; the owner index keeps a stale member until it expires or is pruned.
    return this.liveRecord(await this.guard(() => this.client.getdel(this.keys.record(kind, id))));
  }

  async deleteRecord(kind: string, id: string): Promise<void> {
    await this.guard(() => this.client.del(this.keys.record(kind, id)));
  }

  async deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number> {
    return this.deleteOwned(owner, kind, this.clock.now());
  }

  /** Deletes an owner's live records (each key in its own slot) as an idempotent sequence, then their index entries. */
  private async deleteOwned(owner: string, kind: string | undefined, now: number): Promise<number> {
    const index = this.keys.ownedRecords(owner);
    const all = await this.guard(() => this.client.zrangebyscore(index, `(${now}`, '+inf'));
    const prefix = kind === undefined ? undefined : `${keyPart(kind)}:`;
    const members = prefix === undefined ? all : all.filter((m) => m.startsWith(prefix));
    let removed = 0;
    await inBatches(members, async (member) => {
      const deleted = await this.script<number>('deleteOwnedRecord', [this.keys.recordPrefix + member], [now, owner]);
      removed += deleted;
    });
    if (kind === undefined) await this.guard(() => this.client.del(index));
    else if (members.length > 0) await this.script('indexRemove', [index], [now, ...members]);
    return removed;
  }

  /** The body of a stored record envelope, if it has not expired by the injected clock. */
  private liveRecord(json: string | null): JsonObject | undefined {
    const record = parse<StoredRecord>(json);
    return record !== undefined && record.e > this.clock.now() ? record.v : undefined;
  }

  // ---- authorization codes ----

  async saveAuthorizationCode(code: AuthorizationCodeRecord): Promise<void> {
    const now = this.clock.now();
    const key = this.keys.code(code.codeHash);
    const ttl = ttlMs(code.expiresAt, now);
    if (ttl === undefined) {
      await this.guard(() => this.client.del(key));
      return;
    }
    await this.exec(
      this.client
        .multi()
        .del(key)
        .hset(key, { d: JSON.stringify(code), exp: code.expiresAt, gid: code.grantId, cid: code.clientId })
        .pexpire(key, ttl),
    );
    await this.script('indexAdd', [this.keys.clientCodes(code.clientId)], [now, code.codeHash, code.expiresAt]);
  }

  async getAuthorizationCode(codeHash: string): Promise<CodeLookupResult> {
    // One HMGET: the same fields consumeCode reads, without the write.
    const [exp, used, gid, cid, d] = await this.guard(() =>
      this.client.hmget(this.keys.code(codeHash), 'exp', 'used', 'gid', 'cid', 'd'),
    );
    if (!exp || Number(exp) <= this.clock.now()) return { status: 'not_found' };
    if (used) return { status: 'reused', grantId: gid ?? '', clientId: cid ?? '' };
    return { status: 'live', code: JSON.parse(d ?? '') as AuthorizationCodeRecord };
  }

  async consumeAuthorizationCode(codeHash: string): Promise<ConsumeCodeResult> {
    const reply = await this.script<string[]>('consumeCode', [this.keys.code(codeHash)], [this.clock.now()]);
    switch (reply[0]) {
      case 'consumed':
        return { status: 'consumed', code: JSON.parse(reply[1] ?? '') as AuthorizationCodeRecord };
      case 'reused':
        return { status: 'reused', grantId: reply[1] ?? '', clientId: reply[2] ?? '' };
      default:
        return { status: 'not_found' };
    }
  }

  // ---- grants, refresh tokens, access token ids ----

  async createGrant(
    grant: GrantRecord,
    refreshToken: RefreshTokenRecord | undefined,
    accessToken: AccessTokenRef,
  ): Promise<{ created: boolean }> {
    const k = this.keys;
    const now = this.clock.now();
    // An already-expired grant would read as absent; storing it would only leave keys behind.
    if (grant.expiresAt <= now) return { created: true };
    // Pointers, grant and the client and user indexes in one round trip. Nobody can look the new refresh token or jti
    // up before this call returns (the caller has not handed them out yet), so they need not precede the grant.
    const { revokedAt, ...stored } = grant;
    const [, , status] = await Promise.all([
      refreshToken && this.setPointer(k.refreshPointer(refreshToken.tokenHash), grant.id, refreshToken.expiresAt, now),
      this.setPointer(k.accessPointer(accessToken.jti), grant.id, accessToken.expiresAt, now),
      this.script<number>(
        'createGrant',
        [
          k.grant(grant.id),
          k.grantRefreshTokens(grant.id),
          k.grantAccessTokens(grant.id),
          k.refreshToken(grant.id, refreshToken?.tokenHash ?? ''),
          k.grantTombstone(grant.id),
        ],
        [
          now,
          JSON.stringify(stored),
          grant.expiresAt,
          revokedAt ?? '',
          refreshToken?.tokenHash ?? '',
          refreshToken ? refreshTokenJson(refreshToken) : '',
          refreshToken?.expiresAt ?? 0,
          accessToken.jti,
          accessToken.expiresAt,
        ],
      ),
      this.script(
        'indexAdd',
        [k.clientGrants(grant.clientId), k.userClientGrants(grant.userId, grant.clientId)],
        [now, grant.id, grant.expiresAt],
      ),
      this.script('indexAdd', [k.userGrants(grant.userId)], [now, grant.id, grant.expiresAt]),
    ]);
    if (Number(status) !== -1) return { created: true };
    // Revoked before it existed (a replayed code): nothing was written in the grant's slot. Undo the rest, and put
    // the jti minted for it on the revocation list.
    await Promise.all([
      refreshToken ? this.dropKey(k.refreshPointer(refreshToken.tokenHash)) : undefined,
      this.dropKey(k.accessPointer(accessToken.jti)),
      this.script(
        'indexRemove',
        [k.clientGrants(grant.clientId), k.userClientGrants(grant.userId, grant.clientId)],
        [now, grant.id],
      ),
      this.script('indexRemove', [k.userGrants(grant.userId)], [now, grant.id]),
      this.revokeAccessToken(accessToken.jti, accessToken.expiresAt),
    ]);
    return { created: false };
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    return toGrant(await this.guard(() => this.client.hgetall(this.keys.grant(id))), this.clock.now());
  }

  async getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined> {
    const grantId = await this.guard(() => this.client.get(this.keys.refreshPointer(tokenHash)));
    if (grantId === null) return undefined;
    const [tokenHashFields, grantFields] = await Promise.all([
      this.guard(() => this.client.hgetall(this.keys.refreshToken(grantId, tokenHash))),
      this.guard(() => this.client.hgetall(this.keys.grant(grantId))),
    ]);
    const now = this.clock.now();
    const token = toRefreshToken(tokenHashFields, now);
    const grant = toGrant(grantFields, now);
    // A revoked grant's tokens are gone (revokeGrant deletes them); say so even if one is read mid-revocation.
    if (!token || !grant || grant.revokedAt !== undefined) return undefined;
    return { token, grant };
  }

  async rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    successor: string,
    accessToken: AccessTokenRef,
    now: number,
    graceMs: number,
  ): Promise<RotateResult> {
    const k = this.keys;
    const current = this.clock.now();
    // The caller read `next.grantId` from this very token (getRefreshToken), so no pointer lookup: the old token's
    // key lives in that grant's slot, and the script finds nothing (not_found) if the token is not that grant's.
    const grantId = next.grantId;
    // Pointers and script in one round trip: nobody can present the new token or jti before this call returns. If
    // the rotation loses, they point at a grant that never lists them, which reads as absent, and are dropped below.
    const [, , reply] = await Promise.all([
      this.setPointer(k.refreshPointer(next.tokenHash), grantId, next.expiresAt, current),
      this.setPointer(k.accessPointer(accessToken.jti), grantId, accessToken.expiresAt, current),
      this.script<[string, ...unknown[]]>(
        'rotateRefreshToken',
        [
          k.grant(grantId),
          k.grantRefreshTokens(grantId),
          k.grantAccessTokens(grantId),
          k.refreshToken(grantId, oldHash),
          k.refreshToken(grantId, next.tokenHash),
        ],
        [
          current,
          now,
          graceMs,
          k.refreshTokenPrefix(grantId),
          next.tokenHash,
          refreshTokenJson(next),
          next.expiresAt,
          successor,
          accessToken.jti,
          accessToken.expiresAt,
        ],
      ),
    ]);
    if (reply[0] === 'rotated') return { status: 'rotated' };
    // The losing attempt's pointers lead nowhere; drop them rather than leave them for the token's lifetime.
    await Promise.all([
      this.dropKey(k.refreshPointer(next.tokenHash)),
      this.dropKey(k.accessPointer(accessToken.jti)),
      ...(reply[0] === 'reused' ? this.dropPointers((reply[1] as string[] | undefined) ?? []) : []),
    ]);
    if (reply[0] === 'grace') return { status: 'grace', successor: String(reply[1]) };
    if (reply[0] === 'reused') return { status: 'reused', grantId };
    return { status: 'not_found' };
  }

  async addAccessToken(grantId: string, accessToken: AccessTokenRef): Promise<void> {
    const k = this.keys;
    const now = this.clock.now();
    if (accessToken.expiresAt <= now) return;
    const pointer = k.accessPointer(accessToken.jti);
    await this.setPointer(pointer, grantId, accessToken.expiresAt, now);
    const recorded = await this.script<number>(
      'addAccessToken',
      [k.grant(grantId), k.grantAccessTokens(grantId)],
      [now, accessToken.jti, accessToken.expiresAt],
    );
    // Unknown grant: nothing was recorded, so the pointer leads nowhere.
    if (recorded !== 1) await this.dropKey(pointer);
  }

  async revokeGrant(grantId: string, now: number): Promise<boolean> {
    const { status } = await this.revoke(grantId, now, true);
    return status !== 0;
  }

  async revokeGrantsFor(userId: string, clientId: string, now: number): Promise<number> {
    const grantIds = await this.guard(() => this.client.zrange(this.keys.userClientGrants(userId, clientId), 0, -1));
    let revoked = 0;
    await inBatches(grantIds, async (grantId) => {
      if ((await this.revoke(grantId, now)).status === 1) revoked++;
    });
    return revoked;
  }

  // ---- revocations ----

  async revokeAccessToken(jti: string, expiresAt: number): Promise<void> {
    await this.script('revokeJti', [this.keys.revokedJti(jti)], [this.clock.now(), expiresAt]);
  }

  async isAccessTokenRevoked(jti: string): Promise<boolean> {
    const k = this.keys;
    const now = this.clock.now();
    const [revokedUntil, grantId] = await Promise.all([
      this.guard(() => this.client.get(k.revokedJti(jti))),
      this.guard(() => this.client.get(k.accessPointer(jti))),
    ]);
    if (revokedUntil !== null && Number(revokedUntil) > now) return true;
    if (grantId === null) return false;
    // Tokens of a revoked grant read as revoked from the grant itself: revokeGrant marks them in one atomic step.
    const revoked = await this.script<number>(
      'grantJtiRevoked',
      [k.grant(grantId), k.grantAccessTokens(grantId)],
      [now, jti],
    );
    return revoked === 1;
  }

  // ---- consents ----

  async getConsent(userId: string, clientId: string): Promise<ConsentRecord | undefined> {
    return this.live(
      parse<ConsentRecord>(await this.guard(() => this.client.get(this.keys.consent(userId, clientId)))),
    );
  }

  async saveConsent(consent: ConsentRecord): Promise<void> {
    const k = this.keys;
    const now = this.clock.now();
    const { userId, clientId } = consent;
    await this.script(
      'putIndexed',
      [k.consent(userId, clientId), k.userConsents(userId)],
      [now, JSON.stringify(consent), consent.expiresAt, clientId],
    );
    await this.script('indexAdd', [k.clientConsents(clientId)], [now, userId, consent.expiresAt]);
  }

  async deleteConsent(userId: string, clientId: string): Promise<void> {
    const k = this.keys;
    const now = this.clock.now();
    await this.script('putIndexed', [k.consent(userId, clientId), k.userConsents(userId)], [now, '', 0, clientId]);
    await this.script('indexRemove', [k.clientConsents(clientId)], [now, userId]);
  }

  // ---- rate limits ----

  async hitRateLimit(key: string, windowMs: number, now: number): Promise<number> {
    const windowEnd = rateLimitWindowEnd(now, windowMs);
    return Number(await this.script<number>('hitRateLimit', [this.keys.rateLimit(key)], [now, windowEnd]));
  }

  async peekRateLimit(key: string, now: number): Promise<number> {
    const [count, exp] = await this.guard(() => this.client.hmget(this.keys.rateLimit(key), 'n', 'exp'));
    return count !== null && exp !== null && Number(exp) > now ? Number(count) : 0;
  }

  async resetRateLimit(key: string): Promise<void> {
    await this.guard(() => this.client.del(this.keys.rateLimit(key)));
  }

  // ---- replay guard ----

  async firstUse(key: string, expiresAt: number): Promise<boolean> {
    const now = this.clock.now();
    if (expiresAt <= now) return false;
    return (await this.script<number>('firstUse', [this.keys.replayGuard(key)], [now, expiresAt])) === 1;
  }

  // ---- internals ----

  /** Runs revokeGrant's script and drops the deleted tokens' pointers. */
  private async revoke(
    grantId: string,
    now: number,
    tombstone = false,
  ): Promise<{ status: number; jtis: [string, number][]; grant: string }> {
    const k = this.keys;
    const [status, hashes, pairs, grant] = await this.script<[number, string[], string[], string]>(
      'revokeGrant',
      [k.grant(grantId), k.grantRefreshTokens(grantId), k.grantAccessTokens(grantId), k.grantTombstone(grantId)],
      [this.clock.now(), now, k.refreshTokenPrefix(grantId), tombstone ? GRANT_TOMBSTONE_TTL_MS : ''],
    );
    await Promise.all(this.dropPointers(hashes));
    const jtis: [string, number][] = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) jtis.push([pairs[i] as string, Number(pairs[i + 1])]);
    return { status: Number(status), jtis, grant };
  }

  /**
   * Removes a grant for good (deleteClient): revoke it first, so its access tokens read as revoked at every moment,
   * copy those jtis onto the revocation list, which outlives the grant, then delete the grant's keys.
   * Returns the grant's user id, if the grant was live.
   */
  private async purgeGrant(grantId: string, now: number): Promise<string | undefined> {
    const k = this.keys;
    const { jtis, grant } = await this.revoke(grantId, now);
    await Promise.all(jtis.map(([jti, expiresAt]) => this.revokeAccessToken(jti, expiresAt)));
    await this.guard(() =>
      this.client.del(k.grant(grantId), k.grantRefreshTokens(grantId), k.grantAccessTokens(grantId)),
    );
    if (grant === '') return undefined;
    const { userId } = JSON.parse(grant) as GrantRecord;
    await this.script('indexRemove', [k.userGrants(userId)], [now, grantId]);
    return userId;
  }

  /** Deletes refresh-token pointers whose tokens are gone. */
  private dropPointers(hashes: string[]): Promise<void>[] {
    return hashes.map((hash) => this.dropKey(this.keys.refreshPointer(hash)));
  }

  /** Best-effort delete of a key that leads nowhere; a leftover one still expires with its token. */
  private async dropKey(key: string): Promise<void> {
    await this.client.del(key).catch(() => 0);
  }

  private async setPointer(key: string, grantId: string, expiresAt: number, now: number): Promise<void> {
    const ttl = ttlMs(expiresAt, now);
    if (ttl !== undefined) await this.guard(() => this.client.set(key, grantId, 'PX', ttl));
  }

  /** SET a JSON record with PX until its expiresAt (or delete it when that has passed). */
  private async setExpiring(key: string, record: { expiresAt: number }, now: number): Promise<void> {
    const ttl = ttlMs(record.expiresAt, now);
    if (ttl === undefined) await this.guard(() => this.client.del(key));
    else await this.guard(() => this.client.set(key, JSON.stringify(record), 'PX', ttl));
  }

  /** The record if it has not expired by the injected clock. */
  private live<T extends { expiresAt: number }>(record: T | undefined): T | undefined {
    return record !== undefined && record.expiresAt > this.clock.now() ? record : undefined;
  }

  /** MGET in batches (keys of one slot), skipping missing records. */
  private async mget<T>(keys: string[]): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < keys.length; i += BATCH) {
      const values = await this.guard(() => this.client.mget(keys.slice(i, i + BATCH)));
      for (const value of values) if (value !== null) out.push(JSON.parse(value) as T);
    }
    return out;
  }

  private async exec(multi: ReturnType<Client['multi']>): Promise<unknown[]> {
    const results = await this.guard(() => multi.exec());
    if (results === null) throw new StorageUnavailableError('redis: transaction aborted');
    return results.map(([err, value]) => {
      if (err) throw this.translate(err);
      return value;
    });
  }

  private script<T = unknown>(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<T> {
    const commands = this.client as unknown as ScriptCommands;
    return this.guard(() => commands[name].call(this.client, keys.length, ...keys, ...args) as Promise<T>);
  }

  /** Runs one Redis call, turning "Redis cannot be reached" into StorageUnavailableError. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): unknown {
    if (!(err instanceof Error) || err instanceof StorageUnavailableError) return err;
    // A reply error is Redis answering: a bug (WRONGTYPE, script error) unless it is one of the transient states.
    if (err.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message)) return err;
    if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return err;
    // Anything else is ioredis failing to talk to Redis: closed or unwritable stream, timeout, retries exhausted.
    return new StorageUnavailableError(`redis: ${err.message}`, { cause: err });
  }

  private createClient(): Client {
    const client = connectRedis(this.url, this.options);
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { lua });
    client.on('ready', () => this.linkUp());
    client.on('error', (err: unknown) => {
      this.lastError = err;
      this.linkDown(err);
    });
    client.on('close', () => this.linkDown(undefined));
    if (client instanceof Cluster) {
      // One node can fail while the cluster as a whole stays up: track and log each node on its own.
      client.on('+node', (node: Redis) => {
        node.on('ready', () => this.nodeUp(`${node.options.host ?? ''}:${node.options.port ?? ''}`));
      });
      client.on('node error', (err: unknown, key: string) => this.nodeDown(key, err));
    }
    return client;
  }

  private nodeUp(node: string): void {
    if (this.nodeLinks.get(node) === 'down')
      this.logger?.info({ store: 'redis', node }, 'redis: cluster node restored');
    this.nodeLinks.set(node, 'up');
  }

  private nodeDown(node: string, err: unknown): void {
    if (this.closing || this.nodeLinks.get(node) === 'down') return;
    this.nodeLinks.set(node, 'down');
    this.logger?.error(
      { store: 'redis', node, err: errorMessage(err) },
      'redis: cluster node unreachable; calls for its slots fail with StorageUnavailableError until it returns',
    );
  }

  private linkUp(): void {
    if (this.link === 'down') this.logger?.info({ store: 'redis' }, 'redis: connection restored');
    else if (this.link === 'unknown') this.logger?.info({ store: 'redis' }, 'redis: connected');
    this.link = 'up';
  }

  private linkDown(err: unknown): void {
    if (this.closing || this.link === 'down') return;
    this.link = 'down';
    this.logger?.error(
      { store: 'redis', err: err === undefined ? undefined : errorMessage(err) },
      'redis: connection lost; storage calls fail with StorageUnavailableError until it returns',
    );
  }
}

// ---- connection ----

/** Builds the ioredis client: fail fast while disconnected, never replay a command, reconnect forever. */
function connectRedis(url: string, options: StoreOptions): Client {
  const prefix = options.redisKeyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
  const common: RedisOptions = {
    lazyConnect: true,
    // Fail fast: no queue while disconnected, and in-flight commands fail on a drop instead of being resent
    // after reconnect (a resent consume or rotate could run twice and report reuse to the caller that won).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Shows in CLIENT LIST which deployment a connection belongs to.
    connectionName: `gatehouse:${prefix}`.replace(/[^\x21-\x7e]/g, '_'),
    // After a failover the old master answers READONLY: reconnect so Sentinel or the cluster map leads to the new one.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
  const retry = (times: number): number => Math.min(100 * 2 ** Math.min(times - 1, 5), 2_000);
  const parsed = new URL(url);
  const tls = parsed.protocol.toLowerCase() === 'rediss:' ? {} : undefined;
  const auth: RedisOptions = {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(tls ? { tls } : {}),
  };

  if (options.redisCluster) {
    const { retryStrategy: _retry, ...nodeOptions } = { ...common, ...auth };
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retry,
      redisOptions: nodeOptions,
    };
    return new Cluster(options.redisCluster.nodes, clusterOptions);
  }
  if (options.redisSentinel) {
    const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
    return new Redis({
      ...common,
      ...auth,
      db,
      sentinels: options.redisSentinel.sentinels,
      name: options.redisSentinel.name,
      retryStrategy: retry,
      sentinelRetryStrategy: retry,
      enableTLSForSentinelMode: tls !== undefined,
    });
  }
  return new Redis(url, { ...common, retryStrategy: retry });
}

// ---- encoding ----

/** Milliseconds until `expiresAt`, or undefined when it has passed (the record is already absent). */
function ttlMs(expiresAt: number, now: number): number | undefined {
  const ttl = Math.ceil(expiresAt - now);
  return ttl > 0 ? ttl : undefined;
}

function parse<T>(json: string | null): T | undefined {
  return json === null ? undefined : (JSON.parse(json) as T);
}

/** A refresh token's immutable part; rotatedAt and successor live in their own hash fields (set by the script). */
function refreshTokenJson(token: RefreshTokenRecord): string {
  const { rotatedAt: _rotatedAt, successor: _successor, ...rest } = token;
  return JSON.stringify(rest);
}

/** A signing key without status and expiresAt, which live in the meta hash so scripts can change them. */
function signingJson(key: SigningKeyRecord): string {
  const { status: _status, expiresAt: _expiresAt, ...rest } = key;
  return JSON.stringify(rest);
}

function parseSigningMeta(
  value: string | undefined,
): { status: SigningKeyRecord['status']; expiresAt: number | undefined; seq: number } | undefined {
  const match = value === undefined ? null : /^(active|retired)\|[^|]*\|([^|]*)\|(\d+)$/.exec(value);
  if (!match) return undefined;
  return {
    status: match[1] as SigningKeyRecord['status'],
    expiresAt: match[2] ? Number(match[2]) : undefined,
    seq: Number(match[3]),
  };
}

function toGrant(fields: Record<string, string>, now: number): GrantRecord | undefined {
  if (fields.d === undefined || fields.exp === undefined || Number(fields.exp) <= now) return undefined;
  const grant = JSON.parse(fields.d) as GrantRecord;
  if (fields.rev !== undefined) grant.revokedAt = Number(fields.rev);
  return grant;
}

function toRefreshToken(fields: Record<string, string>, now: number): RefreshTokenRecord | undefined {
  if (fields.d === undefined || fields.exp === undefined || Number(fields.exp) <= now) return undefined;
  const token = JSON.parse(fields.d) as RefreshTokenRecord;
  if (fields.rot !== undefined) token.rotatedAt = Number(fields.rot);
  if (fields.suc !== undefined) token.successor = fields.suc;
  return token;
}

// ---- small helpers ----

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn` over `items`, at most BATCH at a time. */
async function inBatches<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += BATCH) await Promise.all(items.slice(i, i + BATCH).map(fn));
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
