/**
 * Targets: a server process under test plus the store it uses. Gatehouse runs from the production build
 * (`node bin/gatehouse.mjs serve`), configured only through the documented env vars and a generated config file;
 * oidc-provider runs bench/servers/oidc-provider.mjs. Each target is one Node process on its own loopback port.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, scryptSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const BENCH = join(ROOT, 'bench');

/** The preload every server runs under (`--import`): GC pauses through perf_hooks, reported on SIGUSR2. */
const GC_PRELOAD = join(BENCH, 'lib/gc-preload.mjs');
const GC_LINE = '[bench-gc] ';

/**
 * CPU pinning (`--pin`, on by default where `taskset` exists and there are at least 2 cores): every server under
 * test is spawned under `taskset -c 1`, and the bench process (the load generator) pins all its threads to core 0.
 * PostgreSQL and Redis are external processes and are not pinned.
 */
const pinning = { enabled: false, serverCore: 1, benchCore: 0 };

/** Whether pinning can be used here: taskset on the PATH and ≥ 2 cores. */
export function pinningAvailable() {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: 'taskset not found (util-linux)' };
  }
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  if (cores < 2) return { ok: false, reason: `${cores} core(s)` };
  return { ok: true };
}

/** Turns pinning on: this process (all its threads) to core 0 from now on, servers spawned later to core 1. */
export function enablePinning() {
  execFileSync('taskset', ['-apc', String(pinning.benchCore), String(process.pid)], { stdio: 'ignore' });
  pinning.enabled = true;
  return { benchCore: pinning.benchCore, serverCore: pinning.serverCore };
}

/**
 * During setup (sign-ins: scrypt, before anything is measured) a pinned server may use every core:
 * `widen` lets all its threads run anywhere, `narrow` pins them (including threadpool threads started meanwhile)
 * back to the server core. No-ops without pinning.
 */
export function setupAffinity(child, mode) {
  if (!pinning.enabled || !child || child.exitCode !== null || child.signalCode !== null) return;
  const cores = mode === 'widen' ? `${pinning.benchCore},${pinning.serverCore}` : String(pinning.serverCore);
  try {
    execFileSync('taskset', ['-apc', cores, String(child.pid)], { stdio: 'ignore' });
  } catch {
    /* exited meanwhile */
  }
}

/**
 * Spawns a Node server (`nodeArgs` after the node binary) with the GC preload, pinned to the server core when
 * pinning is on (taskset execs node, so the child's pid is node's). Collects its `[bench-gc]` report lines.
 */
export function spawnServer(nodeArgs, options) {
  const args = ['--import', pathToFileURL(GC_PRELOAD).href, ...nodeArgs];
  const child = pinning.enabled
    ? spawn('taskset', ['-c', String(pinning.serverCore), process.execPath, ...args], options)
    : spawn(process.execPath, args, options);
  child.gcWaiters = [];
  let buf = '';
  child.stderr.on('data', (chunk) => {
    buf += String(chunk);
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const at = line.indexOf(GC_LINE);
      if (at >= 0) child.gcWaiters.shift()?.(JSON.parse(line.slice(at + GC_LINE.length)));
    }
  });
  return child;
}

/**
 * The server's GC pauses since the previous call (max and total ms, count), from its preload; undefined when the
 * process does not answer within a second (exited, or not ours).
 */
export async function gcStats(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return undefined;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      const i = child.gcWaiters.indexOf(done);
      if (i >= 0) child.gcWaiters.splice(i, 1);
      resolve(undefined);
    }, 1000);
    const done = (stats) => {
      clearTimeout(timer);
      resolve(stats);
    };
    child.gcWaiters.push(done);
    child.kill('SIGUSR2');
  });
}

export const STORES = ['memory', 'embedded', 'postgres', 'redis'];
export const STORE_LABELS = { memory: 'memory', embedded: 'embedded (PGlite)', postgres: 'PostgreSQL', redis: 'Redis' };

