/**
 * Contract tests for the backend lifecycle (StorageBackend): kind, ping, init() again, cleanup().
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { HOUR, MINUTE, clientFixture, sessionFixture } from './fixtures.js';
import type { CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeLifecycleContract(current: CurrentStore): void {
  describe('lifecycle', () => {
    it('has a kind, answers ping, and tolerates init() again without losing data', async () => {
      const { store, clock } = current();
      expect(store.kind).toMatch(/^[a-z]+$/);
      await expect(store.ping()).resolves.toBeUndefined();
      const client = clientFixture(clock);
      await store.saveClient(client);
      await store.init();
      expect(await store.getClient(client.clientId)).toEqual(client);
    });

    it('cleanup() returns a count and keeps live records while expired ones stay gone', async () => {
      const { store, clock } = current();
      const short = sessionFixture(clock, { expiresAt: clock.now() + MINUTE });
      const long = sessionFixture(clock, { expiresAt: clock.now() + HOUR });
      await store.saveSession(short);
      await store.saveSession(long);
      clock.advance(2 * MINUTE);
      const removed = await store.cleanup();
      expect(Number.isInteger(removed) && removed >= 0).toBe(true);
      expect(await store.getSession(short.id)).toBeUndefined();
      expect(await store.getSession(long.id)).toEqual(long);
    });
  });
}
