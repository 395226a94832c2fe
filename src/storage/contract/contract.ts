/**
 * The storage contract suite: one set of vitest tests every backend (memory, embedded PGlite, PostgreSQL, Redis)
 * runs unchanged. It uses only the Storage interface, and drives expiry with a ManualClock (backends compare
 * `expiresAt` with their injected clock), so it never sleeps.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { InvalidRequest } from '../../model/errors.js';
import type {
  AccessTokenRef,
  ClientRecord,
  GrantRecord,
  RefreshTokenRecord,
  RotateResult,
  SigningKeyRecord,
} from '../../model/records.js';
import type { Storage } from '../../model/ports.js';
import { rateLimitWindowEnd } from '../../model/ports.js';
import {
  DAY,
  HOUR,
  MINUTE,
  SECOND,
  accessTokenFixture,
  clientFixture,
  codeFixture,
  consentFixture,
  grantFixture,
  interactionFixture,
  publicClientFixture,
  rateLimitKeyFixture,
  refreshTokenFixture,
  sessionFixture,
  signingKeyFixture,
  successorFixture,
  userFixture,
} from './fixtures.js';
import { describeCascadeContract } from './cascade.js';
import { describeRecordsContract } from './records.js';
import { describeReplayGuardContract } from './replay-guard.js';

/** Options for {@link describeStorageContract}. */
export interface StorageContractOptions {
  /** Disposes a store after each test (e.g. drop its schema, then close). Default: `store.close()`. */
  teardown?: (store: Storage) => Promise<void>;
}

const byKey =
  <T>(key: (item: T) => string) =>
  (a: T, b: T): number =>
    key(a).localeCompare(key(b));
/** A would-be successor refresh token: plaintext, stored record, and the sealed rotation response. */
interface NextToken {
  token: string;
  record: RefreshTokenRecord;
  successor: string;
}

const kids = (keys: SigningKeyRecord[]): string[] => keys.map((key) => key.kid);

/**
 * Registers the contract tests for one backend. `factory` must return an initialised store, isolated from every
 * other store it returned (unique schema or key prefix), whose clock is the given ManualClock.
 */
