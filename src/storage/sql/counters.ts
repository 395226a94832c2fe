/** Fixed-window rate-limit counters (table `rate_limits`), shared by every replica on the database. */
import { rateLimitWindowEnd } from '../../model/ports.js';
import type { SqlContext } from './context.js';

export async function hitRateLimit(ctx: SqlContext, key: string, windowMs: number, now: number): Promise<number> {
  const expiresAt = rateLimitWindowEnd(now, windowMs);
  // One statement, one round trip: concurrent upserts of a key queue on its row lock, and each re-reads the row the
  // previous one committed, so n racing hits return 1..n. An expired row starts over in the current window.
  const { rows } = await ctx.db.query<{ count: unknown }>(
    `INSERT INTO ${ctx.t.rate_limits} AS r (tenant, key, count, expires_at) VALUES ($1, $2, 1, $4)
     ON CONFLICT (tenant, key) DO UPDATE SET
       count = CASE WHEN r.expires_at > $3 THEN r.count + 1 ELSE 1 END,
       expires_at = CASE WHEN r.expires_at > $3 THEN r.expires_at ELSE EXCLUDED.expires_at END
     RETURNING count`,
    [ctx.tenant, key, now, expiresAt],
  );
  return Number(rows[0]?.count);
}

export async function peekRateLimit(ctx: SqlContext, key: string, now: number): Promise<number> {
  const { rows } = await ctx.db.query<{ count: unknown }>(
    `SELECT count FROM ${ctx.t.rate_limits} WHERE tenant = $1 AND key = $2 AND expires_at > $3`,
    [ctx.tenant, key, now],
  );
  return rows[0] ? Number(rows[0].count) : 0;
}

export async function resetRateLimit(ctx: SqlContext, key: string): Promise<void> {
  await ctx.db.query(`DELETE FROM ${ctx.t.rate_limits} WHERE tenant = $1 AND key = $2`, [ctx.tenant, key]);
}
