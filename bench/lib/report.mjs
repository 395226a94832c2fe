/** Aggregation (median of runs, min, max), ratios, target checks, and the markdown tables. */

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Summary of one (row, target) cell from its runs; failed when no run succeeded. */
export function summariseRuns(runs) {
  const ok = runs.filter((r) => r.error === undefined || r.ops > 0);
  const failed = runs.find((r) => r.failed);
  if (ok.length === 0 || ok.every((r) => r.failed)) {
    return {
      status: 'failed',
      reason: failed?.failed ?? runs.find((r) => r.error)?.error ?? 'no successful run',
      runs,
    };
  }
  const good = ok.filter((r) => !r.failed);
  const rates = good.map((r) => r.rate);
  const gc = good.map((r) => r.gc).filter(Boolean);
  const cpu = summariseCpu(good.map((r) => r.cpu).filter(Boolean));
  return {
    status: 'ok',
    median: median(rates),
    min: Math.min(...rates),
    max: Math.max(...rates),
    p50: median(good.map((r) => r.p50)),
    p99: median(good.map((r) => r.p99)),
    // The longest GC pause of the server in any measured window of this cell (bench/lib/gc-preload.mjs).
    gcMaxMs: gc.length ? Math.max(...gc.map((g) => g.maxMs)) : undefined,
    exhaustedRuns: good.filter((r) => r.exhausted).length || undefined,
    // CPU per operation (bench/lib/cpu.mjs), the median of each figure over the runs that have one.
    cpu,
    errors: runs.reduce((n, r) => n + (r.errors ?? 0), 0),
    firstError: runs.find((r) => r.error)?.error,
    runs,
  };
}

/** The median of each `cpu` figure over runs (idle shares per core too); undefined when no run has one. */
function summariseCpu(cpus) {
  if (cpus.length === 0) return undefined;
  const out = { runs: cpus.length };
  for (const k of Object.keys(cpus[0])) {
    if (k === 'idle') {
      out.idle = {};
      for (const c of Object.keys(cpus[0].idle)) out.idle[c] = median(cpus.map((x) => x.idle?.[c]));
    } else out[k] = median(cpus.map((x) => x[k]));
  }
  return out;
}

const fmt = (n) => (Number.isFinite(n) ? (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)) : '–');
const fmtMs = (n) => (Number.isFinite(n) ? (n >= 10 ? n.toFixed(0) : n.toFixed(1)) : '–');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);
const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–');
const pct = (r) => (Number.isFinite(r) ? `${(100 * r).toFixed(0)}%` : '–');

/** The floor's cells and the name of "Gatehouse ÷ that cell" in a row's ratios. */
const FLOOR_RATIOS = [
  ['floor', 'vsFloor'],
  ['floor:http', 'vsFloorHttp'],
];

/**
 * Ratios for every Gatehouse store: vs oidc-provider, vs the memory store, vs the floor's cells (where the row has
 * them); and for the floor's cells, vs oidc-provider.
 */
export function computeRatios(cells, gatehouseTargets) {
  const op = cells['oidc-provider'];
  const mem = cells['gatehouse:memory'];
  const out = {};
  for (const t of gatehouseTargets) {
    const c = cells[t];
    if (c?.status !== 'ok') continue;
    out[t] = {
      vsOidcProvider: op?.status === 'ok' ? ratio(c.median, op.median) : null,
      vsMemory: mem?.status === 'ok' ? ratio(c.median, mem.median) : null,
    };
    for (const [floor, key] of FLOOR_RATIOS)
      if (cells[floor]) out[t][key] = cells[floor].status === 'ok' ? ratio(c.median, cells[floor].median) : null;
  }
  // How far from physically possible on one core a multiple of oidc-provider is: the floor ÷ oidc-provider.
  for (const [floor] of FLOOR_RATIOS) {
    const c = cells[floor];
    if (c?.status === 'ok' && op)
      out[floor] = { vsOidcProvider: op.status === 'ok' ? ratio(c.median, op.median) : null };
  }
  return out;
}

/** The ID-JAG row has no oidc-provider cell: each store's rate ÷ that store's client_credentials rate. */
export function crossRowRatios(rows) {
  const idJag = rows.find((r) => r.id === 'id_jag');
  const cc = rows.find((r) => r.id === 'client_credentials');
  if (!idJag) return;
  for (const [t, c] of Object.entries(idJag.cells)) {
    const base = cc?.cells[t];
    if (c.status !== 'ok') continue;
    idJag.ratios[t] = {
      ...idJag.ratios[t],
      vsClientCredentials: base?.status === 'ok' ? ratio(c.median, base.median) : null,
    };
  }
}

