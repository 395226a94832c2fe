/**
 * The benchmark run: starts every target (Gatehouse per store, and oidc-provider), signs in the virtual users, then
 * for each scenario runs every target in turn, `reps` times, reversing the order each time so that Gatehouse and
 * oidc-provider alternate and a noisy machine affects both alike. Prints markdown on stdout and writes
 * bench/results/<timestamp>.json.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { profileMarkdown, summarise } from './profile.mjs';
import { checkTargets, computeRatios, crossRowRatios, markdown, summariseRuns } from './report.mjs';
import { startIdp } from './idp.mjs';
import { prepareResource, RESOURCE_ROWS, runInProcess } from './resource.mjs';
import { connect, FLOOR_KINDS, SCENARIOS, signInUsers } from './scenarios.mjs';
import { cpuPerOperation, cpuSnapshot } from './cpu.mjs';
import { runGrowth } from './growth.mjs';
import { profileTenantCell, runTenants, TENANT_CELLS } from './tenants.mjs';
import {
  BENCH,
  benchIdentity,
  enablePinning,
  gcStats,
  makeWorkDir,
  setupAffinity,
  pinningAvailable,
  ROOT,
  startFloor,
  startGatehouse,
  startOidcProvider,
  STORES,
  stopTarget,
} from './targets.mjs';

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

function parseArgs(args) {
  const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const quick = args.includes('--quick');
  const list = (name, all, def = all) => {
    const v = opt(name);
    if (!v) return def;
    const picked = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = picked.filter((p) => !all.includes(p));
    if (unknown.length) throw new Error(`unknown --${name}: ${unknown.join(', ')} (known: ${all.join(', ')})`);
    return picked;
  };
  const num = (name, def) => (opt(name) === undefined ? def : Number(opt(name)));
  const scenarioIds = [...SCENARIOS.map((s) => s.id), 'resource', 'tenants'];
  // growth is opt-in (--scenarios=growth): it preloads 10^6 grants.
  const tenantCount = num('tenants', quick ? 100 : 1000);
  if (!Number.isInteger(tenantCount) || tenantCount < 1) throw new Error(`--tenants must be a positive integer`);
  return {
    quick,
    tenantCount,
    tenantCountNote:
      quick && opt('tenants') === undefined
        ? '--quick: 100 tenants instead of 1,000 (--tenants=N to choose)'
        : undefined,
    profile: args.includes('--profile'),
    // On by default where it can be: `--no-pin` turns it off, `--pin` makes its absence an error.
    pin: args.includes('--no-pin') ? 'off' : args.includes('--pin') ? 'required' : 'auto',
    withOidcProvider: !args.includes('--no-oidc-provider'),
    stores: list('stores', args.includes('--profile') && !opt('stores') ? ['memory'] : STORES),
    scenarios: list('scenarios', [...scenarioIds, 'growth'], scenarioIds),
    settings: {
      reps: num('reps', args.includes('--profile') ? 1 : 3),
      durationMs: num('duration', quick ? 0.5 : args.includes('--profile') ? 6 : 8) * 1000,
      warmupMs: num('warmup', quick ? 0.2 : 1.5) * 1000,
      // 50: the concurrency of the issue's latency target (p99 ≤ 3 × p50), so every row is measured there.
      concurrency: num('concurrency', 50),
    },
  };
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function versions() {
  const v = (p) => {
    try {
      return JSON.parse(readFileSync(p, 'utf8')).version;
    } catch {
      return undefined;
    }
  };
  let commit;
  let dirty;
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    dirty =
      execSync('git status --porcelain -- src', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() !== '';
  } catch {
    /* not a git checkout */
  }
  return {
    gatehouse: v(join(ROOT, 'package.json')),
    gatehouseCommit: commit,
    srcHasUncommittedChanges: dirty,
    oidcProvider: v(join(BENCH, 'node_modules/oidc-provider/package.json')),
    jose: v(join(ROOT, 'node_modules/jose/package.json')),
    autocannon: v(join(BENCH, 'node_modules/autocannon/package.json')),
    undici: v(join(BENCH, 'node_modules/undici/package.json')),
  };
}

/** The ID-JAG row's enterprise IdP (bench/lib/idp.mjs), started once when that row is selected. */
let idpStarted;
const idpFor = (opts, workDir) =>
  opts.scenarios.includes('id_jag') ? (idpStarted ??= startIdp(workDir)) : Promise.resolve(undefined);

