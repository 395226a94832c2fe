/**
 * Contract tests for the paged listings: grants and consents by user and by client, clients and users paged and
 * searched, lastUsedAt on rotation, cursors refused across listings, and tenant scoping of every listing.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import type { Page, PageQuery, Storage } from '../../model/ports.js';
import { InvalidCursorError } from '../../model/ports.js';
import type { ConsentRecord, GrantRecord } from '../../model/records.js';
import { DAY, HOUR, accessTokenFixture, clientFixture, consentFixture, grantFixture, userFixture } from './fixtures.js';
import { grantHelpers, type CurrentStore } from './support.js';

/** Every item of a listing, page by page (`limit` each), checking each page's size and that paging ends. */
async function collect<T>(list: (query: PageQuery) => Promise<Page<T>>, limit: number): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await list({ limit, ...(cursor === undefined ? {} : { cursor }) });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    all.push(...page.items);
    if (page.nextCursor === undefined) return all;
    cursor = page.nextCursor;
  }
  throw new Error('paging did not end');
}

const byExpiryDesc = (a: { expiresAt: number; k: string }, b: { expiresAt: number; k: string }): number =>
  b.expiresAt - a.expiresAt || (a.k < b.k ? 1 : a.k > b.k ? -1 : 0);

function grantOrder(grants: GrantRecord[]): string[] {
  return grants
    .map((g) => ({ expiresAt: g.expiresAt, k: g.id }))
    .sort(byExpiryDesc)
    .map((g) => g.k);
}

function consentOrder(consents: ConsentRecord[], key: (c: ConsentRecord) => string): string[] {
  return consents
    .map((c) => ({ expiresAt: c.expiresAt, k: key(c) }))
    .sort(byExpiryDesc)
    .map((c) => c.k);
}