export const RESOURCE = 'https://api.bench.example/';
export const OPAQUE_RESOURCE = 'urn:bench:opaque';
export const SCOPES = ['bench:read', 'bench:write'];
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** A scrypt hash in Gatehouse's format (core/password.ts), cost as Gatehouse's default (N = 2^15). */
function scryptHash(password, log2N = 15) {
  const salt = randomBytes(16);
  const N = 2 ** log2N;
  const key = scryptSync(password.normalize('NFC'), salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 + 1024 * 1024 });
  return `scrypt$${log2N}$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/**
 * The bench identity shared by every target: one user, one confidential client (48-char secret). The password hash
 * costs N = 2^15 (Gatehouse's default); `log2N` lowers it (--quick: 2^14, the lowest Gatehouse's
 * `passwordHashing.log2N` accepts, set to match so it does not rehash at sign-in; half the setup time, and a quick
 * run's sign-in row is then not comparable with a full run's).
 */
export function benchIdentity({ log2N = 15 } = {}) {
  const password = 'bench-password-' + randomBytes(8).toString('hex');
  return {
    user: {
      username: 'bench',
      sub: 'bench-user-1',
      password,
      password_hash: scryptHash(password, log2N),
      log2N,
      passwordCost: `scrypt N = 2^${log2N}`,
      email: 'bench@example.com',
      name: 'Bench User',
    },
    client: {
      client_id: 'bench-client',
      client_secret: randomBytes(36).toString('base64url'),
      redirect_uris: ['http://127.0.0.1:9/bench/callback'],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: ['offline_access', ...SCOPES].join(' '),
      client_name: 'Bench client',
    },
    resource: RESOURCE,
    opaqueResource: OPAQUE_RESOURCE,
    scopes: SCOPES,
    cookieKey: randomBytes(32).toString('base64url'),
  };
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Keeps the last lines a child wrote, for failure reports. */
function tail(child) {
  const lines = [];
  const keep = (chunk) => {
    for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(line);
    while (lines.length > 30) lines.shift();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return lines;
}

/** Polls GET /health (every `pollMs`) until 200, the child exits, or the timeout passes. */
async function waitHealthy(origin, child, lines, timeoutMs = 60_000, pollMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      // The error line itself, not the stack frames after it nor the warnings logged before it.
      const message = lines
        .filter((l) => !/^\s+at /.test(l) && !/^\{"level":[34]0,/.test(l))
        .slice(-3)
        .join(' | ');
      throw new Error(`exited (${child.exitCode ?? child.signalCode}) during start: ${message.slice(0, 600)}`);
    }
    try {
      const res = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      if (res.status === 200) return;
      last = `health ${res.status}: ${text.slice(0, 200)}`;
    } catch (err) {
      last = String(err.cause?.code ?? err.message);
    }
    await sleep(pollMs);
  }
  throw new Error(`not healthy after ${timeoutMs / 1000}s (${last}): ${lines.slice(-4).join(' | ').slice(0, 600)}`);
}

/** Stops a child with SIGTERM (it writes its CPU profile on exit), SIGKILL after a grace period. */
export async function stopChild(child, graceMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Creates the backing store for a Gatehouse target; returns the GATEHOUSE_STORAGE value and a cleanup. */
async function prepareStore(store, runId, workDir, redisPrefix) {
  switch (store) {
    case 'memory':
      return { storage: 'memory', cleanup: async () => undefined };
    case 'embedded': {
      const dir = join(workDir, 'embedded-data');
      return { storage: dir, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    }
    case 'postgres': {
      // A database of its own, so the bench never touches the tables tests or other engineers use.
      const base = new URL(process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
      const db = `gatehouse_bench_${runId}`;
      const { default: pg } = await import('pg');
      const admin = new pg.Client({ connectionString: base.href, connectionTimeoutMillis: 5000 });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${db}`);
        await admin.query(`CREATE DATABASE ${db}`);
      } finally {
        await admin.end();
      }
      const url = new URL(base.href);
      url.pathname = `/${db}`;
      return {
        storage: url.href,
        cleanup: async () => {
          const c = new pg.Client({ connectionString: base.href, connectionTimeoutMillis: 5000 });
          await c.connect();
          try {
            await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
          } finally {
            await c.end();
          }
        },
      };
    }
    case 'redis': {
      const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
      return {
        storage: url,
        cleanup: async () => {
          // Only our own unique prefix is deleted.
          const { Redis } = await import('ioredis');
          // No reconnecting: an unreachable Redis must not keep the bench process alive.
          const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
          try {
            await r.connect();
            let cursor = '0';
            do {
              const [next, keys] = await r.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
              cursor = next;
              if (keys.length) await r.unlink(...keys);
            } while (cursor !== '0');
          } finally {
            r.disconnect();
          }
        },
      };
    }
    default:
      throw new Error(`unknown store ${store}`);
  }
}

