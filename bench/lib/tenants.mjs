/**
 * The tenants row: N tenants declared in one Gatehouse process's config, per store. Measures what the lazy,
 * LRU-bounded tenant registry costs (start time, first request of each tenant, resident memory) and whether serving
 * tokens spread over N tenants keeps up with serving one: client_credentials on one tenant's /token versus the same
 * request cycling through all N tenants' /token paths. Both cells give autocannon an N-entry request list (the single
 * tenant's has N copies of its path), so the load generator does the same work in both.
 */
import { readFileSync } from 'node:fs';
import { basicAuth, createPool, postJson } from './http.mjs';
import { percentile, runCannon } from './load.mjs';
import { summariseRuns } from './report.mjs';
import { RESOURCE, startGatehouse, stopTarget, tenantId } from './targets.mjs';

export const TENANT_CELLS = [
  { id: 'one', label: 'one tenant' },
  { id: 'spread', label: 'N tenants' },
];

/** Concurrency of the warm-up (each tenant's first token request, which loads it). */
const WARM_CONCURRENCY = 20;

/** Unmeasured load on each cell before the measured runs (JIT warm-up of the fresh server); less with --quick. */
const PRIME_MS = 1000;
const QUICK_PRIME_MS = 500;

const ccForm = { grant_type: 'client_credentials', scope: 'bench:read', resource: RESOURCE };
const ccBody = new URLSearchParams(ccForm).toString();

/** Resident set size of a process in MB (Linux /proc; undefined elsewhere). */
export function rssMB(pid) {
  try {
    const kB = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kB === undefined ? undefined : Number(kB) / 1024;
  } catch {
    return undefined;
  }
}

const tokenPath = (id) => `/${id}/token`;

/** The iss claim of a JWT (not verified: the point is which issuer answered). */
function issOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).iss;
}

/**
 * Each tenant's first request: one client_credentials token each, WARM_CONCURRENCY at a time. Checks every token
 * came from that tenant's issuer. Returns the wall time and the first-request latencies.
 */
async function warmAll(target, ids, auth) {
  const pool = createPool(target.origin, WARM_CONCURRENCY);
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: WARM_CONCURRENCY }, async () => {
        while (next < ids.length) {
          const id = ids[next++];
          const r0 = performance.now();
          const tokens = await postJson(pool, tokenPath(id), ccForm, auth);
          latencies.push(performance.now() - r0);
          const iss = issOf(tokens.access_token);
          if (iss !== `${target.origin}/${id}`) throw new Error(`tenant ${id}: token issued by ${iss}`);
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) };
}

/** Checks the first tenant's discovery names its own issuer and token endpoint (the paths the load uses). */
async function checkDiscovery(target, id) {
  const res = await fetch(`${target.origin}/${id}/.well-known/openid-configuration`);
  if (res.status !== 200) throw new Error(`${id} discovery: HTTP ${res.status}`);
  const meta = await res.json();
  if (meta.issuer !== `${target.origin}/${id}` || meta.token_endpoint !== target.origin + tokenPath(id))
    throw new Error(`${id} discovery: issuer ${meta.issuer}, token_endpoint ${meta.token_endpoint}`);
}

/** The N-entry path list of a cell: one tenant's path N times, or every tenant's once. */
function cellPaths(cell, ids) {
  return cell === 'one' ? ids.map(() => tokenPath(ids[0])) : ids.map(tokenPath);
}

function runTenantCell(target, cell, ids, auth, s) {
  return runCannon({
    url: target.origin,
    headers: { authorization: auth.authorization },
    body: ccBody,
    paths: cellPaths(cell, ids),
    connections: s.concurrency,
    durationMs: s.durationMs,
    warmupMs: s.warmupMs,
  });
}

/**
 * For one store: a baseline server without tenants (start time, memory), then the tenants server: start time, RSS,
 * warm-up of every tenant, RSS, then the two cells alternating `reps` times (order reversed every rep).
 * Never throws: a failure is recorded as the store's `failed` reason.
 */
