/**
 * The growth row (opt-in: `--scenarios=growth`): does a store that holds a lot of data serve as fast as an empty one?
 * PostgreSQL, Redis and memory (bench/README.md, "The growth row"). One dedicated Gatehouse per store on its own
 * database or key prefix (its own periodic cleanup off: `cleanupIntervalSeconds: 0`), then:
 * 1. refresh rotation, refresh-token introspection and client_credentials on the empty store (`--reps` runs each);
 * 2. a bulk preload: PostgreSQL straight into the store's real schema (src/storage/sql/migrations.ts, tenant '' =
 *    the deployment's own scope): N live grants with a refresh token each (`INSERT … SELECT … FROM generate_series`,
 *    one statement per table, so PostgreSQL builds the rows itself) and N/10 registered clients, then ANALYZE;
 *    Redis through the store's own createGrant (preloadRedisGrants);
 * 3. the same cells on the grown store: target within 10% of the empty store (grown ÷ empty ≥ 90%);
 * 4. PostgreSQL: N more grants and refresh tokens, already expired; refresh rotation once without cleanup and once
 *    while the bench runs, on its own connection, the statements of the SQL store's cleanup (src/storage/sql/cleanup.ts
 *    deleteExpired: one DELETE … WHERE expires_at <= now per table, in one transaction), started when the measured
 *    window starts: target p99 during cleanup ≤ 2 × p99 without.
 * The memory store lives in the server process, so it is filled there: bench/servers/gatehouse-preloaded.mjs (the
 * server `gatehouse serve` builds, through the library API, its store's createGrant called N times before it
 * listens), with `memory.maxEntries` = N/4, so the store must evict: the empty cells on one such server with no
 * preload, the grown ones on another with N; it reports how many grants the store holds and whether the evicted ones
 * are the oldest-expiring (its own full read-back, and /introspect of probe refresh tokens over HTTP).
 * N = 10^6 (10^5 with --quick, which says so). The empty cells run first and the grown ones after (the store cannot
 * be un-grown), each cell primed once before; the cleanup's own duration is reported next to the window's, since a
 * cleanup shorter than the window dilutes the p99. The server's RSS (VmRSS) is reported after the empty cells, after
 * the preload and after the row, for every store. Embedded store: not implemented (reported as such).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { postJson } from './http.mjs';
import { connect, SCENARIOS, signInUsers } from './scenarios.mjs';
import { summariseRuns } from './report.mjs';
import { BENCH, ROOT, startGatehouse, stopTarget } from './targets.mjs';
import { rssMB } from './tenants.mjs';

/** The memory column's server: `gatehouse serve` with its store filled before it listens. */
const PRELOADED_SERVER = join(BENCH, 'servers/gatehouse-preloaded.mjs');

const CELLS = ['refresh', 'introspect_rt', 'client_credentials'];

async function pgClient(url) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  return c;
}

/** N grants (+ one refresh token each) expiring at `expiresAt`, ids prefixed `tag`; returns the seconds it took. */
async function preloadGrants(db, n, tag, now, expiresAt) {
  const t0 = performance.now();
  await db.query(
    `INSERT INTO public.grants (tenant, id, client_id, user_id, scope, resource, auth_time, nonce, created_at,
       expires_at)
     SELECT '', $1 || i, 'growth-client-' || (i % 100000), 'growth-user-' || (i % 50000),
       ARRAY['offline_access','bench:read'], ARRAY['https://api.bench.example/'], $2::bigint, NULL, $2::bigint,
       $3::bigint
     FROM generate_series(1, $4::int) AS i`,
    [tag, now, expiresAt, n],
  );
  await db.query(
    `INSERT INTO public.refresh_tokens (tenant, token_hash, grant_id, client_id, scope, created_at, expires_at)
     SELECT '', md5($1 || i) || md5(i || $1), $1 || i, 'growth-client-' || (i % 100000),
       ARRAY['offline_access','bench:read'], $2::bigint, $3::bigint
     FROM generate_series(1, $4::int) AS i`,
    [tag, now, expiresAt, n],
  );
  return (performance.now() - t0) / 1000;
}

async function preloadClients(db, n, now) {
  const t0 = performance.now();
  await db.query(
    `INSERT INTO public.clients (tenant, client_id, client_secret_hash, registration_access_token_hash,
       redirect_uris, grant_types, response_types, scope, token_endpoint_auth_method, application_type, source,
       metadata, client_secret_expires_at, created_at, updated_at)
     SELECT '', 'growth-client-' || i, 'hmac:' || md5(i::text), NULL, ARRAY['https://app' || i || '.example/cb'],
       ARRAY['authorization_code','refresh_token'], ARRAY['code'], ARRAY['bench:read'], 'client_secret_basic',
       'web', 'dynamic', '{"client_name":"growth"}'::jsonb, 0, $1::bigint, $1::bigint
     FROM generate_series(0, $2::int - 1) AS i`,
    [now, n],
  );
  return (performance.now() - t0) / 1000;
}

