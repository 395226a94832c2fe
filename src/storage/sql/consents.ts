/** Remembered consents (table `consents`), one per (user, client). */
import type { ConsentRecord } from '../../model/records.js';
import type { SqlContext } from './context.js';
import { strings } from './rows.js';

export async function getConsent(
  ctx: SqlContext,
  userId: string,
  clientId: string,
): Promise<ConsentRecord | undefined> {
  const { rows } = await ctx.db.query(
    `SELECT * FROM ${ctx.t.consents} WHERE tenant = $1 AND user_id = $2 AND client_id = $3 AND expires_at > $4`,
    [ctx.tenant, userId, clientId, ctx.clock.now()],
  );
  const r = rows[0];
  return (
    r && {
      userId: String(r.user_id),
      clientId: String(r.client_id),
      scope: strings(r.scope),
      resource: strings(r.resource),
      createdAt: Number(r.created_at),
      expiresAt: Number(r.expires_at),
    }
  );
}

export async function saveConsent(ctx: SqlContext, c: ConsentRecord): Promise<void> {
  await ctx.db.query(
    `INSERT INTO ${ctx.t.consents} (tenant, user_id, client_id, scope, resource, created_at, expires_at)
     VALUES ($1, $2, $3, $4::text[], $5::text[], $6, $7)
     ON CONFLICT (tenant, user_id, client_id) DO UPDATE SET scope = EXCLUDED.scope, resource = EXCLUDED.resource,
       created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`,
    [ctx.tenant, c.userId, c.clientId, c.scope, c.resource, c.createdAt, c.expiresAt],
  );
}

export async function deleteConsent(ctx: SqlContext, userId: string, clientId: string): Promise<void> {
  await ctx.db.query(`DELETE FROM ${ctx.t.consents} WHERE tenant = $1 AND user_id = $2 AND client_id = $3`, [
    ctx.tenant,
    userId,
    clientId,
  ]);
}
