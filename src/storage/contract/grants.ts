/**
 * Contract tests for grants (GrantStore): creation, refresh-token rotation with its grace window and reuse detection,
 * recorded access-token ids, and revocation of a grant or of a (user, client) pair.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import {
  DAY,
  HOUR,
  MINUTE,
  SECOND,
  accessTokenFixture,
  codeFixture,
  clientFixture,
  grantFixture,
  refreshTokenFixture,
  userFixture,
} from './fixtures.js';
import { grantHelpers, type CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeGrantsContract(current: CurrentStore): void {
  const { liveGrant, successorOf, rotate } = grantHelpers(current);

  describe('grants and refresh tokens', () => {
    it('creates a grant with a refresh token and reads the token with its grant', async () => {
      const { store } = current();
      const { grant, refresh } = await liveGrant();
      expect(await store.getGrant(grant.id)).toEqual(grant);
      expect(await store.getRefreshToken(refresh.tokenHash)).toEqual({ token: refresh, grant });
      expect(await store.getGrant('no-such-grant')).toBeUndefined();
      expect(await store.getRefreshToken('no-such-token')).toBeUndefined();
    });

    it('keeps the DPoP key thumbprint of a grant and of a code, and reads an unbound one without it', async () => {
      const { store, clock } = current();
      const bound = grantFixture(clock);
      await store.createGrant(bound, refreshTokenFixture(clock, bound).record, accessTokenFixture(clock));
      expect((await store.getGrant(bound.id))?.dpopJkt).toBe(bound.dpopJkt);
      const { dpopJkt: _grantJkt, ...unbound } = grantFixture(clock);
      const refresh = refreshTokenFixture(clock, unbound).record;
      await store.createGrant(unbound, refresh, accessTokenFixture(clock));
      expect(Object.keys((await store.getGrant(unbound.id))!)).not.toContain('dpopJkt');
      expect(Object.keys((await store.getRefreshToken(refresh.tokenHash))!.grant)).not.toContain('dpopJkt');
      const { record } = codeFixture(clock);
      await store.saveAuthorizationCode(record);
      const live = await store.getAuthorizationCode(record.codeHash);
      expect(live.status === 'live' && live.code.dpopJkt).toBe(record.dpopJkt);
      const { dpopJkt: _codeJkt, ...plain } = codeFixture(clock).record;
      await store.saveAuthorizationCode(plain);
      const consumed = await store.consumeAuthorizationCode(plain.codeHash);
      expect(consumed.status === 'consumed' && Object.keys(consumed.code)).not.toContain('dpopJkt');
    });

    it('creates a grant without a refresh token, and records access tokens added later', async () => {
      const { store, clock } = current();
      const grant = grantFixture(clock, { scope: ['openid'], nonce: undefined });
      const first = accessTokenFixture(clock);
      await store.createGrant(grant, undefined, first);
      expect(await store.getGrant(grant.id)).toEqual(grant);
      const second = accessTokenFixture(clock);
      await store.addAccessToken(grant.id, second);
      expect(await store.isAccessTokenRevoked(first.jti)).toBe(false);
      expect(await store.revokeGrant(grant.id, clock.now())).toBe(true);
      expect(await store.isAccessTokenRevoked(first.jti)).toBe(true);
      expect(await store.isAccessTokenRevoked(second.jti)).toBe(true);
    });

    it('finds the grant an access token id was recorded under, until the token expires', async () => {
      const { store, clock } = current();
      const grant = grantFixture(clock, { scope: ['openid'], nonce: undefined });
      const first = accessTokenFixture(clock);
      await store.createGrant(grant, undefined, first);
      const second = accessTokenFixture(clock);
      await store.addAccessToken(grant.id, second);
      expect(await store.getAccessTokenGrantId(first.jti)).toBe(grant.id);
      expect(await store.getAccessTokenGrantId(second.jti)).toBe(grant.id);
      expect(await store.getAccessTokenGrantId('no-such-jti')).toBeUndefined();
      clock.advance(Math.max(first.expiresAt, second.expiresAt) - clock.now() + SECOND);
      expect(await store.getAccessTokenGrantId(first.jti)).toBeUndefined();
    });

    it('rotates once, answers retries inside the grace window, and revokes the family on later reuse', async () => {
      const { store, clock } = current();
      const graceMs = 10 * SECOND;
      const { grant, token, refresh, access } = await liveGrant();
      const winner = successorOf(grant, token);
      const winnerAccess = accessTokenFixture(clock);
      const rotatedAt = clock.now();
      expect(await rotate(refresh.tokenHash, winner, graceMs, winnerAccess)).toEqual({ status: 'rotated' });
      // The rotation is the grant's latest use.
      const used = { ...grant, lastUsedAt: rotatedAt };
      expect(await store.getRefreshToken(refresh.tokenHash)).toEqual({
        token: { ...refresh, rotatedAt, successor: winner.successor },
        grant: used,
      });
      expect(await store.getRefreshToken(winner.record.tokenHash)).toEqual({ token: winner.record, grant: used });

      // A retry (lost response) exactly at the end of the window gets the winner's response; nothing new is stored.
      clock.advance(graceMs);
      const retry = successorOf(grant, token);
      const retried = await rotate(refresh.tokenHash, retry, graceMs);
      expect(retried).toEqual({ status: 'grace', successor: winner.successor });
      expect(await store.getRefreshToken(retry.record.tokenHash)).toBeUndefined();

      // Past the window the old token must be a stolen copy: the whole family goes.
      clock.advance(1);
      const revokedAt = clock.now();
      expect(await rotate(refresh.tokenHash, retry, graceMs)).toEqual({ status: 'reused', grantId: grant.id });
      expect((await store.getGrant(grant.id))?.revokedAt).toBe(revokedAt);
      expect(await store.getRefreshToken(refresh.tokenHash)).toBeUndefined();
      expect(await store.getRefreshToken(winner.record.tokenHash)).toBeUndefined();
      expect(await store.getRefreshToken(retry.record.tokenHash)).toBeUndefined();
      expect(await store.isAccessTokenRevoked(access.jti)).toBe(true);
      expect(await store.isAccessTokenRevoked(winnerAccess.jti)).toBe(true);
      expect(await rotate(winner.record.tokenHash, successorOf(grant, winner.token), graceMs)).toEqual({
        status: 'not_found',
      });
    });

    it('the rotated successor can itself be rotated', async () => {
      const { store, clock } = current();
      const { grant, token, refresh } = await liveGrant();
      const second = successorOf(grant, token);
      expect(await rotate(refresh.tokenHash, second, 0)).toEqual({ status: 'rotated' });
      clock.advance(HOUR);
      const third = successorOf(grant, second.token);
      expect(await rotate(second.record.tokenHash, third, 0)).toEqual({ status: 'rotated' });
      expect(await store.getRefreshToken(third.record.tokenHash)).toEqual({
        token: third.record,
        grant: { ...grant, lastUsedAt: clock.now() },
      });
    });

    it('revokeGrant revokes every recorded access token and kills the refresh tokens; idempotent', async () => {
      const { store, clock } = current();
      const { grant, token, refresh, access } = await liveGrant();
      const next = successorOf(grant, token);
      const rotatedAccess = accessTokenFixture(clock);
      await rotate(refresh.tokenHash, next, 0, rotatedAccess);
      const addedAccess = accessTokenFixture(clock);
      await store.addAccessToken(grant.id, addedAccess);
      const unrelated = await liveGrant();

      clock.advance(MINUTE);
      const now = clock.now();
      expect(await store.revokeGrant(grant.id, now)).toBe(true);
      expect((await store.getGrant(grant.id))?.revokedAt).toBe(now);
      for (const jti of [access.jti, rotatedAccess.jti, addedAccess.jti]) {
        expect(await store.isAccessTokenRevoked(jti)).toBe(true);
      }
      expect(await store.getRefreshToken(refresh.tokenHash)).toBeUndefined();
      expect(await store.getRefreshToken(next.record.tokenHash)).toBeUndefined();
      const after = successorOf(grant, next.token);
      expect(await rotate(next.record.tokenHash, after, 10 * SECOND)).toEqual({ status: 'not_found' });
      expect(await store.getRefreshToken(after.record.tokenHash)).toBeUndefined();

      expect(await store.revokeGrant(grant.id, now + 1)).toBe(true);
      expect(await store.revokeGrant('no-such-grant', now)).toBe(false);
      expect(await store.isAccessTokenRevoked(unrelated.access.jti)).toBe(false);
      expect(await store.getRefreshToken(unrelated.refresh.tokenHash)).toEqual({
        token: unrelated.refresh,
        grant: unrelated.grant,
      });
    });

    it('an expired refresh token, or a token of an expired grant, is not_found', async () => {
      const { store, clock } = current();
      const { grant, token, refresh } = await liveGrant({ expiresAt: clock.now() + 2 * DAY });
      const shortGrant = grantFixture(clock, { expiresAt: clock.now() + HOUR });
      const outliving = refreshTokenFixture(clock, shortGrant, { expiresAt: clock.now() + DAY });
      await store.createGrant(shortGrant, outliving.record, accessTokenFixture(clock));

      clock.set(shortGrant.expiresAt);
      expect(await store.getGrant(shortGrant.id)).toBeUndefined();
      expect(await store.getRefreshToken(outliving.record.tokenHash)).toBeUndefined();
      const orphan = successorOf(shortGrant, outliving.token);
      expect(await rotate(outliving.record.tokenHash, orphan, 0)).toEqual({ status: 'not_found' });

      clock.set(refresh.expiresAt);
      expect(await store.getRefreshToken(refresh.tokenHash)).toBeUndefined();
      expect(await rotate(refresh.tokenHash, successorOf(grant, token), 0)).toEqual({ status: 'not_found' });
    });

    it('revokeGrantsFor revokes every grant of one (user, client) pair and nothing else', async () => {
      const { store, clock } = current();
      const userId = userFixture(clock).id;
      const clientId = clientFixture(clock).clientId;
      const a = await liveGrant({ userId, clientId });
      const b = await liveGrant({ userId, clientId });
      const otherClient = await liveGrant({ userId });
      const otherUser = await liveGrant({ clientId });

      expect(await store.revokeGrantsFor(userId, clientId, clock.now())).toBe(2);
      for (const g of [a, b]) {
        expect(typeof (await store.getGrant(g.grant.id))?.revokedAt).toBe('number');
        expect(await store.getRefreshToken(g.refresh.tokenHash)).toBeUndefined();
        expect(await store.isAccessTokenRevoked(g.access.jti)).toBe(true);
      }
      for (const g of [otherClient, otherUser]) {
        expect(await store.getGrant(g.grant.id)).toEqual(g.grant);
        expect(await store.getRefreshToken(g.refresh.tokenHash)).toEqual({ token: g.refresh, grant: g.grant });
        expect(await store.isAccessTokenRevoked(g.access.jti)).toBe(false);
      }
      expect(await store.revokeGrantsFor('nobody', clientId, clock.now())).toBe(0);
    });

    it('50 parallel rotations of one token: one rotated, 49 grace with its successor, one new token', async () => {
      const { store, clock } = current();
      const graceMs = 10 * SECOND;
      const { grant, token, refresh } = await liveGrant();
      const attempts = Array.from({ length: 50 }, () => successorOf(grant, token));
      const results = await Promise.all(attempts.map((attempt) => rotate(refresh.tokenHash, attempt, graceMs)));

      const winners = attempts.filter((_, i) => results[i]!.status === 'rotated');
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      const graces = results.filter((r) => r.status === 'grace');
      expect(graces).toHaveLength(49);
      for (const g of graces) expect(g).toEqual({ status: 'grace', successor: winner.successor });

      const stored = await Promise.all(attempts.map((a) => store.getRefreshToken(a.record.tokenHash)));
      expect(stored.filter((s) => s !== undefined)).toEqual([
        { token: winner.record, grant: { ...grant, lastUsedAt: clock.now() } },
      ]);
    });
  });
}
