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
import { checkTargets, computeRatios, markdown, summariseRuns } from './report.mjs';
import { prepareResource, RESOURCE_ROWS, runInProcess } from './resource.mjs';
import { connect, SCENARIOS, signInUsers } from './scenarios.mjs';
import { profileTenantCell, runTenants, TENANT_CELLS } from './tenants.mjs';
import {
  BENCH,
  benchIdentity,
  makeWorkDir,
  ROOT,
  startGatehouse,
  startOidcProvider,
  STORES,
  stopTarget,
} from './targets.mjs';

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

function parseArgs(args) {
  const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const quick = args.includes('--quick');
  const list = (name, all) => {
    const v = opt(name);
    if (!v) return all;
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
    withOidcProvider: !args.includes('--no-oidc-provider'),
    stores: list('stores', args.includes('--profile') && !opt('stores') ? ['memory'] : STORES),
    scenarios: list('scenarios', scenarioIds),
    settings: {
      reps: num('reps', args.includes('--profile') ? 1 : 3),
      durationMs: num('duration', quick ? 0.5 : args.includes('--profile') ? 6 : 8) * 1000,
      warmupMs: num('warmup', quick ? 0.2 : 1.5) * 1000,
      concurrency: num('concurrency', 20),
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

/** Starts the targets (in parallel), then connects and signs in each one's virtual users. */
async function startTargets(opts, identity, workDir, runId, cpuProfDir) {
  const starting = opts.stores.map((store) => startGatehouse(store, identity, { runId, workDir, cpuProfDir }));
  if (opts.withOidcProvider) starting.splice(1, 0, startOidcProvider(identity, { workDir, cpuProfDir }));
  const targets = await Promise.all(starting);
  // Sign-ins are scrypt-bound: all targets at once keeps both cores busy and the setup short.
  await Promise.all(
    targets.map(async (t) => {
      if (t.error) {
        log(`${t.name} FAILED to start: ${t.error}`);
        return;
      }
      try {
        const t0 = Date.now();
        await connect(t, identity, opts.settings.concurrency);
        await signInUsers(t, opts.settings.concurrency);
        log(
          `${t.name} ready at ${t.origin} (${opts.settings.concurrency} users signed in, ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
        );
      } catch (err) {
        t.error = `setup: ${err.message}`;
        log(`${t.name} FAILED setup: ${t.error}`);
      }
    }),
  );
  return targets;
}

async function stopTargets(targets) {
  for (const t of targets) await t.pool?.close().catch(() => undefined);
  await Promise.all(targets.map(stopTarget));
}

const alive = (t) => !t.error && t.child && t.child.exitCode === null && t.child.signalCode === null;

/** Runs one cell; a failure becomes a failed run, never an exception. */
async function runCell(scenario, target, settings) {
  if (!alive(target))
    return {
      failed:
        target.error ??
        `${target.name} is not running (exit ${target.child?.exitCode}): ${target.log?.slice(-3).join(' | ')}`,
    };
  const s = { ...settings, durationMs: Math.max(settings.durationMs, scenario.minDurationMs ?? 0) };
  try {
    return await scenario.run(target, s);
  } catch (err) {
    return { failed: err.message };
  }
}

async function compare(opts, meta) {
  const identity = benchIdentity();
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
    runs: Object.fromEntries(targets.map((t) => [t.name, []])),
  }));
  let resource;
  let tenants;
  let stopped = false;
  try {
    for (const [i, scenario] of scenarios.entries()) {
      for (let rep = 0; rep < opts.settings.reps; rep++) {
        const order = rep % 2 === 0 ? targets : [...targets].reverse();
        for (const target of order) {
          const c0 = Date.now();
          const r = await runCell(scenario, target, opts.settings);
          rows[i].runs[target.name].push(r);
          log(
            `${scenario.id} #${rep + 1} ${target.name}: ${r.failed ? `FAILED ${r.failed}` : `${r.rate.toFixed(0)} ${scenario.unit}, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms${r.errors ? `, ${r.errors} errors` : ''}`} [${((Date.now() - c0) / 1000).toFixed(1)} s]`,
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
  } finally {
    if (!stopped) await stopTargets(targets);
    rmSync(workDir, { recursive: true, force: true });
  }
  const gatehouseNames = targets.filter((t) => t.kind === 'gatehouse').map((t) => t.name);
  for (const row of rows) {
    row.cells = Object.fromEntries(Object.entries(row.runs).map(([t, runs]) => [t, summariseRuns(runs)]));
    row.ratios = computeRatios(row.cells, gatehouseNames);
    delete row.runs;
  }
  const result = {
    ...meta,
    mode: opts.quick ? 'quick' : 'full',
    durationSeconds: Math.round((Date.now() - t0) / 1000),
    settings: opts.settings,
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
  };
  result.machine.loadAverageAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  result.checks = checkTargets(rows, resource, tenants);
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
  const [gh, floor] = rows.map((r) => r.cell);
  return {
    against: target.name,
    rows,
    ratio: gh.status === 'ok' && floor.status === 'ok' ? gh.median / floor.median : undefined,
  };
}

/** --profile: for each store and scenario, a fresh server under --cpu-prof runs that scenario alone. */
async function profile(opts, meta) {
  const identity = benchIdentity();
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
          { ...opts, stores: [store], withOidcProvider: false },
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
    rmSync(workDir, { recursive: true, force: true });
  }
  const md = sections.join('\n');
  writeFileSync(join(outDir, 'summary.md'), md);
  process.stdout.write(md);
  log(`profiles and summary in ${outDir}`);
  return 0;
}

export async function main(args, { build }) {
  let opts;
  try {
    opts = parseArgs(args);
  } catch (err) {
    log(err.message);
    return 2;
  }
  const meta = {
    timestamp: new Date().toISOString(),
    node: process.version,
    machine: machine(),
    versions: versions(),
    build,
  };
  if (opts.profile) return profile(opts, meta);
  log(
    `${opts.quick ? 'quick' : 'full'} run: stores ${opts.stores.join(', ')}${opts.withOidcProvider ? ' + oidc-provider' : ''}; ${opts.settings.reps} × ${opts.settings.durationMs / 1000} s (+${opts.settings.warmupMs / 1000} s warm-up) per cell, concurrency ${opts.settings.concurrency}`,
  );
  const result = await compare(opts, meta);
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
