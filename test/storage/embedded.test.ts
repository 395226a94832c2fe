/**
 * The embedded (PGlite) store: the shared contract on one in-memory PGlite with a fresh schema per test (starting a
 * PGlite takes seconds, a schema milliseconds), plus what only a real directory shows: data survives a re-open.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { describeStorageContract } from '../../src/storage/contract/contract.js';
import {
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
import { createEmbeddedStorage, createEmbeddedStorageOn } from '../../src/storage/sql/embedded.js';
import type { Storage } from '../../src/model/ports.js';

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-embedded-'));
  dirs.push(dir);
  return dir;
}

async function open(dir: string, clock: ManualClock): Promise<Storage> {
  const store = createEmbeddedStorage(dir, { clock, cleanupIntervalMs: 0 });
  await store.init();
  return store;
}

/** A store in a fresh schema of the shared PGlite. */
async function openShared(clock: ManualClock, cleanupIntervalMs = 0): Promise<Storage> {
  const sqlSchema = `gh_test_${randomBytes(6).toString('hex')}`;
  const store = createEmbeddedStorageOn(shared, { clock, sqlSchema, cleanupIntervalMs });
  await store.init();
  return store;
}

/** One in-memory PGlite shared by the contract run; each store gets its own schema on it. */
let shared: PGlite;
const schemaOf = new WeakMap<Storage, string>();

beforeAll(async () => {
  shared = new PGlite('memory://');
  await shared.waitReady;
}, 60_000);

