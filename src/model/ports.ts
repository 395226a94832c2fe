/**
 * The Storage interface: everything a second replica needs. Small named interfaces per concern, with `Storage`
 * their intersection; handlers ask for the narrow piece, backends implement the whole, and one contract suite
 * (storage/contract) proves every backend.
 *
 * Conventions for every backend:
 * - Times are epoch milliseconds. Every expiring record has `expiresAt`; reads treat a record whose
 *   `expiresAt <= clock.now()` as absent (so an injected clock drives expiry everywhere), and the backend also
 *   lets the record disappear on its own (Redis PEXPIRE, SQL cleanup job, memory sweep).
 * - Secrets never reach a store in plaintext: codes, refresh tokens and registration tokens are keyed by their
 *   SHA-256 (`*Hash` fields); client secrets are stored as a keyed hash or scrypt hash. Above the store (so no
 *   backend knows): session, interaction and pushed-request ids arrive already hashed (storage/hashed-ids.ts), and
 *   with `encryptionKey` private JWKs and named secrets arrive sealed (core/sealing.ts).
 * - Methods throw StorageUnavailableError (model/errors) when the backend cannot be reached.
 */
import type {
  ClientRecord,
  UserRecord,
  SigningKeyRecord,
  InteractionRecord,
  SessionRecord,
  PushedRequestRecord,
  DeviceAuthorizationRecord,
  DeviceDecisionRecord,
  DeviceUserCodeRecord,
  AuthorizationCodeRecord,
  ConsumeCodeResult,
  CodeLookupResult,
  GrantRecord,
  RefreshTokenRecord,
  AccessTokenRef,
  RotateResult,
  ConsentRecord,
  TenantRecord,
} from './records.js';

/**
 * Paging of the list methods: at most `limit` items (default {@link DEFAULT_PAGE_LIMIT}, capped at
 * {@link MAX_PAGE_LIMIT}), starting after `cursor` (a page's `nextCursor`, opaque; one the store did not make is a
 * {@link InvalidCursorError}).
 */
export interface PageQuery {
  limit?: number;
  cursor?: string;
}

/**
 * One page: `items` in the listing's order and, when more may follow, `nextCursor` for the next call. A page may hold
 * fewer than `limit` items while `nextCursor` is set (an index entry whose record went meanwhile is skipped); the
 * listing ends when `nextCursor` is absent. Items written or deleted while paging may or may not appear.
 */
export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 200;

/** {@link ClientStore.pageClients}: at most one of the two prefixes. */
export interface ClientQuery extends PageQuery {
  idPrefix?: string;
  namePrefix?: string;
}

/** {@link UserStore.pageUsers}. */
export interface UserQuery extends PageQuery {
  usernamePrefix?: string;
}

/** A cursor the store did not hand out (or one of another listing): the caller's mistake, a 400. */
export class InvalidCursorError extends RangeError {
  constructor() {
    super('invalid cursor');
    this.name = 'InvalidCursorError';
  }
}

/** The limit of a page query: DEFAULT_PAGE_LIMIT when absent, within 1..MAX_PAGE_LIMIT. */
export function pageLimit(query: PageQuery): number {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isFinite(limit)) return DEFAULT_PAGE_LIMIT;
  return Math.min(MAX_PAGE_LIMIT, Math.max(1, Math.floor(limit)));
}

/** Encodes a cursor: the sort key of the last item returned, tagged with the listing's name. */
export function encodeCursor(listing: string, key: (string | number)[]): string {
  return Buffer.from(JSON.stringify([listing, ...key]), 'utf8').toString('base64url');
}

/**
 * Decodes a cursor of `listing` whose key has the given shape ('s' string, 'n' number); undefined for no cursor,
 * InvalidCursorError for anything else.
 */
export function decodeCursor(
  listing: string,
  cursor: string | undefined,
  shape: readonly ('s' | 'n')[],
): (string | number)[] | undefined {
  if (cursor === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length + 1 || parsed[0] !== listing) {
    throw new InvalidCursorError();
  }
  const key = parsed.slice(1) as unknown[];
  key.forEach((v, i) => {
    const ok = shape[i] === 's' ? typeof v === 'string' : typeof v === 'number' && Number.isSafeInteger(v);
    if (!ok) throw new InvalidCursorError();
  });
  return key as (string | number)[];
}

