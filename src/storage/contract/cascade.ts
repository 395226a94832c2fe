/**
 * Contract tests for the user-side cascades (deleteUser, revokeGrantsFor, deleteConsent), registered inside
 * {@link describeStorageContract} so every backend proves the same outcome: what a deleted user or a withdrawn
 * (user, client) pair held is dead on every store, and nobody else's records change.
 */
import { describe, expect, it } from 'vitest';
import type { AccessTokenRef, GrantRecord, RefreshTokenRecord } from '../../model/records.js';
import {
  MINUTE,
  SECOND,
  accessTokenFixture,
  clientFixture,
  consentFixture,
  grantFixture,
  refreshTokenFixture,
  sessionFixture,
  successorFixture,
  userFixture,
} from './fixtures.js';
import type { CurrentStore } from './support.js';

/** A live grant with every kind of token a grant can hold: first refresh + access token, a rotation, an extra jti. */
interface GrantHoldings {
  grant: GrantRecord;
  /** The refresh token currently live (the rotated one's successor). */
  refresh: RefreshTokenRecord;
  refreshToken: string;
  /** Every access token id recorded under the grant. */
  access: AccessTokenRef[];
}

/** Registers the cascade section; `current` returns the test's store and clock (set in beforeEach). */
export function describeCascadeContract(current: CurrentStore): void {
  async function holdings(overrides: Partial<GrantRecord>): Promise<GrantHoldings> {
    const { store, clock } = current();
    const grant = grantFixture(clock, overrides);
    const first = refreshTokenFixture(clock, grant);
    const access = [accessTokenFixture(clock)];
    await store.createGrant(grant, first.record, access[0]!);
    const next = refreshTokenFixture(clock, grant);
    access.push(accessTokenFixture(clock));
    const rotated = await store.rotateRefreshToken(
      first.record.tokenHash,
      next.record,
      successorFixture(first.token, next.token),
      access[1]!,
      clock.now(),
      10 * SECOND,
    );
    expect(rotated).toEqual({ status: 'rotated' });
    access.push(accessTokenFixture(clock));
    await store.addAccessToken(grant.id, access[2]!);
    // The rotation is the grant's last use.
    return { grant: { ...grant, lastUsedAt: clock.now() }, refresh: next.record, refreshToken: next.token, access };
  }

  async function expectDead(h: GrantHoldings): Promise<void> {
    const { store, clock } = current();
    const grant = await store.getGrant(h.grant.id);
    // Kept as revoked or removed, never usable.
    expect(grant === undefined || typeof grant.revokedAt === 'number').toBe(true);
    expect(await store.getRefreshToken(h.refresh.tokenHash)).toBeUndefined();
    const next = refreshTokenFixture(clock, h.grant);
    const rotated = await store.rotateRefreshToken(
      h.refresh.tokenHash,
      next.record,
      successorFixture(h.refreshToken, next.token),
      accessTokenFixture(clock),
      clock.now(),
      10 * SECOND,
    );
    expect(rotated).toEqual({ status: 'not_found' });
    for (const a of h.access) expect(await store.isAccessTokenRevoked(a.jti)).toBe(true);
  }

  async function expectLive(h: GrantHoldings): Promise<void> {
    const { store } = current();
    expect(await store.getGrant(h.grant.id)).toEqual(h.grant);
    const found = await store.getRefreshToken(h.refresh.tokenHash);
    expect(found?.grant).toEqual(h.grant);
    expect(found?.token.tokenHash).toBe(h.refresh.tokenHash);
    for (const a of h.access) expect(await store.isAccessTokenRevoked(a.jti)).toBe(false);
  }

  describe('cascades', () => {
    it('deleteUser removes the user, their consents and sessions, and revokes every grant of theirs', async () => {
      const { store, clock } = current();
      const alice = userFixture(clock);
      const bob = userFixture(clock);
      await store.saveUser(alice);
      await store.saveUser(bob);
      const [c1, c2] = [clientFixture(clock), clientFixture(clock)];
      await store.saveClient(c1);
      await store.saveClient(c2);

      const aliceGrants = [
        await holdings({ userId: alice.id, clientId: c1.clientId }),
        await holdings({ userId: alice.id, clientId: c1.clientId }),
        await holdings({ userId: alice.id, clientId: c2.clientId }),
      ];
      const bobGrant = await holdings({ userId: bob.id, clientId: c1.clientId });
      for (const c of [c1, c2])
        await store.saveConsent(consentFixture(clock, { userId: alice.id, clientId: c.clientId }));
      const bobConsent = consentFixture(clock, { userId: bob.id, clientId: c1.clientId });
      await store.saveConsent(bobConsent);
      const aliceSessions = [sessionFixture(clock, { userId: alice.id }), sessionFixture(clock, { userId: alice.id })];
      for (const s of aliceSessions) await store.saveSession(s);
      const bobSession = sessionFixture(clock, { userId: bob.id });
      await store.saveSession(bobSession);
      clock.advance(MINUTE);

      expect(await store.deleteUser(alice.id)).toBe(true);

      expect(await store.getUser(alice.id)).toBeUndefined();
      expect(await store.getUserByUsername(alice.username)).toBeUndefined();
      for (const c of [c1, c2]) expect(await store.getConsent(alice.id, c.clientId)).toBeUndefined();
      for (const s of aliceSessions) expect(await store.getSession(s.id)).toBeUndefined();
      for (const h of aliceGrants) await expectDead(h);
      // Nothing to revoke any more: the (user, client) pairs are empty.
      expect(await store.revokeGrantsFor(alice.id, c1.clientId, clock.now())).toBe(0);

      expect(await store.getUser(bob.id)).toEqual(bob);
      expect(await store.getConsent(bob.id, c1.clientId)).toEqual(bobConsent);
      expect(await store.getSession(bobSession.id)).toEqual(bobSession);
      await expectLive(bobGrant);
      expect(await store.getClient(c1.clientId)).toEqual(c1);
      expect(await store.getClient(c2.clientId)).toEqual(c2);

      expect(await store.deleteUser(alice.id)).toBe(false);
    });

    it('deleteUser cascades even when the user record is already gone, so a retried deletion completes', async () => {
      const { store, clock } = current();
      const ghostId = userFixture(clock).id;
      const client = clientFixture(clock);
      await store.saveClient(client);
      const h = await holdings({ userId: ghostId, clientId: client.clientId });
      await store.saveConsent(consentFixture(clock, { userId: ghostId, clientId: client.clientId }));
      const session = sessionFixture(clock, { userId: ghostId });
      await store.saveSession(session);

      expect(await store.deleteUser(ghostId)).toBe(false);
      await expectDead(h);
      expect(await store.getConsent(ghostId, client.clientId)).toBeUndefined();
      expect(await store.getSession(session.id)).toBeUndefined();
    });

    it('revokeGrantsFor revokes every token of the pair, keeps the consent and the user, and is idempotent', async () => {
      const { store, clock } = current();
      const user = userFixture(clock);
      await store.saveUser(user);
      const [c1, c2] = [clientFixture(clock), clientFixture(clock)];
      const pair = [
        await holdings({ userId: user.id, clientId: c1.clientId }),
        await holdings({ userId: user.id, clientId: c1.clientId }),
      ];
      const otherClient = await holdings({ userId: user.id, clientId: c2.clientId });
      const otherUser = await holdings({ clientId: c1.clientId });
      const consent = consentFixture(clock, { userId: user.id, clientId: c1.clientId });
      await store.saveConsent(consent);
      const session = sessionFixture(clock, { userId: user.id });
      await store.saveSession(session);
      clock.advance(MINUTE);

      expect(await store.revokeGrantsFor(user.id, c1.clientId, clock.now())).toBe(2);
      for (const h of pair) await expectDead(h);
      await expectLive(otherClient);
      await expectLive(otherUser);
      // Withdrawing consent is the caller's separate deleteConsent; the user and their session stay.
      expect(await store.getConsent(user.id, c1.clientId)).toEqual(consent);
      expect(await store.getUser(user.id)).toEqual(user);
      expect(await store.getSession(session.id)).toEqual(session);

      expect(await store.revokeGrantsFor(user.id, c1.clientId, clock.now())).toBe(0);
      for (const h of pair) await expectDead(h);
    });

    it('deleteConsent removes that one consent and touches no grant', async () => {
      const { store, clock } = current();
      const user = userFixture(clock);
      const [c1, c2] = [clientFixture(clock), clientFixture(clock)];
      const h = await holdings({ userId: user.id, clientId: c1.clientId });
      const gone = consentFixture(clock, { userId: user.id, clientId: c1.clientId });
      const kept = consentFixture(clock, { userId: user.id, clientId: c2.clientId });
      const othersConsent = consentFixture(clock, { clientId: c1.clientId });
      for (const c of [gone, kept, othersConsent]) await store.saveConsent(c);

      await store.deleteConsent(user.id, c1.clientId);
      expect(await store.getConsent(user.id, c1.clientId)).toBeUndefined();
      expect(await store.getConsent(user.id, c2.clientId)).toEqual(kept);
      expect(await store.getConsent(othersConsent.userId, c1.clientId)).toEqual(othersConsent);
      await expectLive(h);
      // Saving it again works (no stale index entry blocks it).
      await store.saveConsent(gone);
      expect(await store.getConsent(user.id, c1.clientId)).toEqual(gone);
    });
  });
}
