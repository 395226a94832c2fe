/**
 * Contract tests for the client port (ClientStore), deleteClient's cascade over grants and consents included.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { randomToken } from '../../core/crypto.js';
import type { ClientRecord } from '../../model/records.js';
import { MINUTE, clientFixture, consentFixture, publicClientFixture, userFixture } from './fixtures.js';
import { byKey, grantHelpers, type CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeClientsContract(current: CurrentStore): void {
  const { liveGrant, successorOf, rotate } = grantHelpers(current);

  describe('clients', () => {
    it('saves, reads, replaces and lists clients', async () => {
      const { store, clock } = current();
      const confidential = clientFixture(clock);
      const pub = publicClientFixture(clock);
      await store.saveClient(confidential);
      await store.saveClient(pub);
      expect(await store.getClient(confidential.clientId)).toEqual(confidential);
      expect(await store.getClient(pub.clientId)).toEqual(pub);
      expect(await store.getClient('no-such-client')).toBeUndefined();

      clock.advance(MINUTE);
      const updated = { ...confidential, redirectUris: ['https://notes.example.com/cb2'], updatedAt: clock.now() };
      await store.saveClient(updated);
      expect(await store.getClient(confidential.clientId)).toEqual(updated);

      const listed = (await store.listClients()).sort(byKey((c) => c.clientId));
      expect(listed).toEqual([updated, pub].sort(byKey((c) => c.clientId)));
    });

    it('keeps the sealed secret of a client_secret_jwt client beside its hash', async () => {
      const { store, clock } = current();
      const signer = clientFixture(clock, {
        tokenEndpointAuthMethod: 'client_secret_jwt',
        clientSecretSealed: `sealed:v1:0a1b2c3d:${randomToken()}`,
      });
      await store.saveClient(signer);
      expect(await store.getClient(signer.clientId)).toEqual(signer);
      const { clientSecretSealed: _sealed, ...plain } = signer;
      await store.saveClient({ ...plain, tokenEndpointAuthMethod: 'client_secret_basic' });
      expect((await store.getClient(signer.clientId))?.clientSecretSealed).toBeUndefined();
    });

    it('keeps "no scope allow-list" (absent) apart from "empty allow-list" ([]), also when replacing and listing', async () => {
      const { store, clock } = current();
      const { scope: _scope, ...rest } = clientFixture(clock);
      const unrestricted: ClientRecord = rest;
      const nothing = clientFixture(clock, { scope: [] });
      await store.saveClient(unrestricted);
      await store.saveClient(nothing);
      const readUnrestricted = await store.getClient(unrestricted.clientId);
      const readNothing = await store.getClient(nothing.clientId);
      expect(readUnrestricted!.scope).toBeUndefined();
      expect(readNothing!.scope).toStrictEqual([]);
      // Replacing each with the other's form flips it (an upsert does not keep the old value).
      await store.saveClient({ ...unrestricted, scope: [] });
      await store.saveClient({ ...rest, clientId: nothing.clientId });
      expect((await store.getClient(unrestricted.clientId))!.scope).toStrictEqual([]);
      expect((await store.getClient(nothing.clientId))!.scope).toBeUndefined();
      const listed = new Map((await store.listClients()).map((c) => [c.clientId, c.scope]));
      expect(listed.get(unrestricted.clientId)).toStrictEqual([]);
      expect(listed.has(nothing.clientId)).toBe(true);
      expect(listed.get(nothing.clientId)).toBeUndefined();
    });

    it('hands out copies: mutating a saved or returned record does not change the store', async () => {
      const { store, clock } = current();
      const client = clientFixture(clock);
      const expected = structuredClone(client);
      await store.saveClient(client);
      client.redirectUris.push('https://evil.example/cb');
      const read = await store.getClient(client.clientId);
      expect(read).toEqual(expected);
      read!.scope!.push('admin');
      expect(await store.getClient(client.clientId)).toEqual(expected);
    });

    it('deleteClient removes the client and revokes what was issued to it, leaving other clients alone', async () => {
      const { store, clock } = current();
      const doomed = clientFixture(clock);
      const other = clientFixture(clock);
      await store.saveClient(doomed);
      await store.saveClient(other);
      const userId = userFixture(clock).id;
      const mine = await liveGrant({ clientId: doomed.clientId, userId });
      const theirs = await liveGrant({ clientId: other.clientId, userId });
      await store.saveConsent(consentFixture(clock, { userId, clientId: doomed.clientId }));
      const otherConsent = consentFixture(clock, { userId, clientId: other.clientId });
      await store.saveConsent(otherConsent);

      expect(await store.deleteClient(doomed.clientId)).toBe(true);
      expect(await store.getClient(doomed.clientId)).toBeUndefined();
      expect((await store.listClients()).map((c) => c.clientId)).toEqual([other.clientId]);
      // The grant may be deleted or kept as revoked, but never left usable.
      const grant = await store.getGrant(mine.grant.id);
      expect(grant === undefined || typeof grant.revokedAt === 'number').toBe(true);
      expect(await store.getRefreshToken(mine.refresh.tokenHash)).toBeUndefined();
      const replacement = successorOf(mine.grant, mine.token);
      expect(await rotate(mine.refresh.tokenHash, replacement, 0)).toEqual({ status: 'not_found' });
      expect(await store.isAccessTokenRevoked(mine.access.jti)).toBe(true);
      expect(await store.getConsent(userId, doomed.clientId)).toBeUndefined();

      expect(await store.getRefreshToken(theirs.refresh.tokenHash)).toEqual({
        token: theirs.refresh,
        grant: theirs.grant,
      });
      expect(await store.isAccessTokenRevoked(theirs.access.jti)).toBe(false);
      expect(await store.getConsent(userId, other.clientId)).toEqual(otherConsent);

      expect(await store.deleteClient(doomed.clientId)).toBe(false);
    });

    it('countClients counts each stored client once: replacing does not add, deleting subtracts', async () => {
      const { store, clock } = current();
      expect(await store.countClients()).toBe(0);
      const confidential = clientFixture(clock);
      const pub = publicClientFixture(clock);
      await store.saveClient(confidential);
      await store.saveClient(pub);
      await store.saveClient({ ...confidential, clientName: 'renamed', updatedAt: clock.now() + 1 });
      expect(await store.countClients()).toBe(2);
      expect(await store.deleteClient(pub.clientId)).toBe(true);
      expect(await store.deleteClient(pub.clientId)).toBe(false);
      expect(await store.countClients()).toBe(1);
      expect(await store.countClients()).toBe((await store.listClients()).length);
    });
  });
}
