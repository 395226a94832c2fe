/**
 * Contract tests for remembered consents (ConsentStore), one per (user, client).
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { HOUR, consentFixture } from './fixtures.js';
import type { CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeConsentsContract(current: CurrentStore): void {
  describe('consents', () => {
    it('saves, replaces, deletes and expires consents per (user, client)', async () => {
      const { store, clock } = current();
      const consent = consentFixture(clock);
      await store.saveConsent(consent);
      expect(await store.getConsent(consent.userId, consent.clientId)).toEqual(consent);
      expect(await store.getConsent(consent.userId, 'other-client')).toBeUndefined();
      expect(await store.getConsent('other-user', consent.clientId)).toBeUndefined();

      const wider = { ...consent, scope: ['openid', 'profile', 'email'], createdAt: clock.now() + 1 };
      await store.saveConsent(wider);
      expect(await store.getConsent(consent.userId, consent.clientId)).toEqual(wider);

      await store.deleteConsent(consent.userId, consent.clientId);
      expect(await store.getConsent(consent.userId, consent.clientId)).toBeUndefined();
      await expect(store.deleteConsent('nobody', 'nothing')).resolves.toBeUndefined();

      const brief = consentFixture(clock, { expiresAt: clock.now() + HOUR });
      await store.saveConsent(brief);
      clock.set(brief.expiresAt);
      expect(await store.getConsent(brief.userId, brief.clientId)).toBeUndefined();
    });
  });
}