async function runStore(store, { identity, workDir, runId, count, settings, quick, log }) {
  const out = { status: 'ok', count };
  const auth = { authorization: basicAuth(identity.client.client_id, identity.client.client_secret) };
  const ids = Array.from({ length: count }, (_, i) => tenantId(i, count));
  // The same server without tenants, for its start time and memory (skipped by --quick: the embedded one alone
  // takes seconds to start).
  if (!quick) {
    const baseline = await startGatehouse(store, identity, {
      runId: `${runId}_t0`,
      workDir,
      label: `tenants-baseline:${store}`,
    });
    if (baseline.error) {
      await stopTarget(baseline);
      return { status: 'failed', count, reason: `baseline server: ${baseline.error}` };
    }
    out.baseline = { startMs: baseline.startMs, rssMB: rssMB(baseline.child.pid) };
    await stopTarget(baseline);
  }

  const target = await startGatehouse(store, identity, {
    runId: `${runId}_tn`,
    workDir,
    label: `tenants:${store}`,
    tenants: count,
  });
  try {
    if (target.error) return { ...out, status: 'failed', reason: target.error };
    out.startMs = target.startMs;
    out.rssMB = { beforeWarmup: rssMB(target.child.pid) };
    log(
      `tenants ${store}: started with ${count} tenants in ${target.startMs.toFixed(0)} ms${out.baseline ? ` (without tenants: ${out.baseline.startMs.toFixed(0)} ms)` : ''}`,
    );
    out.warmup = await warmAll(target, ids, auth);
    out.rssMB.afterWarmup = rssMB(target.child.pid);
    await checkDiscovery(target, ids[0]);
    log(
      `tenants ${store}: ${count} tenants warmed in ${out.warmup.seconds.toFixed(2)} s (first request p50 ${out.warmup.p50.toFixed(1)} ms, max ${out.warmup.max.toFixed(0)} ms); RSS ${fmtMB(out.rssMB.beforeWarmup)} → ${fmtMB(out.rssMB.afterWarmup)} MB`,
    );
    // A fresh server's JIT is cold (the other rows' servers are warmed by their sign-ins and earlier rows): both
    // cells once, unmeasured, so the first measured run of neither pays for it.
    const primeMs = quick ? QUICK_PRIME_MS : PRIME_MS;
    for (const cell of TENANT_CELLS)
      await runTenantCell(target, cell.id, ids, auth, { ...settings, durationMs: primeMs, warmupMs: 0 });
    const runs = Object.fromEntries(TENANT_CELLS.map((c) => [c.id, []]));
    for (let rep = 0; rep < settings.reps; rep++) {
      const order = rep % 2 === 0 ? TENANT_CELLS : [...TENANT_CELLS].reverse();
      for (const cell of order) {
        let r;
        try {
          r = await runTenantCell(target, cell.id, ids, auth, settings);
        } catch (err) {
          r = { failed: err.message };
        }
        runs[cell.id].push(r);
        log(
          `tenants #${rep + 1} ${store} ${cell.id === 'one' ? 'one tenant' : `${count} tenants`}: ${r.failed ? `FAILED ${r.failed}` : `${r.rate.toFixed(0)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms${r.errors ? `, ${r.errors} errors (${r.error})` : ''}`}`,
        );
      }
    }
    out.rssMB.afterLoad = rssMB(target.child.pid);
    out.cells = Object.fromEntries(TENANT_CELLS.map((c) => [c.id, summariseRuns(runs[c.id])]));
    const { one, spread } = out.cells;
    out.ratio = one.status === 'ok' && spread.status === 'ok' ? spread.median / one.median : undefined;
    return out;
  } catch (err) {
    return { ...out, status: 'failed', reason: err.message };
  } finally {
    await stopTarget(target);
  }
}

const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');
const fmtMB = (mb) => (mb === undefined ? 'n/a' : mb.toFixed(0));

/** The tenants row for every store in turn (one dedicated server at a time, nothing else running). */
export async function runTenants({ stores, identity, workDir, runId, count, countNote, settings, quick, log }) {
  const result = {
    baseline: !quick,
    count,
    countNote,
    concurrency: settings.concurrency,
    warmConcurrency: WARM_CONCURRENCY,
    stores: {},
  };
  for (const store of stores) {
    const t0 = performance.now();
    const r = await runStore(store, { identity, workDir, runId, count, settings, quick, log });
    result.stores[store] = r;
    const took = `[${((performance.now() - t0) / 1000).toFixed(1)} s]`;
    log(
      `tenants ${store}: ${r.status === 'failed' ? `FAILED ${r.reason}` : `${fmtRatio(r.ratio)} of one tenant`} ${took}`,
    );
  }
  return result;
}

/**
 * --profile: a fresh tenants server under --cpu-prof (profiles in `cpuProfDir`), every tenant warmed and both cells
 * primed, then `cell` alone for the run's duration. Returns that run (or `failed`); the profile covers all of it.
 */
export async function profileTenantCell(store, cell, { identity, workDir, runId, count, settings, cpuProfDir }) {
  const auth = { authorization: basicAuth(identity.client.client_id, identity.client.client_secret) };
  const ids = Array.from({ length: count }, (_, i) => tenantId(i, count));
  const target = await startGatehouse(store, identity, {
    runId,
    workDir,
    label: `tenants-profile:${store}`,
    tenants: count,
    cpuProfDir,
  });
  try {
    if (target.error) return { failed: target.error };
    await warmAll(target, ids, auth);
    for (const c of TENANT_CELLS)
      await runTenantCell(target, c.id, ids, auth, { ...settings, durationMs: PRIME_MS, warmupMs: 0 });
    const t0 = performance.now();
    const r = await runTenantCell(target, cell, ids, auth, settings);
    await stopTarget(target);
    // The profile's tail from here: the cell's run and the stop, without start, warm-up and priming.
    return { ...r, profiledLastMs: performance.now() - t0 };
  } catch (err) {
    return { failed: err.message };
  } finally {
    await stopTarget(target);
  }
}