/** Latency target of the issue: p99 ≤ 3 × p50 at 50 concurrent requests; GC: no pause over 50 ms under load. */
export const LATENCY_MAX_P99_OVER_P50 = 3;
export const LATENCY_CONCURRENCY = 50;
export const GC_MAX_PAUSE_MS = 50;

/** Store targets (ratio of the memory store, every row but sign-in). */
const STORE_TARGETS = { postgres: 0.7, redis: 0.85, embedded: 0.5 };

/**
 * The performance targets of the issue, checked on this run's ratios. Each check: { kind, target, value, pass }
 * (`pass` null: no target, the value is reported); kinds `vs` (ratio targets), `latency`, `gc`, `info`.
 */
export function checkTargets(rows, resource, tenants, settings = {}, growth = undefined) {
  const checks = [];
  const get = (id) => rows.find((r) => r.id === id);
  const vsOp = (id, min, what) => {
    const r = get(id)?.ratios?.['gatehouse:memory']?.vsOidcProvider;
    if (r === undefined || !get(id).cells['oidc-provider']) return; // not measured (--no-oidc-provider, --stores)
    checks.push({
      kind: 'vs',
      target: `${what} ≥ ${min}× oidc-provider (memory store)`,
      value: r,
      pass: r !== null && r >= min,
    });
  };
  vsOp('client_credentials', 5, 'client_credentials');
  const floor = get('client_credentials')?.ratios?.['gatehouse:memory']?.vsFloor;
  if (floor !== undefined)
    checks.push({
      kind: 'vs',
      target: 'client_credentials ≥ 50% of the floor (bare Fastify route, same run)',
      value: floor,
      pass: floor !== null && floor >= 0.5,
      percent: true,
    });
  // The floor's rows: where the ceiling on one core is, as a multiple of oidc-provider and of Gatehouse (no target).
  for (const row of rows) {
    for (const [floor, key] of FLOOR_RATIOS) {
      const vsOp = row.ratios?.[floor]?.vsOidcProvider;
      if (vsOp !== undefined)
        checks.push({
          kind: 'info',
          target: `${COLUMN_LABELS[floor]} ÷ oidc-provider: ${row.label} (the most a Node + Fastify server doing this work could reach on one core; no target)`,
          value: vsOp,
          pass: null,
        });
      const gh = row.ratios?.['gatehouse:memory']?.[key];
      if (gh !== undefined && !(row.id === 'client_credentials' && floor === 'floor'))
        checks.push({
          kind: 'info',
          target: `Gatehouse memory ÷ ${COLUMN_LABELS[floor]}: ${row.label} (no target)`,
          value: gh,
          pass: null,
          percent: true,
        });
    }
  }
  vsOp('code_flow', 4, 'code flows (authorize with a session → code → token → refresh)');
  vsOp('refresh', 3, 'refresh rotation');
  vsOp('introspect_distinct', 3, 'introspection of distinct, never-seen access tokens');
  vsOp('revoke_distinct', 3, 'revocation of distinct, never-seen access tokens');
  vsOp('introspect_at', 3, 'introspection of one access token, repeated (cache hit)');
  vsOp('introspect_rt', 3, 'introspection of one refresh token, repeated');
  for (const [t, r] of Object.entries(get('id_jag')?.ratios ?? {})) {
    if (r.vsClientCredentials === undefined) continue;
    checks.push({
      kind: 'info',
      target: `ID-JAG ÷ client_credentials (${COLUMN_LABELS[t] ?? t}; oidc-provider has no ID-JAG; no target)`,
      value: r.vsClientCredentials,
      pass: null,
    });
  }
  for (const [store, min] of Object.entries(STORE_TARGETS)) {
    const name = `gatehouse:${store}`;
    for (const row of rows) {
      if (row.id === 'sign_in') continue; // scrypt-bound by design
      const cell = row.cells[name];
      if (!cell) continue;
      const v = row.ratios?.[name]?.vsMemory ?? null;
      checks.push({
        kind: 'vs',
        target: `${STORE_NAMES[store]} ≥ ${Math.round(min * 100)}% of memory: ${row.label}`,
        value: v,
        pass: v !== null && v >= min,
        percent: true,
        note: cell.status === 'failed' ? `failed: ${cell.reason}` : undefined,
      });
    }
  }
  if (resource?.ratio !== undefined) {
    checks.push({
      kind: 'vs',
      target: 'gatehouse/resource verify() ≥ 2× raw jose jwtVerify (same tokens)',
      value: resource.ratio,
      pass: resource.ratio >= 2,
    });
  }
  if (resource?.introspectionRatio !== undefined) {
    checks.push({
      kind: 'info',
      target: "gatehouse/resource verify() in mode 'introspection' (revocation-aware) ÷ raw jose jwtVerify (no target)",
      value: resource.introspectionRatio,
      pass: null,
    });
  }
  // Latency and GC under load, every row, every Gatehouse target.
  for (const row of rows) {
    for (const [t, c] of Object.entries(row.cells)) {
      if (!t.startsWith('gatehouse:') || c.status !== 'ok') continue;
      const inFlight = row.id === 'sign_in' ? 4 : settings.concurrency;
      const r = c.p99 / c.p50;
      checks.push({
        kind: 'latency',
        row: row.id,
        targetName: t,
        target: `p99 ≤ ${LATENCY_MAX_P99_OVER_P50}× p50 at ${inFlight} concurrent${inFlight === LATENCY_CONCURRENCY ? '' : ` (the target is set at ${LATENCY_CONCURRENCY})`}: ${row.label} on ${t}`,
        value: Number.isFinite(r) ? r : null,
        p50: c.p50,
        p99: c.p99,
        concurrency: inFlight,
        pass: Number.isFinite(r) && r <= LATENCY_MAX_P99_OVER_P50,
      });
      if (c.gcMaxMs !== undefined)
        checks.push({
          kind: 'gc',
          row: row.id,
          targetName: t,
          target: `no GC pause over ${GC_MAX_PAUSE_MS} ms under load: ${row.label} on ${t}`,
          value: c.gcMaxMs,
          pass: c.gcMaxMs <= GC_MAX_PAUSE_MS,
        });
    }
  }
  for (const [store, t] of Object.entries(tenants?.stores ?? {})) {
    const v = t.ratio ?? null;
    checks.push({
      kind: 'vs',
      target: `tenants: ${t.count.toLocaleString('en-US')} tenants ≥ 90% of one tenant (${STORE_NAMES[store] ?? store})`,
      value: v,
      pass: v !== null && v >= 0.9,
      note: t.status === 'failed' ? `failed: ${t.reason}` : undefined,
    });
  }
  for (const [store, g] of Object.entries(growth?.stores ?? {})) {
    if (g.status === 'not implemented') continue;
    const name = STORE_NAMES[store] ?? store;
    for (const [id, v] of Object.entries(g.ratios ?? {}))
      checks.push({
        kind: 'vs',
        target: `growth: ${id} with ${growth.grants.toLocaleString('en-US')} grants within 10% of the empty store (${name})`,
        value: v,
        pass: v !== null && v >= 0.9,
        percent: true,
      });
    if (g.cleanup)
      checks.push({
        kind: 'vs',
        target: `growth: refresh p99 during the cleanup of ${g.cleanup.deletedRows.toLocaleString('en-US')} expired rows ≤ 2× p99 without (${name})`,
        value: g.cleanup.ratio,
        pass: g.cleanup.ratio <= 2,
      });
    if (g.status === 'failed')
      checks.push({ kind: 'vs', target: `growth (${name})`, value: null, pass: false, note: `failed: ${g.reason}` });
    if (store === 'memory' && g.status === 'ok') {
      const count = (v) => v.toLocaleString('en-US');
      checks.push({
        kind: 'vs',
        target: `growth: the memory store holds at most memory.maxEntries = ${count(g.maxEntries)} grants (and their refresh tokens, access token ids) after ${count(growth.grants)} inserted, and after the row`,
        value: null,
        text: `${count(g.held)} held after the preload, ${count(grantMapsOf(g.statsAfterRow))} after the row`,
        pass: g.boundHeld,
      });
      checks.push({
        kind: 'vs',
        target:
          'growth: the memory store evicts as documented (the grants closest to expiry first, their refresh tokens and access token ids with them)',
        value: null,
        text: `${count(g.evicted)} evicted, every held grant expires after every evicted one: ${g.newestKept ? 'yes' : 'no'}; tokens left without their grant: ${g.cascade.tokensWithoutGrant}; /introspect of ${g.probes.probes} probe refresh tokens: ${g.probes.wrong.length} not as expected`,
        pass: g.evictionAsDocumented,
      });
    }
    if (g.rssMB && g.status === 'ok')
      checks.push({
        kind: 'info',
        target: `growth: server RSS (${name}; no target)`,
        value: null,
        text: `${fmtMB(g.rssMB.afterEmptyRow)} MB after the empty store's cells (${store === 'memory' ? 'its own server' : 'same server'}), ${fmtMB(g.rssMB.afterPreload)} MB after the preload, ${fmtMB(g.rssMB.afterRow)} MB after the row`,
        pass: null,
      });
  }
  return checks;
}

