/**
 * PostgreSQL backend: a `pg.Pool` behind the {@link SqlExecutor} seam, so every query is the shared SqlStorage one.
 * Connection failures become StorageUnavailableError (HTTP 503); the pool drops broken connections and opens new
 * ones on the next call, so the store recovers by itself once the database is back.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { StorageUnavailableError } from '../../model/errors.js';
import type { StoreLogger, StoreOptions } from '../options.js';
import type { Storage } from '../../model/ports.js';
import { mapUnstorableValue, type SqlExecutor, type SqlQueryable, type SqlResult, type SqlRow } from './driver.js';
import { SqlStorage } from './sql-storage.js';

/** Default number of pooled connections per replica. */
export const DEFAULT_POOL_SIZE = 10;

/** Creates the PostgreSQL store for a `postgres://` / `postgresql://` URL; call `init()` before use. */
export function createPostgresStorage(url: string, options: StoreOptions): Storage {
  return new SqlStorage(new PgExecutor(url, options), 'postgres', options);
}

/** Node socket errors meaning "the server cannot be reached right now". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
]);

/** SQLSTATEs of a lost or refused connection: class 08, admin/crash shutdown, starting up, too many connections. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** pg-level messages (no code) for a connection that died, never opened, or a pool that was closed. */
const UNAVAILABLE_MESSAGE =
  /connection terminated|terminating connection|timeout exceeded when trying to connect|connection timeout|not queryable|client was closed|pool after calling end|socket hang up/i;

/** True when `err` says the database is unreachable, as opposed to a statement failing (constraints, syntax). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof StorageUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08')) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return false; // any other SQLSTATE is a statement error
  }
  // Node reports a refused dual-stack connect as an AggregateError of per-address errors.
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  return UNAVAILABLE_MESSAGE.test(err.message);
}

/**
 * Maps a libpq-style `sslmode` (and `sslrootcert`) from the URL to pg's `ssl` option, with libpq's meaning: `require`
 * encrypts without verifying (like verify-ca when a root cert is given), `verify-full` also checks the host name.
 * Returns the URL without those parameters, because pg would otherwise re-parse them and override ours.
 */
export function sslFromUrl(url: string): { connectionString: string; ssl: boolean | ConnectionOptions | undefined } {
  const parsed = new URL(url);
  const params = parsed.searchParams;
  const mode = params.get('sslmode');
  const rootCertPath = params.get('sslrootcert');
  for (const p of ['sslmode', 'sslrootcert', 'uselibpqcompat']) params.delete(p);
  const ca = rootCertPath ? readFileSync(rootCertPath, 'utf8') : undefined;
  const withCa = ca === undefined ? {} : { ca };
  const skipHostCheck = { checkServerIdentity: () => undefined };
  let ssl: boolean | ConnectionOptions | undefined;
  switch (mode) {
    case null:
      ssl = ca === undefined ? undefined : { ...withCa, rejectUnauthorized: true };
      break;
    case 'disable':
    case 'allow': // pg cannot fall back between plain and TLS; both of these start plain
    case 'prefer':
      ssl = false;
      break;
    case 'require':
      ssl =
        ca === undefined ? { rejectUnauthorized: false } : { ...withCa, rejectUnauthorized: true, ...skipHostCheck };
      break;
    case 'verify-ca':
      ssl = { ...withCa, rejectUnauthorized: true, ...skipHostCheck };
      break;
    case 'verify-full':
      ssl = { ...withCa, rejectUnauthorized: true };
      break;
    default:
      throw new TypeError(`unsupported sslmode "${mode}" (use disable, require, verify-ca or verify-full)`);
  }
  return { connectionString: parsed.toString(), ssl };
}

/** Tracks reachability so a flapping database logs one line per state change, not one per failed call. */
class Reachability {
  private up = true;
  constructor(private readonly logger: StoreLogger | undefined) {}
  failed(err: unknown): void {
    if (!this.up) return;
    this.up = false;
    this.logger?.error({ err }, 'postgres storage unreachable');
  }
  succeeded(): void {
    if (this.up) return;
    this.up = true;
    this.logger?.info({}, 'postgres storage reachable again');
  }
}

