/**
 * Preloaded (`node --import`) into every server the bench starts: records garbage-collection pauses with a
 * perf_hooks PerformanceObserver ('gc' entries: the time the main thread spent in each collection) and, on
 * SIGUSR2, writes `[bench-gc] {"maxMs":…,"totalMs":…,"count":…}` on stderr for the pauses since the previous report,
 * then starts over. The bench asks right before a cell's measured window (discarding the answer) and right after it.
 */
import { PerformanceObserver } from 'node:perf_hooks';

let maxMs = 0;
let totalMs = 0;
let count = 0;
const record = (entries) => {
  for (const e of entries) {
    count++;
    totalMs += e.duration;
    if (e.duration > maxMs) maxMs = e.duration;
  }
};
const observer = new PerformanceObserver((list) => record(list.getEntries()));
observer.observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => {
  record(observer.takeRecords?.() ?? []);
  const out = { maxMs: Math.round(maxMs * 100) / 100, totalMs: Math.round(totalMs * 100) / 100, count };
  maxMs = 0;
  totalMs = 0;
  count = 0;
  process.stderr.write(`[bench-gc] ${JSON.stringify(out)}\n`);
});
