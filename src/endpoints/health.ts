/** GET /health: 200 `{"status":"ok"}` with each dependency's state and latency, or 503 `{"status":"degraded"}`. */
import type { Deps, EndpointDeclaration } from '../context.js';
import type { StorageBackend } from '../model/ports.js';
import { issuerPath } from './metadata.js';

/** What the health check uses: the store's liveness and name, and the key set. */
export type HealthDeps = Pick<Deps, 'keys'> & { storage: Pick<StorageBackend, 'kind' | 'ping'> };

export interface HealthReport {
  status: 'ok' | 'degraded';
  storage: { kind: string; status: 'up' | 'down'; latencyMs: number; error?: string };
  keys: { status: 'up' | 'down'; count: number };
}

/** Served at the root, where load balancers look, and under the issuer's path when it has one. */
export const healthDeclaration = {
  path: (issuer) => [...new Set(['/health', issuerPath(issuer) + '/health'])],
} satisfies EndpointDeclaration;

/** A hung store must not hang the health check that load balancers poll. */
const PING_TIMEOUT_MS = 2000;

export async function healthCheck(deps: HealthDeps): Promise<HealthReport> {
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
  return { status: ok ? 'ok' : 'degraded', storage, keys };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
