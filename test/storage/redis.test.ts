/**
 * The Redis store against a real server (GATEHOUSE_TEST_REDIS_URL, default redis://127.0.0.1:6379): the shared
 * contract, then what only Redis shows: the key layout and TTLs, races across several connections (replicas),
 * and failing fast / reconnecting when the connection drops. Each store gets its own key prefix, deleted afterwards.
 *
 * Never skips silently: without Redis the file fails when CI=true, and otherwise skips with a visible message.
 * GATEHOUSE_TEST_REDIS_CLUSTER=host:port,... also runs the contract against a Redis Cluster, and
 * GATEHOUSE_TEST_REDIS_SENTINEL=host:port,.../masterName against a Sentinel-managed master.
 */
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { StorageUnavailableError } from '../../src/model/errors.js';
import { describeStorageContract } from '../../src/storage/contract/contract.js';
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
  refreshTokenFixture,
  sessionFixture,
  signingKeyFixture,
  successorFixture,
  userFixture,
} from '../../src/storage/contract/fixtures.js';
import type { StoreLogger, StoreOptions } from '../../src/storage/options.js';
import { clientOwner, userOwner } from '../../src/model/record-kinds.js';
import { redisKeys } from '../../src/storage/redis/keys.js';
import { SCRIPTS } from '../../src/storage/redis/scripts.js';
import { createRedisStorage, type RedisStorage } from '../../src/storage/redis/redis-storage.js';
import { rateLimitWindowEnd, type Storage } from '../../src/model/ports.js';

const REDIS_URL = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const CLUSTER_NODES = (process.env.GATEHOUSE_TEST_REDIS_CLUSTER ?? '')
  .split(',')
  .filter(Boolean)
  .map((node) => {
    const [host = '127.0.0.1', port = '6379'] = node.split(':');
    return { host, port: Number(port) };
  });

const SENTINEL = ((): { sentinels: { host: string; port: number }[]; name: string } | undefined => {
  const value = process.env.GATEHOUSE_TEST_REDIS_SENTINEL;
  if (!value) return undefined;
  const [list = '', name = 'mymaster'] = value.split('/');
  const sentinels = list.split(',').map((node) => {
    const [host = '127.0.0.1', port = '26379'] = node.split(':');
    return { host, port: Number(port) };
  });
  return { sentinels, name };
})();

async function probe(url: string): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    client.disconnect();
  }
}

const unreachable = await probe(REDIS_URL);
if (unreachable !== undefined) {
  const message = `Redis is not reachable at ${REDIS_URL} (${unreachable})`;
  // In CI a missing Redis is a broken pipeline, not a reason to pass.
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so the Redis store tests must run`);
  console.warn(
    `\n[test/storage/redis.test.ts] SKIPPING the Redis store tests: ${message}.\n` +
      'Start one (e.g. `docker run -p 6379:6379 redis:7`) or set GATEHOUSE_TEST_REDIS_URL.\n',
  );
}
const describeRedis = unreachable === undefined ? describe : describe.skip;

// ---- store factory with per-store key prefixes ----

const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
admin.on('error', () => {});
const prefixes = new Map<Storage, string>();
const opened: RedisStorage[] = [];

/** A fresh store on its own key prefix (or a given one, to act as another replica of the same deployment). */
async function openStore(
  clock: ManualClock,
  options: Partial<StoreOptions> & { prefix?: string; url?: string } = {},
): Promise<RedisStorage> {
  const { prefix = `gh-test:${randomUUID()}:`, url = REDIS_URL, ...rest } = options;
  const store = createRedisStorage(url, { clock, redisKeyPrefix: prefix, ...rest });
  opened.push(store);
  await store.init();
  prefixes.set(store, prefix);
  return store;
}

/**
 * Every key under a prefix (SCAN: fine in tests, never on a hot path), without the layout version init() writes
 * unless `withLayout` (it is no record: the layout tests list records).
 */
async function keysUnder(prefix: string, client: Redis = admin, withLayout = false): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const layout = redisKeys(prefix).layoutVersion;
  return found.filter((key) => withLayout || key !== layout).sort();
}

async function dropPrefix(prefix: string): Promise<void> {
  const keys = await keysUnder(prefix, admin, true);
  for (let i = 0; i < keys.length; i += 500) await admin.unlink(...keys.slice(i, i + 500));
}

async function teardown(store: Storage): Promise<void> {
  await store.close();
  const prefix = prefixes.get(store);
  if (prefix !== undefined) await dropPrefix(prefix);
  prefixes.delete(store);
}

afterAll(async () => {
  await Promise.all(opened.map((store) => store.close().catch(() => {})));
  for (const prefix of new Set(prefixes.values())) await dropPrefix(prefix).catch(() => {});
  admin.disconnect();
});

/** A logger that records every line, to check connection changes are logged once. */
function recordingLogger(): StoreLogger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const push = (level: string) => (_obj: object, msg?: string) => void lines.push({ level, msg: msg ?? '' });
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

async function waitFor<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The Redis Cluster slot of a key (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384). */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/** The key arguments of one command as MONITOR shows it (only the commands the store sends). */
function commandKeys(args: string[]): string[] {
  const name = (args[0] ?? '').toLowerCase();
  if (name === 'eval' || name === 'evalsha') return args.slice(3, 3 + Number(args[2]));
  if (['del', 'unlink', 'mget', 'exists'].includes(name)) return args.slice(1);
  if (['multi', 'exec', 'ping', 'info', 'client', 'select', 'script', 'quit', 'monitor'].includes(name)) return [];
  return args.slice(1, 2);
}

/** Undoes the escaping MONITOR applies to arguments (sdscatrepr), e.g. to a script body sent with EVAL. */
function unescapeMonitorArg(arg: string): string {
  const named: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' };
  return arg.replace(/\\(x[0-9a-f]{2}|[\s\S])/g, (_, escape: string) =>
    escape.length === 3 ? String.fromCharCode(parseInt(escape.slice(1), 16)) : (named[escape] ?? escape),
  );
}

/** A TCP proxy to Redis that a test can cut (dropping every connection) and restore on the same port. */
class Proxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private stalled = false;
  port = 0;

  async start(): Promise<void> {
    const target = new URL(REDIS_URL);
    this.server = net.createServer((downstream) => {
      const upstream = net.connect(Number(target.port || 6379), target.hostname);
      for (const socket of [downstream, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          this.sockets.delete(socket);
          downstream.destroy();
          upstream.destroy();
        });
      }
      downstream.on('data', (chunk) => {
        if (!this.stalled) upstream.write(chunk);
      });
      upstream.pipe(downstream);
    });
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Redis "gone": close the listener and every open connection. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** Redis "hung": the connection stays open but nothing sent reaches the server. */
  stall(on: boolean): void {
    this.stalled = on;
  }

  /** The proxy's URL, with Redis's scheme (bytes pass through, so rediss:// keeps working). */
  get url(): string {
    return `${new URL(REDIS_URL).protocol}//127.0.0.1:${this.port}`;
  }
}