/**
 * Redis: N grants with a refresh token each written through the store's own createGrant (dist/storage/redis, the
 * bench process's own connection with the server's key prefix), 500 in flight over ioredis: exactly the keys,
 * hashes, pointers and client/user indexes Gatehouse writes (src/storage/redis/grants.ts), one grant after another.
 */
async function preloadRedisGrants(target, n, now, expiresAt) {
  const { createRedisStorage } = await import(pathToFileURL(join(ROOT, 'dist/storage/redis/redis-storage.js')).href);
  const store = createRedisStorage(target.storage, {
    clock: { now: () => Date.now() },
    redisKeyPrefix: target.redisPrefix,
  });
  await store.init();
  const t0 = performance.now();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: 500 }, async () => {
        while (next < n) {
          const i = next++;
          const grant = {
            id: `growth-${i}`,
            clientId: `growth-client-${i % 100_000}`,
            userId: `growth-user-${i % 50_000}`,
            scope: ['offline_access', 'bench:read'],
            resource: ['https://api.bench.example/'],
            authTime: now,
            createdAt: now,
            expiresAt,
          };
          const tokenHash = `growth${String(i).padStart(37, '0')}`;
          await store.createGrant(
            grant,
            { tokenHash, grantId: grant.id, clientId: grant.clientId, scope: grant.scope, createdAt: now, expiresAt },
            { jti: `growth-at-${i}`, expiresAt: now + 3_600_000 },
          );
        }
      }),
    );
  } finally {
    await store.close();
  }
  return (performance.now() - t0) / 1000;
}

/**
 * The SQL store's own cleanup (Storage.cleanup: the statements and transaction of src/storage/sql/cleanup.ts) on a
 * store opened by the bench process on the server's database, so the server's connection pool is not the one busy
 * deleting; returns rows and seconds.
 */
