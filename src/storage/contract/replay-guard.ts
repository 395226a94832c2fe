/**
 * Contract tests for ReplayGuard.firstUse, registered inside {@link describeStorageContract} so every backend runs
 * them. Expiry is driven by the ManualClock; the race test runs 50 calls at once on one store (the backend test files
 * add cross-replica races where they open several stores on one database or key prefix).
 */
import { describe, expect, it } from 'vitest';
import { hashToken, randomToken } from '../../core/crypto.js';
import { HOUR, MINUTE } from './fixtures.js';
import type { CurrentStore } from './support.js';

/** A replay-guard key as the client-assertion check builds it: a namespace and a hash, never the raw jti. */
export function replayKeyFixture(namespace = 'jwt-assertion'): string {
  return `${namespace}:${hashToken(randomToken())}`;
}

/** Registers the replay-guard section; `current` returns the test's store and clock (set in beforeEach). */
export function describeReplayGuardContract(current: CurrentStore): void {
  describe('replay guard', () => {
    it('first use is true, every later use false; keys are independent', async () => {
      const { store, clock } = current();
      const a = replayKeyFixture();
      const b = replayKeyFixture();
      expect(await store.firstUse(a, clock.now() + MINUTE)).toBe(true);
      expect(await store.firstUse(a, clock.now() + MINUTE)).toBe(false);
      expect(await store.firstUse(a, clock.now() + HOUR)).toBe(false);
      expect(await store.firstUse(b, clock.now() + MINUTE)).toBe(true);
      expect(await store.firstUse(b, clock.now() + MINUTE)).toBe(false);
      expect(await store.firstUse(replayKeyFixture('dpop'), clock.now() + MINUTE)).toBe(true);
    });

    it('a key reads as used until its expiresAt, then may be used again; a refused use changes nothing', async () => {
      const { store, clock } = current();
      const key = replayKeyFixture();
      const until = clock.now() + MINUTE;
      expect(await store.firstUse(key, until)).toBe(true);
      // The refused call must not extend the record to an hour.
      expect(await store.firstUse(key, clock.now() + HOUR)).toBe(false);
      clock.set(until - 1);
      expect(await store.firstUse(key, clock.now() + MINUTE)).toBe(false);
      clock.set(until);
      expect(await store.firstUse(key, clock.now() + MINUTE)).toBe(true);
      expect(await store.firstUse(key, clock.now() + MINUTE)).toBe(false);
    });

    it('refuses an expiresAt that is not in the future, and stores nothing for it', async () => {
      const { store, clock } = current();
      const key = replayKeyFixture();
      expect(await store.firstUse(key, clock.now())).toBe(false);
      expect(await store.firstUse(key, clock.now() - MINUTE)).toBe(false);
      expect(await store.firstUse(key, clock.now() + MINUTE)).toBe(true);
    });

    it('cleanup() keeps live keys used and lets expired ones be used again', async () => {
      const { store, clock } = current();
      const brief = replayKeyFixture();
      const long = replayKeyFixture();
      expect(await store.firstUse(brief, clock.now() + MINUTE)).toBe(true);
      expect(await store.firstUse(long, clock.now() + HOUR)).toBe(true);
      clock.advance(2 * MINUTE);
      await store.cleanup();
      expect(await store.firstUse(long, clock.now() + HOUR)).toBe(false);
      expect(await store.firstUse(brief, clock.now() + MINUTE)).toBe(true);
    });

    it('50 parallel first uses of one key: exactly one true, also once the key has expired', async () => {
      const { store, clock } = current();
      const race = async (key: string): Promise<number> => {
        const results = await Promise.all(Array.from({ length: 50 }, () => store.firstUse(key, clock.now() + MINUTE)));
        return results.filter(Boolean).length;
      };
      for (let round = 0; round < 3; round++) expect(await race(replayKeyFixture())).toBe(1);
      // Taking over an expired record is raced as well.
      const key = replayKeyFixture();
      expect(await race(key)).toBe(1);
      clock.advance(MINUTE);
      expect(await race(key)).toBe(1);
    });
  });
}
