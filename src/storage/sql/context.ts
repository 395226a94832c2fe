/**
 * What every feature module of the SQL store shares: the executor, the schema-qualified table names, the tenant the
 * store is scoped to, the clock and the transaction helpers. sql-storage.ts builds one per store (and one per tenant
 * view) and hands it to each feature function.
 */
import type { Clock } from '../../core/clock.js';
import { quoteIdent } from './migrations.js';
import type { SqlExecutor, SqlQueryable } from './driver.js';

/**
 * The tables holding a scope's data: each has a `tenant` column leading its primary key (migration 10), and every
 * query of the feature modules filters and writes it. Order: children before their grants, so deletes count them
 * (ON DELETE CASCADE would remove them silently).
 */
export const SCOPED_TABLES = [
  'clients',
  'users',
  'signing_keys',
  'secrets',
  'records',
  'authorization_codes',
  'refresh_tokens',
  'access_token_refs',
  'revoked_jtis',
  'consents',
  'grants',
  'rate_limits',
  'replay_guard',
] as const;
export type ScopedTable = (typeof SCOPED_TABLES)[number];
/** Every table: the scoped ones and the deployment's list of tenants (no tenant column of its own). */
export type Table = ScopedTable | 'tenants';

/** The tenant of the deployment's own (default) scope. */
export const DEFAULT_TENANT = '';

/** SQLSTATEs worth retrying a whole transaction for (serialization failure, deadlock). */
const RETRYABLE = new Set(['40001', '40P01']);

export interface SqlContext {
  readonly db: SqlExecutor;
  readonly clock: Clock;
  /** The unquoted schema name (advisory-lock keys, log lines). */
  readonly schema: string;
  /**
   * The scope every query reads and writes: DEFAULT_TENANT or a TENANT_ID. Always bound as a parameter, never spliced
   * into the text, so statement texts (and the prepared-statement names derived from them) are the same in every scope.
   */
  readonly tenant: string;
  /** Schema-qualified table names. */
  readonly t: Readonly<Record<Table, string>>;
  /** Schema-qualified functions (migrations 10 and 14). */
  readonly fn: { readonly rotate: string; readonly revoke: string };
  /** Runs one statement, retrying a few times on deadlock / serialization failure. */
  retrying<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs `fn` in a transaction, retrying a few times on deadlock / serialization failure. */
  tx<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
}

export function createSqlContext(db: SqlExecutor, schema: string, clock: Clock): SqlContext {
  // Names are schema-qualified rather than relying on search_path, which poolers such as PgBouncer do not keep.
  const s = quoteIdent(schema);
  const t = Object.fromEntries([...SCOPED_TABLES, 'tenants'].map((name) => [name, `${s}.${name}`])) as Record<
    Table,
    string
  >;
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
    tenant: DEFAULT_TENANT,
    t,
    fn: { rotate: `${s}.gatehouse_rotate_refresh_token`, revoke: `${s}.gatehouse_revoke_grant` },
    retrying,
    tx: (fn) => retrying(() => db.transaction(fn)),
  };
}

/** The same context (same executor) scoped to `tenant`. */
export function scopedContext(ctx: SqlContext, tenant: string): SqlContext {
  return { ...ctx, tenant };
}