// ---- tenants: one item of every kind per scope, and which scope a key is of ----

/** One item of every kind in `view`, under the ids `id(name)`. */
async function populateScope(view: Storage, clock: ManualClock, id: (name: string) => string): Promise<void> {
  const client = clientFixture(clock, { clientId: id('client') });
  const user = userFixture(clock, { id: id('user'), username: id('alice') });
  await view.saveClient(client);
  await view.saveUser(user);
  await view.initSigningKeys([signingKeyFixture(clock)]);
  await view.getOrCreateSecret(id('secret'), 'value');
  await view.saveSession(sessionFixture(clock, { id: id('session'), userId: user.id }));
  await view.saveInteraction(interactionFixture(clock, { id: id('interaction'), clientId: client.clientId }));
  const grant = grantFixture(clock, { id: id('grant'), clientId: client.clientId, userId: user.id });
  const refresh = refreshTokenFixture(clock, grant, { tokenHash: id('rt') }).record;
  await view.createGrant(grant, refresh, accessTokenFixture(clock, { jti: id('jti') }));
  const { record: code } = codeFixture(clock, { codeHash: id('code'), clientId: client.clientId });
  await view.saveAuthorizationCode(code);
  await view.revokeAccessToken(id('revoked'), clock.now() + HOUR);
  await view.saveConsent(consentFixture(clock, { userId: user.id, clientId: client.clientId }));
  await view.hitRateLimit(id('counter'), MINUTE, clock.now());
  await view.firstUse(id('once'), clock.now() + MINUTE);
}

/** Default-scope ids shaped like tenant keys on purpose: none of them may be taken for (or purged as) acme's. */
const lookalike = (name: string): string => (name.length % 2 === 0 ? `acme/${name}` : `{acme/${name}}`);

