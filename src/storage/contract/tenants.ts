/**
 * Contract tests for tenants (TenantStore, TenantScopes): the deployment's tenant list, and scoping enforced by the
 * backend. The same ids are written in the default scope and in two tenants, so a backend whose keys or primary keys
 * lack the tenant fails here; purgeTenant must leave the tenant's view empty and every other scope untouched.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../core/clock.js';
import { hashToken } from '../../core/crypto.js';
import type { Storage } from '../../model/ports.js';
import type { TenantRecord } from '../../model/records.js';
import { RECORD_KINDS } from '../../model/record-kinds.js';
import {
  DAY,
  HOUR,
  MINUTE,
  accessTokenFixture,
  clientFixture,
  codeFixture,
  consentFixture,
  grantFixture,
  refreshTokenFixture,
  sessionFixture,
  signingKeyFixture,
  successorFixture,
  userFixture,
} from './fixtures.js';
import type { CurrentStore } from './support.js';

/** The ids every scope uses for its items: equal across scopes on purpose. */
const SAME = {
  clientId: 'shared-client',
  userId: 'shared-user',
  username: 'alice',
  grantId: 'shared-grant',
  refreshToken: 'shared-refresh-token-value-0000000000',
  code: 'shared-code-value-000000000000000000',
  jti: 'shared-jti',
  sessionId: 'shared-session',
  counter: 'login:user:shared',
  once: 'jwt-assertion:shared',
  secret: 'cookie-key',
} as const;

