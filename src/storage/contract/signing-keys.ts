/**
 * Contract tests for the key port (KeyStore): signing keys with their rotation, and named secrets.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import type { SigningKeyRecord } from '../../model/records.js';
import { DAY, HOUR, MINUTE, SECOND, signingKeyFixture } from './fixtures.js';
import type { CurrentStore } from './support.js';

const kids = (keys: SigningKeyRecord[]): string[] => keys.map((key) => key.kid);

/** Registers the section; `current` returns the test's store and clock. */
export function describeSigningKeysContract(current: CurrentStore): void {
  describe('signing keys and secrets', () => {
    it('initSigningKeys stores the initial set only once', async () => {
      const { store, clock } = current();
      expect(await store.listSigningKeys()).toEqual([]);
      const first = signingKeyFixture(clock, 'ES256');
      expect(await store.initSigningKeys([first])).toEqual([first]);
      const second = signingKeyFixture(clock, 'ES256');
      expect(await store.initSigningKeys([second])).toEqual([first]);
      expect(await store.listSigningKeys()).toEqual([first]);
    });

    it('rotateSigningKey retires the old key of that alg until retireUntil, newest first', async () => {
      const { store, clock } = current();
      const oldEs = signingKeyFixture(clock, 'ES256');
      const ed = signingKeyFixture(clock, 'EdDSA', { createdAt: clock.now() - SECOND });
      await store.initSigningKeys([oldEs, ed]);
      clock.advance(DAY);
      const newEs = signingKeyFixture(clock, 'ES256');
      const retireUntil = clock.now() + HOUR;
      await store.rotateSigningKey(newEs, retireUntil);

      const retired = { ...oldEs, status: 'retired', expiresAt: retireUntil };
      expect(await store.listSigningKeys()).toEqual([newEs, retired, ed]);

      clock.advance(MINUTE);
      const newest = signingKeyFixture(clock, 'ES256');
      const retireUntil2 = clock.now() + HOUR;
      await store.rotateSigningKey(newest, retireUntil2);
      // The already retired key keeps its own deadline; only active keys are retired by a rotation.
      expect(await store.listSigningKeys()).toEqual([
        newest,
        { ...newEs, status: 'retired', expiresAt: retireUntil2 },
        retired,
        ed,
      ]);

      clock.set(retireUntil);
      expect(kids(await store.listSigningKeys())).toEqual([newest.kid, newEs.kid, ed.kid]);
      clock.set(retireUntil2 + 1);
      expect(await store.listSigningKeys()).toEqual([newest, ed]);
    });

    it('10 parallel initSigningKeys with different candidates agree on one key set', async () => {
      const { store, clock } = current();
      const candidates = Array.from({ length: 10 }, () => [signingKeyFixture(clock, 'ES256')]);
      const results = await Promise.all(candidates.map((keys) => store.initSigningKeys(keys)));
      const winner = results[0]!;
      expect(winner).toHaveLength(1);
      expect(candidates.map((keys) => keys[0]!.kid)).toContain(winner[0]!.kid);
      for (const result of results) expect(result).toEqual(winner);
      expect(await store.listSigningKeys()).toEqual(winner);
    });

    it('getOrCreateSecret keeps the first candidate forever', async () => {
      const { store, clock } = current();
      expect(await store.getOrCreateSecret('cookie', 'first-secret')).toBe('first-secret');
      expect(await store.getOrCreateSecret('cookie', 'second-secret')).toBe('first-secret');
      expect(await store.getOrCreateSecret('pepper', 'pepper-secret')).toBe('pepper-secret');
      clock.advance(365 * DAY);
      expect(await store.getOrCreateSecret('cookie', 'third-secret')).toBe('first-secret');
    });

    it('10 parallel getOrCreateSecret with different candidates all get the same value', async () => {
      const { store, clock } = current();
      const candidates = Array.from({ length: 10 }, (_, i) => `candidate-${i}-${clock.now()}`);
      const results = await Promise.all(candidates.map((c) => store.getOrCreateSecret('race', c)));
      expect(candidates).toContain(results[0]);
      expect(new Set(results).size).toBe(1);
      expect(await store.getOrCreateSecret('race', 'late')).toBe(results[0]);
    });
  });
}