/** The largest of the memory store's grant-related map counts (MemoryStorage.stats()), NaN when unknown. */
const grantMapsOf = (stats) => (stats ? Math.max(stats.grants, stats.refreshTokens, stats.grantAccessTokens) : NaN);

const STORE_NAMES = { memory: 'memory', embedded: 'embedded', postgres: 'PostgreSQL', redis: 'Redis' };

const COLUMN_LABELS = {
  'oidc-provider': 'oidc-provider 8.8.1 (memory)',
  floor: 'floor (bare Fastify route)',
  'floor:http': 'floor, HTTP + client auth only',
  'gatehouse:memory': 'Gatehouse memory',
  'gatehouse:embedded': 'Gatehouse embedded',
  'gatehouse:postgres': 'Gatehouse PostgreSQL',
  'gatehouse:redis': 'Gatehouse Redis',
};

/** Markdown: throughput with ratios, latency, resource verification, target checks. */
export function markdown(result) {
  const targets = result.targetOrder;
  const gh = targets.filter((t) => t.startsWith('gatehouse:'));
  const lines = [];
  const cellText = (c) =>
    c === undefined ? '–' : c.status === 'failed' ? 'failed¹' : `${fmt(c.median)} (${fmt(c.min)}–${fmt(c.max)})`;
  if (result.rows.length) serverTables(result, targets, gh, cellText, lines);
  if (result.resource) resourceTable(result, lines);
  if (result.tenants) tenantsTables(result, cellText, lines);
  if (result.growth) growthTables(result, cellText, lines);
  if (result.checks.length) {
    const listed = result.checks.filter((c) => c.kind !== 'latency' && c.kind !== 'gc');
    const under = (kind) => result.checks.filter((c) => c.kind === kind);
    lines.push('', 'Targets (from this run):', '');
    for (const c of listed)
      lines.push(
        `- ${c.pass === null ? 'INFO' : c.pass ? 'PASS' : 'FAIL'} ${c.target}: ${c.text ?? (c.value === null ? 'n/a' : c.percent ? `${(100 * c.value).toFixed(0)}%` : fmtRatio(c.value))}${c.note ? ` (${c.note})` : ''}`,
      );
    for (const [kind, what] of [
      [
        'latency',
        `p99 ≤ ${LATENCY_MAX_P99_OVER_P50}× p50 at ${result.settings.concurrency} concurrent (every row, every Gatehouse store)`,
      ],
      ['gc', `no GC pause over ${GC_MAX_PAUSE_MS} ms under load (every row, every Gatehouse store)`],
    ]) {
      const cs = under(kind);
      if (!cs.length) continue;
      const failed = cs.filter((c) => !c.pass);
      lines.push(
        `- ${failed.length ? 'FAIL' : 'PASS'} ${what}: ${cs.length - failed.length} of ${cs.length} cells pass${failed.length ? `; failing: ${failed.map((c) => `${c.row} on ${c.targetName.replace('gatehouse:', '')} (${kind === 'gc' ? `${fmtMs(c.value)} ms` : fmtRatio(c.value ?? NaN)})`).join(', ')}` : ''}`,
      );
    }
  }
  const failures = [];
  for (const row of result.rows)
    for (const [t, c] of Object.entries(row.cells))
      if (c.status === 'failed') failures.push(`${row.label} on ${t}: ${c.reason}`);
  for (const [t, s] of Object.entries(result.targets))
    if (s.status === 'failed') failures.unshift(`${t} did not start: ${s.reason}`);
  for (const [store, s] of Object.entries(result.tenants?.stores ?? {})) {
    if (s.status === 'failed') failures.push(`tenants on ${store}: ${s.reason}`);
    for (const [cell, c] of Object.entries(s.cells ?? {}))
      if (c.status === 'failed') failures.push(`tenants (${cell}) on ${store}: ${c.reason}`);
  }
  if (failures.length) {
    lines.push('', '¹ Failed:', '');
    for (const f of [...new Set(failures)]) lines.push(`- ${f.slice(0, 400)}`);
  }
  const errs = [];
  for (const row of result.rows)
    for (const [t, c] of Object.entries(row.cells)) {
      if (c.status === 'ok' && c.errors > 0) errs.push(`${row.label} on ${t}: ${c.errors} errors (${c.firstError})`);
      if (c.status === 'ok' && c.exhaustedRuns)
        errs.push(
          `${row.label} on ${t}: ${c.exhaustedRuns} run(s) used up their pre-minted supply and were measured over the time it lasted`,
        );
    }
  for (const [store, s] of Object.entries(result.tenants?.stores ?? {}))
    for (const [cell, c] of Object.entries(s.cells ?? {}))
      if (c.status === 'ok' && c.errors > 0)
        errs.push(`tenants (${cell}) on ${store}: ${c.errors} errors (${c.firstError})`);
  if (errs.length) lines.push('', 'Errors during measured runs:', '', ...errs.map((e) => `- ${e.slice(0, 300)}`));
  return lines.join('\n') + '\n';
}

