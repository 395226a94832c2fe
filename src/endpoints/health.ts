/**
 * GET /health: 200 `{"status":"ok"}` with each dependency's state and latency, or 503 `{"status":"degraded"}`. An
 * upstream identity provider that cannot be reached is reported `degraded` under `upstreams` and leaves the overall
 * status ok: sign-ins through it fail, everything else works.
 */
import type { Deps, EndpointDeclaration } from '../context.js';
import type { StorageBackend } from '../model/ports.js';
import type { UpstreamStatus } from '../upstream/provider.js';
import { issuerPath } from './metadata.js';

/** What the health check uses: the store's liveness and name, and the key set. */
export type HealthDeps = Pick<Deps, 'keys'> &
  Partial<Pick<Deps, 'upstreams'>> & { storage: Pick<StorageBackend, 'kind' | 'ping'> };

export interface HealthReport {
  status: 'ok' | 'degraded';
  storage: { kind: string; status: 'up' | 'down'; latencyMs: number; error?: string };
  keys: { status: 'up' | 'down'; count: number };
  /** Per upstream id (only with upstreams): the last discovery / JWKS check, made again at most every 10 s. */
  upstreams?: Record<string, UpstreamHealth>;
}

export interface UpstreamHealth {
  status: 'up' | 'degraded';
  discovery: UpstreamStatus['discovery'];
  checkedAt?: string;
  error?: string;
}

/** How often a health check goes to an upstream (others read the last outcome). */
const UPSTREAM_PROBE_INTERVAL_MS = 10_000;

/** Served at the root, where load balancers look, and under the issuer's path when it has one. */
export const healthDeclaration = {
  path: (issuer) => [...new Set(['/health', issuerPath(issuer) + '/health'])],
} satisfies EndpointDeclaration;

/** A hung store must not hang the health check that load balancers poll. */
const PING_TIMEOUT_MS = 2000;

export async function healthCheck(deps: HealthDeps): Promise<HealthReport> {
  const upstreams = upstreamHealth(deps);
  const started = performance.now();
  let storage: HealthReport['storage'];
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      deps.storage.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('ping timed out')), PING_TIMEOUT_MS);
      }),
    ]);
    storage = { kind: deps.storage.kind, status: 'up', latencyMs: round(performance.now() - started) };
  } catch (err) {
    const error = err instanceof Error && err.message === 'ping timed out' ? 'timeout' : 'unreachable';
    storage = { kind: deps.storage.kind, status: 'down', latencyMs: round(performance.now() - started), error };
  } finally {
    clearTimeout(timer);
  }
  const count = deps.keys.publicJwks().keys.length;
  const keys: HealthReport['keys'] = { status: count > 0 ? 'up' : 'down', count };
  const ok = storage.status === 'up' && keys.status === 'up';
  const report: HealthReport = { status: ok ? 'ok' : 'degraded', storage, keys };
  const upstreamReport = await upstreams;
  if (upstreamReport) report.upstreams = upstreamReport;
  return report;
}

/** Each upstream's state: a fresh check when the last is older than the interval, bounded like the store's ping. */
async function upstreamHealth(deps: HealthDeps): Promise<Record<string, UpstreamHealth> | undefined> {
  if (!deps.upstreams || deps.upstreams.size === 0) return undefined;
  const out: Record<string, UpstreamHealth> = {};
  await Promise.all(
    [...deps.upstreams.values()].map(async (provider) => {
      let timer: NodeJS.Timeout | undefined;
      const state = await Promise.race([
        provider.probe(UPSTREAM_PROBE_INTERVAL_MS),
        new Promise<UpstreamStatus>((resolve) => {
          // Still checking: the last outcome, and the check goes on in the background.
          timer = setTimeout(() => resolve(provider.status()), PING_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      out[provider.id] = {
        // Not checked yet (a probe still running) counts as up: nothing failed.
        status: state.status === 'degraded' ? 'degraded' : 'up',
        discovery: state.discovery,
        ...(state.checkedAt !== undefined ? { checkedAt: new Date(state.checkedAt).toISOString() } : {}),
        ...(state.error !== undefined ? { error: state.error } : {}),
      };
    }),
  );
  return out;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