/** Starts the targets (in parallel), then connects and signs in each one's virtual users. */
async function startTargets(opts, identity, workDir, runId, cpuProfDir) {
  const idp = await idpFor(opts, workDir);
  const starting = opts.stores.map((store) =>
    startGatehouse(store, identity, { runId, workDir, cpuProfDir, idp }).then((t) => Object.assign(t, { idp })),
  );
  if (opts.withOidcProvider) starting.splice(1, 0, startOidcProvider(identity, { workDir, cpuProfDir }));
  // The floor is a column of the rows that declare it (client_credentials, introspect_distinct, revoke_distinct).
  const floorKinds = new Set(
    SCENARIOS.filter((s) => opts.scenarios.includes(s.id)).flatMap((s) =>
      (s.kinds ?? []).filter((k) => FLOOR_KINDS.has(k)),
    ),
  );
  if (opts.withFloor && floorKinds.size)
    starting.push(
      startFloor(identity, { workDir, cpuProfDir }).then((floor) =>
        // The HTTP-only cells are the same process, on its /http-only routes: a second target sharing the child.
        floorKinds.has('floor-http')
          ? [floor, { ...floor, name: 'floor:http', kind: 'floor-http', sharesChild: true }]
          : [floor],
      ),
    );
  const targets = (await Promise.all(starting)).flat();
  // Sign-ins are scrypt-bound: all targets at once, each allowed on both cores meanwhile (pinned back below), keeps
  // both cores busy and the setup short.
  for (const t of targets) setupAffinity(t.child, 'widen');
  await Promise.all(
    targets.map(async (t) => {
      if (t.error) {
        log(`${t.name} FAILED to start: ${t.error}`);
        return;
      }
      try {
        const t0 = Date.now();
        await connect(t, identity, opts.settings.concurrency);
        if (!FLOOR_KINDS.has(t.kind)) await signInUsers(t, opts.settings.concurrency);
        log(
          `${t.name} ready at ${t.origin} (${FLOOR_KINDS.has(t.kind) ? 'no users' : `${opts.settings.concurrency} users signed in`}, ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
        );
      } catch (err) {
        t.error = `setup: ${err.message}`;
        log(`${t.name} FAILED setup: ${t.error}`);
      }
    }),
  );
  for (const t of targets) setupAffinity(t.child, 'narrow');
  return targets;
}

async function stopTargets(targets) {
  for (const t of targets) await t.pool?.close().catch(() => undefined);
  await Promise.all(targets.filter((t) => !t.sharesChild).map(stopTarget));
}

const alive = (t) => !t.error && t.child && t.child.exitCode === null && t.child.signalCode === null;

/** The targets a scenario runs on (its `kinds`; default Gatehouse and oidc-provider). */
const DEFAULT_KINDS = ['gatehouse', 'oidc-provider'];
export const runsOn = (scenario, target) => (scenario.kinds ?? DEFAULT_KINDS).includes(target.kind);

/**
 * Runs one cell; a failure becomes a failed run, never an exception. The server's GC pauses are those of the
 * measured window: its counters are reset when the window starts (`onMeasured`) and read when the run ends. At the
 * same two moments (`onMeasured`, `onWindowEnd`) the CPU time of the server, the load generator and the database
 * processes is read (bench/lib/cpu.mjs): the run's `cpu`, in µs per operation.
 */
async function runCell(scenario, target, settings) {
  if (!alive(target))
    return {
      failed:
        target.error ??
        `${target.name} is not running (exit ${target.child?.exitCode}): ${target.log?.slice(-3).join(' | ')}`,
    };
  let reset;
  let cpuStart;
  let cpuEnd;
  const s = {
    ...settings,
    durationMs: Math.max(settings.durationMs, scenario.minDurationMs ?? 0),
    onMeasured: () => {
      cpuStart = cpuSnapshot(target.child.pid);
      reset = gcStats(target.child);
    },
    onWindowEnd: () => {
      cpuEnd ??= cpuSnapshot(target.child.pid);
    },
  };
  try {
    const r = await scenario.run(target, s);
    await reset;
    const gc = reset ? await gcStats(target.child) : undefined;
    const cpu = cpuPerOperation(cpuStart, cpuEnd, r.rate);
    target.observed ??= {};
    if (Number.isFinite(r.rate)) target.observed[scenario.id] = Math.max(target.observed[scenario.id] ?? 0, r.rate);
    return { ...r, ...(gc && { gc }), ...(cpu && { cpu }) };
  } catch (err) {
    await reset;
    return { failed: err.message };
  }
}

async function compare(opts, meta) {
  const identity = benchIdentity({ log2N: opts.quick ? 14 : 15 });
  const workDir = makeWorkDir();
  const runId = `${process.pid}_${Date.now().toString(36)}`;
  const t0 = Date.now();
  const scenarios = SCENARIOS.filter((s) => opts.scenarios.includes(s.id));
  // The tenants row starts servers of its own: with only that row selected, the shared targets are not needed.
  const needTargets = scenarios.length > 0 || opts.scenarios.includes('resource');
  const targets = needTargets ? await startTargets(opts, identity, workDir, runId) : [];
  const targetOrder = targets.map((t) => t.name);
  const rows = scenarios.map((s) => ({
    id: s.id,
    label: s.label,
    unit: s.unit,
    driver: s.driver,
    runs: Object.fromEntries(targets.filter((t) => runsOn(s, t)).map((t) => [t.name, []])),
  }));
  let resource;
  let tenants;
  let growth;
  let stopped = false;
  try {
    for (const [i, scenario] of scenarios.entries()) {
      for (let rep = 0; rep < opts.settings.reps; rep++) {
        const on = targets.filter((t) => runsOn(scenario, t));
        const order = rep % 2 === 0 ? on : [...on].reverse();
        for (const target of order) {
          const c0 = Date.now();
          const r = await runCell(scenario, target, opts.settings);
          rows[i].runs[target.name].push(r);
          log(
            `${scenario.id} #${rep + 1} ${target.name}: ${r.failed ? `FAILED ${r.failed}` : `${r.rate.toFixed(0)} ${scenario.unit}, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms${r.gc ? `, GC max ${r.gc.maxMs} ms` : ''}${r.supply ? `, ${r.ops}/${r.supply} of the supply${r.exhausted ? ' (USED UP)' : ''}` : ''}${r.errors ? `, ${r.errors} errors` : ''}`} [${((Date.now() - c0) / 1000).toFixed(1)} s]`,
          );
        }
      }
    }
    if (opts.scenarios.includes('resource')) resource = await runResource(targets, opts.settings);
    await stopTargets(targets);
    stopped = true;
    // After the other rows, with their servers stopped: one dedicated server per store, alone on the machine.
    if (opts.scenarios.includes('tenants')) {
      if (opts.tenantCountNote) log(`tenants: ${opts.tenantCountNote}`);
      tenants = await runTenants({
        stores: opts.stores,
        identity,
        workDir,
        runId,
        count: opts.tenantCount,
        countNote: opts.tenantCountNote,
        settings: opts.settings,
        quick: opts.quick,
        log,
      });
    }
    // Opt-in, last: a dedicated server per store, with its store preloaded.
    if (opts.scenarios.includes('growth'))
      growth = await runGrowth({
        stores: opts.stores,
        identity,
        workDir,
        runId,
        settings: opts.settings,
        quick: opts.quick,
        log,
      });
  } finally {
    if (!stopped) await stopTargets(targets);
    (await idpStarted)?.close();
    rmSync(workDir, { recursive: true, force: true });
  }
  const gatehouseNames = targets.filter((t) => t.kind === 'gatehouse').map((t) => t.name);
  for (const row of rows) {
    row.cells = Object.fromEntries(Object.entries(row.runs).map(([t, runs]) => [t, summariseRuns(runs)]));
    row.ratios = computeRatios(row.cells, gatehouseNames);
    delete row.runs;
  }
  crossRowRatios(rows);
  const result = {
    ...meta,
    mode: opts.quick ? 'quick' : 'full',
    durationSeconds: Math.round((Date.now() - t0) / 1000),
    settings: { ...opts.settings, passwordCost: identity.user.passwordCost },
    pinning: opts.pinning,
    targetOrder,
    targets: Object.fromEntries(
      targets.map((t) => [
        t.name,
        t.error ? { status: 'failed', reason: t.error } : { status: 'ok', storage: t.storage ?? t.store },
      ]),
    ),
    rows,
    resource,
    tenants,
    growth,
  };
  result.machine.loadAverageAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  result.checks = checkTargets(rows, resource, tenants, opts.settings, growth);
  return result;
}