/** The per-scenario tables of the shared targets (rows a–d). */
function serverTables(result, targets, gh, cellText, lines) {
  lines.push(`Throughput, median of ${result.settings.reps} runs (min–max), per second:`, '');
  lines.push(`| Scenario | ${targets.map((t) => COLUMN_LABELS[t] ?? t).join(' | ')} |`);
  lines.push(`|---|${targets.map(() => '---:').join('|')}|`);
  for (const row of result.rows)
    lines.push(`| ${row.label} (${row.unit}) | ${targets.map((t) => cellText(row.cells[t])).join(' | ')} |`);
  lines.push('');
  lines.push('Ratios of medians (Gatehouse ÷ oidc-provider; store ÷ Gatehouse memory):', '');
  const ratioCols = [
    ...gh.map((t) => `${COLUMN_LABELS[t].replace('Gatehouse ', '')} ÷ OP`),
    ...gh.filter((t) => t !== 'gatehouse:memory').map((t) => `${COLUMN_LABELS[t].replace('Gatehouse ', '')} ÷ memory`),
  ];
  lines.push(`| Scenario | ${ratioCols.join(' | ')} |`);
  lines.push(`|---|${ratioCols.map(() => '---:').join('|')}|`);
  for (const row of result.rows) {
    const vals = [
      ...gh.map((t) => fmtRatio(row.ratios[t]?.vsOidcProvider ?? NaN)),
      ...gh.filter((t) => t !== 'gatehouse:memory').map((t) => fmtRatio(row.ratios[t]?.vsMemory ?? NaN)),
    ];
    lines.push(`| ${row.label} | ${vals.join(' | ')} |`);
  }
  const extra = [];
  for (const row of result.rows) {
    const floors = [];
    for (const [floor, key] of FLOOR_RATIOS) {
      const gh = row.ratios['gatehouse:memory']?.[key];
      const op = row.ratios[floor]?.vsOidcProvider;
      const name = floor === 'floor' ? 'floor' : 'HTTP-only floor';
      if (gh !== undefined) floors.push(`Gatehouse memory ÷ ${name} ${pct(gh)}`);
      if (op !== undefined) floors.push(`${name} ÷ oidc-provider ${fmtRatio(op ?? NaN)}`);
    }
    if (floors.length) extra.push(`- ${row.label}: ${floors.join('; ')}`);
    if (row.id === 'id_jag')
      for (const t of gh)
        if (row.ratios[t]?.vsClientCredentials !== undefined)
          extra.push(
            `- ${row.label}: ${COLUMN_LABELS[t]} ÷ its client_credentials row ${fmtRatio(row.ratios[t].vsClientCredentials ?? NaN)} (oidc-provider has no ID-JAG)`,
          );
  }
  if (extra.length) lines.push('', ...extra);
  lines.push('');
  const check = (kind, row, t) => result.checks.find((c) => c.kind === kind && c.row === row && c.targetName === t);
  lines.push(
    `Latency p50 / p99 in ms (median over runs; per request, per whole flow for b, per login POST for sign-in) at ${result.settings.concurrency} concurrent (sign-in: 4); for Gatehouse, p99 ÷ p50 against ≤ ${LATENCY_MAX_P99_OVER_P50}× and the longest GC pause in the measured windows (perf_hooks in the server) against ≤ ${GC_MAX_PAUSE_MS} ms:`,
    '',
  );
  lines.push(`| Scenario | ${targets.map((t) => COLUMN_LABELS[t] ?? t).join(' | ')} |`);
  lines.push(`|---|${targets.map(() => '---:').join('|')}|`);
  for (const row of result.rows) {
    const cellOf = (t) => {
      const c = row.cells[t];
      if (c?.status !== 'ok') return '–';
      let out = `${fmtMs(c.p50)} / ${fmtMs(c.p99)}`;
      const l = check('latency', row.id, t);
      if (l) out += ` · ${fmtRatio(l.value ?? NaN)} ${l.pass ? 'PASS' : 'FAIL'}`;
      const g = check('gc', row.id, t);
      if (g) out += ` · GC ${fmtMs(g.value)} ms ${g.pass ? 'PASS' : 'FAIL'}`;
      else if (c.gcMaxMs !== undefined) out += ` · GC ${fmtMs(c.gcMaxMs)} ms`;
      return out;
    };
    lines.push(`| ${row.label} | ${targets.map(cellOf).join(' | ')} |`);
  }
  cpuTable(result, targets, lines);
}

