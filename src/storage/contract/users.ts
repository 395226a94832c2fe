/**
 * Contract tests for the user port (UserStore): ids, unique usernames, deletion.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { MINUTE, secondFactorsFixture, userFixture } from './fixtures.js';
import { byKey, type CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeUsersContract(current: CurrentStore): void {
  describe('users', () => {
    it('saves and finds users by id and username', async () => {
      const { store, clock } = current();
      const alice = userFixture(clock);
      // Optional fields left out must come back left out.
      const bob = userFixture(clock, { username: 'bob', email: undefined, emailVerified: undefined });
      await store.saveUser(alice);
      await store.saveUser(bob);
      expect(await store.getUser(alice.id)).toEqual(alice);
      expect(await store.getUserByUsername(alice.username)).toEqual(alice);
      expect(await store.getUserByUsername('bob')).toEqual(bob);
      expect(await store.getUser('nobody')).toBeUndefined();
      expect(await store.getUserByUsername('nobody')).toBeUndefined();
      expect((await store.listUsers()).sort(byKey((u) => u.id))).toEqual([alice, bob].sort(byKey((u) => u.id)));
    });

    it('keeps second factors and the mfa requirement, and forgets them when they are left out', async () => {
      const { store, clock } = current();
      const alice = userFixture(clock, secondFactorsFixture(clock));
      await store.saveUser(alice);
      expect(await store.getUser(alice.id)).toEqual(alice);
      expect(await store.getUserByUsername(alice.username)).toEqual(alice);
      const { totp: _t, passkeys: _p, recoveryCodes: _r, ...reset } = alice;
      const cleared = { ...reset, mfaRequired: false, updatedAt: clock.now() + MINUTE };
      await store.saveUser(cleared);
      expect(await store.getUser(alice.id)).toEqual(cleared);
      expect((await store.listUsers()).find((u) => u.id === alice.id)).toEqual(cleared);
    });

    it('keeps the admin mark, and forgets it when it is left out', async () => {
      const { store, clock } = current();
      const admin = userFixture(clock, { admin: true });
      await store.saveUser(admin);
      expect(await store.getUser(admin.id)).toEqual(admin);
      expect((await store.listUsers()).find((u) => u.id === admin.id)).toEqual(admin);
      const { admin: _a, ...plain } = admin;
      await store.saveUser(plain);
      expect(await store.getUser(admin.id)).toEqual(plain);
    });

    it('replaces by id, and renaming frees the old username', async () => {
      const { store, clock } = current();
      const alice = userFixture(clock);
      await store.saveUser(alice);
      clock.advance(MINUTE);
      const renamed = { ...alice, username: `${alice.username}-new`, name: 'Alice Renamed', updatedAt: clock.now() };
      await store.saveUser(renamed);
      expect(await store.getUser(alice.id)).toEqual(renamed);
      expect(await store.getUserByUsername(renamed.username)).toEqual(renamed);
      expect(await store.getUserByUsername(alice.username)).toBeUndefined();
      expect(await store.listUsers()).toHaveLength(1);
    });

    it('rejects another id under a taken username and keeps the original', async () => {
      const { store, clock } = current();
      const alice = userFixture(clock);
      await store.saveUser(alice);
      const impostor = userFixture(clock, { username: alice.username });
      await expect(store.saveUser(impostor)).rejects.toThrow();
      expect(await store.getUserByUsername(alice.username)).toEqual(alice);
      expect(await store.getUser(impostor.id)).toBeUndefined();
    });

    it('deletes users and frees their username', async () => {
      const { store, clock } = current();
      const alice = userFixture(clock);
      await store.saveUser(alice);
      expect(await store.deleteUser(alice.id)).toBe(true);
      expect(await store.deleteUser(alice.id)).toBe(false);
      expect(await store.getUser(alice.id)).toBeUndefined();
      expect(await store.getUserByUsername(alice.username)).toBeUndefined();
      const successor = userFixture(clock, { username: alice.username });
      await store.saveUser(successor);
      expect(await store.getUserByUsername(alice.username)).toEqual(successor);
    });
  });
}