/** Scenario e, in this process, alternating the two verifiers. */
async function runResource(targets, settings) {
  const target = targets.find((t) => t.kind === 'gatehouse' && alive(t));
  if (!target) return undefined;
  const runs = Object.fromEntries(RESOURCE_ROWS.map((r) => [r.id, []]));
  try {
    const fns = await prepareResource(target);
    for (let rep = 0; rep < settings.reps; rep++) {
      const order = rep % 2 === 0 ? RESOURCE_ROWS : [...RESOURCE_ROWS].reverse();
      for (const row of order) {
        const r = await runInProcess(fns[row.id], settings);
        runs[row.id].push(r);
        log(`resource #${rep + 1} ${row.id}: ${r.rate.toFixed(0)} verifications/s`);
      }
    }
  } catch (err) {
    for (const row of RESOURCE_ROWS) runs[row.id].push({ failed: err.message });
  }
  const rows = RESOURCE_ROWS.map((r) => ({ ...r, cell: summariseRuns(runs[r.id]) }));
  const cell = (id) => rows.find((r) => r.id === id).cell;
  const vsJose = (id) =>
    cell(id).status === 'ok' && cell('jose_floor').status === 'ok'
      ? cell(id).median / cell('jose_floor').median
      : undefined;
  return {
    against: target.name,
    rows,
    ratio: vsJose('resource_verifier'),
    introspectionRatio: vsJose('resource_introspection'),
  };
}

