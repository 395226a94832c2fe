/**
 * The memory store's grants: each grant with its refresh tokens and recorded access token ids, the revocation list,
 * and the tombstones of grants revoked before they were created. Every operation runs without an await inside, so
 * it is atomic in one thread.
 */
import type { Clock } from '../../core/clock.js';
import type { GrantStore, Page, PageQuery, RevocationStore } from '../../model/ports.js';
import type { AccessTokenRef, GrantRecord, RefreshTokenRecord, RotateResult } from '../../model/records.js';
import { GRANT_TOMBSTONE_TTL_MS } from '../../model/records.js';
import { LISTINGS, pageOf, type Listing } from '../paging.js';
import { BoundedMap, SetIndex, copy, type MapLimits } from './bounded-map.js';

/** An access token id recorded under a live grant, so revoking the grant can revoke it. */
interface StoredAccessToken {
  grantId: string;
  expiresAt: number;
}

/** Grants, refresh tokens, access token ids and revocations, for MemoryStorage. */
export class MemoryGrants implements GrantStore, RevocationStore {
  private readonly refreshByGrant = new SetIndex();
  private readonly accessByGrant = new SetIndex();
  /** Grant ids per user and per client (the listings; revokeGrantsFor and the cascades). */
  private readonly grantsByUser = new SetIndex();
  private readonly grantsByClient = new SetIndex();

  private readonly grants: BoundedMap<GrantRecord>;
  private readonly refreshTokens: BoundedMap<RefreshTokenRecord>;
  private readonly accessTokens: BoundedMap<StoredAccessToken>;
  private readonly revokedJtis: BoundedMap<number>;
  /** Grant ids revoked before they were created (replayed codes): value = expiry. */
  private readonly grantTombstones: BoundedMap<number>;
  /** Every map, grants first so their cascades run before the token maps are swept. */
  readonly maps: readonly BoundedMap<unknown>[];

  constructor(
    private readonly clock: Clock,
    limits: MapLimits,
  ) {
    const byExpiresAt = (record: { expiresAt: number }): number => record.expiresAt;
    // A grant that goes (expiry, eviction, client deletion) takes its refresh tokens and access token ids with it.
    this.grants = new BoundedMap<GrantRecord>('grants', limits, byExpiresAt, (grantId, grant) => {
      this.grantsByUser.remove(grant.userId, grantId);
      this.grantsByClient.remove(grant.clientId, grantId);
      for (const hash of this.refreshByGrant.members(grantId)) this.refreshTokens.delete(hash);
      for (const jti of this.accessByGrant.members(grantId)) this.accessTokens.delete(jti);
    });
    this.refreshTokens = new BoundedMap<RefreshTokenRecord>('refreshTokens', limits, byExpiresAt, (hash, token) =>
      this.refreshByGrant.remove(token.grantId, hash),
    );
    this.accessTokens = new BoundedMap<StoredAccessToken>('grantAccessTokens', limits, byExpiresAt, (jti, ref) =>
      this.accessByGrant.remove(ref.grantId, jti),
    );
    this.revokedJtis = new BoundedMap('revokedAccessTokens', limits, (expiresAt) => expiresAt);
    this.grantTombstones = new BoundedMap('grantTombstones', limits, (expiresAt) => expiresAt);
    this.maps = [
      this.grants,
      this.refreshTokens,
      this.accessTokens,
      this.revokedJtis,
      this.grantTombstones,
    ] as BoundedMap<unknown>[];
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
    const { lastUsedAt: _lastUsedAt, ...stored } = grant;
    this.grants.set(grant.id, copy(stored), now);
    this.grantsByUser.add(grant.userId, grant.id);
    this.grantsByClient.add(grant.clientId, grant.id);
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
      found.grant.lastUsedAt = now;
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
    const current = this.clock.now();
    for (const grantId of this.grantsByUser.members(userId)) {
      const grant = this.grants.get(grantId, current);
      if (!grant || grant.clientId !== clientId || grant.revokedAt !== undefined) continue;
      this.revokeGrantNow(grantId, now);
      count++;
    }
    return count;
  }

  async listGrantsOfUser(userId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return this.listed(this.grantsByUser.members(userId), LISTINGS.grantsOfUser, query);
  }

  async listGrantsOfClient(clientId: string, query: PageQuery): Promise<Page<GrantRecord>> {
    return this.listed(this.grantsByClient.members(clientId), LISTINGS.grantsOfClient, query);
  }

  private listed(ids: string[], listing: Listing, query: PageQuery): Page<GrantRecord> {
    const now = this.clock.now();
    const grants: GrantRecord[] = [];
    for (const id of ids) {
      const grant = this.grants.get(id, now);
      if (grant) grants.push(grant);
    }
    const page = pageOf(grants, (g) => [g.expiresAt, g.id], listing, query);
    return { ...page, items: page.items.map((g) => copy(g)) };
  }

  /** deleteClient's part, in the same step: every grant of the client revoked, then removed. */
  removeGrantsOfClient(clientId: string, now: number): void {
    for (const grantId of this.grantsByClient.members(clientId)) {
      // Revoke first so the grant's access token ids land on the revocation list, then drop the grant.
      this.revokeGrantNow(grantId, now);
      this.grants.delete(grantId);
    }
  }

  /** deleteUser's part, in the same step: every grant of the user revoked (kept, as revoked, until it expires). */
  revokeGrantsOfUser(userId: string, now: number): void {
    for (const grantId of this.grantsByUser.members(userId)) this.revokeGrantNow(grantId, now);
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

  async getAccessTokenGrantId(jti: string): Promise<string | undefined> {
    return this.accessTokens.get(jti, this.clock.now())?.grantId;
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
}
