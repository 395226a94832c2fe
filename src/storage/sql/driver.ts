/** The driver seam of the SQL stores: what the SQL store's modules and migrations need of pg and PGlite. */
import { InvalidRequest } from '../../model/errors.js';

/** A row as the driver returns it. */
export type SqlRow = Record<string, unknown>;

/** Rows and affected-row count of one statement. */
export interface SqlResult<R = SqlRow> {
  rows: R[];
  rowCount: number;
}

/** Runs one parameterised statement: a pool, a single connection or an open transaction. */
export interface SqlQueryable {
  query<R = SqlRow>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>>;
}

/**
 * The driver seam pg and PGlite implement. Connection failures must surface as StorageUnavailableError; database
 * errors (constraints, deadlocks) keep their SQLSTATE `code`.
 */
export interface SqlExecutor extends SqlQueryable {
  /** Runs `fn` in BEGIN/COMMIT on one connection, rolling back if it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * SQLSTATEs of a value PostgreSQL cannot hold: a NUL byte in text (22021) or `\u0000` in jsonb (22P05). The request
 * carried it, so it is the client's error (400), never a server error. The HTTP edge refuses NUL bytes before they get
 * here; this is the backstop for any path it misses.
 */
const UNSTORABLE_VALUE_SQLSTATES = new Set(['22021', '22P05']);

/** Drivers pass every statement error through this: unstorable values become invalid_request, the rest stay. */
export function mapUnstorableValue(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !UNSTORABLE_VALUE_SQLSTATES.has(code)) return err;
  return new InvalidRequest('the request contains a character that is not allowed (U+0000)', { cause: err });
}
