/** The driver seam of the SQL stores: what sql-storage.ts, its migrations and its helpers need of pg and PGlite. */

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