/** Registers the section; `current` returns the test's store and clock. */
export function describeListingsContract(current: CurrentStore): void {
  const { liveGrant, successorOf, rotate } = grantHelpers(current);

  describe('listings', () => {
    it("pages a user's and a client's grants, newest expiry first, revoked ones included, expired ones not", async () => {
      const { store, clock } = current();
      const now = clock.now();
      const user = 'list-user';
      const [clientA, clientB] = ['list-client-a', 'list-client-b'];
      const mine: GrantRecord[] = [];
      // Seven grants of the user over two clients, three sharing one expiry (ties are ordered by id).
      for (let i = 0; i < 7; i++) {
        const expiresAt = i < 3 ? now + 10 * DAY : now + (20 + i) * DAY;
        const { grant } = await liveGrant({ userId: user, clientId: i % 2 ? clientB : clientA, expiresAt });
        mine.push(grant);
      }
      const short = (await liveGrant({ userId: user, clientId: clientA, expiresAt: now + HOUR })).grant;
      const others = (await liveGrant({ userId: 'someone-else', clientId: clientA })).grant;
      // A tombstone (revoked before it existed) is never listed.
      await store.revokeGrant('never-created', now);
      await store.revokeGrant(mine[4]!.id, now);

      const listed = await collect((q) => store.listGrantsOfUser(user, q), 3);
      expect(listed.map((g) => g.id)).toEqual(grantOrder([...mine, short]));
      expect(listed.find((g) => g.id === mine[4]!.id)?.revokedAt).toBe(now);
      expect(listed.find((g) => g.id === mine[0]!.id)).toEqual(mine[0]);

      const ofA = await collect((q) => store.listGrantsOfClient(clientA, q), 2);
      expect(ofA.map((g) => g.id)).toEqual(grantOrder([...mine.filter((g) => g.clientId === clientA), short, others]));
      expect(await collect((q) => store.listGrantsOfClient('no-such-client', q), 5)).toEqual([]);

      clock.advance(2 * HOUR);
      const later = await collect((q) => store.listGrantsOfUser(user, q), 50);
      expect(later.map((g) => g.id)).toEqual(grantOrder(mine));

      // The cascades empty the listings.
      await store.deleteClient(clientA);
      expect((await store.listGrantsOfClient(clientA, {})).items).toEqual([]);
      await store.deleteUser(user);
      const afterDelete = await collect((q) => store.listGrantsOfUser(user, q), 50);
      expect(afterDelete.every((g) => g.revokedAt !== undefined)).toBe(true);
    });

    it('records the time of the latest rotation as lastUsedAt', async () => {
      const { store, clock } = current();
      const { grant, token, refresh } = await liveGrant();
      expect((await store.getGrant(grant.id))?.lastUsedAt).toBeUndefined();
      clock.advance(HOUR);
      const next = successorOf(grant, token);
      expect(await rotate(refresh.tokenHash, next, 0)).toEqual({ status: 'rotated' });
      expect((await store.getGrant(grant.id))?.lastUsedAt).toBe(clock.now());
      const [listed] = (await store.listGrantsOfUser(grant.userId, {})).items;
      expect(listed?.lastUsedAt).toBe(clock.now());
      // A grace retry or a refused rotation does not count as a use.
      const at = clock.now();
      clock.advance(1000);
      await rotate(refresh.tokenHash, successorOf(grant, token), 60_000);
      expect((await store.getGrant(grant.id))?.lastUsedAt).toBe(at);
      // Whatever createGrant is handed, the store sets it.
      const fresh = grantFixture(clock, { lastUsedAt: 5 });
      await store.createGrant(fresh, undefined, accessTokenFixture(clock));
      expect((await store.getGrant(fresh.id))?.lastUsedAt).toBeUndefined();
    });

    it("pages a user's and a client's consents, newest expiry first", async () => {
      const { store, clock } = current();
      const now = clock.now();
      const mine: ConsentRecord[] = [];
      for (let i = 0; i < 5; i++) {
        const consent = consentFixture(clock, {
          userId: 'consent-user',
          clientId: `consent-client-${i}`,
          expiresAt: now + (i < 2 ? 5 : 10 + i) * DAY,
        });
        await store.saveConsent(consent);
        mine.push(consent);
      }
      const toClient0: ConsentRecord[] = [mine[0]!];
      for (let i = 0; i < 3; i++) {
        const consent = consentFixture(clock, { userId: `other-user-${i}`, clientId: 'consent-client-0' });
        await store.saveConsent(consent);
        toClient0.push(consent);
      }
      const brief = consentFixture(clock, { userId: 'consent-user', clientId: 'brief', expiresAt: now + HOUR });
      await store.saveConsent(brief);

      const listed = await collect((q) => store.listConsentsOfUser('consent-user', q), 2);
      expect(listed.map((c) => c.clientId)).toEqual(consentOrder([...mine, brief], (c) => c.clientId));
      expect(listed.find((c) => c.clientId === 'consent-client-3')).toEqual(mine[3]);
      const ofClient = await collect((q) => store.listConsentsOfClient('consent-client-0', q), 3);
      expect(ofClient.map((c) => c.userId)).toEqual(consentOrder(toClient0, (c) => c.userId));

      clock.advance(2 * HOUR);
      await store.deleteConsent('consent-user', 'consent-client-1');
      const after = await collect((q) => store.listConsentsOfUser('consent-user', q), 10);
      expect(after.map((c) => c.clientId)).toEqual(
        consentOrder(
          mine.filter((c) => c.clientId !== 'consent-client-1'),
          (c) => c.clientId,
        ),
      );
      await store.deleteClient('consent-client-0');
      expect((await store.listConsentsOfClient('consent-client-0', {})).items).toEqual([]);
      expect((await store.listConsentsOfUser('consent-user', {})).items.map((c) => c.clientId)).not.toContain(
        'consent-client-0',
      );
    });

    it('pages clients by id and searches them by id prefix and by name prefix, case-insensitively', async () => {
      const { store, clock } = current();
      const ids = ['app-3', 'app-1', 'app-10', 'apq', 'zeta', 'app-2'];
      const names: Record<string, string | undefined> = {
        'app-3': 'Notes',
        'app-1': 'notebook',
        'app-10': 'Calendar',
        apq: 'NOTES pro',
        zeta: undefined,
        'app-2': 'Mail',
      };
      for (const clientId of ids) {
        const name = names[clientId];
        const client = clientFixture(clock, { clientId });
        if (name === undefined) delete client.clientName;
        else client.clientName = name;
        await store.saveClient(client);
      }
      const all = await collect((q) => store.pageClients(q), 4);
      expect(all.map((c) => c.clientId)).toEqual([...ids].sort());
      expect(all.find((c) => c.clientId === 'zeta')?.clientName).toBeUndefined();
      const app = await collect((q) => store.pageClients({ ...q, idPrefix: 'app-' }), 2);
      expect(app.map((c) => c.clientId)).toEqual(['app-1', 'app-10', 'app-2', 'app-3']);
      expect((await store.pageClients({ idPrefix: 'nothing' })).items).toEqual([]);

      const notes = await collect((q) => store.pageClients({ ...q, namePrefix: 'NoTe' }), 1);
      // By lower-cased name, then id: "notebook", "notes", "notes pro".
      expect(notes.map((c) => c.clientId)).toEqual(['app-1', 'app-3', 'apq']);

      // A rename moves the client in the name search; a deletion removes it everywhere.
      const renamed = { ...(await store.getClient('app-1'))!, clientName: 'Tasks' };
      await store.saveClient(renamed);
      expect((await store.pageClients({ namePrefix: 'note' })).items.map((c) => c.clientId)).toEqual(['app-3', 'apq']);
      expect((await store.pageClients({ namePrefix: 'tas' })).items).toEqual([renamed]);
      await store.deleteClient('app-3');
      expect((await store.pageClients({ namePrefix: 'note' })).items.map((c) => c.clientId)).toEqual(['apq']);
      expect((await collect((q) => store.pageClients(q), 50)).map((c) => c.clientId)).toEqual([
        'app-1',
        'app-10',
        'app-2',
        'apq',
        'zeta',
      ]);
    });

    it('pages users by username and searches them by username prefix', async () => {
      const { store, clock } = current();
      const names = ['carol', 'alice', 'bob', 'alina', 'al'];
      for (const username of names) await store.saveUser(userFixture(clock, { username }));
      const all = await collect((q) => store.pageUsers(q), 2);
      expect(all.map((u) => u.username)).toEqual([...names].sort());
      const al = await collect((q) => store.pageUsers({ ...q, usernamePrefix: 'al' }), 1);
      expect(al.map((u) => u.username)).toEqual(['al', 'alice', 'alina']);
      const bob = (await store.getUserByUsername('bob'))!;
      await store.saveUser({ ...bob, username: 'albert' });
      expect((await store.pageUsers({ usernamePrefix: 'al' })).items.map((u) => u.username)).toEqual([
        'al',
        'albert',
        'alice',
        'alina',
      ]);
      await store.deleteUser(bob.id);
      expect((await collect((q) => store.pageUsers(q), 50)).map((u) => u.username)).toEqual([
        'al',
        'alice',
        'alina',
        'carol',
      ]);
    });

    it('bounds the limit and refuses cursors it did not hand out', async () => {
      const { store, clock } = current();
      for (let i = 0; i < 3; i++) await store.saveUser(userFixture(clock));
      const one = await store.pageUsers({ limit: 0 });
      expect(one.items).toHaveLength(1);
      expect(one.nextCursor).toBeDefined();
      await expect(store.pageUsers({ cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(InvalidCursorError);
      // A cursor of one listing is refused by another.
      await expect(store.pageClients({ cursor: one.nextCursor })).rejects.toBeInstanceOf(InvalidCursorError);
      await expect(store.listGrantsOfUser('u', { cursor: one.nextCursor })).rejects.toBeInstanceOf(InvalidCursorError);
    });

    it('lists nothing of another scope', async () => {
      const { store, clock } = current();
      const a: Storage = store.forTenant('list-a');
      const b: Storage = store.forTenant('list-b');
      const grant = grantFixture(clock, { userId: 'same-user', clientId: 'same-client' });
      await a.createGrant(grant, undefined, accessTokenFixture(clock));
      await a.saveConsent(consentFixture(clock, { userId: 'same-user', clientId: 'same-client' }));
      await a.saveClient(clientFixture(clock, { clientId: 'same-client', clientName: 'Same' }));
      await a.saveUser(userFixture(clock, { username: 'same' }));
      expect((await a.listGrantsOfUser('same-user', {})).items.map((g) => g.id)).toEqual([grant.id]);
      for (const view of [b, store]) {
        expect((await view.listGrantsOfUser('same-user', {})).items).toEqual([]);
        expect((await view.listGrantsOfClient('same-client', {})).items).toEqual([]);
        expect((await view.listConsentsOfUser('same-user', {})).items).toEqual([]);
        expect((await view.listConsentsOfClient('same-client', {})).items).toEqual([]);
        expect((await view.pageClients({})).items).toEqual([]);
        expect((await view.pageClients({ namePrefix: 'same' })).items).toEqual([]);
        expect((await view.pageUsers({})).items).toEqual([]);
      }
      expect((await a.pageClients({ namePrefix: 'sa' })).items.map((c) => c.clientId)).toEqual(['same-client']);
      expect((await a.pageUsers({})).items.map((u) => u.username)).toEqual(['same']);
      await store.purgeTenant('list-a');
      const purged = store.forTenant('list-a');
      expect((await purged.pageUsers({})).items).toEqual([]);
      expect((await purged.pageClients({ namePrefix: 'sa' })).items).toEqual([]);
      expect((await purged.listGrantsOfUser('same-user', {})).items).toEqual([]);
    });
  });
}
