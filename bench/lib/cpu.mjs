/**
 * CPU time per operation, per measured window: a snapshot at the window's start and one at its end (the moments the
 * bench already asks the server for its GC figures), nothing in between. Each snapshot reads, from /proc:
 * - the server under test: every thread's time on CPU (`/proc/<pid>/task/<tid>/schedstat`, first field, ns), the
 *   main thread (tid = pid) apart from the others (libuv threadpool: signing, verifying, hashing; V8's helpers);
 * - every process whose `comm` is `postgres` (postmaster, backends, background workers) or `redis-server`, all
 *   threads: they serve the bench during a run, but anything else on the machine using them is counted too;
 * - the machine's idle time, overall and per core (`/proc/stat`, clock ticks), to tell whether the server's core
 *   was saturated;
 * and the bench process's own CPU (`process.cpuUsage()`, all threads: the load generator).
 * Where schedstat is missing, a thread's utime + stime (`stat` fields 14 and 15, clock ticks) stand in for it.
 * Without /proc (not Linux), snapshots are undefined and the run has no `cpu`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const HAS_PROC = existsSync('/proc/self/stat');
const HAS_SCHEDSTAT = existsSync('/proc/self/schedstat');
/** USER_HZ: `getconf CLK_TCK` is 100 on every Linux the bench runs on (the kernel's ABI value for /proc). */
const TICK_NS = 1e9 / 100;
const DB_COMMS = new Set(['postgres', 'redis-server']);

/** One thread's time on CPU in ns, or undefined when it is gone. */
function threadNs(pid, tid) {
  try {
    if (HAS_SCHEDSTAT) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
      return Number(text.slice(0, text.indexOf(' ')));
    }
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the parenthesised comm (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_NS;
  } catch {
    return undefined;
  }
}

/** A process's CPU in ns: all its live threads, and its main thread alone; undefined when it is gone. */
function processNs(pid) {
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let total = 0;
  let main = 0;
  for (const tid of tids) {
    const ns = threadNs(pid, tid) ?? 0;
    total += ns;
    if (tid === String(pid)) main = ns;
  }
  return { total, main };
}

/** The pids of the database processes, by comm: `{ pid: comm }`. */
function databasePids() {
  const out = {};
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (DB_COMMS.has(comm)) out[entry] = comm;
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** `/proc/stat`'s cpu lines: `{ cpu: [busy, idle], cpu0: …, … }` in ticks (idle includes iowait). */
function cpuLines() {
  const out = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!line.startsWith('cpu')) break;
    const [name, ...ticks] = line.split(/\s+/);
    const v = ticks.slice(0, 8).map(Number); // user nice system idle iowait irq softirq steal
    const idle = v[3] + v[4];
    out[name] = [v.reduce((a, b) => a + b, 0) - idle, idle];
  }
  return out;
}

/** A snapshot for the server `pid` (a number) at this moment; undefined without /proc. */
export function cpuSnapshot(pid) {
  if (!HAS_PROC || !pid) return undefined;
  const dbPids = databasePids();
  const db = {};
  for (const [p, comm] of Object.entries(dbPids)) {
    const ns = processNs(p);
    if (ns) db[p] = { comm, ns: ns.total };
  }
  return {
    at: performance.now(),
    server: processNs(pid),
    loadgen: process.cpuUsage(),
    db,
    stat: cpuLines(),
  };
}

const round = (x, digits = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : undefined);

/**
 * CPU µs per operation between two snapshots, for a window whose operations ran at `rate` per second: each figure is
 * (CPU time ÷ wall time between the snapshots) ÷ rate, so a timer firing a little late does not skew it. Also the
 * server's CPU as a share of one core, and the idle share of the machine and of each core (0–1). A database process
 * that started during the window counts from its start (its whole CPU time); one that exited is not counted.
 */
export function cpuPerOperation(start, end, rate) {
  if (!start?.server || !end?.server || !(rate > 0)) return undefined;
  const wallS = (end.at - start.at) / 1000;
  if (!(wallS > 0)) return undefined;
  const perOp = (ns) => round(ns / 1000 / wallS / rate);
  const db = { postgres: 0, 'redis-server': 0 };
  const late = databasePids(); // processes born during the window (after the end readings: outside it)
  for (const [p, comm] of Object.entries(late)) {
    if (end.db[p] || start.db[p]) continue;
    const ns = processNs(p);
    if (ns) end.db[p] = { comm, ns: ns.total, born: true };
  }
  for (const [p, e] of Object.entries(end.db)) {
    const s = start.db[p];
    if (s && s.comm !== e.comm) continue; // pid reused
    db[e.comm] += Math.max(0, e.ns - (s?.ns ?? 0));
  }
  const serverNs = Math.max(0, end.server.total - start.server.total);
  const mainNs = Math.max(0, end.server.main - start.server.main);
  const loadgenNs =
    (end.loadgen.user + end.loadgen.system - start.loadgen.user - start.loadgen.system) * 1000; /* µs → ns */
  const idle = {};
  for (const [name, [busy1, idle1]] of Object.entries(end.stat)) {
    const [busy0, idle0] = start.stat[name] ?? [0, 0];
    const total = busy1 - busy0 + (idle1 - idle0);
    idle[name === 'cpu' ? 'machine' : name.replace('cpu', 'core')] =
      total > 0 ? round((idle1 - idle0) / total, 3) : undefined;
  }
  return {
    serverUs: perOp(serverNs),
    serverMainUs: perOp(mainNs),
    serverOtherUs: perOp(serverNs - mainNs),
    loadgenUs: perOp(loadgenNs),
    postgresUs: perOp(db.postgres),
    redisUs: perOp(db['redis-server']),
    // The server's CPU ÷ wall time: 1 = one core busy all the window.
    serverCores: round(serverNs / 1e9 / wallS, 3),
    idle,
    windowMs: round(wallS * 1000, 0),
  };
}