export interface ClientStore {
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  /** Inserts or replaces a client. */
  saveClient(client: ClientRecord): Promise<void>;
  /**
   * Deletes a client and everything issued to it: its grants are revoked (as revokeGrant, so their access token ids
   * land on the revocation list) and may then be removed, with their refresh tokens; its consents and the expiring
   * records it owns (clientOwner: pending interactions) are deleted.
   * Returns false if absent.
   */
  deleteClient(clientId: string): Promise<boolean>;
  listClients(): Promise<ClientRecord[]>;
  /**
   * One page of clients (admin API, CLI). Without `namePrefix`: ordered by client id (code-unit order), filtered by
   * `idPrefix` when given. With `namePrefix`: clients whose name, lower-cased, starts with it lower-cased, ordered by
   * (lower-cased name, client id); clients without a name never match. Reads an index, never every client.
   */
  pageClients(query: ClientQuery): Promise<Page<ClientRecord>>;
  /** How many clients are stored (every source): cheap enough to ask on every registration. */
  countClients(): Promise<number>;
}

export interface UserStore {
  getUser(id: string): Promise<UserRecord | undefined>;
  getUserByUsername(username: string): Promise<UserRecord | undefined>;
  /**
   * Inserts or replaces by id. Usernames are unique: saving another id under a taken username throws and stores
   * nothing; renaming a user frees the old username.
   */
  saveUser(user: UserRecord): Promise<void>;
  /**
   * Deletes a user and everything that signs them in or acts for them, identically on every backend:
   * 1. every grant of theirs is revoked as {@link GrantStore.revokeGrant} (refresh tokens gone, recorded access-token
   *    ids on the revocation list until their `exp`; the revoked grants may stay, as revoked, until they expire);
   * 2. every expiring record they own is deleted (deleteRecordsOwnedBy(userOwner(id)): their sessions, so a browser
   *    holding one is signed out);
   * 3. their consents are deleted;
   * 4. the user record goes (the username is free again).
   * The user record goes last and the cascade runs even when it is already gone, so a retry after an interrupted call
   * completes it. SQL runs it in one transaction; memory in one synchronous step; Redis (keys in many slots) as this
   * idempotent sequence. Outstanding authorization codes are not looked up (no backend indexes them by user): the
   * token endpoint refuses a code whose user no longer exists. Returns false if the user was absent.
   */
  deleteUser(id: string): Promise<boolean>;
  listUsers(): Promise<UserRecord[]>;
  /** One page of users ordered by username (code-unit order), filtered by `usernamePrefix` (exact case) when given. */
  pageUsers(query: UserQuery): Promise<Page<UserRecord>>;
}

export interface KeyStore {
  /** All keys, newest first, expired retired keys excluded. */
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /**
   * Atomically: if the store holds no usable key, stores `initial`; then returns the keys. Replicas starting together
   * thus agree on one key set.
   */
  initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]>;
  /** Adds `key` as active and retires every other active key of the same alg until `retireUntil`. */
  rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void>;
  /**
   * A named server secret (cookie signing, keyed hashes), created from `candidate` on first use: every replica
   * gets the same value.
   */
  getOrCreateSecret(name: string, candidate: string): Promise<string>;
}

/** A JSON value as stored in an expiring record. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** The body of an expiring record: one JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Where an expiring record ends and who owns it; see {@link ExpiringRecordStore.putRecord}. */
export interface RecordPlacement {
  /** Epoch ms from which the record reads as absent (by the store's injected clock); the store also drops it then. */
  expiresAt: number;
  /**
   * Who the record belongs to (e.g. `user:<id>`, model/record-kinds.ts `userOwner`): deleteRecordsOwnedBy finds it
   * by this. Opaque to the store.
   */
  owner?: string;
}