afterAll(async () => {
  await shared?.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describeStorageContract(
  'embedded (PGlite, schema per test)',
  async (clock) => {
    const sqlSchema = `gh_test_${randomBytes(6).toString('hex')}`;
    const store = createEmbeddedStorageOn(shared, { clock, sqlSchema, cleanupIntervalMs: 0 });
    await store.init();
    schemaOf.set(store, sqlSchema);
    return store;
  },
  {
    teardown: async (store) => {
      await store.close();
      await shared.query(`DROP SCHEMA IF EXISTS "${schemaOf.get(store)}" CASCADE`);
    },
  },
);

describe('embedded storage on disk', () => {
  it('creates the directory and keeps every kind of record across a re-open', async () => {
    const dir = join(await tempDir(), 'nested', 'data');
    const clock = new ManualClock();
    const first = await open(dir, clock);
    expect(first.kind).toBe('embedded');
    expect((await readdir(dir)).length).toBeGreaterThan(0);

    const client = clientFixture(clock);
    const user = userFixture(clock);
    const key = signingKeyFixture(clock, 'ES256');
    const grant = grantFixture(clock, { clientId: client.clientId, userId: user.id });
    const refresh = refreshTokenFixture(clock, grant).record;
    const { record: code } = codeFixture(clock);
    await first.saveClient(client);
    await first.saveUser(user);
    await first.initSigningKeys([key]);
    await first.getOrCreateSecret('cookie', 'persisted-secret');
    await first.createGrant(grant, refresh, accessTokenFixture(clock));
    await first.saveAuthorizationCode(code);
    expect((await first.consumeAuthorizationCode(code.codeHash)).status).toBe('consumed');
    await first.close();
    await first.close(); // idempotent

    const second = await open(dir, clock);
    try {
      expect(await second.getClient(client.clientId)).toEqual(client);
      expect(await second.getUserByUsername(user.username)).toEqual(user);
      expect(await second.listSigningKeys()).toEqual([key]);
      expect(await second.getOrCreateSecret('cookie', 'other')).toBe('persisted-secret');
      expect(await second.getRefreshToken(refresh.tokenHash)).toEqual({ token: refresh, grant });
      // The consumed flag is persisted too: a replay after a restart is still reuse.
      expect(await second.consumeAuthorizationCode(code.codeHash)).toMatchObject({ status: 'reused' });
    } finally {
      await second.close();
    }
  }, 120_000); // two PGlite starts on disk

  it('fails calls after close() with StorageUnavailableError, leaving a shared PGlite open', async () => {
    const store = createEmbeddedStorageOn(shared, {
      clock: new ManualClock(),
      sqlSchema: 'gh_test_closed',
      cleanupIntervalMs: 0,
    });
    await store.init();
    await store.close();
    await expect(store.ping()).rejects.toMatchObject({ name: 'StorageUnavailableError' });
    expect((await shared.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('applies each migration once, however often init() runs', async () => {
    const clock = new ManualClock();
    const stores = [0, 1, 2].map(() =>
      createEmbeddedStorageOn(shared, { clock, sqlSchema: 'gh_test_migrate', cleanupIntervalMs: 0 }),
    );
    await Promise.all(stores.map((s) => s.init()));
    await stores[0]!.init();
    const { rows } = await shared.query('SELECT version FROM gh_test_migrate.gatehouse_migrations');
    expect(rows).toEqual([
      { version: 1 },
      { version: 2 },
      { version: 3 },
      { version: 4 },
      { version: 5 },
      { version: 6 },
      { version: 7 },
      { version: 8 },
      { version: 9 },
      { version: 10 },
      { version: 11 },
      { version: 12 },
      { version: 13 },
      { version: 14 },
    ]);
    await Promise.all(stores.map((s) => s.close()));
  });
});

describe('embedded storage cleanup', () => {
  it('cleanup() deletes exactly the expired rows and reports how many', async () => {
    const clock = new ManualClock();
    const store = await openShared(clock);
    try {
      await store.saveSession(sessionFixture(clock, { expiresAt: clock.now() + MINUTE }));
      await store.saveSession(sessionFixture(clock, { expiresAt: clock.now() + MINUTE }));
      const live = sessionFixture(clock, { expiresAt: clock.now() + 10 * MINUTE });
      await store.saveSession(live);
      const { record: code } = codeFixture(clock); // expires in one minute
      await store.saveAuthorizationCode(code);
      await store.revokeAccessToken('jti-1', clock.now() + MINUTE);
      await store.firstUse('jwt-assertion:brief', clock.now() + MINUTE);
      await store.firstUse('jwt-assertion:live', clock.now() + 10 * MINUTE);
      clock.advance(MINUTE);
      expect(await store.cleanup()).toBe(5);
      expect(await store.cleanup()).toBe(0);
      expect(await store.getSession(live.id)).toEqual(live);
      expect(await store.firstUse('jwt-assertion:live', clock.now() + MINUTE)).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('cleanup() deletes expired rate-limit counters and keeps live ones', async () => {
    // 30 s into an hour: the one-minute window ends in 30 s, the one-hour window in 59.5 minutes.
    const clock = new ManualClock(Date.UTC(2030, 0, 1, 0, 0, 30));
    const store = await openShared(clock);
    try {
      await store.hitRateLimit('login:user:brief', MINUTE, clock.now());
      await store.hitRateLimit('login:user:brief', MINUTE, clock.now());
      await store.hitRateLimit('login:ip:long', 60 * MINUTE, clock.now());
      clock.advance(MINUTE);
      expect(await store.cleanup()).toBe(1);
      expect(await store.peekRateLimit('login:ip:long', clock.now())).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('the periodic cleanup removes expired rows by itself', async () => {
    const clock = new ManualClock();
    const store = await openShared(clock, 20);
    try {
      const session = sessionFixture(clock, { expiresAt: clock.now() + MINUTE });
      await store.saveSession(session);
      clock.advance(MINUTE);
      // Expired rows are invisible at once; the timer makes them physically gone, so cleanup() finds nothing left.
      await expect.poll(() => store.cleanup(), { timeout: 2000, interval: 30 }).toBe(0);
      await store.saveSession(sessionFixture(clock, { expiresAt: clock.now() + 1 }));
      clock.advance(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await store.cleanup()).toBe(0);
    } finally {
      await store.close();
    }
  });
});
