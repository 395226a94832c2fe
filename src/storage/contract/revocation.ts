/**
 * Contract tests for the access-token revocation list (RevocationStore).
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { MINUTE, accessTokenFixture } from './fixtures.js';
import type { CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeRevocationContract(current: CurrentStore): void {
  describe('revocations', () => {
    it('revokes an access token id until its expiresAt', async () => {
      const { store, clock } = current();
      const revoked = accessTokenFixture(clock, { expiresAt: clock.now() + MINUTE });
      await store.revokeAccessToken(revoked.jti, revoked.expiresAt);
      expect(await store.isAccessTokenRevoked(revoked.jti)).toBe(true);
      expect(await store.isAccessTokenRevoked(accessTokenFixture(clock).jti)).toBe(false);
      clock.set(revoked.expiresAt);
      expect(await store.isAccessTokenRevoked(revoked.jti)).toBe(false);
    });
  });
}
