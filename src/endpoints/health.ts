/** GET /health: 200 `{"status":"ok"}` with each dependency's state and latency, or 503 `{"status":"degraded"}`. */
import type { Deps } from '../context.js';

export interface HealthReport {
  status: 'ok' | 'degraded';
  storage: { kind: string; status: 'up' | 'down'; latencyMs: number; error?: string };
  keys: { status: 'up' | 'down'; count: number };
}

export async function healthCheck(deps: Pick<Deps, 'storage' | 'keys'>): Promise<HealthReport> {
  const started = performance.now();
  let storage: HealthReport['storage'];
  try {
    await deps.storage.ping();
    storage = { kind: deps.storage.kind, status: 'up', latencyMs: round(performance.now() - started) };
  } catch (err) {
    storage = { kind: deps.storage.kind, status: 'down', latencyMs: round(performance.now() - started), error: 'unreachable' };
    void err;
  }
  const count = deps.keys.publicJwks().keys.length;
  const keys: HealthReport['keys'] = { status: count > 0 ? 'up' : 'down', count };
  const ok = storage.status === 'up' && keys.status === 'up';
  return { status: ok ? 'ok' : 'degraded', storage, keys };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
