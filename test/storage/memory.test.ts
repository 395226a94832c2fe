import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { StorageUnavailableError } from '../../src/model/errors.js';
import { describeStorageContract } from '../../src/storage/contract/contract.js';
import {
  DAY,
  HOUR,
  MINUTE,
  accessTokenFixture,
  clientFixture,
  codeFixture,
  grantFixture,
  refreshTokenFixture,
  sessionFixture,
  signingKeyFixture,
  userFixture,
} from '../../src/storage/contract/fixtures.js';
import { MemoryStorage, type MemoryStoreOptions } from '../../src/storage/memory/memory-storage.js';
import type { StoreLogger } from '../../src/storage/options.js';
import { parseConfig } from '../../src/config/load.js';
import { createGatehouse } from '../../src/server.js';

describeStorageContract('memory', async (clock) => {
  const store = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  await store.init();
  return store;
});

describe('MemoryStorage specifics', () => {
  const stores: MemoryStorage[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  function create(clock: ManualClock, options: Partial<MemoryStoreOptions> = {}): MemoryStorage {
    const store = new MemoryStorage({ clock, cleanupIntervalMs: 0, ...options });
    stores.push(store);
    return store;
  }

  function recordingLogger(): StoreLogger & { warnings: string[] } {
    const warnings: string[] = [];
    return { warnings, info: () => {}, error: () => {}, warn: (_obj, msg) => warnings.push(msg ?? '') };
  }

  it('sweeps expired records of every kind and reports how many it removed', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock);
    await store.saveSession(sessionFixture(clock, { expiresAt: clock.now() + MINUTE }));
    await store.saveSession(sessionFixture(clock, { expiresAt: clock.now() + HOUR }));
    await store.saveAuthorizationCode(codeFixture(clock).record);
    await store.revokeAccessToken('jti-1', clock.now() + MINUTE);
    // A grant that expires takes its refresh token and access token id with it.
    const grant = grantFixture(clock, { expiresAt: clock.now() + MINUTE });
    const refresh = refreshTokenFixture(clock, grant, { expiresAt: clock.now() + HOUR }).record;
    await store.createGrant(grant, refresh, accessTokenFixture(clock));

    expect(await store.cleanup()).toBe(0);
    clock.advance(MINUTE);
    expect(await store.cleanup()).toBe(6);
    expect(store.stats()).toMatchObject({
      records: 1,
      codes: 0,
      revokedAccessTokens: 0,
      grants: 0,
      refreshTokens: 0,
      grantAccessTokens: 0,
    });
    expect(await store.cleanup()).toBe(0);
  });

  it('keeps a consumed code as a replay marker until its expiresAt, then sweeps it', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock);
    const { record } = codeFixture(clock);
    await store.saveAuthorizationCode(record);
    await store.consumeAuthorizationCode(record.codeHash);
    expect(await store.cleanup()).toBe(0);
    expect((await store.consumeAuthorizationCode(record.codeHash)).status).toBe('reused');
    clock.set(record.expiresAt);
    expect(await store.cleanup()).toBe(1);
  });

  it('drops retired signing keys past their deadline on sweep', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock);
    await store.initSigningKeys([signingKeyFixture(clock)]);
    clock.advance(MINUTE);
    await store.rotateSigningKey(signingKeyFixture(clock), clock.now() + HOUR);
    expect(store.stats().signingKeys).toBe(2);
    clock.advance(HOUR);
    expect(await store.cleanup()).toBe(1);
    expect(store.stats().signingKeys).toBe(1);
  });

  it('runs the sweep on its timer from init() until close()', async () => {
    vi.useFakeTimers();
    const clock = new ManualClock(Date.now());
    const store = create(clock, { cleanupIntervalMs: 1000 });
    await store.init();
    await store.init();
    expect(vi.getTimerCount()).toBe(1);
    await store.saveSession(sessionFixture(clock, { expiresAt: clock.now() + MINUTE }));
    clock.advance(MINUTE);
    vi.advanceTimersByTime(1000);
    expect(store.stats().records).toBe(0);
    await store.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts no timer when cleanupIntervalMs is 0', async () => {
    vi.useFakeTimers();
    const store = create(new ManualClock(), { cleanupIntervalMs: 0 });
    await store.init();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('when a map is full, sweeps expired records before evicting live ones', async () => {
    const clock = new ManualClock(Date.now());
    const logger = recordingLogger();
    const store = create(clock, { maxEntries: 3, logger });
    const expiring = sessionFixture(clock, { expiresAt: clock.now() + MINUTE });
    const live = [sessionFixture(clock), sessionFixture(clock)];
    for (const s of [expiring, ...live]) await store.saveSession(s);
    clock.advance(MINUTE);
    const extra = sessionFixture(clock);
    await store.saveSession(extra);
    for (const s of [...live, extra]) expect(await store.getSession(s.id)).toEqual(s);
    expect(store.stats().records).toBe(3);
    expect(logger.warnings).toEqual([]);
  });

  it('when a map is full of live records, evicts the one closest to expiry and warns', async () => {
    const clock = new ManualClock(Date.now());
    const logger = recordingLogger();
    const store = create(clock, { maxEntries: 3, logger });
    const now = clock.now();
    const soonest = sessionFixture(clock, { expiresAt: now + MINUTE });
    const later = sessionFixture(clock, { expiresAt: now + 2 * HOUR });
    const latest = sessionFixture(clock, { expiresAt: now + 3 * HOUR });
    for (const s of [later, soonest, latest]) await store.saveSession(s);
    // Replacing an existing id never evicts.
    await store.saveSession({ ...later, authTime: now + 1 });
    expect(store.stats().records).toBe(3);

    for (let i = 0; i < 50; i++) await store.saveSession(sessionFixture(clock, { expiresAt: now + HOUR + i }));
    expect(store.stats().records).toBe(3);
    expect(await store.getSession(soonest.id)).toBeUndefined();
    expect(await store.getSession(later.id)).toBeDefined();
    expect(await store.getSession(latest.id)).toEqual(latest);
    expect(logger.warnings.length).toBeGreaterThan(0);
  });

  it('bounds every expiring map, e.g. codes and revoked access tokens', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock, { maxEntries: 10 });
    for (let i = 0; i < 100; i++) {
      await store.saveAuthorizationCode(codeFixture(clock, { expiresAt: clock.now() + MINUTE + i }).record);
      await store.revokeAccessToken(`jti-${i}`, clock.now() + HOUR + i);
    }
    expect(store.stats().codes).toBeLessThanOrEqual(10);
    expect(store.stats().revokedAccessTokens).toBeLessThanOrEqual(10);
    // The revocations kept are the longest-lived ones.
    expect(await store.isAccessTokenRevoked('jti-99')).toBe(true);
    expect(await store.isAccessTokenRevoked('jti-0')).toBe(false);
  });

  it('bounds and sweeps rate-limit counters like every other expiring map', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const store = create(clock, { maxEntries: 10 });
    for (let i = 0; i < 100; i++) await store.hitRateLimit(`login:ip:${i}`, MINUTE, clock.now());
    const kept = store.stats().rateLimits!;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(10);
    // The newest counters survive eviction (ties on expiry go in insertion order).
    expect(await store.peekRateLimit('login:ip:99', clock.now())).toBe(1);
    clock.advance(MINUTE);
    expect(await store.cleanup()).toBe(kept);
    expect(store.stats().rateLimits).toBe(0);
  });

  it('bounds and sweeps replay-guard keys like every other expiring map', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock, { maxEntries: 10 });
    for (let i = 0; i < 100; i++)
      expect(await store.firstUse(`jwt-assertion:${i}`, clock.now() + MINUTE + i)).toBe(true);
    const kept = store.stats().replayGuard!;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(10);
    // The longest-lived keys survive eviction.
    expect(await store.firstUse('jwt-assertion:99', clock.now() + HOUR)).toBe(false);
    clock.advance(MINUTE + 100);
    expect(await store.cleanup()).toBe(kept);
    expect(store.stats().replayGuard).toBe(0);
  });

  it('evicting a grant takes its refresh tokens and access token ids with it', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock, { maxEntries: 2 });
    const doomed = grantFixture(clock, { expiresAt: clock.now() + HOUR });
    const doomedToken = refreshTokenFixture(clock, doomed).record;
    await store.createGrant(doomed, doomedToken, accessTokenFixture(clock));
    await store.createGrant(grantFixture(clock), undefined, accessTokenFixture(clock));
    await store.createGrant(grantFixture(clock), undefined, accessTokenFixture(clock));
    expect(await store.getGrant(doomed.id)).toBeUndefined();
    expect(await store.getRefreshToken(doomedToken.tokenHash)).toBeUndefined();
    expect(store.stats()).toMatchObject({ grants: 2, refreshTokens: 0, grantAccessTokens: 2 });
  });

  /** N grants with one refresh token and one access token id each, expiring at `expiries[i]`; checked on every insert. */
  async function fillGrants(store: MemoryStorage, clock: ManualClock, expiries: number[], bound: number) {
    const entries = [];
    for (const expiresAt of expiries) {
      const grant = grantFixture(clock, { expiresAt });
      const refresh = refreshTokenFixture(clock, grant, { expiresAt });
      const access = accessTokenFixture(clock);
      await store.createGrant(grant, refresh.record, access);
      const { grants, refreshTokens, grantAccessTokens } = store.stats();
      if (grants! > bound || refreshTokens! > bound || grantAccessTokens! > bound)
        throw new Error(`over the bound after ${entries.length + 1} inserts: ${JSON.stringify(store.stats())}`);
      entries.push({ grant, tokenHash: refresh.record.tokenHash, jti: access.jti });
    }
    return entries;
  }

  /** Which of `entries` the store still holds, looked up through the port: grant, refresh token, access token id. */
  async function held(store: MemoryStorage, entries: Awaited<ReturnType<typeof fillGrants>>) {
    const out: { grant: boolean; refresh: boolean; access: boolean }[] = [];
    for (const e of entries) {
      out.push({
        grant: (await store.getGrant(e.grant.id)) !== undefined,
        refresh: (await store.getRefreshToken(e.tokenHash)) !== undefined,
        access: (await store.getAccessTokenGrantId(e.jti)) === e.grant.id,
      });
    }
    return out;
  }

  it('10x more grants than its bound: stays within it, evicts the oldest-expiring first, their tokens with them', async () => {
    const clock = new ManualClock(Date.now());
    const bound = 1000;
    const logger = recordingLogger();
    const store = create(clock, { maxEntries: bound, logger });
    // Increasing expiry (the bench's growth preload): the survivors must be exactly the newest ones.
    const n = 10 * bound;
    const entries = await fillGrants(
      store,
      clock,
      Array.from({ length: n }, (_, i) => clock.now() + DAY + i),
      bound,
    );
    const { grants, refreshTokens, grantAccessTokens } = store.stats();
    // Full, it frees 1% of the bound at once: between 99% (+1) and 100% of it stays.
    expect(grants).toBeGreaterThan(bound - bound / 100);
    expect(grants).toBeLessThanOrEqual(bound);
    expect(refreshTokens).toBe(grants);
    expect(grantAccessTokens).toBe(grants);
    const found = await held(store, entries);
    const firstKept = n - grants!;
    found.forEach((f, i) =>
      expect(f, `grant #${i}`).toEqual({ grant: i >= firstKept, refresh: i >= firstKept, access: i >= firstKept }),
    );
    expect(logger.warnings.length).toBe((n - grants!) / (bound / 100));
  });

  it('evicts by expiry, not by age: the survivors are those the documented policy keeps (ties: older first)', async () => {
    const clock = new ManualClock(Date.now());
    const bound = 500;
    const store = create(clock, { maxEntries: bound });
    // Shuffled expiries with many ties (a small LCG, so a failure reproduces).
    let seed = 12345;
    const expiries = Array.from({ length: 6 * bound }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return clock.now() + HOUR + (seed % 700) * 1000;
    });
    const entries = await fillGrants(store, clock, expiries, bound);
    // The policy as documented (bounded-map.ts), with a plain stable sort instead of the store's selection: on an
    // insert into a full map, the ceil(1%) of held entries closest to expiry go, equal expiries in insertion order.
    let kept: number[] = [];
    const batch = Math.max(1, Math.ceil(bound / 100));
    expiries.forEach((_, i) => {
      if (kept.length >= bound) {
        const doomed = new Set([...kept].sort((a, b) => expiries[a]! - expiries[b]! || a - b).slice(0, batch));
        kept = kept.filter((j) => !doomed.has(j));
      }
      kept.push(i);
    });
    const expected = new Set(kept);
    expect(store.stats()).toMatchObject({ grants: expected.size, refreshTokens: expected.size });
    const found = await held(store, entries);
    found.forEach((f, i) => {
      const want = expected.has(i);
      expect(f, `grant #${i} (expires +${expiries[i]! - clock.now()} ms)`).toEqual({
        grant: want,
        refresh: want,
        access: want,
      });
    });
  });

  it('never evicts clients or users: a full map rejects new ones with StorageUnavailableError', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock, { maxEntries: 2 });
    const clients = [clientFixture(clock), clientFixture(clock)];
    for (const c of clients) await store.saveClient(c);
    await expect(store.saveClient(clientFixture(clock))).rejects.toBeInstanceOf(StorageUnavailableError);
    // Updating an existing client still works, and every stored client survives.
    await store.saveClient({ ...clients[0]!, clientName: 'Renamed' });
    expect((await store.listClients()).map((c) => c.clientId).sort()).toEqual(clients.map((c) => c.clientId).sort());

    const users = [userFixture(clock), userFixture(clock)];
    for (const u of users) await store.saveUser(u);
    const late = userFixture(clock);
    await expect(store.saveUser(late)).rejects.toBeInstanceOf(StorageUnavailableError);
    // The failed insert must not have claimed the username.
    expect(await store.getUserByUsername(late.username)).toBeUndefined();
  });

  it('a token issued under an already revoked grant is born revoked', async () => {
    const clock = new ManualClock(Date.now());
    const store = create(clock);
    const grant = grantFixture(clock);
    await store.createGrant(grant, undefined, accessTokenFixture(clock));
    await store.revokeGrant(grant.id, clock.now());
    const late = accessTokenFixture(clock);
    await store.addAccessToken(grant.id, late);
    expect(await store.isAccessTokenRevoked(late.jti)).toBe(true);
  });

  it('rejects a non-positive maxEntries', () => {
    expect(() => new MemoryStorage({ clock: new ManualClock(), maxEntries: 0 })).toThrow(RangeError);
  });
});

describe('config memory.maxEntries', () => {
  it('bounds the store a server built from the config creates', async () => {
    const config = parseConfig({ storage: 'memory', logLevel: 'silent', memory: { maxEntries: 200 } });
    const gatehouse = await createGatehouse(config, { setupLink: false });
    try {
      const { storage, clock } = gatehouse.deps;
      const grants = Array.from({ length: 300 }, (_, i) => grantFixture(clock, { expiresAt: clock.now() + DAY + i }));
      for (const grant of grants) await storage.createGrant(grant, undefined, accessTokenFixture(clock));
      // Full at 200, it frees 2 (1%) at once, every other insert: the first 100 (closest to expiry) go, 200 stay.
      expect(await storage.getGrant(grants[99]!.id)).toBeUndefined();
      expect(await storage.getGrant(grants[100]!.id)).toBeDefined();
      expect(await storage.getGrant(grants[299]!.id)).toBeDefined();
    } finally {
      await gatehouse.close();
    }
  });
});