/** What {@link ExpiringRecordStore.appendToRecord} appends, and the record it starts when there is none. */
export interface RecordAppend {
  /** The array field of the record the items go to (absent or not an array: it starts empty). */
  field: string;
  /** Appended in order, as far as `maxItems` allows. */
  items: JsonValue[];
  /** Most items `field` holds; the items beyond are not kept but counted into `droppedField`. */
  maxItems: number;
  /** The numeric field counting the items not kept (absent until one is dropped). */
  droppedField: string;
  /** The record put first when (kind, id) is absent or expired; `items` are then appended to it. */
  create: JsonObject;
  /** Where the record ends and who owns it: used only when the append creates it (an append never extends it). */
  placement: RecordPlacement;
}

/**
 * Expiring records by kind: the one primitive behind every short-lived record that needs no bespoke atomicity
 * (interactions, browser sessions, pushed authorization requests, and later pending upstream authorizations, device
 * codes). A record is one JSON object under (kind, id); kinds are registered in model/record-kinds.ts and are opaque
 * strings to the store, so a new kind needs no backend code. Ids arrive as the caller made them (hashed where they are secrets,
 * storage/hashed-ids.ts).
 *
 * TTL is the store's: Redis SET … PX, SQL `expires_at` + the cleanup job, memory sweep; reads treat a record whose
 * `expiresAt <= clock.now()` as absent.
 */
export interface ExpiringRecordStore {
  /** Inserts or replaces the record (kind, id). One with `expiresAt` already past reads as absent at once. */
  putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void>;
  getRecord(kind: string, id: string): Promise<JsonObject | undefined>;
  /**
   * Removes and returns the record in one atomic step: n concurrent takes of one record, from any number of replicas,
   * return it exactly once (the others get undefined).
   */
  takeRecord(kind: string, id: string): Promise<JsonObject | undefined>;
  /**
   * Appends to an array field of the record (kind, id) in one atomic step, without a read by the caller: if the record
   * is absent or expired it is first created as `append.create` with `append.placement`; then `append.items` go to
   * the end of `append.field`, the ones beyond `maxItems` counted into `droppedField`. The record's expiry and owner
   * stay as they are (a flow trace is bounded from its first step). n concurrent appends, from any number of
   * replicas, all land (up to the bound). One store round trip (Redis: two when it creates a record with an owner,
   * as putRecord).
   */
  appendToRecord(kind: string, id: string, append: RecordAppend): Promise<void>;
  /** Removes the record (idempotent). */
  deleteRecord(kind: string, id: string): Promise<void>;
  /**
   * Removes every live record of `owner` (of one kind, or of every kind) and returns how many were removed (expired
   * ones need not count). Redis runs it as an idempotent sequence (the records live in many slots).
   */
  deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number>;
}

/** Pending authorization requests, finished by any replica: expiring records of kind `interaction`. */
export interface InteractionStore {
  /** Inserts or replaces (the interaction is saved again once the user has signed in). */
  saveInteraction(interaction: InteractionRecord): Promise<void>;
  getInteraction(id: string): Promise<InteractionRecord | undefined>;
  /** Removes and returns the interaction (finishing it twice yields undefined the second time). */
  takeInteraction(id: string): Promise<InteractionRecord | undefined>;
}

