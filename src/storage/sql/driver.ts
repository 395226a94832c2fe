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

/** The first words of a statement, for round-trip messages (never its parameters). */
function statementLabel(text: string): string {
  return text.trim().split(/\s+/).slice(0, 4).join(' ');
}

/**
 * `db` with every statement reported to `onRoundTrip` (StoreOptions.onRoundTrip): this is the SQL store's single
 * entry point to the database, so each call here is one round trip; a transaction adds its BEGIN and COMMIT.
 */
export function countingExecutor(db: SqlExecutor, onRoundTrip: (what: string) => void): SqlExecutor {
  return {
    query<R = SqlRow>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
      onRoundTrip(statementLabel(text));
      return db.query<R>(text, params);
    },
    transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      onRoundTrip('BEGIN');
      return db
        .transaction((tx) =>
          fn({
            query<R = SqlRow>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
              onRoundTrip(statementLabel(text));
              return tx.query<R>(text, params);
            },
          }),
        )
        .finally(() => onRoundTrip('COMMIT'));
    },
    close: () => db.close(),
  };
}
