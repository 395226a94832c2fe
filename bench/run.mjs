#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- --stores=memory,redis] ...`: installs bench/ dependencies when missing
 * (`npm ci --prefix bench`), builds Gatehouse (`npm run build`), then runs the benchmark (bench/lib/main.mjs).
 * Uses only Node built-ins until the dependencies are in place. See bench/README.md.
 */
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const bench = new URL('.', import.meta.url).pathname;
const root = join(bench, '..');
const args = process.argv.slice(2);
const sh = (cmd, cwd) => execSync(cmd, { cwd, stdio: ['ignore', process.stderr, process.stderr] });
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`Usage: npm run bench -- [options]
  --quick                 short run (3 × 0.5 s per cell, 100 tenants), about 3 minutes for all stores: a smoke
                          test, not a measurement
  --stores=a,b            Gatehouse stores: memory, embedded, postgres, redis (default: all)
  --scenarios=a,b         client_credentials, dpop_client_credentials, code_flow, sign_in, refresh,
                          introspect_at, introspect_rt, introspect_distinct, revoke_distinct, id_jag, resource,
                          tenants (default: all of these); growth (opt-in: PostgreSQL and Redis preloaded with
                          10^6 grants each, about 5 more minutes for PostgreSQL and 8 for Redis; memory: 10^6
                          grants over a bound of 250,000 in the server process)
  --tenants=N             tenants in the tenants row's server (default 1000; 100 with --quick)
  --reps=N --duration=S --warmup=S --concurrency=N   override the run shape (default 3 × 8 s after 1.5 s, 50
                          concurrent: the concurrency the latency target p99 ≤ 3 × p50 is set at)
  --pin / --no-pin        servers under test on core 1 (taskset -c 1), the load generator on core 0; default on
                          where taskset exists and there are ≥ 2 cores (--pin: fail if it cannot); PostgreSQL and
                          Redis are not pinned
  --no-oidc-provider      Gatehouse only
  --profile               instead of the comparison: one server per scenario under node --cpu-prof, top self-time
  --no-build              use the existing dist/ (default: npm run build first)
Duration: a full run (all stores and rows) takes about 35 minutes: ~45 cells × 3 × 9.5 s, plus minting the
distinct tokens of the introspection and revocation rows (~6 min), the resource row and the tenants row (~5 min);
the estimate for the chosen options is printed when the run starts.
Output: markdown tables on stdout (throughput, ratios, latency and GC, CPU µs per operation of the server, the
databases and the load generator, read from /proc on Linux: no option, always on) and bench/results/<time>.json.
The floor (bench/servers/floor.mjs) runs on client_credentials, introspect_distinct and revoke_distinct.
Env: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_REDIS_URL (default redis://127.0.0.1:6379)
`);
  process.exit(0);
}

// Root dependencies (Gatehouse's own) and bench/'s (oidc-provider, autocannon, undici), each from its lockfile.
if (!existsSync(join(root, 'node_modules/.package-lock.json'))) {
  process.stderr.write('bench: installing Gatehouse dependencies (npm ci)…\n');
  sh('npm ci --no-audit --no-fund', root);
}
const benchInstalled = join(bench, 'node_modules/.package-lock.json');
if (!existsSync(benchInstalled) || mtime(join(bench, 'package-lock.json')) > mtime(benchInstalled)) {
  process.stderr.write('bench: installing bench dependencies (npm ci --prefix bench)…\n');
  sh('npm ci --prefix bench --no-audit --no-fund', root);
}

let build = 'npm run build';
if (args.includes('--no-build')) {
  build = 'skipped (--no-build)';
} else {
  process.stderr.write('bench: building Gatehouse (npm run build)…\n');
  try {
    sh('npm run build --silent', root);
  } catch {
    // Someone's unfinished src/ change must not stop the bench when a previous build is there; it is recorded.
    if (!existsSync(join(root, 'dist/cli/main.js'))) {
      process.stderr.write('bench: the build failed and there is no dist/ to fall back on\n');
      process.exit(1);
    }
    build = 'FAILED: benchmarked the previous dist/';
    process.stderr.write('bench: WARNING the build failed; benchmarking the existing dist/\n');
  }
}

const { main } = await import('./lib/main.mjs');
process.exitCode = await main(args, { build });
