/**
 * The SQL replay guard (ReplayGuard.firstUse), table `replay_guard` (migration 5). Kept apart from sql-storage.ts,
 * which delegates to it.
 */
import type { SqlQueryable } from './driver.js';

/**
 * One statement, one round trip, within `tenant`'s scope. A new key inserts; a key whose row has expired by the
 * caller's clock (`now`) is taken over; a live row wins the conflict and nothing is returned. Concurrent inserts of one
 * key queue on the primary key: the waiter re-checks the WHERE against the row the winner committed (READ COMMITTED),
 * whose expires_at is in the future, so exactly one caller gets a row back. The comparison uses the caller's injected
 * clock, never the database's now(), like every other expiry in these stores.
 */
export async function sqlFirstUse(
  db: SqlQueryable,
  table: string,
  tenant: string,
  key: string,
  expiresAt: number,
  now: number,
): Promise<boolean> {
  if (expiresAt <= now) return false;
  const { rowCount } = await db.query(
    `INSERT INTO ${table} AS r (tenant, key, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (tenant, key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE r.expires_at <= $4
     RETURNING 1`,
    [tenant, key, expiresAt, now],
  );
  return rowCount === 1;
}
