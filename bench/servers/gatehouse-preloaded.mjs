/**
 * `gatehouse serve` on the memory store, with N grants put into the store before it listens: the growth row's
 * memory column (bench/lib/growth.mjs). The memory store lives in the server process, so the bench cannot fill it
 * from outside; this script builds the server as `gatehouse serve` does (src/cli/main.ts), from the production build
 * through the library API the package exports (dist/index.js: loadConfig, createStorage, createGatehouse), with the
 * same config (GATEHOUSE_CONFIG and the env overrides, `memory.maxEntries` included). The only difference: it
 * creates the store itself, exactly as createGatehouse would from that config, and hands it over through the
 * documented `storage` option, so it can call the store's own createGrant N times first. Nothing in the product is
 * bench-only.
 *
 * Env, besides Gatehouse's: BENCH_GROWTH_GRANTS (N, default 0), BENCH_GROWTH_PROBE_CLIENT (the client id of the
 * probe grants), BENCH_GROWTH_PROBE_EVERY (every k-th grant, and the last, is a probe), BENCH_GROWTH_REPORT (a file:
 * the preload's report as JSON, written before listening, and again with the final counts at SIGTERM).
 *
 * Grant i: the record shapes of the Redis preload (growth.mjs preloadRedisGrants), one refresh token, one access
 * token id; expiry now + 1 day + i ms, so the newest grant is the one expiring last and, once the store is over its
 * bound, eviction ("the live records closest to expiry") must have taken the oldest. A probe grant belongs to the
 * probe client and its refresh token is `growth-probe-<i>` (stored as its SHA-256, as Gatehouse stores every refresh
 * token), so the bench can ask /introspect whether it is still there.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import {
  createGatehouse,
  createLogger,
  createStorage,
  loadConfig,
  storageKind,
  systemClock,
} from '../../dist/index.js';

const grantsToLoad = Number(process.env.BENCH_GROWTH_GRANTS ?? 0);
const probeClient = process.env.BENCH_GROWTH_PROBE_CLIENT ?? 'bench-client';
const probeEvery = Number(process.env.BENCH_GROWTH_PROBE_EVERY ?? 1000);
const reportPath = process.env.BENCH_GROWTH_REPORT;

/** Gatehouse's hashToken (src/core/crypto.ts): SHA-256, base64url. */
const sha256 = (value) => createHash('sha256').update(value).digest('base64url');

const isProbe = (i, n) => i % probeEvery === 0 || i === n - 1;

/** Grant i of n: ids and hashes as the Redis preload's, a probe's client and token as described above. */
function growthGrant(i, n, now) {
  const probe = isProbe(i, n);
  const grant = {
    id: `growth-${i}`,
    clientId: probe ? probeClient : `growth-client-${i % 100_000}`,
    userId: `growth-user-${i % 50_000}`,
    scope: ['offline_access', 'bench:read'],
    resource: ['https://api.bench.example/'],
    authTime: now,
    createdAt: now,
    expiresAt: now + 86_400_000 + i,
  };
  const tokenHash = probe ? sha256(`growth-probe-${i}`) : `growth${String(i).padStart(37, '0')}`;
  const refreshToken = {
    tokenHash,
    grantId: grant.id,
    clientId: grant.clientId,
    scope: grant.scope,
    createdAt: now,
    expiresAt: grant.expiresAt,
  };
  return { grant, refreshToken, accessToken: { jti: `growth-at-${i}`, expiresAt: now + 3_600_000 } };
}

const rssMB = () => process.memoryUsage().rss / 2 ** 20;
const heapMB = () => process.memoryUsage().heapUsed / 2 ** 20;

const config = loadConfig();
if (storageKind(config.storage) !== 'memory') throw new Error('gatehouse-preloaded: GATEHOUSE_STORAGE must be memory');
const logger = createLogger(config.logLevel);
// The options createGatehouse passes when it creates the memory store from the config (src/server.ts).
const storage = await createStorage(config.storage, {
  clock: systemClock,
  logger,
  maxEntries: config.memory.maxEntries,
  cleanupIntervalMs: config.cleanupIntervalSeconds * 1000,
});
const gatehouse = await createGatehouse(config, { storage, logger, clock: systemClock });

const report = { grants: grantsToLoad, maxEntries: config.memory.maxEntries, probeEvery, rssMBBefore: rssMB() };
if (grantsToLoad > 0) {
  const now = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < grantsToLoad; i++) {
    const { grant, refreshToken, accessToken } = growthGrant(i, grantsToLoad, now);
    const { created } = await storage.createGrant(grant, refreshToken, accessToken);
    if (!created) throw new Error(`gatehouse-preloaded: grant ${grant.id} not created`);
  }
  report.preloadSeconds = (performance.now() - t0) / 1000;
  // What is left, read back through the store's own reads (every grant, its refresh token and its access token id):
  // how many, and whether they are exactly the newest (the latest-expiring) ones.
  const t1 = performance.now();
  let held = 0;
  let oldestHeld = -1;
  let newestMissing = -1;
  let tokensWithoutGrant = 0;
  let grantsWithoutToken = 0;
  for (let i = 0; i < grantsToLoad; i++) {
    const { grant, refreshToken, accessToken } = growthGrant(i, grantsToLoad, now);
    const hasGrant = (await storage.getGrant(grant.id)) !== undefined;
    const hasToken = (await storage.getRefreshToken(refreshToken.tokenHash)) !== undefined;
    const hasAccessId = (await storage.getAccessTokenGrantId(accessToken.jti)) !== undefined;
    if (hasGrant) {
      held++;
      if (oldestHeld < 0) oldestHeld = i;
      if (!hasToken || !hasAccessId) grantsWithoutToken++;
    } else {
      newestMissing = i;
      if (hasToken || hasAccessId) tokensWithoutGrant++;
    }
  }
  Object.assign(report, {
    held,
    evicted: grantsToLoad - held,
    oldestHeld,
    newestMissing,
    // Eviction as documented: every grant still held is newer than every grant gone.
    newestKept: newestMissing < oldestHeld || newestMissing < 0,
    tokensWithoutGrant,
    grantsWithoutToken,
    scanSeconds: (performance.now() - t1) / 1000,
  });
}
// The store's own record counts per map (MemoryStorage.stats(), its diagnostics).
report.stats = storage.stats();
report.rssMBAfterPreload = rssMB();
report.heapMBAfterPreload = heapMB();
if (reportPath) writeFileSync(reportPath, JSON.stringify(report));

// From here on, `gatehouse serve` (src/cli/main.ts serve()).
await gatehouse.app.listen({ port: config.port, host: config.host });
gatehouse.deps.logger.info(
  { issuer: config.issuer, port: config.port, host: config.host, storage: 'memory' },
  'gatehouse listening',
);
const stop = async (signal) => {
  gatehouse.deps.logger.info({ signal }, 'shutting down');
  if (reportPath)
    writeFileSync(reportPath, JSON.stringify({ ...report, final: { stats: storage.stats(), rssMB: rssMB() } }));
  await gatehouse.close();
  // Handed over through `storage`, the store is not closed by gatehouse.close().
  await storage.close();
  process.exit(0);
};
process.once('SIGINT', () => void stop('SIGINT'));
process.once('SIGTERM', () => void stop('SIGTERM'));
