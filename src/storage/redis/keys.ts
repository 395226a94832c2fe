/**
 * The Redis key layout (documented in docs/storage-redis.md). Every key starts with the store's prefix. Keys that one
 * Lua script or MULTI touches together carry the same hash tag, so Redis Cluster puts them in one slot:
 * `{g:<grantId>}` for a grant's family, `{c:<clientId>}` for per-client indexes, `{u:<userId>}` for a user's consents
 * and grant index, `{o:<owner>}` for the index of an owner's expiring records, and `{clients}`, `{users}`, `{keys}`
 * for the small catalogues that are listed or updated as a whole.
 *
 * Tenants: a tenant T's keys carry `T/` at the start of the hash tag (`{T/g:<grantId>}:grant`) or, for keys without a
 * tag, right after the prefix (`T/code:<hash>`); the default scope's keys are those of a store without tenants. No
 * key of one scope can spell a key of another: after the prefix (or after the opening `{`), a tenant id runs up to a
 * `/`, while every default-scope key has a `:` or `}` there before any `/` (`code:`, `{g:`, `{clients}`), and a tenant
 * id (TENANT_ID) never contains `/`. The deployment's tenant list, `{tenants}`, belongs to no scope.
 */
import { isTenantId } from '../../model/tenants.js';

/** Default key prefix. */
export const DEFAULT_REDIS_KEY_PREFIX = 'gatehouse:';

/**
 * Escapes an id that sits inside a hash tag or in the middle of a key, so that no id can close the tag early (`}`)
 * or make two different (id, suffix) pairs spell the same key.
 */