export function describeStorageContract(
  name: string,
  factory: (clock: ManualClock) => Promise<Storage>,
  options: StorageContractOptions = {},
): void {
  describe(`Storage contract: ${name}`, () => {
    let clock: ManualClock;
    let store: Storage;

    beforeEach(async () => {
      clock = new ManualClock(Date.now());
      store = await factory(clock);
    });

    afterEach(async () => {
      if (options.teardown) await options.teardown(store);
      else await store.close();
    });

    /** Creates a grant with a refresh token and one access token id; returns the plaintext token too. */
    async function liveGrant(overrides: Partial<GrantRecord> = {}): Promise<{
      grant: GrantRecord;
      token: string;
      refresh: RefreshTokenRecord;
      access: AccessTokenRef;
    }> {
      const grant = grantFixture(clock, overrides);
      const { token, record: refresh } = refreshTokenFixture(clock, grant);
      const access = accessTokenFixture(clock);
      await store.createGrant(grant, refresh, access);
      return { grant, token, refresh, access };
    }

    /** The next refresh token of `grant` plus the sealed response a rotation from `oldToken` would store. */
    function successorOf(grant: GrantRecord, oldToken: string): NextToken {
      const next = refreshTokenFixture(clock, grant);
      return { ...next, successor: successorFixture(oldToken, next.token) };
    }

    /** rotateRefreshToken at the clock's time, with a fresh access token id unless one is given. */
    function rotate(
      oldHash: string,
      next: NextToken,
      graceMs: number,
      access: AccessTokenRef = accessTokenFixture(clock),
    ): Promise<RotateResult> {
      return store.rotateRefreshToken(oldHash, next.record, next.successor, access, clock.now(), graceMs);
    }

    describe('lifecycle', () => {
      it('has a kind, answers ping, and tolerates init() again without losing data', async () => {
        expect(store.kind).toMatch(/^[a-z]+$/);
        await expect(store.ping()).resolves.toBeUndefined();
        const client = clientFixture(clock);
        await store.saveClient(client);
        await store.init();
        expect(await store.getClient(client.clientId)).toEqual(client);
      });

      it('cleanup() returns a count and keeps live records while expired ones stay gone', async () => {
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

    describe('values containing U+0000', () => {
      // PostgreSQL cannot hold a NUL byte in text or jsonb; such a value is the request's fault, so a backend either
      // handles it or refuses it as invalid_request (HTTP 400), never with an error that would become a 500.
      const NUL = 'a\u0000b';
      const handledOrInvalidRequest = async (what: string, op: () => Promise<unknown>) => {
        const outcome = await op().then(
          () => 'ok',
          (err: unknown) => (err instanceof InvalidRequest ? 'invalid_request' : `${what}: ${String(err)}`),
        );
        expect(['ok', 'invalid_request']).toContain(outcome);
      };

      it('reads by a key with a NUL byte find nothing or are refused as invalid_request', async () => {
        await handledOrInvalidRequest('getClient', async () => expect(await store.getClient(NUL)).toBeUndefined());
        await handledOrInvalidRequest('getUserByUsername', async () =>
          expect(await store.getUserByUsername(NUL)).toBeUndefined(),
        );
        await handledOrInvalidRequest('getInteraction', async () =>
          expect(await store.getInteraction(NUL)).toBeUndefined(),
        );
        await handledOrInvalidRequest('getSession', async () => expect(await store.getSession(NUL)).toBeUndefined());
        await handledOrInvalidRequest('consumeAuthorizationCode', async () =>
          expect(await store.consumeAuthorizationCode(NUL)).toEqual({ status: 'not_found' }),
        );
      });

      it('writes of a NUL byte (text and JSON fields) are stored intact or refused as invalid_request', async () => {
        const client = { ...clientFixture(clock), clientName: NUL, contacts: [NUL] };
        await handledOrInvalidRequest('saveClient', async () => {
          await store.saveClient(client);
          expect(await store.getClient(client.clientId)).toEqual(client);
        });
        const user = { ...userFixture(clock), name: NUL };
        await handledOrInvalidRequest('saveUser', async () => {
          await store.saveUser(user);
          expect(await store.getUser(user.id)).toEqual(user);
        });
      });
    });

    describe('clients', () => {
      it('saves, reads, replaces and lists clients', async () => {
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

      it('keeps "no scope allow-list" (absent) apart from "empty allow-list" ([]), also when replacing and listing', async () => {
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

    describe('users', () => {
      it('saves and finds users by id and username', async () => {
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

      it('replaces by id, and renaming frees the old username', async () => {
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
        const alice = userFixture(clock);
        await store.saveUser(alice);
        const impostor = userFixture(clock, { username: alice.username });
        await expect(store.saveUser(impostor)).rejects.toThrow();
        expect(await store.getUserByUsername(alice.username)).toEqual(alice);
        expect(await store.getUser(impostor.id)).toBeUndefined();
      });

      it('deletes users and frees their username', async () => {
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

    describe('signing keys and secrets', () => {
      it('initSigningKeys stores the initial set only once', async () => {
        expect(await store.listSigningKeys()).toEqual([]);
        const first = signingKeyFixture(clock, 'ES256');
        expect(await store.initSigningKeys([first])).toEqual([first]);
        const second = signingKeyFixture(clock, 'ES256');
        expect(await store.initSigningKeys([second])).toEqual([first]);
        expect(await store.listSigningKeys()).toEqual([first]);
      });

      it('rotateSigningKey retires the old key of that alg until retireUntil, newest first', async () => {
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
        const candidates = Array.from({ length: 10 }, () => [signingKeyFixture(clock, 'ES256')]);
        const results = await Promise.all(candidates.map((keys) => store.initSigningKeys(keys)));
        const winner = results[0]!;
        expect(winner).toHaveLength(1);
        expect(candidates.map((keys) => keys[0]!.kid)).toContain(winner[0]!.kid);
        for (const result of results) expect(result).toEqual(winner);
        expect(await store.listSigningKeys()).toEqual(winner);
      });

      it('getOrCreateSecret keeps the first candidate forever', async () => {
        expect(await store.getOrCreateSecret('cookie', 'first-secret')).toBe('first-secret');
        expect(await store.getOrCreateSecret('cookie', 'second-secret')).toBe('first-secret');
        expect(await store.getOrCreateSecret('pepper', 'pepper-secret')).toBe('pepper-secret');
        clock.advance(365 * DAY);
        expect(await store.getOrCreateSecret('cookie', 'third-secret')).toBe('first-secret');
      });

      it('10 parallel getOrCreateSecret with different candidates all get the same value', async () => {
        const candidates = Array.from({ length: 10 }, (_, i) => `candidate-${i}-${clock.now()}`);
        const results = await Promise.all(candidates.map((c) => store.getOrCreateSecret('race', c)));
        expect(candidates).toContain(results[0]);
        expect(new Set(results).size).toBe(1);
        expect(await store.getOrCreateSecret('race', 'late')).toBe(results[0]);
      });
    });

    describe('interactions', () => {
      it('saves, updates, and takes an interaction exactly once', async () => {
        const interaction = interactionFixture(clock);
        await store.saveInteraction(interaction);
        expect(await store.getInteraction(interaction.id)).toEqual(interaction);

        const signedIn = { ...interaction, userId: userFixture(clock).id, authTime: clock.now() };
        await store.saveInteraction(signedIn);
        expect(await store.getInteraction(interaction.id)).toEqual(signedIn);

        expect(await store.takeInteraction(interaction.id)).toEqual(signedIn);
        expect(await store.takeInteraction(interaction.id)).toBeUndefined();
        expect(await store.getInteraction(interaction.id)).toBeUndefined();
        expect(await store.takeInteraction('no-such-interaction')).toBeUndefined();
      });

      it('treats an interaction as gone once the clock reaches expiresAt', async () => {
        const interaction = interactionFixture(clock);
        await store.saveInteraction(interaction);
        clock.set(interaction.expiresAt - 1);
        expect(await store.getInteraction(interaction.id)).toEqual(interaction);
        clock.set(interaction.expiresAt);
        expect(await store.getInteraction(interaction.id)).toBeUndefined();
        expect(await store.takeInteraction(interaction.id)).toBeUndefined();
      });
    });

    describe('sessions', () => {
      it('saves, reads, deletes and expires sessions', async () => {
        const session = sessionFixture(clock);
        const other = sessionFixture(clock, { expiresAt: clock.now() + MINUTE });
        await store.saveSession(session);
        await store.saveSession(other);
        expect(await store.getSession(session.id)).toEqual(session);
        await store.deleteSession(session.id);
        expect(await store.getSession(session.id)).toBeUndefined();
        await expect(store.deleteSession('no-such-session')).resolves.toBeUndefined();

        expect(await store.getSession(other.id)).toEqual(other);
        clock.set(other.expiresAt);
        expect(await store.getSession(other.id)).toBeUndefined();
      });
    });

    describe('authorization codes', () => {
      it('is consumed once, then reported as reused with its grant until it expires', async () => {
        const { record } = codeFixture(clock);
        await store.saveAuthorizationCode(record);
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'consumed', code: record });
        const reused = { status: 'reused', grantId: record.grantId, clientId: record.clientId };
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual(reused);
        clock.set(record.expiresAt - 1);
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual(reused);
        clock.set(record.expiresAt);
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'not_found' });
      });

      it('getAuthorizationCode reads without redeeming: live, then reused once consumed, not_found when expired', async () => {
        const { record } = codeFixture(clock);
        await store.saveAuthorizationCode(record);
        expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'live', code: record });
        // Reading any number of times leaves the code redeemable exactly once.
        expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'live', code: record });
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'consumed', code: record });
        const reused = { status: 'reused', grantId: record.grantId, clientId: record.clientId };
        expect(await store.getAuthorizationCode(record.codeHash)).toEqual(reused);
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual(reused);
        clock.set(record.expiresAt);
        expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'not_found' });
        expect(await store.getAuthorizationCode(codeFixture(clock).record.codeHash)).toEqual({ status: 'not_found' });
      });

      it('keeps redirectUriSent on codes and interactions, true and false', async () => {
        for (const redirectUriSent of [true, false]) {
          const { record } = codeFixture(clock, { redirectUriSent });
          await store.saveAuthorizationCode(record);
          expect(await store.getAuthorizationCode(record.codeHash)).toEqual({ status: 'live', code: record });
          expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'consumed', code: record });
          const interaction = interactionFixture(clock, { redirectUriSent });
          await store.saveInteraction(interaction);
          expect(await store.getInteraction(interaction.id)).toEqual(interaction);
          expect(await store.takeInteraction(interaction.id)).toEqual(interaction);
        }
      });

      it('is not_found when unknown or expired before use', async () => {
        const unknown = codeFixture(clock).record;
        expect(await store.consumeAuthorizationCode(unknown.codeHash)).toEqual({ status: 'not_found' });
        const { record } = codeFixture(clock);
        await store.saveAuthorizationCode(record);
        clock.advance(MINUTE + 1);
        expect(await store.consumeAuthorizationCode(record.codeHash)).toEqual({ status: 'not_found' });
      });

      it('a code replayed before its grant exists: revokeGrant tombstones the id, createGrant reports created: false', async () => {
        const { record } = codeFixture(clock);
        await store.saveAuthorizationCode(record);
        const first = await store.consumeAuthorizationCode(record.codeHash);
        expect(first.status).toBe('consumed');
        const replay = await store.consumeAuthorizationCode(record.codeHash);
        expect(replay).toEqual({ status: 'reused', grantId: record.grantId, clientId: record.clientId });
        // The replay's revocation lands before the first redemption got to createGrant.
        expect(await store.revokeGrant(record.grantId, clock.now())).toBe(false);
        expect(await store.getGrant(record.grantId)).toBeUndefined();

        clock.advance(MINUTE);
        const grant = grantFixture(clock, { id: record.grantId, clientId: record.clientId, userId: record.userId });
        const { token, record: refresh } = refreshTokenFixture(clock, grant);
        const access = accessTokenFixture(clock);
        expect(await store.createGrant(grant, refresh, access)).toEqual({ created: false });
        expect(await store.getGrant(grant.id)).toBeUndefined();
        expect(await store.getRefreshToken(refresh.tokenHash)).toBeUndefined();
        expect(await store.isAccessTokenRevoked(access.jti)).toBe(true);
        expect(await rotate(refresh.tokenHash, successorOf(grant, token), 10 * SECOND)).toEqual({
          status: 'not_found',
        });
        // Still revoked, still nothing to revoke; a second createGrant is refused too.
        expect(await store.revokeGrant(grant.id, clock.now())).toBe(false);
        expect(await store.createGrant(grant, undefined, accessTokenFixture(clock))).toEqual({ created: false });
        expect(await store.getGrant(grant.id)).toBeUndefined();

        // An unrelated grant is untouched, and createGrant reports created: true.
        const other = grantFixture(clock);
        expect(await store.createGrant(other, undefined, accessTokenFixture(clock))).toEqual({ created: true });
        expect(await store.getGrant(other.id)).toEqual(other);
      });

      it('the tombstone lives at least 10 minutes (the longest code lifetime)', async () => {
        const grant = grantFixture(clock);
        expect(await store.revokeGrant(grant.id, clock.now())).toBe(false);
        clock.advance(10 * MINUTE - 1);
        const late = { ...grant, createdAt: clock.now() };
        expect(await store.createGrant(late, undefined, accessTokenFixture(clock))).toEqual({ created: false });
        expect(await store.getGrant(grant.id)).toBeUndefined();
      });

      it('createGrant racing a replay’s revokeGrant: the grant is created then revoked, or never created', async () => {
        for (let round = 0; round < 10; round++) {
          const grant = grantFixture(clock);
          const { record: refresh } = refreshTokenFixture(clock, grant);
          const access = accessTokenFixture(clock);
          const [created, revoked] = await Promise.all([
            store.createGrant(grant, refresh, access),
            store.revokeGrant(grant.id, clock.now()),
          ]);
          // revokeGrant found the grant exactly when createGrant got there first.
          expect(revoked).toBe(created.created);
          expect(await store.getRefreshToken(refresh.tokenHash)).toBeUndefined();
          expect(await store.isAccessTokenRevoked(access.jti)).toBe(true);
          const stored = await store.getGrant(grant.id);
          if (created.created) expect(stored?.revokedAt).toBe(clock.now());
          else expect(stored).toBeUndefined();
        }
      });

      it('50 parallel read-then-consume redemptions of one code: exactly one consumed, 49 reused', async () => {
        const { record } = codeFixture(clock);
        await store.saveAuthorizationCode(record);
        const results = await Promise.all(
          Array.from({ length: 50 }, async () => {
            const read = await store.getAuthorizationCode(record.codeHash);
            return read.status === 'live' ? store.consumeAuthorizationCode(record.codeHash) : read;
          }),
        );
        expect(results.filter((r) => r.status === 'consumed')).toEqual([{ status: 'consumed', code: record }]);
        expect(results.filter((r) => r.status === 'reused')).toHaveLength(49);
      });

      it('50 parallel consumes of one code: exactly one consumed, 49 reused', async () => {
        const { record } = codeFixture(clock);
        await store.saveAuthorizationCode(record);
        const results = await Promise.all(
          Array.from({ length: 50 }, () => store.consumeAuthorizationCode(record.codeHash)),
        );
        expect(results.filter((r) => r.status === 'consumed')).toEqual([{ status: 'consumed', code: record }]);
        const reused = results.filter((r) => r.status === 'reused');
        expect(reused).toHaveLength(49);
        for (const r of reused) {
          expect(r).toEqual({ status: 'reused', grantId: record.grantId, clientId: record.clientId });
        }
      });
    });

    describe('grants and refresh tokens', () => {
      it('creates a grant with a refresh token and reads the token with its grant', async () => {
        const { grant, refresh } = await liveGrant();
        expect(await store.getGrant(grant.id)).toEqual(grant);
        expect(await store.getRefreshToken(refresh.tokenHash)).toEqual({ token: refresh, grant });
        expect(await store.getGrant('no-such-grant')).toBeUndefined();
        expect(await store.getRefreshToken('no-such-token')).toBeUndefined();
      });

      it('creates a grant without a refresh token, and records access tokens added later', async () => {
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

      it('rotates once, answers retries inside the grace window, and revokes the family on later reuse', async () => {
        const graceMs = 10 * SECOND;
        const { grant, token, refresh, access } = await liveGrant();
        const winner = successorOf(grant, token);
        const winnerAccess = accessTokenFixture(clock);
        const rotatedAt = clock.now();
        expect(await rotate(refresh.tokenHash, winner, graceMs, winnerAccess)).toEqual({ status: 'rotated' });
        expect(await store.getRefreshToken(refresh.tokenHash)).toEqual({
          token: { ...refresh, rotatedAt, successor: winner.successor },
          grant,
        });
        expect(await store.getRefreshToken(winner.record.tokenHash)).toEqual({ token: winner.record, grant });

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
        const { grant, token, refresh } = await liveGrant();
        const second = successorOf(grant, token);
        expect(await rotate(refresh.tokenHash, second, 0)).toEqual({ status: 'rotated' });
        clock.advance(HOUR);
        const third = successorOf(grant, second.token);
        expect(await rotate(second.record.tokenHash, third, 0)).toEqual({ status: 'rotated' });
        expect(await store.getRefreshToken(third.record.tokenHash)).toEqual({ token: third.record, grant });
      });

      it('revokeGrant revokes every recorded access token and kills the refresh tokens; idempotent', async () => {
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
        expect(stored.filter((s) => s !== undefined)).toEqual([{ token: winner.record, grant }]);
      });
    });
    describe('revocations', () => {
      it('revokes an access token id until its expiresAt', async () => {
        const revoked = accessTokenFixture(clock, { expiresAt: clock.now() + MINUTE });
        await store.revokeAccessToken(revoked.jti, revoked.expiresAt);
        expect(await store.isAccessTokenRevoked(revoked.jti)).toBe(true);
        expect(await store.isAccessTokenRevoked(accessTokenFixture(clock).jti)).toBe(false);
        clock.set(revoked.expiresAt);
        expect(await store.isAccessTokenRevoked(revoked.jti)).toBe(false);
      });
    });

    describe('consents', () => {
      it('saves, replaces, deletes and expires consents per (user, client)', async () => {
        const consent = consentFixture(clock);
        await store.saveConsent(consent);
        expect(await store.getConsent(consent.userId, consent.clientId)).toEqual(consent);
        expect(await store.getConsent(consent.userId, 'other-client')).toBeUndefined();
        expect(await store.getConsent('other-user', consent.clientId)).toBeUndefined();

        const wider = { ...consent, scope: ['openid', 'profile', 'email'], createdAt: clock.now() + 1 };
        await store.saveConsent(wider);
        expect(await store.getConsent(consent.userId, consent.clientId)).toEqual(wider);

        await store.deleteConsent(consent.userId, consent.clientId);
        expect(await store.getConsent(consent.userId, consent.clientId)).toBeUndefined();
        await expect(store.deleteConsent('nobody', 'nothing')).resolves.toBeUndefined();

        const brief = consentFixture(clock, { expiresAt: clock.now() + HOUR });
        await store.saveConsent(brief);
        clock.set(brief.expiresAt);
        expect(await store.getConsent(brief.userId, brief.clientId)).toBeUndefined();
      });
    });

    describe('rate limits', () => {
      const WINDOW = 15 * MINUTE;
      const hit = (key: string, windowMs = WINDOW): Promise<number> => store.hitRateLimit(key, windowMs, clock.now());
      const peek = (key: string): Promise<number> => store.peekRateLimit(key, clock.now());
      /** Moves the clock to `offset` ms into the next window of `windowMs`; returns that window's start. */
      function enterWindow(offset: number, windowMs = WINDOW): number {
        const start = rateLimitWindowEnd(clock.now(), windowMs);
        clock.set(start + offset);
        return start;
      }

      it('counts hits per key and peeks without counting', async () => {
        const a = rateLimitKeyFixture();
        const b = rateLimitKeyFixture('login:ip');
        expect(await peek(a)).toBe(0);
        expect(await hit(a)).toBe(1);
        expect(await hit(a)).toBe(2);
        expect(await hit(a)).toBe(3);
        expect(await hit(b)).toBe(1);
        expect(await peek(a)).toBe(3);
        expect(await peek(a)).toBe(3);
        expect(await peek(b)).toBe(1);
        expect(await peek(rateLimitKeyFixture())).toBe(0);
      });

      it('a window ends at the next multiple of windowMs: the counter then reads as gone and starts over', async () => {
        const start = enterWindow(5 * MINUTE);
        const end = start + WINDOW;
        const key = rateLimitKeyFixture();
        expect(await hit(key)).toBe(1);
        clock.set(end - 1);
        expect(await hit(key)).toBe(2);
        expect(await peek(key)).toBe(2);
        clock.set(end);
        expect(await peek(key)).toBe(0);
        expect(await hit(key)).toBe(1);
        clock.set(end + WINDOW - 1);
        expect(await hit(key)).toBe(2);
        clock.set(end + WINDOW);
        expect(await peek(key)).toBe(0);
      });

      it('a counter keeps the window it was created in, whatever windowMs later hits pass', async () => {
        const start = enterWindow(0);
        const key = rateLimitKeyFixture();
        expect(await hit(key, WINDOW)).toBe(1);
        clock.set(start + 2 * MINUTE);
        // A one-minute window would have ended; the counter's own 15-minute window has not.
        expect(await hit(key, MINUTE)).toBe(2);
        clock.set(start + WINDOW);
        expect(await peek(key)).toBe(0);
      });

      it('reset clears one counter, so the next hit counts 1; resetting an unknown key is fine', async () => {
        const a = rateLimitKeyFixture();
        const b = rateLimitKeyFixture();
        await hit(a);
        await hit(a);
        await hit(b);
        await store.resetRateLimit(a);
        expect(await peek(a)).toBe(0);
        expect(await peek(b)).toBe(1);
        expect(await hit(a)).toBe(1);
        await expect(store.resetRateLimit(rateLimitKeyFixture())).resolves.toBeUndefined();
      });

      it('cleanup() keeps live counters, and expired ones stay gone', async () => {
        enterWindow(0, HOUR);
        const brief = rateLimitKeyFixture();
        const long = rateLimitKeyFixture();
        expect(await hit(brief, MINUTE)).toBe(1);
        expect(await hit(long, HOUR)).toBe(1);
        clock.advance(2 * MINUTE);
        await store.cleanup();
        expect(await peek(brief)).toBe(0);
        expect(await peek(long)).toBe(1);
        expect(await hit(brief, MINUTE)).toBe(1);
        expect(await hit(long, HOUR)).toBe(2);
      });

      it('refuses a window that is not a positive integer', async () => {
        const key = rateLimitKeyFixture();
        for (const windowMs of [0, -MINUTE, 1.5, Number.NaN]) {
          await expect(store.hitRateLimit(key, windowMs, clock.now())).rejects.toThrow(RangeError);
        }
        expect(await peek(key)).toBe(0);
      });

      it('50 parallel hits on one key return exactly 1..50', async () => {
        enterWindow(MINUTE);
        const key = rateLimitKeyFixture();
        const counts = await Promise.all(Array.from({ length: 50 }, () => hit(key)));
        expect(counts.sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await peek(key)).toBe(50);
      });
    });

    describeRecordsContract(() => ({ store, clock }));
    describeReplayGuardContract(() => ({ store, clock }));
    describeCascadeContract(() => ({ store, clock }));
  });
}