/** --profile: for each store and scenario, a fresh server under --cpu-prof runs that scenario alone. */
async function profile(opts, meta) {
  const identity = benchIdentity({ log2N: opts.quick ? 14 : 15 });
  const workDir = makeWorkDir();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = join(BENCH, 'results', `profile-${stamp}`);
  mkdirSync(outDir, { recursive: true });
  const sections = [
    `# Gatehouse CPU profiles (${stamp})`,
    '',
    `Node ${process.version}, ${meta.machine.cpu} × ${meta.machine.cores}; each server ran one scenario for ${opts.settings.durationMs / 1000} s after ${opts.settings.warmupMs / 1000} s warm-up at concurrency ${opts.settings.concurrency}; setup (sign-ins) included.`,
    '',
  ];
  // Moves the profile a stopped server wrote in `dir` to outDir as `<name>.cpuprofile` and adds its summary.
  const keepProfile = (dir, name, what, r, startError, unit) => {
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) {
      sections.push(`### ${what}`, '', `no profile: ${r.failed ?? startError ?? 'server wrote none'}`, '');
      return;
    }
    const kept = join(outDir, `${name}.cpuprofile`);
    writeFileSync(kept, readFileSync(join(dir, file)));
    const title = `${what}: ${r.failed ? `FAILED ${r.failed}` : `${r.rate.toFixed(0)} ${unit}`}`;
    log(title);
    sections.push(profileMarkdown(title, summarise(kept, 25, { lastMs: r.profiledLastMs })));
  };
  try {
    for (const store of opts.stores) {
      for (const scenario of SCENARIOS.filter((s) => opts.scenarios.includes(s.id))) {
        const dir = join(workDir, `prof-${store}-${scenario.id}`);
        mkdirSync(dir, { recursive: true });
        const [target] = await startTargets(
          { ...opts, stores: [store], withOidcProvider: false, withFloor: false, scenarios: [scenario.id] },
          identity,
          workDir,
          `prof_${process.pid}_${scenario.id}`,
          dir,
        );
        const r = await runCell(scenario, target, opts.settings);
        await stopTargets([target]);
        keepProfile(dir, `${store}-${scenario.id}`, `${store} / ${scenario.id}`, r, target.error, scenario.unit);
      }
      // The tenants row: one fresh server per cell, so the two profiles can be compared.
      if (opts.scenarios.includes('tenants')) {
        for (const cell of TENANT_CELLS) {
          const dir = join(workDir, `prof-${store}-tenants-${cell.id}`);
          mkdirSync(dir, { recursive: true });
          const r = await profileTenantCell(store, cell.id, {
            identity,
            workDir,
            runId: `prof_${process.pid}_tenants_${cell.id}`,
            count: opts.tenantCount,
            settings: opts.settings,
            cpuProfDir: dir,
          });
          const what = `${cell.id === 'one' ? 'one tenant' : `${opts.tenantCount} tenants`}, the run only`;
          keepProfile(dir, `${store}-tenants-${cell.id}`, `${store} / tenants (${what})`, r, undefined, 'req/s');
        }
      }
    }
  } finally {
    (await idpStarted)?.close();
    rmSync(workDir, { recursive: true, force: true });
  }
  const md = sections.join('\n');
  writeFileSync(join(outDir, 'summary.md'), md);
  process.stdout.write(md);
  log(`profiles and summary in ${outDir}`);
  return 0;
}

/** Rows that mint their supply (tokens, assertions) before each run: about 1.3 × the run's length more. */
const MINTING_ROWS = new Set(['introspect_distinct', 'revoke_distinct', 'id_jag']);