/** CPU per operation, per row and target (bench/lib/cpu.mjs); nothing when no run has CPU figures (no /proc). */
function cpuTable(result, targets, lines) {
  const cells = result.rows.flatMap((row) =>
    targets.filter((t) => row.cells[t]?.cpu).map((t) => ({ row, t, c: row.cells[t], cpu: row.cells[t].cpu })),
  );
  if (!cells.length) return;
  // Pinned, every thread of the server runs on its core: the core's busy share minus the server's is everybody else.
  const core = result.pinning?.enabled ? result.pinning.serverCore : undefined;
  const us = (x) => (Number.isFinite(x) ? (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1)) : '–');
  const share = (x) => (Number.isFinite(x) ? `${Math.round(100 * Math.max(0, x))}%` : '–');
  const onCore = (cpu) => {
    const idle = cpu.idle?.[`core${core}`];
    return `${share(cpu.serverCores)} / ${share(1 - idle - cpu.serverCores)} / ${share(idle)}`;
  };
  lines.push(
    '',
    `CPU per operation in µs (median over runs; /proc read at each measured window's start and end). Wall = 1e6 ÷ rate: what one core has per operation at this rate. Server = the process under test, all threads (main thread / the others: libuv threadpool for signing, verifying, hashing, and V8's helpers). PostgreSQL = every \`postgres\` process on the machine, Redis = every \`redis-server\`: they serve the bench during a run, but whatever else uses them meanwhile is counted too. Load generator = the bench process${core === undefined ? ". Server cores = the server's CPU ÷ wall time (1.00: one core busy throughout)" : `, on core ${result.pinning.benchCore}. Core ${core} = the server's core: the share of the window the server used, the share anything else used (/proc/stat busy minus the server), idle; near 0% idle means the core was saturated, and by the server alone when "others" is near 0%`}; machine idle = all cores (/proc/stat):`,
    '',
    `| Scenario | Target | rate | wall µs/op | server µs/op (main / other) | PostgreSQL µs/op | Redis µs/op | load generator µs/op | ${core === undefined ? 'server cores' : `core ${core}: server / others / idle`} | machine idle |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const { row, t, c, cpu } of cells) {
    const coreText =
      core === undefined ? (Number.isFinite(cpu.serverCores) ? cpu.serverCores.toFixed(2) : '–') : onCore(cpu);
    lines.push(
      `| ${row.label} | ${COLUMN_LABELS[t] ?? t} | ${fmt(c.median)} | ${us(1e6 / c.median)} | ${us(cpu.serverUs)} (${us(cpu.serverMainUs)} / ${us(cpu.serverOtherUs)}) | ${us(cpu.postgresUs)} | ${us(cpu.redisUs)} | ${us(cpu.loadgenUs)} | ${coreText} | ${share(cpu.idle?.machine)} |`,
    );
  }
}

/** Scenario e. */
function resourceTable(result, lines) {
  const r = result.resource;
  lines.push(
    '',
    `In-process bearer verification (scenario e, against ${r.against}; ${result.settings.concurrency} in flight):`,
    '',
  );
  lines.push('| Verifier | verifications/s, median (min–max) | p50 / p99 ms |', '|---|---:|---:|');
  for (const row of r.rows) {
    const c = row.cell;
    lines.push(
      `| ${row.label} | ${c.status === 'ok' ? `${fmt(c.median)} (${fmt(c.min)}–${fmt(c.max)})` : 'failed¹'} | ${c.status === 'ok' ? `${fmtMs(c.p50)} / ${fmtMs(c.p99)}` : '–'} |`,
    );
  }
  lines.push(
    '',
    `gatehouse/resource ÷ raw jose: ${fmtRatio(r.ratio)}; in mode 'introspection' ÷ raw jose: ${fmtRatio(r.introspectionRatio)}`,
  );
}

const fmtMB = (mb) => (Number.isFinite(mb) ? mb.toFixed(0) : 'n/a');
/** The no-tenants server's RSS: `–` when it was not started (--quick), `n/a` when there is no /proc. */
const baselineMB = (s) => (s.baseline ? fmtMB(s.baseline.rssMB) : '–');

/** The tenants row: its cost (start, warm-up, memory) and the two cells per store. */
function tenantsTables(result, cellText, lines) {
  const t = result.tenants;
  const n = t.count.toLocaleString('en-US');
  const stores = Object.entries(t.stores);
  lines.push(
    '',
    `Tenants: ${n} config-file tenants in one Gatehouse process per store (a dedicated server, nothing else running)${t.countNote ? `; ${t.countNote}` : ''}${t.baseline ? '' : '; no server without tenants started (--quick)'}.`,
    `Start = spawn to healthy; warm-up = each tenant's first client_credentials request (loads it: settings, keys, client), ${t.warmConcurrency} at a time; RSS from /proc/<pid>/status:`,
    '',
    `| Store | start, no tenants (ms) | start, ${n} tenants (ms) | warm-up of ${n} tenants (s) | first request p50 / p99 / max (ms) | RSS MB: no tenants / ${n} tenants before warm-up / after / after load |`,
    '|---|---:|---:|---:|---:|---:|',
  );
  for (const [store, s] of stores) {
    const name = STORE_NAMES[store] ?? store;
    if (s.status === 'failed' && s.startMs === undefined) {
      lines.push(`| ${name} | ${fmtMs(s.baseline?.startMs)} | failed¹ | – | – | ${baselineMB(s)} / – / – / – |`);
      continue;
    }
    const w = s.warmup;
    const r = s.rssMB ?? {};
    lines.push(
      `| ${name} | ${fmtMs(s.baseline?.startMs)} | ${fmtMs(s.startMs)} | ${w ? w.seconds.toFixed(2) : '–'} | ${w ? `${fmtMs(w.p50)} / ${fmtMs(w.p99)} / ${fmtMs(w.max)}` : '–'} | ${[baselineMB(s), ...[r.beforeWarmup, r.afterWarmup, r.afterLoad].map(fmtMB)].join(' / ')} |`,
    );
  }
  lines.push(
    '',
    `client_credentials (autocannon, ${t.concurrency} connections) on one tenant's /token versus cycling through all ${n} tenants' /token, median of ${result.settings.reps} alternating runs (min–max), req/s; p50 / p99 ms:`,
    '',
    `| Store | one tenant | ${n} tenants | one tenant p50 / p99 | ${n} tenants p50 / p99 | ${n} ÷ one |`,
    '|---|---:|---:|---:|---:|---:|',
  );
  const lat = (c) => (c?.status === 'ok' ? `${fmtMs(c.p50)} / ${fmtMs(c.p99)}` : '–');
  for (const [store, s] of stores) {
    const { one, spread } = s.cells ?? {};
    lines.push(
      `| ${STORE_NAMES[store] ?? store} | ${s.cells ? cellText(one) : 'failed¹'} | ${s.cells ? cellText(spread) : 'failed¹'} | ${lat(one)} | ${lat(spread)} | ${fmtRatio(s.ratio ?? NaN)} |`,
    );
  }
}

