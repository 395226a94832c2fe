/**
 * Load generators. Single-request scenarios use autocannon (fixed request, N connections). Multi-step scenarios use
 * a closed loop of virtual users over undici: each user runs its iteration back to back until the time is up.
 * Both run a warm-up first and count only what completes inside the measured window.
 */
import autocannon from 'autocannon';

/** Percentile of an ascending-sorted array (nearest rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** What `iterate` returns when its supply (pre-minted tokens, pre-signed assertions) is used up: that user stops. */
export const DONE = Symbol('done');

/**
 * Runs `iterate(vu)` for every virtual user back to back: `warmupMs` unmeasured, then `durationMs` measured.
 * `iterate` may return a number: the latency (ms) to record instead of the iteration's own duration, or DONE: this
 * user stops. When every user has stopped before the end, the measured window ends when the last one stopped (the
 * run is marked `exhausted`), so the rate stays ops ÷ the time they took. A failed iteration is counted and, when
 * `recover` is given, the user is reset by it before going on. `onMeasured` is called when the measured window
 * starts, `onWindowEnd` when it ends (or when the last user stopped, if earlier).
 */
export async function runLoop({ vus, iterate, recover, durationMs, warmupMs, onMeasured, onWindowEnd }) {
  const start = performance.now();
  const from = start + warmupMs;
  const end = from + durationMs;
  const mark = onMeasured ? setTimeout(onMeasured, warmupMs) : undefined;
  let ended = false;
  const endWindow = () => {
    if (ended) return;
    ended = true;
    onWindowEnd?.();
  };
  const endMark = onWindowEnd ? setTimeout(endWindow, warmupMs + durationMs) : undefined;
  let exhausted = false;
  const latencies = [];
  let ops = 0;
  let errors = 0;
  let firstError;
  await Promise.all(
    vus.map(async (vu) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          const custom = await iterate(vu);
          if (custom === DONE) {
            exhausted = true;
            return;
          }
          const t1 = performance.now();
          if (t1 >= from && t1 <= end) {
            ops++;
            latencies.push(typeof custom === 'number' ? custom : t1 - t0);
          }
        } catch (err) {
          errors++;
          firstError ??= err;
          if (recover) {
            try {
              await recover(vu);
            } catch (e) {
              firstError ??= e;
              return; // this user is gone; the others go on
            }
          }
          if (errors > 1000) return;
        }
      }
    }),
  );
  clearTimeout(mark);
  clearTimeout(endMark);
  const stoppedAt = performance.now();
  if (onWindowEnd && stoppedAt >= from) endWindow();
  const windowMs = exhausted ? Math.min(end, stoppedAt) - from : durationMs;
  if (exhausted && windowMs <= 0) firstError ??= new Error('supply used up during the warm-up');
  latencies.sort((a, b) => a - b);
  return {
    rate: windowMs > 0 ? ops / (windowMs / 1000) : 0,
    ops,
    ...(exhausted && stoppedAt < end && { exhausted: true, windowMs }),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
    error: firstError ? String(firstError.message ?? firstError).slice(0, 300) : undefined,
  };
}

/**
 * One autocannon run of a fixed POST; non-2xx answers count as errors. `onMeasured` and `onWindowEnd` are called
 * right before and right after the measured run. With `paths`, each connection cycles
 * through those paths (same method, headers and body; autocannon builds every request once, up front), connection
 * k starting k/connections of the way through the list, so that concurrent requests are spread over it rather than
 * moving through it together.
 */
export async function runCannon({
  url,
  headers,
  body,
  paths,
  connections,
  durationMs,
  warmupMs,
  onMeasured,
  onWindowEnd,
}) {
  const opts = {
    url,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
    ...(paths && { requests: paths.map((path) => ({ path })), setupClient: staggered(paths, connections) }),
    connections,
    pipelining: 1,
    duration: durationMs / 1000,
    timeout: 10,
    sampleInt: 100, // autocannon stops on a sample tick: the default 1 s tick would round every run up to whole seconds
  };
  if (warmupMs > 0)
    await autocannon({ ...opts, duration: warmupMs / 1000, setupClient: paths && staggered(paths, connections) });
  onMeasured?.();
  const t0 = performance.now();
  const result = await autocannon(opts);
  onWindowEnd?.();
  const elapsed = (performance.now() - t0) / 1000;
  const ok = result['2xx'];
  const errors = result.non2xx + result.errors + result.timeouts;
  return {
    rate: ok / Math.max(elapsed, durationMs / 1000),
    ops: ok,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors,
    error: errors ? `${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts` : undefined,
  };
}

/** autocannon setupClient: the n-th connection set up gets `paths` rotated by n/connections of their length. */
function staggered(paths, connections) {
  let n = 0;
  return (client) => {
    const from = Math.floor(((n++ % connections) * paths.length) / connections);
    client.setRequests([...paths.slice(from), ...paths.slice(0, from)].map((path) => ({ path })));
  };
}
