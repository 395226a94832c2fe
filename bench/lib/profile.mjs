/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per origin (our dist/ files,
 * each dependency, Node internals, GC/idle), so the hot spots of a server under one scenario can be read in a table.
 */
import { readFileSync } from 'node:fs';

/** Where a script lives: `gatehouse dist/…`, a package name, `node:…`, or a V8 pseudo-frame. */
export function originOf(url) {
  if (!url) return '(native/V8)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return 'gatehouse';
  if (url.includes('/bench/servers/')) return 'bench server';
  return url.replace(/^file:\/\//, '');
}

function shortUrl(url) {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/**
 * Self time (ms) by function and by origin; `total` is the profiled wall time. `lastMs`: only the profile's last
 * `lastMs` milliseconds (the run itself, without the start and setup before it).
 */
export function summarise(path, top = 25, { lastMs } = {}) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const from = lastMs === undefined ? -Infinity : profile.endTime - lastMs * 1000;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < from) continue;
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fns = new Map();
  const origins = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id);
    const ms = us / 1000;
    total += ms;
    if (callFrame.functionName === '(idle)') {
      idle += ms;
      continue;
    }
    const name = callFrame.functionName || '(anonymous)';
    const key = `${name} ${shortUrl(callFrame.url)}${callFrame.url ? `:${callFrame.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + ms);
    const origin = callFrame.url ? originOf(callFrame.url) : name.startsWith('(') ? name : '(native/V8)';
    origins.set(origin, (origins.get(origin) ?? 0) + ms);
  }
  const busy = total - idle;
  const sort = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total,
    idleMs: idle,
    busyMs: busy,
    functions: sort(fns)
      .slice(0, top)
      .map(([fn, ms]) => ({ fn, ms, pct: (100 * ms) / busy })),
    origins: sort(origins)
      .slice(0, 15)
      .map(([origin, ms]) => ({ origin, ms, pct: (100 * ms) / busy })),
  };
}

/** Markdown for one summary. */
export function profileMarkdown(title, s) {
  const lines = [
    `### ${title}`,
    '',
    `Profiled ${(s.totalMs / 1000).toFixed(1)} s, main thread busy ${(s.busyMs / 1000).toFixed(1)} s (${((100 * s.busyMs) / s.totalMs).toFixed(0)}%).`,
    '',
  ];
  lines.push('| self time by origin | ms | % of busy |', '|---|---:|---:|');
  for (const o of s.origins) lines.push(`| ${o.origin} | ${o.ms.toFixed(0)} | ${o.pct.toFixed(1)} |`);
  lines.push('', '| top self-time functions | ms | % of busy |', '|---|---:|---:|');
  for (const f of s.functions)
    lines.push(`| \`${f.fn.replace(/\|/g, '\\|')}\` | ${f.ms.toFixed(0)} | ${f.pct.toFixed(1)} |`);
  return lines.join('\n') + '\n';
}
