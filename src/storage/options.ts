import type { Clock } from '../core/clock.js';

/** Minimal logger shape stores use (pino satisfies it). */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options every backend accepts. */
export interface StoreOptions {
  clock: Clock;
  logger?: StoreLogger;
  /** Redis: key prefix (default `gatehouse:`). */
  redisKeyPrefix?: string;
  /** Redis Sentinel: `{ sentinels: [{host, port}], name }`; Redis Cluster: `{ nodes: [{host, port}] }`. */
  redisSentinel?: { sentinels: { host: string; port: number }[]; name: string };
  redisCluster?: { nodes: { host: string; port: number }[] };
  /** SQL: schema to use (default `public`), so tests and tenants can share a database. */
  sqlSchema?: string;
  /** SQL: pool size for PostgreSQL. */
  sqlPoolSize?: number;
  /** SQL: use named prepared statements (default true); turn off behind PgBouncer < 1.21 in transaction mode. */
  sqlPreparedStatements?: boolean;
  /** Memory: the most records any single map may hold (default 100000; config `memory.maxEntries`). */
  maxEntries?: number;
  /** How often the periodic cleanup of expired rows runs, ms (SQL, memory). 0 disables it. */
  cleanupIntervalMs?: number;
  /**
   * Called once per round trip to the database (tests, diagnostics): SQL, once per statement, BEGIN and COMMIT
   * included; Redis, once per command sent on its own, once per pipeline or MULTI, once per script call. `what` names
   * it (the statement's first words, the command name) for messages.
   */
  onRoundTrip?: (what: string) => void;
}