/** Tenant `i` of `n`: t0000, t0001, … (zero-padded so the ids sort and have one length). */
export function tenantId(i, n) {
  return `t${String(i).padStart(Math.max(4, String(n - 1).length), '0')}`;
}

/**
 * `n` config-file tenants, each with the bench client (same id and secret in every tenant's own scope), the
 * deployment's scopes and resource, and only an ES256 key (no RSA key generated at each tenant's first request).
 */
function benchTenants(identity, n) {
  return Array.from({ length: n }, (_, i) => ({
    id: tenantId(i, n),
    scopes: SCOPES,
    resources: [RESOURCE],
    defaultResource: RESOURCE,
    clients: [identity.client],
    introspection: { allowedClients: [identity.client.client_id] },
    signing: { additionalAlgs: [] },
  }));
}

/**
 * Starts Gatehouse on `store`. Never throws: a target that cannot start is returned with `error` set, so its rows
 * are reported as failed while the rest of the run goes on. `tenants: n` declares n tenants in its config (the
 * tenants row); `startMs` is spawn to the first healthy answer. `bin` replaces bin/gatehouse.mjs (run with `serve`),
 * `env` adds to the server's environment, `startTimeoutMs` how long it may take to answer /health.
 */
export async function startGatehouse(
  store,
  identity,
  {
    runId,
    workDir,
    cpuProfDir,
    label,
    tenants = 0,
    idp,
    extraConfig,
    bin = join(ROOT, 'bin/gatehouse.mjs'),
    env = {},
    startTimeoutMs,
  } = {},
) {
  const name = label ?? `gatehouse:${store}`;
  const target = { name, kind: 'gatehouse', store, error: undefined, child: undefined, cleanup: async () => undefined };
  const dir = join(workDir, name.replace(/[^a-z0-9]+/gi, '-'));
  mkdirSync(dir, { recursive: true });
  const redisPrefix = `gatehouse-bench:${runId}:${store}:`;
  try {
    const prepared = await prepareStore(store, `${runId}_${store}`.replace(/[^a-z0-9_]/gi, '_'), dir, redisPrefix);
    target.cleanup = prepared.cleanup;
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const configPath = join(dir, 'gatehouse.json');
    writeFileSync(
      configPath,
      JSON.stringify(
        {
          scopes: SCOPES,
          resources: [RESOURCE],
          defaultResource: RESOURCE,
          redis: { keyPrefix: redisPrefix },
          // The cost of the bench user's hash, so a sign-in never rehashes it (--quick lowers both).
          ...(identity.user.log2N !== 15 && { passwordHashing: { log2N: identity.user.log2N } }),
          users: [
            {
              username: identity.user.username,
              password_hash: identity.user.password_hash,
              sub: identity.user.sub,
              email: identity.user.email,
              name: identity.user.name,
            },
          ],
          // With the ID-JAG row's enterprise IdP, the bench client may also redeem its ID-JAGs (jwt-bearer).
          clients: [
            idp ? { ...identity.client, grant_types: [...identity.client.grant_types, JWT_BEARER] } : identity.client,
          ],
          ...(idp && {
            enterpriseIdps: [
              {
                issuer: idp.issuer,
                jwksUri: idp.jwksUri,
                allowPrivateAddresses: true, // the bench serves the IdP's JWKS on a loopback port
                trustedCaFile: idp.caFile,
                allowedClients: [identity.client.client_id],
                subjectPrefix: 'idp|',
              },
            ],
          }),
          // The bench client also plays the resource server that introspects.
          introspection: { allowedClients: [identity.client.client_id] },
          ...(tenants > 0 && { tenants: benchTenants(identity, tenants) }),
          // Every bench tenant stays loaded: the row measures serving cached tenants, not reloading evicted ones.
          ...(tenants > 1000 && { tenantCacheSize: tenants }),
          ...extraConfig,
        },
        null,
        2,
      ),
    );
    const args = [];
    if (cpuProfDir) args.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`);
    args.push(bin, 'serve');
    const spawnedAt = performance.now();
    const child = spawnServer(args, {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        GATEHOUSE_ISSUER: origin,
        GATEHOUSE_STORAGE: prepared.storage,
        GATEHOUSE_LOG_LEVEL: 'warn',
        GATEHOUSE_CONFIG: configPath,
        NODE_ENV: 'production',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    target.child = child;
    target.log = tail(child);
    await waitHealthy(origin, child, target.log, startTimeoutMs ?? (tenants > 0 ? 180_000 : 60_000), 20);
    target.startMs = performance.now() - spawnedAt;
    Object.assign(target, { origin, issuer: origin, storage: prepared.storage, redisPrefix });
  } catch (err) {
    target.error = `${store} store: ${err.message}`;
    await stopChild(target.child, 2000);
  }
  return target;
}

/**
 * Starts one of bench/servers/<name>.mjs (the bench identity in a JSON file, PORT and ISSUER in its environment) and
 * waits until it is healthy. Never throws, like {@link startGatehouse}: a failure is the target's `error`.
 */
async function startBenchServer(name, identity, { workDir, cpuProfDir } = {}) {
  const target = { name, kind: name, error: undefined, child: undefined, cleanup: async () => undefined };
  if (name === 'oidc-provider') target.store = 'memory';
  try {
    const dir = join(workDir, name);
    mkdirSync(dir, { recursive: true });
    const configPath = join(dir, 'bench.json');
    writeFileSync(configPath, JSON.stringify(identity));
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const args = [];
    if (cpuProfDir) args.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`);
    args.push(join(BENCH, `servers/${name}.mjs`));
    const child = spawnServer(args, {
      cwd: BENCH,
      env: { ...process.env, PORT: String(port), ISSUER: origin, BENCH_CONFIG: configPath, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    target.child = child;
    target.log = tail(child);
    await waitHealthy(origin, child, target.log);
    Object.assign(target, { origin, issuer: origin });
  } catch (err) {
    target.error = `${name}: ${err.message}`;
    await stopChild(target.child, 2000);
  }
  return target;
}

/** Starts oidc-provider (its built-in in-memory adapter). */
export function startOidcProvider(identity, options) {
  return startBenchServer('oidc-provider', identity, options);
}

/**
 * Starts the floor (bench/servers/floor.mjs): a bare Fastify route doing the client_credentials row's irreducible
 * work (form parsing, Basic auth with an HMAC-SHA256 secret check, one ES256 JWT).
 */
export function startFloor(identity, options) {
  return startBenchServer('floor', identity, options);
}

/** Stops the process and removes what the target created in its store (once; a second call does nothing). */
export async function stopTarget(target) {
  if (target.stopped) return;
  target.stopped = true;
  await stopChild(target.child);
  try {
    await target.cleanup();
  } catch (err) {
    process.stderr.write(`bench: cleanup of ${target.name} failed: ${err.message}\n`);
  }
}

export function makeWorkDir() {
  return mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
}
