/**
 * Contract tests for the expiring-record primitive (ExpiringRecordStore), registered inside
 * {@link describeStorageContract} so every backend runs them once, whatever kinds exist. A new kind needs no test
 * here: its fixture goes in fixtures.ts and the typed port (storage/record-ports.ts) is covered by these.
 */
import { describe, expect, it } from 'vitest';
import { randomToken } from '../../core/crypto.js';
import type { JsonObject } from '../../model/ports.js';
import { HOUR, MINUTE } from './fixtures.js';
import type { CurrentStore } from './support.js';

const KIND = 'contract-test';
const OTHER_KIND = 'contract-other';

function body(n = 1): JsonObject {
  return {
    n,
    text: 'naïve ✓ \u202e',
    list: ['a', 'b'],
    nested: { ok: true, off: false, none: null, deep: [{ x: 1.5 }] },
  };
}

/** Registers the expiring-records section; `current` returns the test's store and clock (set in beforeEach). */
export function describeRecordsContract(current: CurrentStore): void {
  describe('expiring records', () => {
    it('put then get returns the same JSON; put again replaces; kinds and ids are independent', async () => {
      const { store, clock } = current();
      const id = randomToken();
      await store.putRecord(KIND, id, body(1), { expiresAt: clock.now() + MINUTE });
      expect(await store.getRecord(KIND, id)).toEqual(body(1));
      expect(await store.getRecord(OTHER_KIND, id)).toBeUndefined();
      expect(await store.getRecord(KIND, randomToken())).toBeUndefined();
      await store.putRecord(KIND, id, body(2), { expiresAt: clock.now() + MINUTE });
      expect(await store.getRecord(KIND, id)).toEqual(body(2));
      await store.putRecord(OTHER_KIND, id, body(3), { expiresAt: clock.now() + MINUTE });
      expect(await store.getRecord(KIND, id)).toEqual(body(2));
      expect(await store.getRecord(OTHER_KIND, id)).toEqual(body(3));
    });

    it('a returned record is a copy: changing it changes nothing stored', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const value = body();
      await store.putRecord(KIND, id, value, { expiresAt: clock.now() + MINUTE });
      (value.list as string[]).push('changed after put');
      const read = (await store.getRecord(KIND, id))!;
      (read.nested as JsonObject).ok = false;
      expect(await store.getRecord(KIND, id)).toEqual(body());
    });

    it('reads as absent from expiresAt on, by the injected clock; put with a past expiresAt reads absent', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const until = clock.now() + MINUTE;
      await store.putRecord(KIND, id, body(), { expiresAt: until });
      clock.set(until - 1);
      expect(await store.getRecord(KIND, id)).toEqual(body());
      clock.set(until);
      expect(await store.getRecord(KIND, id)).toBeUndefined();
      expect(await store.takeRecord(KIND, id)).toBeUndefined();
      const past = randomToken();
      await store.putRecord(KIND, past, body(), { expiresAt: clock.now() - 1 });
      expect(await store.getRecord(KIND, past)).toBeUndefined();
    });

    it('take returns the record once and removes it; delete removes it and is idempotent', async () => {
      const { store, clock } = current();
      const id = randomToken();
      await store.putRecord(KIND, id, body(), { expiresAt: clock.now() + MINUTE });
      expect(await store.takeRecord(KIND, id)).toEqual(body());
      expect(await store.takeRecord(KIND, id)).toBeUndefined();
      expect(await store.getRecord(KIND, id)).toBeUndefined();
      await store.putRecord(KIND, id, body(), { expiresAt: clock.now() + MINUTE });
      await store.deleteRecord(KIND, id);
      await store.deleteRecord(KIND, id);
      expect(await store.getRecord(KIND, id)).toBeUndefined();
    });

    it('50 concurrent takes of one record: exactly one gets it', async () => {
      const { store, clock } = current();
      const id = randomToken();
      await store.putRecord(KIND, id, body(), { expiresAt: clock.now() + MINUTE });
      const results = await Promise.all(Array.from({ length: 50 }, () => store.takeRecord(KIND, id)));
      expect(results.filter((r) => r !== undefined)).toEqual([body()]);
    });

    it('deleteRecordsOwnedBy removes the live records of that owner (one kind or all) and counts them', async () => {
      const { store, clock } = current();
      const owner = `user:${randomToken()}`;
      const other = `user:${randomToken()}`;
      const [a, b, c, d, e] = Array.from({ length: 5 }, () => randomToken());
      const soon = { expiresAt: clock.now() + MINUTE, owner };
      await store.putRecord(KIND, a!, body(), soon);
      await store.putRecord(KIND, b!, body(), soon);
      await store.putRecord(OTHER_KIND, c!, body(), soon);
      await store.putRecord(KIND, d!, body(), { expiresAt: clock.now() + MINUTE, owner: other });
      await store.putRecord(KIND, e!, body(), { expiresAt: clock.now() + MINUTE });

      expect(await store.deleteRecordsOwnedBy(owner, KIND)).toBe(2);
      expect(await store.getRecord(KIND, a!)).toBeUndefined();
      expect(await store.getRecord(KIND, b!)).toBeUndefined();
      expect(await store.getRecord(OTHER_KIND, c!)).toEqual(body());
      expect(await store.deleteRecordsOwnedBy(owner)).toBe(1);
      expect(await store.getRecord(OTHER_KIND, c!)).toBeUndefined();
      expect(await store.deleteRecordsOwnedBy(owner)).toBe(0);
      // Another owner's and unowned records stay.
      expect(await store.getRecord(KIND, d!)).toEqual(body());
      expect(await store.getRecord(KIND, e!)).toEqual(body());
    });

    it('a record put again under another owner (or none) leaves the first owner', async () => {
      const { store, clock } = current();
      const first = `user:${randomToken()}`;
      const second = `user:${randomToken()}`;
      const id = randomToken();
      await store.putRecord(KIND, id, body(1), { expiresAt: clock.now() + MINUTE, owner: first });
      await store.putRecord(KIND, id, body(2), { expiresAt: clock.now() + MINUTE, owner: second });
      expect(await store.deleteRecordsOwnedBy(first)).toBe(0);
      expect(await store.getRecord(KIND, id)).toEqual(body(2));
      await store.putRecord(KIND, id, body(3), { expiresAt: clock.now() + MINUTE });
      expect(await store.deleteRecordsOwnedBy(second)).toBe(0);
      expect(await store.getRecord(KIND, id)).toEqual(body(3));
    });

    it('deleteRecordsOwnedBy does not count or resurrect expired records; taken records are not counted', async () => {
      const { store, clock } = current();
      const owner = `client:${randomToken()}`;
      const brief = randomToken();
      const long = randomToken();
      const taken = randomToken();
      await store.putRecord(KIND, brief, body(), { expiresAt: clock.now() + MINUTE, owner });
      await store.putRecord(KIND, long, body(), { expiresAt: clock.now() + HOUR, owner });
      await store.putRecord(KIND, taken, body(), { expiresAt: clock.now() + HOUR, owner });
      expect(await store.takeRecord(KIND, taken)).toEqual(body());
      clock.advance(2 * MINUTE);
      expect(await store.deleteRecordsOwnedBy(owner)).toBe(1);
      expect(await store.getRecord(KIND, long)).toBeUndefined();
      expect(await store.getRecord(KIND, brief)).toBeUndefined();
    });

    it('cleanup() keeps live records and drops expired ones', async () => {
      const { store, clock } = current();
      const brief = randomToken();
      const long = randomToken();
      await store.putRecord(KIND, brief, body(), { expiresAt: clock.now() + MINUTE, owner: 'user:x' });
      await store.putRecord(KIND, long, body(), { expiresAt: clock.now() + HOUR });
      clock.advance(2 * MINUTE);
      await store.cleanup();
      expect(await store.getRecord(KIND, long)).toEqual(body());
      expect(await store.getRecord(KIND, brief)).toBeUndefined();
    });

    it('ids and kinds are opaque: any characters, no collisions between (kind, id) pairs', async () => {
      const { store, clock } = current();
      // A random part, so stores sharing one database or key space do not meet each other's records.
      const base = randomToken();
      const ids = ['a:b', 'a', 'b', ':', '{x}', 'ünï ✓', 'x'.repeat(200)].map((id) => `${id}${base}`);
      for (const [i, id] of ids.entries()) {
        await store.putRecord(KIND, id, body(i), { expiresAt: clock.now() + MINUTE });
      }
      for (const [i, id] of ids.entries()) expect(await store.getRecord(KIND, id)).toEqual(body(i));
      for (const id of ids) await store.deleteRecord(KIND, id);
    });
  });
}
