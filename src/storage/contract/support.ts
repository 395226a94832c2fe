/**
 * What the per-port contract sections share: the test's store and clock, and helpers that build live grants and
 * refresh-token rotations the way the token endpoint does.
 */
import type { ManualClock } from '../../core/clock.js';
import type { AccessTokenRef, GrantRecord, RefreshTokenRecord, RotateResult } from '../../model/records.js';
import type { Storage } from '../../model/ports.js';
import { accessTokenFixture, grantFixture, refreshTokenFixture, successorFixture } from './fixtures.js';

/** Returns the running test's store and clock (set in describeStorageContract's beforeEach). */
export type CurrentStore = () => { store: Storage; clock: ManualClock };

/** A comparator by a string key, for comparing lists whose order a store does not promise. */
export const byKey =
  <T>(key: (item: T) => string) =>
  (a: T, b: T): number =>
    key(a).localeCompare(key(b));

/** A would-be successor refresh token: plaintext, stored record, and the sealed rotation response. */
export interface NextToken {
  token: string;
  record: RefreshTokenRecord;
  successor: string;
}

/** Grant helpers bound to the running test's store and clock (each call reads `current()` anew). */
export function grantHelpers(current: CurrentStore) {
  /** Creates a grant with a refresh token and one access token id; returns the plaintext token too. */
  async function liveGrant(overrides: Partial<GrantRecord> = {}): Promise<{
    grant: GrantRecord;
    token: string;
    refresh: RefreshTokenRecord;
    access: AccessTokenRef;
  }> {
    const { store, clock } = current();
    const grant = grantFixture(clock, overrides);
    const { token, record: refresh } = refreshTokenFixture(clock, grant);
    const access = accessTokenFixture(clock);
    await store.createGrant(grant, refresh, access);
    return { grant, token, refresh, access };
  }

  /** The next refresh token of `grant` plus the sealed response a rotation from `oldToken` would store. */
  function successorOf(grant: GrantRecord, oldToken: string): NextToken {
    const next = refreshTokenFixture(current().clock, grant);
    return { ...next, successor: successorFixture(oldToken, next.token) };
  }

  /** rotateRefreshToken at the clock's time, with a fresh access token id unless one is given. */
  function rotate(
    oldHash: string,
    next: NextToken,
    graceMs: number,
    access: AccessTokenRef = accessTokenFixture(current().clock),
  ): Promise<RotateResult> {
    const { store, clock } = current();
    return store.rotateRefreshToken(oldHash, next.record, next.successor, access, clock.now(), graceMs);
  }

  return { liveGrant, successorOf, rotate };
}