/** The growth row: empty versus preloaded store, and the cleanup of expired rows under load. */
function growthTables(result, cellText, lines) {
  const g = result.growth;
  const n = g.grants.toLocaleString('en-US');
  lines.push(
    '',
    `Growth: ${n} live grants with a refresh token each (PostgreSQL: and ${g.clients.toLocaleString('en-US')} clients) loaded into the store, then the same cells again (memory: in the server process, over a bound of a quarter of that, so the store evicts); PostgreSQL: then ${n} expired grants + refresh tokens, deleted by the SQL store's cleanup statements during a refresh run${g.note ? `; ${g.note}` : ''}:`,
    '',
    '| Store | row | empty store | grown store | grown ÷ empty |',
    '|---|---|---:|---:|---:|',
  );
  for (const [store, s] of Object.entries(g.stores)) {
    const name = STORE_NAMES[store] ?? store;
    if (s.status !== 'ok') {
      lines.push(`| ${name} | – | ${s.status}: ${s.reason} | | |`);
      continue;
    }
    for (const id of Object.keys(s.empty))
      lines.push(`| ${name} | ${id} | ${cellText(s.empty[id])} | ${cellText(s.grown[id])} | ${pct(s.ratios[id])} |`);
  }
  const rss = (r) =>
    `server RSS ${fmtMB(r.afterEmptyRow)} MB after the empty cells, ${fmtMB(r.afterPreload)} MB after the preload, ${fmtMB(r.afterRow)} MB after the row`;
  for (const [store, s] of Object.entries(g.stores)) {
    if (s.status !== 'ok') continue;
    if (store === 'memory') {
      const c = (v) => (Number.isFinite(v) ? v.toLocaleString('en-US') : 'n/a');
      lines.push(
        '',
        `memory: preload ${s.preloadSeconds.grants.toFixed(1)} s (${n} createGrant calls in the server process, memory.maxEntries ${c(s.maxEntries)}; read-back of every grant, refresh token and access token id ${s.readBackSeconds.toFixed(1)} s); held ${c(s.held)}, evicted ${c(s.evicted)} (#0–#${c(s.newestMissing)}; oldest held #${c(s.oldestHeld)}, newest #${c(g.grants - 1)}), every held grant expires after every evicted one: ${s.newestKept ? 'yes' : 'NO'}, refresh tokens / access token ids left without their grant: ${s.cascade.tokensWithoutGrant}, grants without theirs: ${s.cascade.grantsWithoutToken}; /introspect of ${s.probes.probes} probe refresh tokens: ${s.probes.active} active, ${s.probes.inactive} inactive, ${s.probes.wrong.length} not as expected; after the row ${s.probesAfterRow.active} active (the row's own later-expiring tokens evict more of the preload), still a suffix: ${s.probesAfterRow.suffix ? 'yes' : 'NO'}; grants held after the row ${c(s.statsAfterRow?.grants)}, refresh tokens ${c(s.statsAfterRow?.refreshTokens)}; ${rss(s.rssMB)} (heap used after the preload ${fmtMB(s.heapMBAfterPreload)} MB)`,
      );
      continue;
    }
    if (!s.cleanup)
      lines.push(
        '',
        `${STORE_NAMES[store]}: preload ${s.preloadSeconds.grants.toFixed(1)} s (grants + refresh tokens); ${rss(s.rssMB)}${s.notes ? `; ${s.notes.join('; ')}` : ''}`,
      );
    if (!s.cleanup) continue;
    const c = s.cleanup;
    lines.push(
      '',
      `${STORE_NAMES[store]}: preload ${s.preloadSeconds.grants.toFixed(1)} s (grants + refresh tokens), ${s.preloadSeconds.clients.toFixed(1)} s (clients); cleanup deleted ${c.deletedRows.toLocaleString('en-US')} rows in ${c.seconds.toFixed(1)} s (window ${c.windowSeconds} s); refresh p99 ${fmtMs(c.p99Without)} ms without, ${fmtMs(c.p99During)} ms during (${fmtRatio(c.ratio)}), ${fmt(c.rateWithout)} → ${fmt(c.rateDuring)} rotations/s; ${rss(s.rssMB)} (after the cleanup)`,
    );
  }
}