/** At most this many distinct statements get a name (SqlStorage has a few dozen; the rest run unnamed). */
const MAX_NAMED_STATEMENTS = 256;

/** "cached plan must not change result type": a table a named statement reads changed shape (a newer migration). */
function isStalePlan(err: unknown): boolean {
  return (
    (err as { code?: unknown }).code === '0A000' &&
    /cached plan must not change result type/i.test(String((err as Error).message))
  );
}

/**
 * {@link SqlExecutor} over a pg.Pool. Statements with parameters run as named prepared statements: each connection
 * parses and plans one once, then only binds and executes it (SqlStorage's statements are a fixed set of texts).
 * If a newer replica's migration changes a table a named statement returns, PostgreSQL refuses the stale plan once;
 * the executor then moves every statement to fresh names and runs the call (or transaction) again.
 */
class PgExecutor implements SqlExecutor {
  private readonly pool: pg.Pool;
  private readonly health: Reachability;
  private readonly names = new Map<string, string>();
  private generation = 0;

  private readonly prepared: boolean;

  constructor(url: string, options: StoreOptions) {
    this.prepared = options.sqlPreparedStatements ?? true;
    const { connectionString, ssl } = sslFromUrl(url);
    this.health = new Reachability(options.logger);
    this.pool = new pg.Pool({
      connectionString,
      ...(ssl === undefined ? {} : { ssl }),
      max: options.sqlPoolSize ?? DEFAULT_POOL_SIZE,
      // Fail a request within seconds (503) rather than queueing forever when the server is black-holed.
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'gatehouse', // a URL application_name overrides this
    });
    // Idle connections that die (server restart, pg_terminate_backend) are already dropped by the pool; without a
    // listener the 'error' event would crash the process.
    this.pool.on('error', (err) => this.health.failed(err));
  }

  async query<R = SqlRow>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.pool.query(this.config(text, params));
        this.health.succeeded();
        return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
      } catch (err) {
        if (attempt === 1 && isStalePlan(err)) {
          this.renameAll();
          continue;
        }
        throw this.mapError(err);
      }
    }
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    try {
      return await this.transactionOnce(fn);
    } catch (err) {
      if (!isStalePlan(err)) throw err;
      this.renameAll();
      return this.transactionOnce(fn);
    }
  }

  /** A named statement for parameterised texts (see the class comment); BEGIN, COMMIT and DDL stay unnamed. */
  private config(text: string, params: readonly unknown[] | undefined): pg.QueryConfig {
    const values = params as unknown[] | undefined;
    if (!values || values.length === 0) return { text };
    if (!this.prepared) return { text, values };
    let name = this.names.get(text);
    if (name === undefined) {
      if (this.names.size >= MAX_NAMED_STATEMENTS) return { text, values };
      name = `gh${this.generation}_${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`;
      this.names.set(text, name);
    }
    return { name, text, values };
  }

  /** Gives every statement a new name, so each connection parses and plans it afresh. */
  private renameAll(): void {
    this.generation++;
    this.names.clear();
  }

  private async transactionOnce<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.mapError(err);
    }
    // A checked-out client has no pool listener: catch a connection dying between statements here.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    const tx: SqlQueryable = {
      query: async <R = SqlRow>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> => {
        try {
          const res = await client.query(this.config(text, params));
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        } catch (err) {
          throw this.mapError(err);
        }
      },
    };
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      this.health.succeeded();
      client.removeListener('error', onError);
      client.release(broken);
      return result;
    } catch (err) {
      let destroy: Error | undefined = broken ?? (err instanceof StorageUnavailableError ? err : undefined);
      if (!destroy) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          destroy = rollbackErr as Error;
        }
      }
      client.removeListener('error', onError);
      client.release(destroy ?? broken); // an error destroys the connection instead of reusing it
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private mapError(err: unknown): unknown {
    if (err instanceof StorageUnavailableError) return err;
    if (!isConnectionError(err)) return mapUnstorableValue(err);
    this.health.failed(err);
    const reason = err instanceof Error ? err.message : String(err);
    return new StorageUnavailableError(`postgres unavailable: ${reason}`, { cause: err });
  }
}