/** Browser sign-in sessions: expiring records of kind `session`, owned by their user. */
export interface SessionStore {
  saveSession(session: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  deleteSession(id: string): Promise<void>;
  /** Ends every session of a user (sign out everywhere); returns how many ended. */
  deleteSessionsOf(userId: string): Promise<number>;
}

/** Pushed authorization requests (RFC 9126): expiring records of kind `pushed_request`, owned by their client. */
export interface PushedRequestStore {
  savePushedRequest(request: PushedRequestRecord): Promise<void>;
  /** Removes and returns it: of n concurrent takes on any replicas exactly one gets it (a request_uri is used once). */
  takePushedRequest(id: string): Promise<PushedRequestRecord | undefined>;
}

/**
 * The device authorization grant (RFC 8628): expiring records of kinds `device_authorization` and `device_user_code`
 * (owned by their client) and `device_decision` (owned by its user). Callers pass hashes only: the SHA-256 of the
 * device code, the keyed hash of the user code; the store never sees either code.
 */
export interface DeviceAuthorizationStore {
  /** Stores a new device authorization and the lookup record of its user code. */
  saveDeviceAuthorization(authorization: DeviceAuthorizationRecord, userCode: DeviceUserCodeRecord): Promise<void>;
  getDeviceAuthorization(deviceCodeHash: string): Promise<DeviceAuthorizationRecord | undefined>;
  deleteDeviceAuthorization(deviceCodeHash: string): Promise<void>;
  /** Removes and returns the user code's record: of n concurrent takes on any replicas exactly one gets it. */
  takeDeviceUserCode(userCodeHash: string): Promise<DeviceUserCodeRecord | undefined>;
  saveDeviceDecision(decision: DeviceDecisionRecord): Promise<void>;
  getDeviceDecision(deviceCodeHash: string): Promise<DeviceDecisionRecord | undefined>;
  /** Removes and returns the decision: a device code is redeemed once even when replicas race. */
  takeDeviceDecision(deviceCodeHash: string): Promise<DeviceDecisionRecord | undefined>;
}

export interface AuthorizationCodeStore {
  saveAuthorizationCode(code: AuthorizationCodeRecord): Promise<void>;
  /**
   * Reads a code without redeeming it: `live` while unredeemed, `reused` once redeemed, `not_found` when unknown or
   * expired. The token endpoint checks client, redirect_uri and PKCE on this read, so a failed check never uses the
   * code up; the record is never changed after it is saved, so the checks still hold when consume wins.
   */
  getAuthorizationCode(codeHash: string): Promise<CodeLookupResult>;
  /**
   * Atomically redeems a code: returns it the first time (`consumed`), and `reused` with its grant id on every later
   * call until the code expires, even when many replicas race. An expired or unknown code is `not_found`.
   */
  consumeAuthorizationCode(codeHash: string): Promise<ConsumeCodeResult>;
}

export interface GrantStore {
  /**
   * Creates a grant with its first refresh token (optional) and access token id, in one atomic write, unless the id
   * carries a tombstone (revokeGrant was called for it before it existed: its authorization code was replayed while
   * the first redemption was still in flight). Then nothing usable is stored (no live grant, no refresh token, the
   * access token id is revoked or never recorded) and it returns `{ created: false }`; otherwise `{ created: true }`.
   * The tombstone check and the write are one atomic step, across replicas too: of a createGrant and a revokeGrant
   * racing on one id, either the grant is created and then revoked, or it is never created.
   */
  createGrant(
    grant: GrantRecord,
    refreshToken: RefreshTokenRecord | undefined,
    accessToken: AccessTokenRef,
  ): Promise<{ created: boolean }>;
  getGrant(id: string): Promise<GrantRecord | undefined>;
  /** Reads a refresh token with its grant. Rotated tokens are returned too (with rotatedAt), so reuse can be told. */
  getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; grant: GrantRecord } | undefined>;
  /**
   * Atomically rotates `oldHash` into `next` exactly once:
   * - not yet rotated, grant live: marks it rotated at `now` with `successor`, stores `next`, records `accessToken`
   *   under the grant; returns `rotated`.
   * - rotated at most `graceMs` ago: returns `grace` with the winner's sealed successor; stores nothing.
   * - rotated longer ago: revokes the whole grant (as revokeGrant) and returns `reused`.
   * - unknown, expired, or grant revoked: `not_found`.
   */
  rotateRefreshToken(
    oldHash: string,
    next: RefreshTokenRecord,
    successor: string,
    accessToken: AccessTokenRef,
    now: number,
    graceMs: number,
  ): Promise<RotateResult>;
  /** Records another access token issued under a grant (e.g. re-issued without rotation). */
  addAccessToken(grantId: string, accessToken: AccessTokenRef): Promise<void>;
  /**
   * The id of the grant access token `jti` was recorded under (createGrant, rotateRefreshToken, addAccessToken), until
   * the token expires or the grant goes; undefined otherwise (unknown, a machine token, expired). Says nothing about
   * the grant's state: the caller reads it (getGrant) and checks it against the token's own claims.
   */
  getAccessTokenGrantId(jti: string): Promise<string | undefined>;
  /**
   * Revokes a whole grant in one atomic step: marks it revoked, deletes its refresh tokens, and adds the ids of its
   * access tokens to the revocation list. Idempotent. Returns false if the grant is unknown; an unknown id is then
   * recorded as revoked (a tombstone living at least {@link GRANT_TOMBSTONE_TTL_MS}), so a createGrant of that id
   * afterwards stores nothing usable and reports `created: false`. getGrant never returns a tombstone.
   */
  revokeGrant(grantId: string, now: number): Promise<boolean>;
  /**
   * Revokes every live grant of a (user, client) pair, each as {@link revokeGrant}, e.g. when consent is withdrawn
   * (the caller deletes the consent itself with deleteConsent; this leaves consents, sessions and the user alone).
   * Returns how many were revoked now (already revoked or expired ones do not count, so a repeat returns 0).
   */
  revokeGrantsFor(userId: string, clientId: string, now: number): Promise<number>;
  /**
   * One page of a user's grants that have not expired, revoked ones included (with revokedAt; tombstones never),
   * ordered by (expiresAt descending, id descending): about newest first. Reads the user's index, never every grant.
   */
  listGrantsOfUser(userId: string, query: PageQuery): Promise<Page<GrantRecord>>;
  /** As {@link listGrantsOfUser}, for the grants of one client. */
  listGrantsOfClient(clientId: string, query: PageQuery): Promise<Page<GrantRecord>>;
}