async function runCleanup(url) {
  const { createStorage } = await import(pathToFileURL(join(ROOT, 'dist/storage/index.js')).href);
  const store = await createStorage(url, { clock: { now: () => Date.now() }, cleanupIntervalMs: 0 });
  try {
    await store.init();
    const t0 = performance.now();
    const rows = await store.cleanup();
    return { rows, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await store.close();
  }
}

async function cells(target, settings, reps, log, phase) {
  const out = {};
  for (const id of CELLS) {
    const scenario = SCENARIOS.find((s) => s.id === id);
    const runs = [];
    for (let rep = 0; rep < reps; rep++) {
      try {
        const r = await scenario.run(target, settings);
        runs.push(r);
        log(`growth ${phase} ${id} #${rep + 1}: ${r.rate.toFixed(0)} ${scenario.unit}, p99 ${r.p99.toFixed(1)} ms`);
      } catch (err) {
        runs.push({ failed: err.message });
      }
    }
    out[id] = summariseRuns(runs);
  }
  return out;
}

/** A preloaded memory server (bench/servers/gatehouse-preloaded.mjs) with `grants` grants and the store bound `bound`. */
async function startMemory(identity, { runId, workDir, grants, bound, probeEvery, phase }) {
  const reportPath = join(workDir, `growth-memory-${phase}.json`);
  const target = await startGatehouse('memory', identity, {
    runId: `${runId}_growth_${phase}`,
    workDir,
    label: `gatehouse:memory:growth-${phase}`,
    bin: PRELOADED_SERVER,
    extraConfig: { cleanupIntervalSeconds: 0, memory: { maxEntries: bound } },
    env: {
      BENCH_GROWTH_GRANTS: String(grants),
      BENCH_GROWTH_PROBE_CLIENT: identity.client.client_id,
      BENCH_GROWTH_PROBE_EVERY: String(probeEvery),
      BENCH_GROWTH_REPORT: reportPath,
    },
    // 10^6 createGrant calls and their read-back run before the server answers /health.
    startTimeoutMs: 900_000,
  });
  target.readReport = () => JSON.parse(readFileSync(reportPath, 'utf8'));
  return target;
}

/**
 * The probe grants' refresh tokens (every `probeEvery`-th grant and the last; the probe client's), introspected over
 * HTTP: which are active. `expectActive(i)` says which should be; returns counts and the indices that disagree.
 */
async function introspectProbes(target, n, probeEvery, expectActive) {
  const indices = [];
  for (let i = 0; i < n; i += probeEvery) indices.push(i);
  if (indices.at(-1) !== n - 1) indices.push(n - 1);
  let active = 0;
  const wrong = [];
  const activeAt = [];
  for (const i of indices) {
    const r = await postJson(
      target.pool,
      target.endpoints.introspect,
      { token: `growth-probe-${i}`, token_type_hint: 'refresh_token' },
      target.auth,
    );
    if (r.active) active++;
    activeAt.push(r.active === true);
    if (expectActive && r.active !== expectActive(i)) wrong.push(i);
  }
  // Eviction by expiry (here: by index) leaves the active ones as a suffix: no inactive probe after an active one.
  const firstActive = activeAt.indexOf(true);
  const suffix = firstActive < 0 || activeAt.slice(firstActive).every(Boolean);
  return { probes: indices.length, active, inactive: indices.length - active, wrong, suffix };
}

/** The largest of the grant-related map counts (MemoryStorage.stats()). */
const grantMaps = (stats) => Math.max(stats.grants, stats.refreshTokens, stats.grantAccessTokens);

/** The growth row on the memory store: an empty server, then one preloaded with n grants over its bound. */
async function growMemory({ identity, workDir, runId, settings, log, n }) {
  const bound = n / 4;
  const probeEvery = n / 100;
  const s = { status: 'ok', maxEntries: bound, rssMB: {} };
  let target;
  try {
    target = await startMemory(identity, { runId, workDir, grants: 0, bound, probeEvery, phase: 'empty' });
    if (target.error) throw new Error(target.error);
    await connect(target, identity, settings.concurrency);
    await signInUsers(target, settings.concurrency);
    for (const id of CELLS) await SCENARIOS.find((x) => x.id === id).run(target, settings);
    s.empty = await cells(target, settings, settings.reps, log, 'empty');
    s.rssMB.afterEmptyRow = rssMB(target.child.pid);
    await target.pool?.close().catch(() => undefined);
    await stopTarget(target);

    const spawned = performance.now();
    target = await startMemory(identity, { runId, workDir, grants: n, bound, probeEvery, phase: 'grown' });
    if (target.error) throw new Error(target.error);
    s.startSeconds = (performance.now() - spawned) / 1000;
    const report = target.readReport();
    s.rssMB.afterPreload = rssMB(target.child.pid);
    s.preloadSeconds = { grants: report.preloadSeconds };
    Object.assign(s, {
      readBackSeconds: report.scanSeconds,
      held: report.held,
      evicted: report.evicted,
      oldestHeld: report.oldestHeld,
      newestMissing: report.newestMissing,
      newestKept: report.newestKept,
      cascade: { tokensWithoutGrant: report.tokensWithoutGrant, grantsWithoutToken: report.grantsWithoutToken },
      statsAfterPreload: report.stats,
      heapMBAfterPreload: report.heapMBAfterPreload,
    });
    log(
      `growth memory: ${n} createGrant calls in ${report.preloadSeconds.toFixed(1)} s (bound ${bound}): ${report.held} held, ${report.evicted} evicted, oldest held #${report.oldestHeld}; RSS ${s.rssMB.afterPreload?.toFixed(0)} MB`,
    );
    await connect(target, identity, settings.concurrency);
    // Before anything else writes to the store: the probes older than the oldest held grant must be gone.
    s.probes = await introspectProbes(target, n, probeEvery, (i) => i >= report.oldestHeld);
    log(
      `growth memory: probes over HTTP ${s.probes.active} active, ${s.probes.inactive} inactive, ${s.probes.wrong.length} not as expected`,
    );
    await signInUsers(target, settings.concurrency);
    for (const id of CELLS) await SCENARIOS.find((x) => x.id === id).run(target, settings);
    s.grown = await cells(target, settings, settings.reps, log, 'grown');
    s.ratios = grownOverEmpty(s);
    s.rssMB.afterRow = rssMB(target.child.pid);
    // The row's own grants and rotations (which expire later) evict more of the preload: still oldest first.
    s.probesAfterRow = await introspectProbes(target, n, probeEvery);
    await target.pool?.close().catch(() => undefined);
    await stopTarget(target);
    s.statsAfterRow = target.readReport().final?.stats;
    s.boundHeld =
      grantMaps(s.statsAfterPreload) <= bound && s.statsAfterRow !== undefined && grantMaps(s.statsAfterRow) <= bound;
    s.evictionAsDocumented =
      s.evicted > 0 &&
      s.newestKept &&
      s.cascade.tokensWithoutGrant === 0 &&
      s.cascade.grantsWithoutToken === 0 &&
      s.probes.wrong.length === 0 &&
      s.probesAfterRow.suffix;
  } catch (err) {
    Object.assign(s, { status: 'failed', reason: err.message });
  } finally {
    await target?.pool?.close().catch(() => undefined);
    if (target) await stopTarget(target);
  }
  return s;
}

/** Per cell, grown ÷ empty median (null where either cell failed). */
function grownOverEmpty(s) {
  return Object.fromEntries(
    CELLS.map((id) => [
      id,
      s.empty[id].status === 'ok' && s.grown[id].status === 'ok' ? s.grown[id].median / s.empty[id].median : null,
    ]),
  );
}

export async function runGrowth({ stores, identity, workDir, runId, settings, quick, log }) {
  const n = quick ? 100_000 : 1_000_000;
  const result = {
    grants: n,
    clients: n / 10,
    note: quick ? '--quick: 10^5 grants and 10^4 clients instead of 10^6 and 10^5' : undefined,
    stores: {},
  };
  for (const store of stores) {
    if (store === 'memory') {
      result.stores.memory = await growMemory({ identity, workDir, runId, settings, log, n });
      continue;
    }
    if (store !== 'postgres' && store !== 'redis') {
      result.stores[store] = {
        status: 'not implemented',
        reason: 'the growth preload exists for PostgreSQL, Redis and memory only',
      };
      continue;
    }
    const target = await startGatehouse(store, identity, {
      runId: `${runId}_growth`,
      workDir,
      label: `gatehouse:${store}:growth`,
      extraConfig: { cleanupIntervalSeconds: 0 },
    });
    const s = (result.stores[store] = { status: 'ok', rssMB: {} });
    let db;
    try {
      if (target.error) throw new Error(target.error);
      await connect(target, identity, settings.concurrency);
      await signInUsers(target, settings.concurrency);
      if (store === 'postgres') db = await pgClient(target.storage);
      // Each cell primed once (a fresh server: JIT), then the empty store's cells.
      for (const id of CELLS) await SCENARIOS.find((x) => x.id === id).run(target, settings);
      s.empty = await cells(target, settings, settings.reps, log, 'empty');
      s.rssMB.afterEmptyRow = rssMB(target.child.pid);
      const now = Date.now();
      if (store === 'postgres') {
        s.preloadSeconds = {
          grants: await preloadGrants(db, n, 'growth-', now, now + 86_400_000),
          clients: await preloadClients(db, n / 10, now),
        };
        await db.query('ANALYZE');
      } else {
        s.preloadSeconds = { grants: await preloadRedisGrants(target, n, now, now + 86_400_000) };
        s.notes = [
          'no clients preloaded (the store keeps only registered clients; not done here)',
          'no cleanup cell: Redis expires keys itself (PX on every key), the store has no cleanup to measure',
        ];
      }
      log(
        `growth ${store}: preloaded ${n} grants + refresh tokens in ${s.preloadSeconds.grants.toFixed(1)} s${s.preloadSeconds.clients === undefined ? '' : `, ${n / 10} clients in ${s.preloadSeconds.clients.toFixed(1)} s`}`,
      );
      // The preload ran outside the server (its store is PostgreSQL or Redis): this is the server's own memory then.
      s.rssMB.afterPreload = rssMB(target.child.pid);
      s.grown = await cells(target, settings, settings.reps, log, 'grown');
      s.ratios = grownOverEmpty(s);
      s.rssMB.afterRow = rssMB(target.child.pid);
      if (store !== 'postgres') continue;
      // Cleanup of N expired rows while refresh rotations run.
      s.expiredPreloadSeconds = await preloadGrants(db, n, 'expired-', now - 7_200_000, now - 3_600_000);
      await db.query('ANALYZE');
      const refresh = SCENARIOS.find((x) => x.id === 'refresh');
      const without = await refresh.run(target, settings);
      let cleaning;
      const during = await refresh.run(target, {
        ...settings,
        onMeasured: () => {
          cleaning = runCleanup(target.storage);
        },
      });
      const cleanup = await cleaning;
      s.cleanup = {
        deletedRows: cleanup.rows,
        seconds: cleanup.seconds,
        windowSeconds: settings.durationMs / 1000,
        p99Without: without.p99,
        p99During: during.p99,
        rateWithout: without.rate,
        rateDuring: during.rate,
        ratio: during.p99 / without.p99,
      };
      log(
        `growth: cleanup of ${cleanup.rows} rows took ${cleanup.seconds.toFixed(1)} s; refresh p99 ${without.p99.toFixed(1)} → ${during.p99.toFixed(1)} ms`,
      );
      s.rssMB.afterRow = rssMB(target.child.pid);
    } catch (err) {
      Object.assign(s, { status: 'failed', reason: err.message });
    } finally {
      await db?.end().catch(() => undefined);
      await target.pool?.close().catch(() => undefined);
      await stopTarget(target);
    }
  }
  return result;
}