export function keyPart(id: string): string {
  return id.replace(/[%{}:]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The member naming (kind, id) in an owner's index; also the tail of the record's key. */
export function ownedMember(kind: string, id: string): string {
  return `${keyPart(kind)}:${keyPart(id)}`;
}

/** Every key (and key prefix) the Redis store uses, for one key prefix and one scope. */
export interface RedisKeys {
  readonly prefix: string;
  /** The tenant whose keys these are; undefined for the deployment's default scope. */
  readonly tenant: string | undefined;

  /**
   * HASH tenant id -> TenantRecord JSON: the deployment's tenant list. No TTL. Outside every scope: the same key in
   * the default scope's layout and in every tenant's.
   */
  readonly tenants: string;

  /** STRING: client JSON. No TTL. */
  client(clientId: string): string;
  /** SET of client ids (listClients, countClients). No TTL. Same slot as client records. */
  readonly clients: string;
  /** ZSET client id -> 0: the clients by id (pageClients, BYLEX). No TTL. Same slot as client records. */
  readonly clientsById: string;
  /** ZSET `<lower-cased name>\0<client id>` -> 0: named clients by name (pageClients). No TTL. Same slot. */
  readonly clientsByName: string;
  /** HASH client id -> its member of clientsByName (so a rename drops the old one). No TTL. Same slot. */
  readonly clientNames: string;
  /** STRING: version of the data layout under this prefix (absent = written by b1715a8 or earlier). No TTL. */
  readonly layoutVersion: string;

  /** STRING: user JSON. No TTL. */
  user(userId: string): string;
  /** STRING: user id owning a username. No TTL. */
  username(username: string): string;
  /** Prefix of `username()` keys, for Lua (same slot). */
  readonly usernamePrefix: string;
  /** HASH user id -> username: lists users and frees a renamed user's old username. No TTL. */
  readonly users: string;
  /** ZSET `<username>\0<user id>` -> 0: users by username (pageUsers, BYLEX). No TTL. Same slot as users. */
  readonly usersByName: string;

  /** HASH kid -> signing key JSON (without status/expiresAt). No TTL. */
  readonly signingKeys: string;
  /** HASH kid -> `status|alg|expiresAt|seq`. No TTL. */
  readonly signingMeta: string;
  /** STRING counter ordering keys created in the same millisecond. No TTL. */
  readonly signingSeq: string;
  /** STRING: a named server secret. No TTL. */
  secret(name: string): string;

  /** STRING `{"o":owner,"e":expiresAt,"v":value}`: an expiring record of any kind, PX until expiresAt. */
  record(kind: string, id: string): string;
  /** Prefix of `record()` keys: `recordPrefix + ownedMember(kind, id)` is the record's key. */
  readonly recordPrefix: string;
  /** ZSET ownedMember -> expiresAt: the expiring records of one owner (deleteRecordsOwnedBy). PX = latest member. */
  ownedRecords(owner: string): string;
  /** HASH {d, exp, gid, cid, used}: authorization code, PX until expiresAt. */
  code(codeHash: string): string;

  /** HASH {d, exp, rev, used}: grant (used: last rotation). PX until expiresAt (once revoked: until its last access token expires, if later). */
  grant(grantId: string): string;
  /** ZSET token hash -> expiresAt: the grant's refresh tokens. PX = latest member. */
  grantRefreshTokens(grantId: string): string;
  /** HASH {d, exp, rot, suc}: refresh token in its grant's slot. PX until expiresAt. */
  refreshToken(grantId: string, tokenHash: string): string;
  /** Prefix of `refreshToken()` keys of one grant, for Lua (same slot). */
  refreshTokenPrefix(grantId: string): string;
  /** ZSET jti -> expiresAt: access tokens issued under the grant. PX = latest member. */
  grantAccessTokens(grantId: string): string;
  /** STRING: set by revokeGrant on an id that has no grant yet, so a late createGrant stores nothing. PX 10 min. */
  grantTombstone(grantId: string): string;

  /** STRING: grant id of a refresh token (the lookup that finds the grant's slot). PX until the token expires. */
  refreshPointer(tokenHash: string): string;
  /** STRING: grant id of an access token id. PX until the token expires. */
  accessPointer(jti: string): string;
  /** STRING: expiresAt of a revoked access token id. PX until expiresAt. */
  revokedJti(jti: string): string;
  /** HASH {n, exp}: a rate-limit counter (key built and hashed by the caller). PX until its window ends (exp). */
  rateLimit(key: string): string;
  /** STRING: expiresAt of a replay-guard key (built and hashed by the caller). PX until expiresAt. */
  replayGuard(key: string): string;

  /** ZSET grant id -> expiresAt: every grant of a client (deleteClient). PX = latest member. */
  clientGrants(clientId: string): string;
  /** ZSET grant id -> expiresAt: grants of one (user, client) pair (revokeGrantsFor). PX = latest member. */
  userClientGrants(userId: string, clientId: string): string;
  /** ZSET user id -> expiresAt: consents given to a client (deleteClient). PX = latest member. */
  clientConsents(clientId: string): string;
  /** ZSET code hash -> expiresAt: a client's outstanding codes (deleteClient). PX = latest member. */
  clientCodes(clientId: string): string;

  /** STRING: consent JSON, PX until expiresAt. */
  consent(userId: string, clientId: string): string;
  /** Prefix of `consent()` keys of one user, for Lua (same slot). */
  consentPrefix(userId: string): string;
  /** ZSET client id -> expiresAt: a user's consents (deleteUser). PX = latest member. */
  userConsents(userId: string): string;
  /** ZSET grant id -> grant expiresAt: every grant of a user (deleteUser). PX = latest member. */
  userGrants(userId: string): string;
}

/** Escapes `text` for a SCAN MATCH pattern (Redis glob: `*`, `?`, `[...]` and backslash are special). */
export function matchLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The SCAN MATCH patterns of every key of tenant `tenant` under `prefix`: its tagged keys (`{T/...`) and its untagged
 * ones (`T/...`). Nothing of another scope matches (see the header), but a deployment whose prefix is this prefix
 * followed by `T/` or `{T/` would: prefixes shared by several deployments must not nest like that.
 */
export function tenantKeyPatterns(prefix: string, tenant: string): [string, string] {
  const p = matchLiteral(prefix);
  return [`${p}{${tenant}/*`, `${p}${tenant}/*`];
}

/**
 * Builds the key layout for `prefix`, scoped to `tenant` when given (a TENANT_ID; anything else is a RangeError).
 * Without a tenant every key is exactly that of a store without tenants, so existing data stays where it is.
 */
export function redisKeys(prefix: string, tenant?: string): RedisKeys {
  if (tenant !== undefined && !isTenantId(tenant)) throw new RangeError(`not a tenant id: ${JSON.stringify(tenant)}`);
  const scope = tenant === undefined ? '' : `${tenant}/`;
  // Built once per layout: `t` opens the scope's hash tags, `p` starts its untagged keys.
  const t = `${prefix}{${scope}`;
  const p = `${prefix}${scope}`;
  const g = (grantId: string): string => `${t}g:${keyPart(grantId)}}:`;
  const c = (clientId: string): string => `${t}c:${keyPart(clientId)}}:`;
  const u = (userId: string): string => `${t}u:${keyPart(userId)}}:`;
  const clients = `${t}clients}:`;
  const users = `${t}users}:`;
  const keys = `${t}keys}:`;
  return {
    prefix,
    tenant,
    tenants: `${prefix}{tenants}`,
    client: (clientId) => `${clients}c:${clientId}`,
    clients: `${clients}all`,
    clientsById: `${clients}byid`,
    clientsByName: `${clients}byname`,
    clientNames: `${clients}names`,
    layoutVersion: `${clients}layout`,
    user: (userId) => `${users}u:${userId}`,
    username: (username) => `${users}name:${username}`,
    usernamePrefix: `${users}name:`,
    users: `${users}all`,
    usersByName: `${users}byname`,
    signingKeys: `${keys}signing`,
    signingMeta: `${keys}signing:meta`,
    signingSeq: `${keys}signing:seq`,
    secret: (name) => `${p}secret:${name}`,
    record: (kind, id) => `${p}rec:${ownedMember(kind, id)}`,
    recordPrefix: `${p}rec:`,
    ownedRecords: (owner) => `${t}o:${keyPart(owner)}}:recs`,
    code: (codeHash) => `${p}code:${codeHash}`,
    grant: (grantId) => `${g(grantId)}grant`,
    grantRefreshTokens: (grantId) => `${g(grantId)}rts`,
    refreshToken: (grantId, tokenHash) => `${g(grantId)}rt:${tokenHash}`,
    refreshTokenPrefix: (grantId) => `${g(grantId)}rt:`,
    grantAccessTokens: (grantId) => `${g(grantId)}ats`,
    grantTombstone: (grantId) => `${g(grantId)}tomb`,
    refreshPointer: (tokenHash) => `${p}rtp:${tokenHash}`,
    accessPointer: (jti) => `${p}atp:${jti}`,
    revokedJti: (jti) => `${p}rev:${jti}`,
    rateLimit: (key) => `${p}rl:${key}`,
    replayGuard: (key) => `${p}once:${key}`,
    clientGrants: (clientId) => `${c(clientId)}grants`,
    userClientGrants: (userId, clientId) => `${c(clientId)}ugrants:${userId}`,
    clientConsents: (clientId) => `${c(clientId)}consents`,
    clientCodes: (clientId) => `${c(clientId)}codes`,
    consent: (userId, clientId) => `${u(userId)}consent:${clientId}`,
    consentPrefix: (userId) => `${u(userId)}consent:`,
    userConsents: (userId) => `${u(userId)}consents`,
    userGrants: (userId) => `${u(userId)}grants`,
  };
}