export interface RevocationStore {
  /** Marks an access token id revoked until `expiresAt` (after which the token is expired anyway). */
  revokeAccessToken(jti: string, expiresAt: number): Promise<void>;
  isAccessTokenRevoked(jti: string): Promise<boolean>;
}

export interface ConsentStore {
  getConsent(userId: string, clientId: string): Promise<ConsentRecord | undefined>;
  saveConsent(consent: ConsentRecord): Promise<void>;
  /** Deletes that one consent (idempotent). Grants already issued stay: revokeGrantsFor withdraws them. */
  deleteConsent(userId: string, clientId: string): Promise<void>;
  /** One page of a user's live consents, ordered by (expiresAt descending, client id descending). */
  listConsentsOfUser(userId: string, query: PageQuery): Promise<Page<ConsentRecord>>;
  /** One page of the live consents given to a client, ordered by (expiresAt descending, user id descending). */
  listConsentsOfClient(clientId: string, query: PageQuery): Promise<Page<ConsentRecord>>;
}

/**
 * Fixed-window hit counters shared by every replica (login throttling). A counter's window is fixed when the counter
 * is created: it ends at {@link rateLimitWindowEnd}(now, windowMs), the next multiple of `windowMs` since the epoch,
 * so every replica and backend agrees on the boundaries and a caller can compute Retry-After without asking the
 * store. From that end on the counter reads as absent, and the backend drops it on its own (memory sweep, SQL
 * cleanup, Redis PEXPIRE).
 *
 * Keys are opaque strings the caller builds and namespaces (e.g. `login:user:<hash>`); the store never parses them.
 * Never pass a raw username, IP address or other personal data: pass a keyed hash of it, so the store holds nothing
 * that names a person. `now` is the caller's clock (epoch ms): it decides both the window and whether a counter has
 * expired, so an injected clock drives expiry in every backend.
 */
export interface RateLimitStore {
  /**
   * Adds one hit to `key` and returns the count in its current window, this hit included: 1 when no live counter
   * exists (one is created for the window containing `now`), else the previous count + 1 (the counter keeps the
   * window it was created in). One atomic step, across replicas too: n concurrent hits on one key, from any number
   * of replicas, return exactly 1..n in some order. `windowMs` must be a positive integer (RangeError otherwise).
   */
  hitRateLimit(key: string, windowMs: number, now: number): Promise<number>;
  /** The count of `key` in the window live at `now`, or 0 when there is none. Adds nothing. */
  peekRateLimit(key: string, now: number): Promise<number>;
  /** Deletes the counter of `key` (e.g. after a successful sign-in), so the next hit counts 1. Idempotent. */
  resetRateLimit(key: string): Promise<void>;
}

/** Whole seconds (at least 1) from `now` to the end of its window: the Retry-After of a refusal over a limit. */
export function secondsUntilWindowEnd(now: number, windowMs: number): number {
  return Math.max(1, Math.ceil((rateLimitWindowEnd(now, windowMs) - now) / 1000));
}

/**
 * End (epoch ms, exclusive) of the rate-limit window containing `now`: windows are aligned to multiples of
 * `windowMs` since the epoch. Throws RangeError unless `windowMs` is a positive integer.
 */