/** The scope a key under `prefix` belongs to: a tenant id, `default`, or `list` (the deployment's tenant list). */
function scopeOf(key: string, prefix: string): string {
  const rest = key.slice(prefix.length);
  if (rest === '{tenants}') return 'list';
  return /^\{?([a-z0-9-]+)\//.exec(rest)?.[1] ?? 'default';
}

/** The keys under `prefix` (on each of `nodes`), by scope. */
async function keysInScopes(prefix: string, nodes: Redis[] = [admin]): Promise<Record<string, string[]>> {
  const byScope: Record<string, string[]> = {};
  for (const node of nodes)
    for (const key of await keysUnder(prefix, node)) (byScope[scopeOf(key, prefix)] ??= []).push(key);
  for (const keys of Object.values(byScope)) keys.sort();
  return byScope;
}

// ---- the shared contract ----

describeRedis('Redis store', () => {
  describeStorageContract('redis', (clock) => openStore(clock), { teardown });
});

(CLUSTER_NODES.length > 0 ? describe : describe.skip)('Redis store on a Cluster (GATEHOUSE_TEST_REDIS_CLUSTER)', () => {
  describeStorageContract('redis cluster', (clock) => openStore(clock, { redisCluster: { nodes: CLUSTER_NODES } }), {
    teardown: async (store) => {
      await store.close();
      const prefix = prefixes.get(store);
      prefixes.delete(store);
      if (prefix === undefined) return;
      // Each master holds its own slots: scan and delete on every one.
      const cluster = new Cluster(CLUSTER_NODES);
      try {
        await cluster.ping();
        for (const node of cluster.nodes('master')) {
          for (const key of await keysUnder(prefix, node, true)) await node.unlink(key);
        }
      } finally {
        cluster.disconnect();
      }
    },
  });
});

(CLUSTER_NODES.length > 0 ? describe : describe.skip)('Redis Cluster: tenants (GATEHOUSE_TEST_REDIS_CLUSTER)', () => {
  it('purgeTenant deletes the tenant’s keys on every master, and no key of another scope', async () => {
    const clock = new ManualClock(Date.now());
    const store = await openStore(clock, { redisCluster: { nodes: CLUSTER_NODES } });
    const prefix = prefixes.get(store)!;
    const cluster = new Cluster(CLUSTER_NODES);
    try {
      await cluster.ping();
      const masters = cluster.nodes('master');
      await populateScope(store, clock, lookalike);
      await populateScope(store.forTenant('acme'), clock, (name) => name);
      await populateScope(store.forTenant('globex'), clock, (name) => name);
      const before = await keysInScopes(prefix, masters);
      expect(before.acme!.length).toBe(before.default!.length);
      // The tenant's keys are spread over the cluster, so a purge that scanned one master only would miss some.
      const holding = await Promise.all(masters.map(async (node) => (await keysInScopes(prefix, [node])).acme));
      expect(holding.filter((keys) => keys !== undefined).length).toBeGreaterThan(1);

      expect(await store.purgeTenant('acme')).toBe(before.acme!.length);
      const after = await keysInScopes(prefix, masters);
      expect(after.acme).toBeUndefined();
      expect(after.default).toEqual(before.default);
      expect(after.globex).toEqual(before.globex);
      for (const node of masters) for (const key of await keysUnder(prefix, node, true)) await node.unlink(key);
    } finally {
      cluster.disconnect();
      prefixes.delete(store);
      await store.close();
    }
  });
});

(SENTINEL ? describe : describe.skip)('Redis store via Sentinel (GATEHOUSE_TEST_REDIS_SENTINEL)', () => {
  describeStorageContract('redis sentinel', (clock) => openStore(clock, { redisSentinel: SENTINEL! }), {
    teardown: async (store) => {
      await store.close();
      const prefix = prefixes.get(store);
      prefixes.delete(store);
      if (prefix === undefined) return;
      const master = new Redis({ sentinels: SENTINEL!.sentinels, name: SENTINEL!.name });
      try {
        for (const key of await keysUnder(prefix, master, true)) await master.unlink(key);
      } finally {
        master.disconnect();
      }
    },
  });
});

// ---- what only Redis shows ----

describeRedis('Redis store specifics', () => {
  const logs = recordingLogger();
  let clock: ManualClock;
  let store: RedisStorage;
  let prefix: string;

  afterEach(async () => {
    // Tests that open no store leave the previous one here; teardown is idempotent.
    if (store) await teardown(store);
  });

  async function setup(): Promise<void> {
    clock = new ManualClock(Date.now());
    store = await openStore(clock, { logger: logs });
    prefix = prefixes.get(store)!;
  }

  async function pttl(key: string): Promise<number> {
    return admin.pttl(key);
  }

  /** PTTL is within a second of `expiresAt - now` (the time the test itself takes). */
  async function expectTtl(key: string, expiresAt: number): Promise<void> {
    const ttl = await pttl(key);
    const expected = expiresAt - clock.now();
    expect(ttl, key).toBeGreaterThan(expected - 1000);
    expect(ttl, key).toBeLessThanOrEqual(expected);
  }

  describe('key layout and TTLs', () => {
    it('writes every key of a grant family under the documented names, each with its owner’s TTL', async () => {
      await setup();
      const k = redisKeys(prefix);
      const client = clientFixture(clock);
      const user = userFixture(clock);
      await store.saveClient(client);
      await store.saveUser(user);
      const grant = grantFixture(clock, { clientId: client.clientId, userId: user.id });
      const refresh = refreshTokenFixture(clock, grant).record;
      const access = accessTokenFixture(clock);
      await store.createGrant(grant, refresh, access);
      const { record: code } = codeFixture(clock, { clientId: client.clientId, grantId: grant.id });
      await store.saveAuthorizationCode(code);
      const consent = consentFixture(clock, { userId: user.id, clientId: client.clientId });
      await store.saveConsent(consent);
      const interaction = interactionFixture(clock, { clientId: client.clientId });
      await store.saveInteraction(interaction);
      const session = sessionFixture(clock, { userId: user.id });
      await store.saveSession(session);
      await store.revokeAccessToken('revoked-jti', clock.now() + HOUR);
      await store.initSigningKeys([signingKeyFixture(clock)]);
      await store.getOrCreateSecret('cookie', 'secret');

      const expiring: [string, number][] = [
        [k.grant(grant.id), grant.expiresAt],
        [k.refreshToken(grant.id, refresh.tokenHash), refresh.expiresAt],
        [k.grantRefreshTokens(grant.id), refresh.expiresAt],
        [k.grantAccessTokens(grant.id), access.expiresAt],
        [k.refreshPointer(refresh.tokenHash), refresh.expiresAt],
        [k.accessPointer(access.jti), access.expiresAt],
        [k.clientGrants(client.clientId), grant.expiresAt],
        [k.userClientGrants(user.id, client.clientId), grant.expiresAt],
        [k.code(code.codeHash), code.expiresAt],
        [k.clientCodes(client.clientId), code.expiresAt],
        [k.consent(user.id, client.clientId), consent.expiresAt],
        [k.userConsents(user.id), consent.expiresAt],
        [k.clientConsents(client.clientId), consent.expiresAt],
        [k.record('interaction', interaction.id), interaction.expiresAt],
        [k.ownedRecords(clientOwner(client.clientId)), interaction.expiresAt],
        [k.record('session', session.id), session.expiresAt],
        [k.ownedRecords(userOwner(user.id)), session.expiresAt],
        [k.userGrants(user.id), grant.expiresAt],
        [k.revokedJti('revoked-jti'), clock.now() + HOUR],
      ];
      const permanent = [
        k.client(client.clientId),
        k.clients,
        k.clientsById,
        k.clientsByName,
        k.clientNames,
        k.user(user.id),
        k.username(user.username),
        k.users,
        k.usersByName,
        k.signingKeys,
        k.signingMeta,
        k.signingSeq,
        k.secret('cookie'),
      ];
      // Exactly these keys exist: nothing undocumented, nothing outside the prefix's namespace.
      expect(await keysUnder(prefix)).toEqual([...expiring.map(([key]) => key), ...permanent].sort());
      for (const [key, expiresAt] of expiring) await expectTtl(key, expiresAt);
      for (const key of permanent) expect(await pttl(key), key).toBe(-1);

      // A grant family shares one hash tag (one Cluster slot); so do a client's indexes and a user's consents.
      expect(k.refreshToken(grant.id, refresh.tokenHash)).toContain(`{g:${grant.id}}`);
      expect(k.userClientGrants(user.id, client.clientId)).toContain(`{c:${client.clientId}}`);
      expect(k.consent(user.id, client.clientId)).toContain(`{u:${user.id}}`);
    });

    it('appendToRecord: one key, PX from its creation kept by appends; later items spliced beside the value', async () => {
      await setup();
      const k = redisKeys(prefix);
      const created = clock.now() + MINUTE;
      const append = (items: string[], expiresAt: number) =>
        store.appendToRecord('flow_trace', 'g-1', {
          field: 'steps',
          items,
          maxItems: 3,
          droppedField: 'droppedSteps',
          create: { id: 'g-1', steps: [], empty: [] },
          placement: { expiresAt },
        });
      await append(['a'], created);
      const before = await keysUnder(prefix);
      expect(before).toEqual([k.record('flow_trace', 'g-1')]);
      expect(JSON.parse((await admin.get(k.record('flow_trace', 'g-1')))!)).toEqual({
        o: null,
        e: created,
        v: { id: 'g-1', steps: ['a'], empty: [] },
      });
      await append(['b', 'c', 'd'], clock.now() + HOUR);
      expect(await keysUnder(prefix)).toEqual(before);
      await expectTtl(k.record('flow_trace', 'g-1'), created);
      expect(JSON.parse((await admin.get(k.record('flow_trace', 'g-1')))!)).toEqual({
        o: null,
        e: created,
        v: { id: 'g-1', steps: ['a'], empty: [] },
        a: ['b', 'c'],
        h: ['"b","c"'.length, 3, 1, 'steps', 'droppedSteps'],
      });
      expect(await store.getRecord('flow_trace', 'g-1')).toEqual({
        id: 'g-1',
        steps: ['a', 'b', 'c'],
        empty: [],
        droppedSteps: 1,
      });
    });

    it('escapes ids inside hash tags so no id can close a tag or collide with another key', () => {
      const k = redisKeys('p:');
      expect(k.grant('a}b')).toBe('p:{g:a%7Db}:grant');
      expect(k.userClientGrants('u', 'x}:ugrants:y')).not.toBe(k.userClientGrants('y}:ugrants:u', 'x'));
      expect(k.consent('a:b', 'c')).toBe('p:{u:a%3Ab}:consent:c');
    });

    it('does not store records that have already expired', async () => {
      await setup();
      const past = clock.now() - 1;
      await store.saveSession(sessionFixture(clock, { expiresAt: past }));
      await store.saveAuthorizationCode(codeFixture(clock, { expiresAt: past }).record);
      await store.saveInteraction(interactionFixture(clock, { expiresAt: past }));
      await store.createGrant(grantFixture(clock, { expiresAt: past }), undefined, accessTokenFixture(clock));
      await store.revokeAccessToken('old', past);
      expect(await keysUnder(prefix)).toEqual([]);
    });

    it('a revoked grant (and its revocation of access tokens) lives until its last access token expires', async () => {
      await setup();
      const k = redisKeys(prefix);
      const grant = grantFixture(clock, { expiresAt: clock.now() + HOUR });
      const access = accessTokenFixture(clock, { expiresAt: clock.now() + 2 * HOUR });
      await store.createGrant(grant, refreshTokenFixture(clock, grant).record, access);
      await expectTtl(k.grant(grant.id), grant.expiresAt);
      await store.revokeGrant(grant.id, clock.now());
      await expectTtl(k.grant(grant.id), access.expiresAt);
      expect(await admin.exists(k.grantRefreshTokens(grant.id))).toBe(0);

      clock.set(grant.expiresAt);
      expect(await store.getGrant(grant.id)).toBeUndefined();
      expect(await store.isAccessTokenRevoked(access.jti)).toBe(true);
      clock.set(access.expiresAt);
      expect(await store.isAccessTokenRevoked(access.jti)).toBe(false);
    });

    it('index ZSETs drop expired members and live as long as their latest member', async () => {
      await setup();
      const k = redisKeys(prefix);
      const clientId = clientFixture(clock).clientId;
      const short = consentFixture(clock, { clientId, expiresAt: clock.now() + MINUTE });
      await store.saveConsent(short);
      await expectTtl(k.clientConsents(clientId), short.expiresAt);
      const long = consentFixture(clock, { clientId, expiresAt: clock.now() + DAY });
      await store.saveConsent(long);
      await expectTtl(k.clientConsents(clientId), long.expiresAt);
      clock.advance(2 * MINUTE);
      const later = consentFixture(clock, { clientId, expiresAt: clock.now() + HOUR });
      await store.saveConsent(later);
      expect((await admin.zrange(k.clientConsents(clientId), 0, -1)).sort()).toEqual(
        [long.userId, later.userId].sort(),
      );
      await expectTtl(k.clientConsents(clientId), long.expiresAt);
      await store.deleteConsent(long.userId, clientId);
      await expectTtl(k.clientConsents(clientId), later.expiresAt);
      expect(await admin.exists(k.userConsents(long.userId))).toBe(0);
    });

    it('deleteClient leaves no key of the client behind except revocations', async () => {
      await setup();
      const k = redisKeys(prefix);
      const client = clientFixture(clock);
      await store.saveClient(client);
      const user = userFixture(clock);
      const grant = grantFixture(clock, { clientId: client.clientId, userId: user.id });
      const refresh = refreshTokenFixture(clock, grant);
      const access = accessTokenFixture(clock);
      await store.createGrant(grant, refresh.record, access);
      await store.saveConsent(consentFixture(clock, { userId: user.id, clientId: client.clientId }));
      const { record: code } = codeFixture(clock, { clientId: client.clientId });
      await store.saveAuthorizationCode(code);
      const interaction = interactionFixture(clock, { clientId: client.clientId });
      await store.saveInteraction(interaction);

      expect(await store.deleteClient(client.clientId)).toBe(true);
      expect(await store.consumeAuthorizationCode(code.codeHash)).toEqual({ status: 'not_found' });
      expect(await store.getInteraction(interaction.id)).toBeUndefined();
      expect(await store.isAccessTokenRevoked(access.jti)).toBe(true);
      // Only the revocation entry (and the jti pointer, which expires with the token) remain.
      expect(await keysUnder(prefix)).toEqual([k.accessPointer(access.jti), k.revokedJti(access.jti)].sort());
      await expectTtl(k.revokedJti(access.jti), access.expiresAt);
    });

    it('keeps a rate-limit counter at `rl:<key>` as {n, exp}, with a TTL to the end of its window', async () => {
      await setup();
      const k = redisKeys(prefix);
      const key = `login:user:${randomUUID()}`;
      const windowEnd = rateLimitWindowEnd(clock.now(), 15 * MINUTE);
      await store.hitRateLimit(key, 15 * MINUTE, clock.now());
      await store.hitRateLimit(key, 15 * MINUTE, clock.now());
      expect(await keysUnder(prefix)).toEqual([k.rateLimit(key)]);
      expect(k.rateLimit(key)).toBe(`${prefix}rl:${key}`);
      expect(await admin.hgetall(k.rateLimit(key))).toEqual({ n: '2', exp: String(windowEnd) });
      await expectTtl(k.rateLimit(key), windowEnd);
      await store.resetRateLimit(key);
      expect(await keysUnder(prefix)).toEqual([]);
    });

    it('keeps a replay-guard key at `once:<key>` holding its expiresAt, with a TTL to it', async () => {
      await setup();
      const k = redisKeys(prefix);
      const key = `jwt-assertion:${randomUUID()}`;
      const until = clock.now() + 5 * MINUTE;
      expect(await store.firstUse(key, until)).toBe(true);
      expect(await store.firstUse(key, until + HOUR)).toBe(false);
      expect(await keysUnder(prefix)).toEqual([k.replayGuard(key)]);
      expect(k.replayGuard(key)).toBe(`${prefix}once:${key}`);
      expect(await admin.get(k.replayGuard(key))).toBe(String(until));
      await expectTtl(k.replayGuard(key), until);
    });

    it('cleanup() deletes retired signing keys past their expiry (Redis expires everything else itself)', async () => {
      await setup();
      const k = redisKeys(prefix);
      await store.initSigningKeys([signingKeyFixture(clock)]);
      await store.rotateSigningKey(signingKeyFixture(clock), clock.now() + HOUR);
      expect(await store.cleanup()).toBe(0);
      clock.advance(HOUR);
      expect(await store.cleanup()).toBe(1);
      expect(await admin.hlen(k.signingKeys)).toBe(1);
      expect(await admin.hlen(k.signingMeta)).toBe(1);
    });

    it('deleteUser also removes the user’s consents from both indexes', async () => {
      await setup();
      const user = userFixture(clock);
      await store.saveUser(user);
      const consent = consentFixture(clock, { userId: user.id });
      await store.saveConsent(consent);
      expect(await store.deleteUser(user.id)).toBe(true);
      expect(await store.getConsent(user.id, consent.clientId)).toBeUndefined();
      expect(await keysUnder(prefix)).toEqual([]);
    });
  });

  describe('tenants: keys and purge', () => {
    const populate = (view: Storage, id: (name: string) => string): Promise<void> => populateScope(view, clock, id);
    const keysByScope = (): Promise<Record<string, string[]>> => keysInScopes(prefix);

    it('builds tenant keys with the tenant in the hash tag or after the prefix, and default keys as before', () => {
      const k = redisKeys('p:', 'acme');
      const d = redisKeys('p:');
      expect(k.grant('a}b')).toBe('p:{acme/g:a%7Db}:grant');
      expect(k.refreshToken('g', 'h')).toBe('p:{acme/g:g}:rt:h');
      expect(k.consent('a:b', 'c')).toBe('p:{acme/u:a%3Ab}:consent:c');
      expect(k.client('c')).toBe('p:{acme/clients}:c:c');
      expect(k.signingKeys).toBe('p:{acme/keys}:signing');
      expect(k.ownedRecords('user:u')).toBe('p:{acme/o:user%3Au}:recs');
      expect(k.code('h')).toBe('p:acme/code:h');
      expect(k.record('session', 's')).toBe('p:acme/rec:session:s');
      expect(k.rateLimit('login:user:x')).toBe('p:acme/rl:login:user:x');
      expect(d.grant('g')).toBe('p:{g:g}:grant');
      expect(d.code('h')).toBe('p:code:h');
      expect(k.tenants).toBe('p:{tenants}');
      expect(d.tenants).toBe(k.tenants);
      // A grant family still shares one slot inside a tenant; tenants' families of one grant id do not collide.
      expect(keySlot(k.refreshToken('g', 'h'))).toBe(keySlot(k.grantAccessTokens('g')));
      expect(k.grant('g')).not.toBe(redisKeys('p:', 'globex').grant('g'));
      for (const bad of ['', 'Acme', 'a/b', 'a}b', '*', 'acme/', '-a'])
        expect(() => redisKeys('p:', bad)).toThrow(RangeError);
    });

    it('no default-scope key, whatever its ids, reads as a tenant key', () => {
      const d = redisKeys('p:');
      const ids = ['acme/x', '{acme/x}', 'acme/g:x', '}{acme/', 'acme', '{tenants}', 'x/y'];
      for (const id of ids) {
        const keys = [
          d.client(id),
          d.user(id),
          d.username(id),
          d.secret(id),
          d.record(id, id),
          d.ownedRecords(id),
          d.code(id),
          d.grant(id),
          d.refreshToken(id, id),
          d.grantTombstone(id),
          d.refreshPointer(id),
          d.accessPointer(id),
          d.revokedJti(id),
          d.rateLimit(id),
          d.replayGuard(id),
          d.clientGrants(id),
          d.userClientGrants(id, id),
          d.clientCodes(id),
          d.consent(id, id),
          d.userGrants(id),
        ];
        for (const key of keys) {
          expect(scopeOf(key, 'p:'), key).toBe('default');
          expect(key).not.toBe(d.tenants);
        }
      }
    });

    it('a tenant view writes the default layout’s keys, each with the tenant in its hash tag or after the prefix', async () => {
      await setup();
      const acme = store.forTenant('acme');
      await populate(acme, (name) => name);
      await acme.saveTenant({ id: 'acme', settings: {}, source: 'admin', createdAt: 0, updatedAt: 0 });
      const keys = await keysUnder(prefix);
      const others = keys.filter((key) => !key.startsWith(`${prefix}{acme/`) && !key.startsWith(`${prefix}acme/`));
      expect(others).toEqual([`${prefix}{tenants}`]);
      for (const key of keys.filter((key) => key.includes('{'))) {
        expect(key.slice(key.indexOf('{') + 1, key.indexOf('}')), key).toMatch(/^acme\/|^tenants$/);
      }

      // The same items in the default scope of another prefix: the same keys, without `acme/`.
      const plain = await openStore(clock);
      const plainPrefix = prefixes.get(plain)!;
      await populate(plain, (name) => name);
      const unscoped = keys
        .filter((key) => key !== `${prefix}{tenants}`)
        .map((key) => plainPrefix + key.slice(prefix.length).replace(/^(\{?)acme\//, '$1'));
      expect(unscoped.sort()).toEqual(await keysUnder(plainPrefix));
      await teardown(plain);
    });

    it('purgeTenant removes every key of one tenant and no key of the default scope or another tenant', async () => {
      await setup();
      await populate(store, lookalike);
      await populate(store.forTenant('acme'), (name) => name);
      await populate(store.forTenant('globex'), (name) => name);
      await store.saveTenant({ id: 'acme', settings: {}, source: 'admin', createdAt: 0, updatedAt: 0 });
      const before = await keysByScope();
      expect(Object.keys(before).sort()).toEqual(['acme', 'default', 'globex', 'list']);
      // The same items make the same number of keys in every scope (20 of them).
      expect(before.acme).toHaveLength(before.default!.length);
      expect(before.globex).toHaveLength(before.default!.length);
      expect(before.acme!.length).toBeGreaterThanOrEqual(20);

      expect(await store.forTenant('globex').purgeTenant('acme')).toBe(before.acme!.length);
      const after = await keysByScope();
      expect(after.acme).toBeUndefined();
      expect(after.default).toEqual(before.default);
      expect(after.globex).toEqual(before.globex);
      expect(after.list).toEqual(before.list);
      expect((await store.getClient(lookalike('client')))?.clientId).toBe(lookalike('client'));
      expect(await store.purgeTenant('acme')).toBe(0);
    });

    it('purgeTenant escapes the prefix for MATCH: a prefix with glob characters purges only its own keys', async () => {
      await setup();
      const base = `gh-test:${randomUUID()}:`;
      const globbing = await openStore(clock, { prefix: `${base}*[a-z]?\\:` });
      const other = await openStore(clock, { prefix: `${base}xb!:` });
      await populate(globbing.forTenant('acme'), (name) => name);
      await populate(other.forTenant('acme'), (name) => name);
      const otherKeys = await keysUnder(prefixes.get(other)!);
      expect(otherKeys.length).toBeGreaterThan(0);
      expect(await globbing.purgeTenant('acme')).toBe(otherKeys.length);
      expect(await keysUnder(prefixes.get(globbing)!)).toEqual([]);
      expect(await keysUnder(prefixes.get(other)!)).toEqual(otherKeys);
      await teardown(globbing);
      await teardown(other);
    });

    it('refuses an id that is not a tenant id, so no pattern can reach beyond one tenant', async () => {
      await setup();
      await populate(store, lookalike);
      for (const bad of ['*', 'acme*', '', 'a/b', 'ACME']) {
        await expect(store.purgeTenant(bad)).rejects.toThrow(RangeError);
        expect(() => store.forTenant(bad)).toThrow(RangeError);
      }
      expect(Object.keys(await keysByScope())).toEqual(['default']);
    });

    it('views share the store’s one connection: no new connection, and closing a view closes nothing', async () => {
      await setup();
      const connections = async (): Promise<number> =>
        String(await admin.client('LIST'))
          .split('\n')
          .filter((line) => line.includes(` name=gatehouse:${prefix} `)).length;
      const acme = store.forTenant('acme');
      expect(store.forTenant('acme')).toBe(acme);
      expect(acme.forTenant('globex')).toBe(store.forTenant('globex'));
      await populate(acme, (name) => name);
      await populate(acme.forTenant('globex'), (name) => name);
      await acme.init();
      await acme.close();
      expect(await connections()).toBe(1);
      expect((await acme.getClient('client'))?.clientId).toBe('client');
      expect(await store.getClient('client')).toBeUndefined();
      expect((await keysByScope()).globex!.length).toBeGreaterThan(0);
    });

    it('cleanup() of the deployment’s store also drops retired signing keys of listed tenants', async () => {
      await setup();
      const acme = store.forTenant('acme');
      await store.saveTenant({ id: 'acme', settings: {}, source: 'admin', createdAt: 0, updatedAt: 0 });
      await acme.initSigningKeys([signingKeyFixture(clock)]);
      await acme.rotateSigningKey(signingKeyFixture(clock), clock.now() + HOUR);
      clock.advance(HOUR);
      expect(await store.cleanup()).toBe(1);
      expect(await admin.hlen(redisKeys(prefix, 'acme').signingKeys)).toBe(1);
    });
  });

  describe('Cluster slots (checked on a single server with MONITOR)', () => {
    it('computes slots like Redis', () => {
      // CLUSTER KEYSLOT values from the Redis documentation.
      expect(keySlot('foo')).toBe(12182);
      expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    });

    it.each([
      ['the default scope', undefined],
      ['a tenant', 'acme'],
    ])(
      'every script run, transaction and multi-key command touches keys of one slot only, in %s',
      async (_, tenant) => {
        await setup();
        const view = tenant === undefined ? store : store.forTenant(tenant);
        const monitor = await admin.monitor();
        // Script bodies run atomically, so the "lua" lines of one run are contiguous in the MONITOR stream.
        const events: { source: string; args: string[] }[] = [];
        monitor.on('monitor', (_time: string, args: string[], source: string) => events.push({ source, args }));
        try {
          const client = clientFixture(clock);
          const user = userFixture(clock);
          await view.saveClient(client);
          await view.saveUser(user);
          await view.saveUser({ ...user, username: `${user.username}-renamed` });
          await view.initSigningKeys([signingKeyFixture(clock)]);
          await view.rotateSigningKey(signingKeyFixture(clock), clock.now() + HOUR);
          await view.cleanup();
          await view.getOrCreateSecret('cookie', 'x');
          await view.saveInteraction(interactionFixture(clock, { clientId: client.clientId }));
          // A flow trace's appends: the one that creates the record, then one that splices into it.
          for (const item of ['first', 'second']) {
            await view.appendToRecord('flow_trace', 'trace-1', {
              field: 'steps',
              items: [item],
              maxItems: 10,
              droppedField: 'droppedSteps',
              create: { id: 'trace-1', steps: [] },
              placement: { expiresAt: clock.now() + MINUTE },
            });
          }
          const { record: code } = codeFixture(clock, { clientId: client.clientId });
          await view.saveAuthorizationCode(code);
          await view.consumeAuthorizationCode(code.codeHash);
          await view.saveConsent(consentFixture(clock, { userId: user.id, clientId: client.clientId }));
          const grant = grantFixture(clock, { clientId: client.clientId, userId: user.id });
          const first = refreshTokenFixture(clock, grant);
          await view.createGrant(grant, first.record, accessTokenFixture(clock));
          await view.addAccessToken(grant.id, accessTokenFixture(clock));
          const next = refreshTokenFixture(clock, grant);
          const rotate = (n = refreshTokenFixture(clock, grant)) =>
            view.rotateRefreshToken(
              first.record.tokenHash,
              n.record,
              successorFixture(first.token, n.token),
              accessTokenFixture(clock),
              clock.now(),
              SECOND,
            );
          expect((await rotate(next)).status).toBe('rotated');
          expect((await rotate()).status).toBe('grace');
          clock.advance(2 * SECOND);
          expect((await rotate()).status).toBe('reused');
          await view.isAccessTokenRevoked('some-jti');
          await view.revokeAccessToken('some-jti', clock.now() + HOUR);
          const second = grantFixture(clock, { clientId: client.clientId, userId: user.id });
          const access = accessTokenFixture(clock);
          await view.createGrant(second, refreshTokenFixture(clock, second).record, access);
          await view.isAccessTokenRevoked(access.jti);
          await view.revokeGrant(second.id, clock.now());
          await view.revokeGrantsFor(user.id, client.clientId, clock.now());
          await view.deleteConsent(user.id, client.clientId);
          await view.saveConsent(consentFixture(clock, { userId: user.id, clientId: client.clientId }));
          await view.deleteClient(client.clientId);
          // deleteUser then has a grant (of another client), a session and a consent to cascade to.
          const other = clientFixture(clock);
          await view.saveClient(other);
          const third = grantFixture(clock, { clientId: other.clientId, userId: user.id });
          await view.createGrant(third, refreshTokenFixture(clock, third).record, accessTokenFixture(clock));
          await view.saveConsent(consentFixture(clock, { userId: user.id, clientId: other.clientId }));
          const [ended, kept] = [
            sessionFixture(clock, { userId: user.id }),
            sessionFixture(clock, { userId: user.id }),
          ];
          await view.saveSession(ended);
          await view.saveSession(kept);
          await view.deleteSession(ended.id);
          await view.listGrantsOfUser(user.id, { limit: 1 });
          await view.listGrantsOfClient(other.clientId, {});
          await view.listConsentsOfUser(user.id, {});
          await view.listConsentsOfClient(other.clientId, {});
          await view.deleteUser(user.id);
          // The listings of clients and users, with the rebuild of their indexes (data from before them).
          await view.saveUser(userFixture(clock));
          const viewKeys = redisKeys(prefix, tenant);
          await admin.del(viewKeys.clientsById);
          await admin.del(viewKeys.usersByName);
          await view.pageClients({ limit: 1 });
          await view.pageClients({ namePrefix: 'ex' });
          await view.pageUsers({ usernamePrefix: 'a' });
          await view.hitRateLimit('login:user:x', MINUTE, clock.now());
          await view.hitRateLimit('login:user:x', MINUTE, clock.now());
          await view.peekRateLimit('login:user:x', clock.now());
          await view.resetRateLimit('login:user:x');
          await view.firstUse('jwt-assertion:x', clock.now() + MINUTE);
          await view.ping();
          if (tenant !== undefined) {
            await view.saveTenant({
              id: tenant,
              settings: {},
              source: 'admin',
              createdAt: clock.now(),
              updatedAt: clock.now(),
            });
            await view.forTenant('globex').getClient('x');
            await store.cleanup();
            await store.purgeTenant(tenant);
          }
          // init() on data of an older layout (a client whose empty scope meant "no allow-list") upgrades it.
          await store.saveClient({ ...clientFixture(clock), scope: [] });
          await admin.del(redisKeys(prefix).layoutVersion);
          await store.init();
        } finally {
          await new Promise((resolve) => setTimeout(resolve, 100));
          monitor.disconnect();
        }

        const mine = (key: string): boolean => key.startsWith(prefix);
        const problems: string[] = [];
        const check = (what: string, keys: string[]): void => {
          const slots = new Set(keys.filter(mine).map(keySlot));
          if (slots.size > 1) problems.push(`${what}: ${keys.join(' ')}`);
        };
        const shas = new Map(
          Object.entries(SCRIPTS).map(([name, lua]) => [createHash('sha1').update(lua).digest('hex'), name]),
        );
        const seen = new Set<string>();
        const transactions = new Map<string, string[]>();
        let run: string[] = [];
        for (const { source, args } of events) {
          if (source === 'lua') {
            run.push(...commandKeys(args));
            continue;
          }
          check('script run', run);
          run = [];
          const name = (args[0] ?? '').toLowerCase();
          if (name === 'eval' || name === 'evalsha') {
            const sha =
              name === 'eval'
                ? createHash('sha1')
                    .update(unescapeMonitorArg(args[1] ?? ''))
                    .digest('hex')
                : args[1];
            const script = shas.get(sha ?? '');
            if (script && commandKeys(args).some(mine)) seen.add(script);
          }
          check(name, commandKeys(args));
          if (name === 'multi') transactions.set(source, []);
          else if (name === 'exec') {
            check('transaction', transactions.get(source) ?? []);
            transactions.delete(source);
          } else transactions.get(source)?.push(...commandKeys(args));
        }
        check('script run', run);
        expect(problems).toEqual([]);
        if (tenant !== undefined) {
          // Every key the view touched is the tenant's (or globex's, or the deployment's tenant list); default-scope
          // keys come only from the deployment store's own cleanup() and layout upgrade at the end.
          const scoped = [`${prefix}{${tenant}/`, `${prefix}${tenant}/`, `${prefix}{globex/`, `${prefix}{tenants}`];
          const upgrade = [`${prefix}{keys}`, `${prefix}{clients}`, `${prefix}{c:`];
          const keys = events.flatMap(({ args }) => commandKeys(args)).filter(mine);
          expect(keys.filter((key) => ![...scoped, ...upgrade].some((start) => key.startsWith(start)))).toEqual([]);
          expect(keys.filter((key) => key.startsWith(`${prefix}${tenant}/`)).length).toBeGreaterThan(0);
        }
        // The scenario exercised every script.
        expect([...seen].sort()).toEqual(Object.keys(SCRIPTS).sort());
      },
    );
  });

  describe('races across replicas (separate connections, one key prefix)', () => {
    const replicas: RedisStorage[] = [];
    afterEach(async () => {
      await Promise.all(replicas.splice(0).map((replica) => replica.close()));
    });

    async function withReplicas(n: number): Promise<RedisStorage[]> {
      await setup();
      replicas.push(store);
      for (let i = 1; i < n; i++) replicas.push(await openStore(clock, { prefix }));
      return [...replicas];
    }

    it('50 parallel consumes of one code over 5 replicas: exactly one consumed, 49 reused', async () => {
      const nodes = await withReplicas(5);
      const { record } = codeFixture(clock);
      await nodes[0]!.saveAuthorizationCode(record);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => nodes[i % nodes.length]!.consumeAuthorizationCode(record.codeHash)),
      );
      expect(results.filter((r) => r.status === 'consumed')).toEqual([{ status: 'consumed', code: record }]);
      expect(results.filter((r) => r.status === 'reused')).toHaveLength(49);
    });

    it('50 parallel rotations of one refresh token over 5 replicas: one rotated, 49 grace, one live successor', async () => {
      const nodes = await withReplicas(5);
      const grant = grantFixture(clock);
      const { token, record } = refreshTokenFixture(clock, grant);
      await nodes[0]!.createGrant(grant, record, accessTokenFixture(clock));
      const attempts = Array.from({ length: 50 }, () => {
        const next = refreshTokenFixture(clock, grant);
        return { next, successor: successorFixture(token, next.token), access: accessTokenFixture(clock) };
      });
      const results = await Promise.all(
        attempts.map((a, i) =>
          nodes[i % nodes.length]!.rotateRefreshToken(
            record.tokenHash,
            a.next.record,
            a.successor,
            a.access,
            clock.now(),
            10 * SECOND,
          ),
        ),
      );
      const winners = attempts.filter((_, i) => results[i]!.status === 'rotated');
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      expect(results.filter((r) => r.status === 'grace')).toEqual(
        Array.from({ length: 49 }, () => ({ status: 'grace', successor: winner.successor })),
      );
      // Only the winner's token and jti were stored; the losers left no pointer behind.
      const k = redisKeys(prefix);
      expect(await admin.zrange(k.grantRefreshTokens(grant.id), 0, -1)).toHaveLength(2);
      expect(await admin.zcard(k.grantAccessTokens(grant.id))).toBe(2);
      const pointers = (await keysUnder(prefix)).filter((key) => key.includes(':rtp:') || key.includes(':atp:'));
      expect(pointers).toHaveLength(4);

      // A replay after the grace window on any replica revokes the family for all of them.
      clock.advance(11 * SECOND);
      const late = refreshTokenFixture(clock, grant);
      expect(
        await nodes[3]!.rotateRefreshToken(
          record.tokenHash,
          late.record,
          'x',
          accessTokenFixture(clock),
          clock.now(),
          10 * SECOND,
        ),
      ).toEqual({ status: 'reused', grantId: grant.id });
      for (const node of nodes) {
        expect(await node.getRefreshToken(winner.next.record.tokenHash)).toBeUndefined();
        expect(await node.isAccessTokenRevoked(winner.access.jti)).toBe(true);
      }
    });

    it('50 parallel rate-limit hits on one key over 5 replicas return exactly 1..50', async () => {
      const nodes = await withReplicas(5);
      const key = `login:user:${randomUUID()}`;
      const counts = await Promise.all(
        Array.from({ length: 50 }, (_, i) => nodes[i % nodes.length]!.hitRateLimit(key, 15 * MINUTE, clock.now())),
      );
      expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    });

    it('50 parallel first uses of one replay-guard key over 5 replicas: exactly one true, also after expiry', async () => {
      const nodes = await withReplicas(5);
      const race = async (key: string): Promise<number> => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => nodes[i % nodes.length]!.firstUse(key, clock.now() + MINUTE)),
        );
        return results.filter(Boolean).length;
      };
      for (let round = 0; round < 3; round++) expect(await race(`jwt-assertion:${randomUUID()}`)).toBe(1);
      const key = `jwt-assertion:${randomUUID()}`;
      expect(await race(key)).toBe(1);
      clock.advance(MINUTE);
      expect(await race(key)).toBe(1);
    });

    it('replicas starting together agree on one signing key set and one secret', async () => {
      const nodes = await withReplicas(5);
      const keySets = await Promise.all(nodes.map((node) => node.initSigningKeys([signingKeyFixture(clock)])));
      for (const set of keySets) expect(set).toEqual(keySets[0]);
      const secrets = await Promise.all(nodes.map((node, i) => node.getOrCreateSecret('cookie', `candidate-${i}`)));
      expect(new Set(secrets).size).toBe(1);
    });

    it('a username is unique across replicas even when saved concurrently', async () => {
      const nodes = await withReplicas(5);
      const username = `race-${randomUUID()}`;
      const results = await Promise.allSettled(nodes.map((node) => node.saveUser(userFixture(clock, { username }))));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await nodes[0]!.listUsers()).toHaveLength(1);
    });
  });

  describe('connection loss', () => {
    const proxies: Proxy[] = [];
    afterEach(async () => {
      await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()));
    });

    it('init() fails fast with StorageUnavailableError when nothing listens, and logs it once', async () => {
      const logger = recordingLogger();
      // A port that was free a moment ago: connection refused.
      const server = net.createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as net.AddressInfo).port;
      await new Promise((resolve) => server.close(resolve));

      const dead = createRedisStorage(`redis://127.0.0.1:${port}`, { clock: new ManualClock(), logger });
      opened.push(dead);
      const started = Date.now();
      await expect(dead.init()).rejects.toBeInstanceOf(StorageUnavailableError);
      for (let i = 0; i < 20; i++) await expect(dead.getClient('x')).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(dead.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(logger.lines.filter((line) => line.level === 'error')).toHaveLength(1);
      await dead.close();
    });

    it('while Redis is gone calls fail fast; when it returns the same store reconnects on its own', async () => {
      const proxy = new Proxy();
      proxies.push(proxy);
      await proxy.start();
      const logger = recordingLogger();
      clock = new ManualClock(Date.now());
      store = await openStore(clock, { url: proxy.url, logger });
      const client = clientFixture(clock);
      await store.saveClient(client);

      await proxy.stop();
      await waitFor(async () => {
        await expect(store.getClient(client.clientId)).rejects.toBeInstanceOf(StorageUnavailableError);
      }, 2000);
      const started = Date.now();
      for (let i = 0; i < 50; i++) {
        await expect(store.consumeAuthorizationCode('x')).rejects.toBeInstanceOf(StorageUnavailableError);
      }
      await expect(store.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(Date.now() - started).toBeLessThan(1000);

      await proxy.start();
      expect(await waitFor(() => store.getClient(client.clientId), 5000)).toEqual(client);
      // One line for the loss, one for the return: not one per failed call or reconnect attempt.
      expect(logger.lines.map((line) => line.level)).toEqual(['info', 'error', 'info']);
      expect(logger.lines[2]!.msg).toMatch(/restored/);
    });

    it('recovers after CLIENT KILL of its connection', async () => {
      await setup();
      const client = clientFixture(clock);
      await store.saveClient(client);
      const list = await admin.client('LIST');
      const ids = String(list)
        .split('\n')
        .filter((line) => line.includes(` name=gatehouse:${prefix} `))
        .map((line) => /\bid=(\d+)/.exec(line)?.[1])
        .filter((id): id is string => id !== undefined);
      expect(ids).toHaveLength(1);
      await admin.client('KILL', 'ID', ids[0]!);
      expect(await waitFor(() => store.getClient(client.clientId), 5000)).toEqual(client);
    });

    it('a hung server fails calls with StorageUnavailableError after the command timeout instead of hanging', async () => {
      const proxy = new Proxy();
      proxies.push(proxy);
      await proxy.start();
      clock = new ManualClock(Date.now());
      store = await openStore(clock, { url: proxy.url });
      proxy.stall(true);
      const started = Date.now();
      await expect(store.getClient('x')).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(Date.now() - started).toBeLessThan(7000);
      proxy.stall(false);
    }, 15_000);
  });
});
