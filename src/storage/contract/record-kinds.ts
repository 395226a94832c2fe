/**
 * Contract tests for the registered kinds of expiring record (model/record-kinds.ts). The primitive itself (expiry,
 * take-once, owners, copies) is proven once in records.ts; here every kind in RECORD_KINDS round-trips its fixture
 * (fixtures.ts RECORD_KIND_FIXTURES) through its typed port and, if it has an owner, tags its records with it, so a
 * new kind needs a fixture and nothing else.
 * What follows the table is specific to a kind's owner: the cascades that remove a client's interactions and a
 * user's sessions, and the Storage methods that name these two kinds.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { RECORD_KINDS, recordsOf, type RecordKind, type RecordsOf } from '../../model/record-kinds.js';
import type { Storage } from '../../model/ports.js';
import {
  MINUTE,
  RECORD_KIND_FIXTURES,
  type RecordKindName,
  clientFixture,
  interactionFixture,
  sessionFixture,
  userFixture,
} from './fixtures.js';
import type { CurrentStore } from './support.js';

/** What every record kind's records have. */
type Keyed = { id: string; expiresAt: number };

const KIND_NAMES = Object.keys(RECORD_KINDS) as RecordKindName[];

/** A kind's typed port with its record type erased, so the table runs every kind alike. */
function portOf(store: Storage, name: RecordKindName): RecordsOf<Keyed> {
  return recordsOf(store, RECORD_KINDS[name] as RecordKind<Keyed>);
}

/** Registers the section; `current` returns the test's store and clock. */
export function describeRecordKindsContract(current: CurrentStore): void {
  describe('record kinds', () => {
    it.each(KIND_NAMES)('%s: a fixture round-trips through its typed port', async (name) => {
      const { store, clock } = current();
      const port = portOf(store, name);
      const record = RECORD_KIND_FIXTURES[name](clock);
      await port.put(record);
      expect(await port.get(record.id)).toEqual(record);
      // Stored under the kind's name, as the JSON of the record.
      expect(await store.getRecord(RECORD_KINDS[name].name, record.id)).toEqual(JSON.parse(JSON.stringify(record)));

      const replaced = { ...record, expiresAt: record.expiresAt + MINUTE };
      await port.put(replaced);
      expect(await port.get(record.id)).toEqual(replaced);
      expect(await port.take(record.id)).toEqual(replaced);
      expect(await port.take(record.id)).toBeUndefined();

      await port.put(record);
      await port.delete(record.id);
      expect(await port.get(record.id)).toBeUndefined();
    });

    // deleteClient and deleteUser remove every record of their owner tag, whatever its kind (the cascade tests below):
    // what a kind adds is that its records carry the tag.
    it.each(KIND_NAMES.filter((name) => RECORD_KINDS[name].ownerOf))(
      '%s: a record carries its owner tag, and goes with its owner',
      async (name) => {
        const { store, clock } = current();
        const port = portOf(store, name);
        const record = RECORD_KIND_FIXTURES[name](clock);
        const owner = (RECORD_KINDS[name] as RecordKind<Keyed>).ownerOf!(record)!;
        await port.put(record);
        expect(await store.deleteRecordsOwnedBy(owner)).toBe(1);
        expect(await port.get(record.id)).toBeUndefined();
      },
    );

    it("the Storage methods for interactions and sessions are those kinds' ports", async () => {
      const { store, clock } = current();
      const interactions = portOf(store, 'interaction');
      const sessions = portOf(store, 'session');

      const interaction = interactionFixture(clock);
      await store.saveInteraction(interaction);
      expect(await interactions.get(interaction.id)).toEqual(interaction);
      const signedIn = { ...interaction, userId: userFixture(clock).id, authTime: clock.now() };
      await interactions.put(signedIn);
      expect(await store.getInteraction(interaction.id)).toEqual(signedIn);
      expect(await store.takeInteraction(interaction.id)).toEqual(signedIn);
      expect(await interactions.get(interaction.id)).toBeUndefined();
      expect(await store.takeInteraction('no-such-interaction')).toBeUndefined();

      const session = sessionFixture(clock);
      await store.saveSession(session);
      expect(await sessions.get(session.id)).toEqual(session);
      expect(await store.getSession(session.id)).toEqual(session);
      await store.deleteSession(session.id);
      expect(await sessions.get(session.id)).toBeUndefined();
      await expect(store.deleteSession('no-such-session')).resolves.toBeUndefined();
    });

    it("deleteClient removes the client's pending interactions and nobody else's", async () => {
      const { store, clock } = current();
      const doomed = clientFixture(clock);
      const other = clientFixture(clock);
      await store.saveClient(doomed);
      await store.saveClient(other);
      const pending = [
        interactionFixture(clock, { clientId: doomed.clientId }),
        interactionFixture(clock, { clientId: doomed.clientId, userId: userFixture(clock).id, authTime: clock.now() }),
      ];
      const kept = interactionFixture(clock, { clientId: other.clientId });
      for (const i of [...pending, kept]) await store.saveInteraction(i);
      // A session of a user whose id equals the client id is another owner.
      const session = sessionFixture(clock, { userId: doomed.clientId });
      await store.saveSession(session);

      expect(await store.deleteClient(doomed.clientId)).toBe(true);
      for (const i of pending) expect(await store.getInteraction(i.id)).toBeUndefined();
      expect(await store.getInteraction(kept.id)).toEqual(kept);
      expect(await store.getSession(session.id)).toEqual(session);
    });

    it("deleteSessionsOf removes and counts one user's live sessions; deleteUser removes them too", async () => {
      const { store, clock } = current();
      const alice = userFixture(clock);
      const bob = userFixture(clock);
      await store.saveUser(alice);
      await store.saveUser(bob);
      const alices = [sessionFixture(clock, { userId: alice.id }), sessionFixture(clock, { userId: alice.id })];
      const bobs = sessionFixture(clock, { userId: bob.id });
      for (const s of [...alices, bobs]) await store.saveSession(s);
      // An interaction of a client whose id equals bob's id is another owner.
      const interaction = interactionFixture(clock, { clientId: bob.id });
      await store.saveInteraction(interaction);

      expect(await store.deleteSessionsOf(alice.id)).toBe(2);
      for (const s of alices) expect(await store.getSession(s.id)).toBeUndefined();
      expect(await store.getSession(bobs.id)).toEqual(bobs);
      expect(await store.deleteSessionsOf(alice.id)).toBe(0);
      // deleteSessionsOf signs the user out everywhere; the user stays.
      expect(await store.getUser(alice.id)).toEqual(alice);

      expect(await store.deleteUser(bob.id)).toBe(true);
      expect(await store.getSession(bobs.id)).toBeUndefined();
      expect(await store.getInteraction(interaction.id)).toEqual(interaction);
    });
  });
}
