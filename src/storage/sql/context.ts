/**
 * What every feature module of the SQL store shares: the executor, the schema-qualified table names, the clock and
 * the transaction helpers. sql-storage.ts builds one per store and hands it to each feature function.
 */
import type { Clock } from '../../core/clock.js';
import { quoteIdent } from './migrations.js';
import type { SqlExecutor, SqlQueryable } from './driver.js';

const TABLES = [
  'clients',
  'users',
  'signing_keys',
  'secrets',
  'records',
  'authorization_codes',
  'grants',
  'refresh_tokens',
  'access_token_refs',
  'revoked_jtis',
  'consents',
  'rate_limits',
  'replay_guard',
] as const;
export type Table = (typeof TABLES)[number];

/** SQLSTATEs worth retrying a whole transaction for (serialization failure, deadlock). */
const RETRYABLE = new Set(['40001', '40P01']);

export interface SqlContext {
  readonly db: SqlExecutor;
  readonly clock: Clock;
  /** The unquoted schema name (advisory-lock keys, log lines). */
  readonly schema: string;
  /** Schema-qualified table names. */
  readonly t: Readonly<Record<Table, string>>;
  /** Schema-qualified functions (migration 3). */
  readonly fn: { readonly rotate: string };
  /** Runs one statement, retrying a few times on deadlock / serialization failure. */
  retrying<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs `fn` in a transaction, retrying a few times on deadlock / serialization failure. */
  tx<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
}

export function createSqlContext(db: SqlExecutor, schema: string, clock: Clock): SqlContext {
  // Names are schema-qualified rather than relying on search_path, which poolers such as PgBouncer do not keep.
  const s = quoteIdent(schema);
  const t = Object.fromEntries(TABLES.map((name) => [name, `${s}.${name}`])) as Record<Table, string>;
  const retrying = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (attempt >= 3 || typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
      }
    }
  };
  return {
    db,
    clock,
    schema,
    t,
    fn: { rotate: `${s}.gatehouse_rotate_refresh_token` },
    retrying,
    tx: (fn) => retrying(() => db.transaction(fn)),
  };
}