export function rateLimitWindowEnd(now: number, windowMs: number): number {
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) throw new RangeError('windowMs must be a positive integer');
  return (Math.floor(now / windowMs) + 1) * windowMs;
}

/**
 * Single-use markers shared by every replica: the replay guard behind JWT client assertions and jwt-bearer grant
 * assertions (ID-JAGs, workload tokens), and later DPoP proofs. Keys are opaque strings the caller builds, namespaces and hashes (e.g.
 * `jwt-assertion:<sha256>`); the store never parses them.
 */
export interface ReplayGuard {
  /**
   * Records `key` as used until `expiresAt` (epoch ms) and returns true, unless a live record of it exists: then
   * returns false and changes nothing. One atomic step, across replicas too: n concurrent calls on one key, from any
   * number of replicas, return true exactly once. From `expiresAt` on (by the store's injected clock) the record
   * reads as gone, so the key may be used again; callers make sure whatever the key guards is refused by then on its
   * own (an assertion's `exp`). An `expiresAt` already past is refused (false) and stores nothing: an expired thing
   * has no first use.
   */
  firstUse(key: string, expiresAt: number): Promise<boolean>;
}

/** Backend liveness, for /health and for failing fast with 503. */
export interface StoreHealth {
  /** Round-trips to the backend; throws StorageUnavailableError when it cannot be reached. */
  ping(): Promise<void>;
}

/**
 * What each backend implements: the primitives (expiring records, replay guard, counters) and the bespoke atomic
 * stores (clients, users, keys, codes + grants + refresh rotation, revocation, consents). The contract suite proves
 * every backend (storage/contract).
 */
/**
 * The deployment's list of tenants (model/tenants.ts): what the registry (tenants/registry.ts) serves and the admin API
 * and CLI change. Tenant records live in the deployment's own (default) scope; on a tenant's scoped view these methods
 * still read and write the deployment's list.
 */
export interface TenantStore {
  /** Creates or replaces the tenant `tenant.id`. */
  saveTenant(tenant: TenantRecord): Promise<void>;
  getTenant(id: string): Promise<TenantRecord | undefined>;
  /** Every tenant, in no promised order. */
  listTenants(): Promise<TenantRecord[]>;
  /** Deletes the tenant's record (not its data: see purgeTenant); returns whether it existed. */
  deleteTenant(id: string): Promise<boolean>;
}

/**
 * Tenant scoping, enforced by the backend rather than by callers: a scoped view writes the tenant into every key and
 * row it touches and reads nothing of any other scope (the deployment's default scope included).
 */
export interface TenantScopes {
  /**
   * The same store (same connection) scoped to tenant `id` (TENANT_ID). Cheap to call; closing the view is a no-op
   * (the deployment's store owns the connection). Called on a view, it scopes to `id` again (never nests).
   */
  forTenant(id: string): Storage;
  /**
   * Removes everything tenant `id` owns: clients, users, signing keys, named secrets, expiring records, codes,
   * grants, refresh tokens, access-token references, revocations, consents, counters and replay-guard entries.
   * Nothing of another scope changes. Safe to repeat; returns the number of items removed (keys or rows).
   */
  purgeTenant(id: string): Promise<number>;
}

export interface StorageBackend
  extends
    TenantStore,
    ClientStore,
    UserStore,
    KeyStore,
    ExpiringRecordStore,
    AuthorizationCodeStore,
    GrantStore,
    RevocationStore,
    ConsentStore,
    RateLimitStore,
    ReplayGuard,
    StoreHealth {
  /** A short name for logs and /health: memory, embedded, postgres, redis. */
  readonly kind: string;
  /** Creates tables / scripts; safe to call from many replicas at once. */
  init(): Promise<void>;
  /** Removes expired records now (memory sweep, SQL cleanup). Redis expires on its own. */
  cleanup(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Everything Gatehouse keeps: a backend plus the ports written once over its expiring records
 * (storage/record-ports.ts), so they behave identically on every backend.
 */
export interface Storage
  extends StorageBackend, TenantScopes, InteractionStore, SessionStore, PushedRequestStore, DeviceAuthorizationStore {}
