/**
 * Contract tests for the expiring-record primitive (ExpiringRecordStore), registered inside
 * {@link describeStorageContract} so every backend runs them once, whatever kinds exist. A new kind needs no test
 * here: its fixture goes in fixtures.ts and the typed port (storage/record-ports.ts) is covered by these.
 */
import { describe, expect, it } from 'vitest';
import { randomToken } from '../../core/crypto.js';
import type { JsonObject, JsonValue, RecordAppend } from '../../model/ports.js';
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

/** An appendToRecord of `items` to `steps` (at most `maxItems`), starting `{ id, steps: [] }` for a minute. */
function stepsAppend(
  until: number,
  items: JsonValue[],
  maxItems = 100,
  overrides: Partial<RecordAppend> = {},
): RecordAppend {
  return {
    field: 'steps',
    items,
    maxItems,
    droppedField: 'droppedSteps',
    create: { id: 'trace', steps: [], started: 1_765_000_000_123 },
    placement: { expiresAt: until },
    ...overrides,
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

    it('appendToRecord creates an absent record as `create` with the items, then appends to it', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const until = clock.now() + MINUTE;
      await store.appendToRecord(KIND, id, stepsAppend(until, [{ n: 1 }, 'two']));
      expect(await store.getRecord(KIND, id)).toEqual({
        id: 'trace',
        steps: [{ n: 1 }, 'two'],
        started: 1_765_000_000_123,
      });
      // Appends keep what is stored, whatever `create` says now; any JSON item, empty arrays and long numbers intact.
      const odd = {
        empty: [],
        none: {},
        exact: 1.2345678901234567,
        big: 9_007_199_254_740_991,
        text: 'naïve ✓ \u202e/',
      };
      await store.appendToRecord(KIND, id, stepsAppend(until, [odd], 100, { create: { other: true, steps: [] } }));
      await store.appendToRecord(KIND, id, stepsAppend(until, [[], null, 3]));
      expect(await store.getRecord(KIND, id)).toEqual({
        id: 'trace',
        steps: [{ n: 1 }, 'two', odd, [], null, 3],
        started: 1_765_000_000_123,
      });
      expect(await store.getRecord(OTHER_KIND, id)).toBeUndefined();
      expect(await store.takeRecord(KIND, id)).toEqual(
        expect.objectContaining({ steps: [{ n: 1 }, 'two', odd, [], null, 3] }),
      );
      expect(await store.getRecord(KIND, id)).toBeUndefined();
    });

    it('appendToRecord appends to a record put with putRecord, keeping its other fields and empty arrays', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const put: JsonObject = { ...body(), steps: ['first'], empty: [], droppedSteps: 2 };
      await store.putRecord(KIND, id, put, { expiresAt: clock.now() + MINUTE });
      await store.appendToRecord(KIND, id, stepsAppend(clock.now() + HOUR, ['second', 'third'], 2));
      expect(await store.getRecord(KIND, id)).toEqual({ ...put, steps: ['first', 'second'], droppedSteps: 3 });
      // A putRecord replaces what appends added.
      await store.putRecord(KIND, id, body(2), { expiresAt: clock.now() + MINUTE });
      expect(await store.getRecord(KIND, id)).toEqual(body(2));
      await store.appendToRecord(KIND, id, stepsAppend(clock.now() + MINUTE, ['x']));
      expect(await store.getRecord(KIND, id)).toEqual({ ...body(2), steps: ['x'] });
    });

    it('appendToRecord keeps at most maxItems and counts the rest in droppedField', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const until = clock.now() + MINUTE;
      await store.appendToRecord(KIND, id, stepsAppend(until, [1, 2], 3));
      expect(await store.getRecord(KIND, id)).not.toHaveProperty('droppedSteps');
      await store.appendToRecord(KIND, id, stepsAppend(until, [3, 4, 5], 3));
      await store.appendToRecord(KIND, id, stepsAppend(until, [6], 3));
      expect(await store.getRecord(KIND, id)).toEqual(expect.objectContaining({ steps: [1, 2, 3], droppedSteps: 3 }));
      // Beyond the bound already at creation.
      const full = randomToken();
      await store.appendToRecord(KIND, full, stepsAppend(until, ['a', 'b', 'c'], 1));
      expect(await store.getRecord(KIND, full)).toEqual(expect.objectContaining({ steps: ['a'], droppedSteps: 2 }));
    });

    it('appendToRecord never extends the expiry; an expired record is replaced, not appended to', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const until = clock.now() + MINUTE;
      await store.appendToRecord(KIND, id, stepsAppend(until, ['old']));
      clock.set(until - 1);
      await store.appendToRecord(KIND, id, stepsAppend(clock.now() + HOUR, ['later']));
      expect(await store.getRecord(KIND, id)).toEqual(expect.objectContaining({ steps: ['old', 'later'] }));
      clock.set(until);
      expect(await store.getRecord(KIND, id)).toBeUndefined();
      // Expired (not yet dropped by the store): a new record from `create`, with the new expiry.
      const again = clock.now() + MINUTE;
      await store.appendToRecord(KIND, id, stepsAppend(again, ['new'], 100, { create: { fresh: true, steps: [] } }));
      expect(await store.getRecord(KIND, id)).toEqual({ fresh: true, steps: ['new'] });
      clock.set(again - 1);
      expect(await store.getRecord(KIND, id)).toEqual({ fresh: true, steps: ['new'] });
      clock.set(again);
      expect(await store.getRecord(KIND, id)).toBeUndefined();
    });

    it('appendToRecord on an expired record under an owner moves it to the new placement', async () => {
      const { store, clock } = current();
      const first = `user:${randomToken()}`;
      const second = `user:${randomToken()}`;
      const id = randomToken();
      await store.putRecord(KIND, id, body(), { expiresAt: clock.now() + MINUTE, owner: first });
      clock.advance(2 * MINUTE);
      await store.appendToRecord(
        KIND,
        id,
        stepsAppend(clock.now() + MINUTE, [1], 10, { placement: { expiresAt: clock.now() + MINUTE, owner: second } }),
      );
      // A live record appended to keeps its owner.
      await store.appendToRecord(
        KIND,
        id,
        stepsAppend(clock.now() + MINUTE, [2], 10, { placement: { expiresAt: clock.now() + HOUR, owner: first } }),
      );
      expect(await store.deleteRecordsOwnedBy(first)).toBe(0);
      expect(await store.getRecord(KIND, id)).toEqual(expect.objectContaining({ steps: [1, 2] }));
      expect(await store.deleteRecordsOwnedBy(second)).toBe(1);
      expect(await store.getRecord(KIND, id)).toBeUndefined();
    });

    it('20 concurrent appends to one record (absent at first) all land, in some order', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const until = clock.now() + MINUTE;
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.appendToRecord(KIND, id, stepsAppend(until, [i]))));
      const steps = (await store.getRecord(KIND, id))!.steps as number[];
      expect([...steps].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      // And the bound holds under concurrency.
      const bounded = randomToken();
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.appendToRecord(KIND, bounded, stepsAppend(until, [i, i], 15))),
      );
      const record = (await store.getRecord(KIND, bounded))!;
      expect((record.steps as number[]).length).toBe(15);
      expect(record.droppedSteps).toBe(25);
    });

    it('appendToRecord is per scope: a tenant appends to its own record of the same id', async () => {
      const { store, clock } = current();
      const id = randomToken();
      const until = clock.now() + MINUTE;
      const acme = store.forTenant('acme');
      await store.appendToRecord(KIND, id, stepsAppend(until, ['default']));
      await acme.appendToRecord(KIND, id, stepsAppend(until, ['acme']));
      await acme.appendToRecord(KIND, id, stepsAppend(until, ['acme again']));
      expect(await store.getRecord(KIND, id)).toEqual(expect.objectContaining({ steps: ['default'] }));
      expect(await acme.getRecord(KIND, id)).toEqual(expect.objectContaining({ steps: ['acme', 'acme again'] }));
      expect(await store.forTenant('globex').getRecord(KIND, id)).toBeUndefined();
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