function tenantFixture(clock: Clock, id: string, overrides: Partial<TenantRecord> = {}): TenantRecord {
  const now = clock.now();
  return {
    id,
    settings: { branding: { name: `Tenant ${id}` } },
    source: 'admin',
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}

/** Writes one of every kind of item into `view`, under the SAME ids, marked with `mark` where a field allows it. */
async function populate(view: Storage, clock: Clock, mark: string): Promise<void> {
  const now = clock.now();
  await view.saveClient(clientFixture(clock, { clientId: SAME.clientId, clientName: `client of ${mark}` }));
  await view.saveUser(userFixture(clock, { id: SAME.userId, username: SAME.username, name: `alice of ${mark}` }));
  await view.initSigningKeys([signingKeyFixture(clock, 'ES256', { kid: `key-${mark}` })]);
  await view.getOrCreateSecret(SAME.secret, `secret of ${mark}`);
  await view.saveSession(sessionFixture(clock, { id: SAME.sessionId, userId: SAME.userId }));
  const grant = grantFixture(clock, { id: SAME.grantId, clientId: SAME.clientId, userId: SAME.userId, nonce: mark });
  const refresh = refreshTokenFixture(clock, grant, { tokenHash: hashToken(SAME.refreshToken) });
  await view.createGrant(grant, refresh.record, accessTokenFixture(clock, { jti: `${SAME.jti}-of-grant` }));
  const { record: code } = codeFixture(clock, {
    codeHash: hashToken(SAME.code),
    clientId: SAME.clientId,
    userId: SAME.userId,
    nonce: mark,
  });
  await view.saveAuthorizationCode(code);
  await view.revokeAccessToken(SAME.jti, now + HOUR);
  await view.saveConsent(consentFixture(clock, { userId: SAME.userId, clientId: SAME.clientId, scope: [mark] }));
  await view.hitRateLimit(SAME.counter, MINUTE, now);
  await view.firstUse(SAME.once, now + MINUTE);
}

/** What `view` holds of the SAME items: undefined / empty / zero where it holds nothing. */
async function contentsOf(view: Storage, clock: Clock) {
  const now = clock.now();
  const refresh = await view.getRefreshToken(hashToken(SAME.refreshToken));
  const code = await view.getAuthorizationCode(hashToken(SAME.code));
  return {
    client: (await view.getClient(SAME.clientId))?.clientName,
    clients: (await view.listClients()).length,
    clientCount: await view.countClients(),
    user: (await view.getUser(SAME.userId))?.name,
    byUsername: (await view.getUserByUsername(SAME.username))?.name,
    users: (await view.listUsers()).length,
    keys: (await view.listSigningKeys()).map((k) => k.kid),
    session: (await view.getSession(SAME.sessionId))?.userId,
    grant: (await view.getGrant(SAME.grantId))?.nonce,
    refresh: refresh?.grant.nonce,
    code: code.status === 'live' ? code.code.nonce : code.status,
    revoked: await view.isAccessTokenRevoked(SAME.jti),
    consent: (await view.getConsent(SAME.userId, SAME.clientId))?.scope,
    counter: await view.peekRateLimit(SAME.counter, now),
  };
}

const EMPTY = {
  client: undefined,
  clients: 0,
  clientCount: 0,
  user: undefined,
  byUsername: undefined,
  users: 0,
  keys: [],
  session: undefined,
  grant: undefined,
  refresh: undefined,
  code: 'not_found',
  revoked: false,
  consent: undefined,
  counter: 0,
};

/** What `contentsOf` reads from a scope populated with `mark`. */
function populatedWith(mark: string) {
  return {
    client: `client of ${mark}`,
    clients: 1,
    clientCount: 1,
    user: `alice of ${mark}`,
    byUsername: `alice of ${mark}`,
    users: 1,
    keys: [`key-${mark}`],
    session: SAME.userId,
    grant: mark,
    refresh: mark,
    code: mark,
    revoked: true,
    consent: [mark],
    counter: 1,
  };
}

/** Registers the section; `current` returns the test's store and clock. */
export function describeTenantsContract(current: CurrentStore): void {
  describe('tenants', () => {
    it('keeps the deployment list of tenants: save replaces, get, list, delete reports whether it existed', async () => {
      const { store, clock } = current();
      expect(await store.getTenant('acme')).toBeUndefined();
      expect(await store.listTenants()).toEqual([]);
      const acme = tenantFixture(clock, 'acme');
      await store.saveTenant(acme);
      await store.saveTenant(tenantFixture(clock, 'globex', { source: 'config' }));
      expect(await store.getTenant('acme')).toEqual(acme);
      const updated = { ...acme, settings: { tokens: { accessTokenTtl: 60 } }, updatedAt: acme.updatedAt + 1 };
      await store.saveTenant(updated);
      expect(await store.getTenant('acme')).toEqual(updated);
      expect((await store.listTenants()).map((t) => t.id).sort()).toEqual(['acme', 'globex']);
      expect(await store.deleteTenant('acme')).toBe(true);
      expect(await store.deleteTenant('acme')).toBe(false);
      expect(await store.getTenant('acme')).toBeUndefined();
      expect((await store.listTenants()).map((t) => t.id)).toEqual(['globex']);
    });

    it('reads and writes the deployment list of tenants whichever view it is called on', async () => {
      const { store, clock } = current();
      await store.forTenant('acme').saveTenant(tenantFixture(clock, 'globex'));
      expect((await store.getTenant('globex'))?.id).toBe('globex');
      expect((await store.forTenant('initech').listTenants()).map((t) => t.id)).toEqual(['globex']);
    });

    it('keeps the same ids in the default scope and in two tenants as three separate items', async () => {
      const { store, clock } = current();
      await populate(store, clock, 'default');
      await populate(store.forTenant('acme'), clock, 'acme');
      await populate(store.forTenant('globex'), clock, 'globex');
      expect(await contentsOf(store, clock)).toEqual(populatedWith('default'));
      expect(await contentsOf(store.forTenant('acme'), clock)).toEqual(populatedWith('acme'));
      expect(await contentsOf(store.forTenant('globex'), clock)).toEqual(populatedWith('globex'));
      // Named secrets: first writer wins, per scope.
      expect(await store.forTenant('acme').getOrCreateSecret(SAME.secret, 'later')).toBe('secret of acme');
      expect(await store.getOrCreateSecret(SAME.secret, 'later')).toBe('secret of default');
    });

    it("shows a tenant nothing of another's items, nor of the default scope's, and the default scope nothing of a tenant's", async () => {
      const { store, clock } = current();
      await populate(store.forTenant('acme'), clock, 'acme');
      expect(await contentsOf(store.forTenant('globex'), clock)).toEqual(EMPTY);
      expect(await contentsOf(store, clock)).toEqual(EMPTY);
      await populate(store, clock, 'default');
      expect(await contentsOf(store.forTenant('globex'), clock)).toEqual(EMPTY);
      expect(await store.forTenant('globex').getOrCreateSecret(SAME.secret, 'globex own')).toBe('globex own');
    });

    it('keeps one-time and atomic operations per tenant: codes, rotation, revocation, replay guard, counters', async () => {
      const { store, clock } = current();
      const acme = store.forTenant('acme');
      const globex = store.forTenant('globex');
      await populate(acme, clock, 'acme');
      await populate(globex, clock, 'globex');
      const now = clock.now();

      expect((await acme.consumeAuthorizationCode(hashToken(SAME.code))).status).toBe('consumed');
      expect((await globex.consumeAuthorizationCode(hashToken(SAME.code))).status).toBe('consumed');

      /** Rotates the SAME refresh token in `view`; returns the successor's record. */
      const rotateIn = async (view: Storage) => {
        const next = refreshTokenFixture(clock, (await view.getGrant(SAME.grantId))!);
        const successor = successorFixture(SAME.refreshToken, next.token);
        const result = await view.rotateRefreshToken(
          hashToken(SAME.refreshToken),
          next.record,
          successor,
          accessTokenFixture(clock),
          now,
          0,
        );
        expect(result.status).toBe('rotated');
        return next.record;
      };
      await rotateIn(acme);
      const globexNext = { record: await rotateIn(globex) };
      expect(await acme.getRefreshToken(globexNext.record.tokenHash)).toBeUndefined();

      expect(await acme.revokeGrant(SAME.grantId, now)).toBe(true);
      expect((await acme.getGrant(SAME.grantId))?.revokedAt).toBe(now);
      expect((await globex.getGrant(SAME.grantId))?.revokedAt).toBeUndefined();
      expect(await globex.getRefreshToken(globexNext.record.tokenHash)).toBeDefined();

      expect(await acme.firstUse('dpop:other', now + MINUTE)).toBe(true);
      expect(await globex.firstUse('dpop:other', now + MINUTE)).toBe(true);
      expect(await acme.firstUse('dpop:other', now + MINUTE)).toBe(false);

      expect(await acme.hitRateLimit(SAME.counter, MINUTE, now)).toBe(2);
      expect(await acme.hitRateLimit(SAME.counter, MINUTE, now)).toBe(3);
      expect(await globex.peekRateLimit(SAME.counter, now)).toBe(1);
      await globex.resetRateLimit(SAME.counter);
      expect(await acme.peekRateLimit(SAME.counter, now)).toBe(3);
    });

    it('keeps cascades per tenant: deleting a user, its sessions and grants touches only its own tenant', async () => {
      const { store, clock } = current();
      const acme = store.forTenant('acme');
      const globex = store.forTenant('globex');
      await populate(acme, clock, 'acme');
      await populate(globex, clock, 'globex');
      expect(await acme.revokeGrantsFor(SAME.userId, SAME.clientId, clock.now())).toBe(1);
      expect(await acme.deleteSessionsOf(SAME.userId)).toBe(1);
      await acme.deleteConsent(SAME.userId, SAME.clientId);
      expect(await acme.deleteUser(SAME.userId)).toBe(true);
      expect(await acme.deleteClient(SAME.clientId)).toBe(true);
      expect(await contentsOf(globex, clock)).toEqual(populatedWith('globex'));
    });

    it('purgeTenant removes everything of that tenant and nothing of any other scope, and may be repeated', async () => {
      const { store, clock } = current();
      await populate(store, clock, 'default');
      await populate(store.forTenant('acme'), clock, 'acme');
      await populate(store.forTenant('globex'), clock, 'globex');
      await store.putRecord(
        RECORD_KINDS.interaction.name,
        'pending',
        { any: 'value' },
        {
          expiresAt: clock.now() + MINUTE,
        },
      );
      await store.forTenant('acme').putRecord(
        RECORD_KINDS.interaction.name,
        'pending',
        { any: 'acme' },
        {
          expiresAt: clock.now() + MINUTE,
        },
      );
      await store.saveTenant(tenantFixture(clock, 'acme'));

      expect(await store.purgeTenant('acme')).toBeGreaterThan(0);
      const acme = store.forTenant('acme');
      expect(await contentsOf(acme, clock)).toEqual(EMPTY);
      expect(await acme.getRecord(RECORD_KINDS.interaction.name, 'pending')).toBeUndefined();
      // A one-time value of the purged tenant may be used again: nothing of it is left.
      expect(await acme.firstUse(SAME.once, clock.now() + MINUTE)).toBe(true);
      expect(await acme.getOrCreateSecret(SAME.secret, 'new')).toBe('new');

      expect(await contentsOf(store, clock)).toEqual(populatedWith('default'));
      expect(await contentsOf(store.forTenant('globex'), clock)).toEqual(populatedWith('globex'));
      expect(await store.getRecord(RECORD_KINDS.interaction.name, 'pending')).toEqual({ any: 'value' });
      expect(await store.firstUse(SAME.once, clock.now() + MINUTE)).toBe(false);
      // The tenant's record is the registry's to delete (deleteTenant), not purgeTenant's.
      expect((await store.getTenant('acme'))?.id).toBe('acme');

      await store.forTenant('acme').purgeTenant('acme');
      expect(await store.purgeTenant('initech')).toBe(0);
    });

    it('runs expiry per tenant: cleanup removes expired items of tenants too', async () => {
      const { store, clock } = current();
      const acme = store.forTenant('acme');
      await populate(acme, clock, 'acme');
      clock.advance(100 * DAY);
      await store.cleanup();
      const left = await contentsOf(acme, clock);
      expect({
        ...left,
        client: undefined,
        clients: 0,
        clientCount: 0,
        user: undefined,
        byUsername: undefined,
        users: 0,
        keys: [],
      }).toEqual(EMPTY);
    });
  });
}
