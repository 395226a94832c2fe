/**
 * Contract tests for authorization codes (AuthorizationCodeStore): consumed once, replays reported, and the grant
 * tombstone a replay leaves so a late createGrant stores nothing.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { MINUTE, SECOND, accessTokenFixture, codeFixture, grantFixture, refreshTokenFixture } from './fixtures.js';
import { grantHelpers, type CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeCodesContract(current: CurrentStore): void {
  const { successorOf, rotate } = grantHelpers(current);

  describe('authorization codes', () => {
    it('is consumed once, then reported as reused with its grant until it expires', async () => {
      const { store, clock } = current();
      const { record } = codeFixture(clock);
      await store.saveAuthorizationCode(record);
      expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'consumed', code: record });
      const reused = { status: 'reused', grantId: record.grantId, clientId: record.clientId };
      expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual(reused);
      clock.set(record.expiresAt - 1);
      expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual(reused);
      clock.set(record.expiresAt);
      expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'not_found' });
    });

    it('getAuthorizationCode reads without redeeming: live, then reused once consumed, not_found when expired', async () => {
      const { store, clock } = current();
      const { record } = codeFixture(clock);
      await store.saveAuthorizationCode(record);
      expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'live', code: record });
      // Reading any number of times leaves the code redeemable exactly once.
      expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'live', code: record });
      expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'consumed', code: record });
      const reused = { status: 'reused', grantId: record.grantId, clientId: record.clientId };
      expect(await store.getAuthorizationCode(record.codeHash)).toEqual(reused);
      expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual(reused);
      clock.set(record.expiresAt);
      expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'not_found' });
      expect(await store.getAuthorizationCode(codeFixture(clock).record.codeHash)).toEqual({ status: 'not_found' });
    });

    // Interactions keep it as a JSON field of their record (false included: records.ts proves the primitive).
    it('keeps redirectUriSent on codes, true and false', async () => {
      const { store, clock } = current();
      for (const redirectUriSent of [true, false]) {
        const { record } = codeFixture(clock, { redirectUriSent });
        await store.saveAuthorizationCode(record);
        expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'live', code: record });
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'consumed', code: record });
      }
    });

    it('is not_found when unknown or expired before use', async () => {
      const { store, clock } = current();
      const unknown = codeFixture(clock).record;
      expect(await store.consumeAuthorizationCode(unknown.codeHash)).toEqual({ status: 'not_found' });
      const { record } = codeFixture(clock);
      await store.saveAuthorizationCode(record);
      clock.advance(MINUTE + 1);
      expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'not_found' });
    });

    it('a code replayed before its grant exists: revokeGrant tombstones the id, createGrant reports created: false', async () => {
      const { store, clock } = current();
      const { record } = codeFixture(clock);
      await store.saveAuthorizationCode(record);
      const first = await store.consumeAuthorizationCode(record.codeHash);
      expect(first.status).toBe('consumed');
      const replay = await store.consumeAuthorizationCode(record.codeHash);
      expect(replay).toEqual({ status: 'reused', grantId: record.grantId, clientId: record.clientId });
      // The replay's revocation lands before the first redemption got to createGrant.
      expect(await store.revokeGrant(record.grantId, clock.now())).toBe(false);
      expect(await store.getGrant(record.grantId)).toBeUndefined();

      clock.advance(MINUTE);
      const grant = grantFixture(clock, { id: record.grantId, clientId: record.clientId, userId: record.userId });
      const { token, record: refresh } = refreshTokenFixture(clock, grant);
      const access = accessTokenFixture(clock);
      expect(await store.createGrant(grant, refresh, access)).toEqual({ created: false });
      expect(await store.getGrant(grant.id)).toBeUndefined();
      expect(await store.getRefreshToken(refresh.tokenHash)).toBeUndefined();
      expect(await store.isAccessTokenRevoked(access.jti)).toBe(true);
      expect(await rotate(refresh.tokenHash, successorOf(grant, token), 10 * SECOND)).toEqual({
        status: 'not_found',
      });
      // Still revoked, still nothing to revoke; a second createGrant is refused too.
      expect(await store.revokeGrant(grant.id, clock.now())).toBe(false);
      expect(await store.createGrant(grant, undefined, accessTokenFixture(clock))).toEqual({ created: false });
      expect(await store.getGrant(grant.id)).toBeUndefined();

      // An unrelated grant is untouched, and createGrant reports created: true.
      const other = grantFixture(clock);
      expect(await store.createGrant(other, undefined, accessTokenFixture(clock))).toEqual({ created: true });
      expect(await store.getGrant(other.id)).toEqual(other);
    });

    it('the tombstone lives at least 10 minutes (the longest code lifetime)', async () => {
      const { store, clock } = current();
      const grant = grantFixture(clock);
      expect(await store.revokeGrant(grant.id, clock.now())).toBe(false);
      clock.advance(10 * MINUTE - 1);
      const late = { ...grant, createdAt: clock.now() };
      expect(await store.createGrant(late, undefined, accessTokenFixture(clock))).toEqual({ created: false });
      expect(await store.getGrant(grant.id)).toBeUndefined();
    });

    it('createGrant racing a replay’s revokeGrant: the grant is created then revoked, or never created', async () => {
      const { store, clock } = current();
      for (let round = 0; round < 10; round++) {
        const grant = grantFixture(clock);
        const { record: refresh } = refreshTokenFixture(clock, grant);
        const access = accessTokenFixture(clock);
        const [created, revoked] = await Promise.all([
          store.createGrant(grant, refresh, access),
          store.revokeGrant(grant.id, clock.now()),
        ]);
        // revokeGrant found the grant exactly when createGrant got there first.
        expect(revoked).toBe(created.created);
        expect(await store.getRefreshToken(refresh.tokenHash)).toBeUndefined();
        expect(await store.isAccessTokenRevoked(access.jti)).toBe(true);
        const stored = await store.getGrant(grant.id);
        if (created.created) expect(stored?.revokedAt).toBe(clock.now());
        else expect(stored).toBeUndefined();
      }
    });

    it('50 parallel read-then-consume redemptions of one code: exactly one consumed, 49 reused', async () => {
      const { store, clock } = current();
      const { record } = codeFixture(clock);
      await store.saveAuthorizationCode(record);
      const results = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const read = await store.getAuthorizationCode(record.codeHash);
          return read.status === 'live' ? store.consumeAuthorizationCode(record.codeHash) : read;
        }),
      );
      expect(results.filter((r) => r.status === 'consumed')).toEqual([{ status: 'consumed', code: record }]);
      expect(results.filter((r) => r.status === 'reused')).toHaveLength(49);
    });

    it('50 parallel consumes of one code: exactly one consumed, 49 reused', async () => {
      const { store, clock } = current();
      const { record } = codeFixture(clock);
      await store.saveAuthorizationCode(record);
      const results = await Promise.all(
        Array.from({ length: 50 }, () => store.consumeAuthorizationCode(record.codeHash)),
      );
      expect(results.filter((r) => r.status === 'consumed')).toEqual([{ status: 'consumed', code: record }]);
      const reused = results.filter((r) => r.status === 'reused');
      expect(reused).toHaveLength(49);
      for (const r of reused) {
        expect(r).toEqual({ status: 'reused', grantId: record.grantId, clientId: record.clientId });
      }
    });
  });
}