/**
 * A rough duration of the run for these options, in seconds: every cell's warm-up and window, ~0.3 s per cell of
 * overhead, the minting rows' supply (minted at about the rate the row runs at), the resource row, the tenants row
 * (start, warm-up, priming, cells per store) and ~30 s of start and sign-ins. Printed when the run starts.
 */
export function estimateSeconds(opts) {
  const { reps, durationMs, warmupMs } = opts.settings;
  const kinds = ['gatehouse', ...(opts.withOidcProvider ? ['oidc-provider'] : []), ...FLOOR_KINDS];
  let ms = 30_000;
  for (const scenario of SCENARIOS.filter((s) => opts.scenarios.includes(s.id))) {
    const on = (scenario.kinds ?? DEFAULT_KINDS).filter((k) => kinds.includes(k));
    const cells = on.reduce((n, k) => n + (k === 'gatehouse' ? opts.stores.length : 1), 0);
    const run = warmupMs + Math.max(durationMs, scenario.minDurationMs ?? 0);
    ms += cells * reps * (run * (MINTING_ROWS.has(scenario.id) ? 2.3 : 1) + 300);
  }
  if (opts.scenarios.includes('resource')) ms += RESOURCE_ROWS.length * reps * (warmupMs + durationMs);
  if (opts.scenarios.includes('growth')) {
    if (opts.stores.includes('postgres')) ms += 8 * reps * (warmupMs + durationMs) + (opts.quick ? 30_000 : 180_000);
    if (opts.stores.includes('redis')) ms += 6 * reps * (warmupMs + durationMs) + (opts.quick ? 45_000 : 330_000);
    // Two servers (empty, preloaded), each signing in and priming; the preload and its read-back in the second.
    if (opts.stores.includes('memory')) ms += 8 * reps * (warmupMs + durationMs) + (opts.quick ? 30_000 : 90_000);
  }
  if (opts.scenarios.includes('tenants'))
    ms += opts.stores.length * (2 * reps * (warmupMs + durationMs) + (opts.quick ? 6_000 : 12_000));
  return Math.round(ms / 1000);
}

export async function main(args, { build }) {
  let opts;
  try {
    opts = parseArgs(args);
  } catch (err) {
    log(err.message);
    return 2;
  }
  const avail = pinningAvailable();
  if (opts.pin === 'required' && !avail.ok) {
    log(`--pin: cannot pin (${avail.reason})`);
    return 2;
  }
  opts.pinning =
    opts.pin !== 'off' && avail.ok
      ? { enabled: true, ...enablePinning() }
      : { enabled: false, reason: opts.pin === 'off' ? '--no-pin' : avail.reason };
  log(
    opts.pinning.enabled
      ? `pinned: this process (load generator) to core ${opts.pinning.benchCore}, servers to core ${opts.pinning.serverCore} (PostgreSQL and Redis are not pinned)`
      : `not pinned (${opts.pinning.reason})`,
  );
  opts.withFloor = true;
  const meta = {
    timestamp: new Date().toISOString(),
    node: process.version,
    machine: machine(),
    versions: versions(),
    build,
  };
  if (opts.profile) return profile(opts, meta);
  log(
    `${opts.quick ? 'quick' : 'full'} run: stores ${opts.stores.join(', ')}${opts.withOidcProvider && opts.scenarios.some((id) => id === 'resource' || SCENARIOS.some((x) => x.id === id)) ? ' + oidc-provider' : ''}; ${opts.settings.reps} × ${opts.settings.durationMs / 1000} s (+${opts.settings.warmupMs / 1000} s warm-up) per cell, concurrency ${opts.settings.concurrency}`,
  );
  const estimate = estimateSeconds(opts);
  log(`estimated duration: about ${estimate >= 120 ? `${Math.round(estimate / 60)} min` : `${estimate} s`}`);
  const result = await compare(opts, meta);
  result.estimatedSeconds = estimate;
  const header = `Gatehouse benchmark, ${result.mode} run, ${result.timestamp} — Node ${result.node}, ${result.machine.cpu} × ${result.machine.cores} cores, ${result.machine.memoryGiB} GiB; load average ${result.machine.loadAverageAtStart.join(' ')} at start; ${result.durationSeconds} s.\n\n`;
  const md = header + markdown(result);
  process.stdout.write(md);
  const dir = join(BENCH, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.timestamp.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ ...result, markdown: md }, null, 2) + '\n');
  log(`results written to ${file}`);
  return 0;
}
