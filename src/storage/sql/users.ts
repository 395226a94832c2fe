/** Users (table `users`), and deleteUser's cascade over the user's grants, consents and records. */
import type { UserRecord } from '../../model/records.js';
import { userOwner } from '../../model/record-kinds.js';
import type { SqlContext } from './context.js';
import type { SqlRow } from './driver.js';
import { dropGrantTokens } from './grants.js';
import { compact, jsonObject, optString } from './rows.js';

export async function getUser(ctx: SqlContext, id: string): Promise<UserRecord | undefined> {
  const { rows } = await ctx.db.query(`SELECT * FROM ${ctx.t.users} WHERE tenant = $1 AND id = $2`, [ctx.tenant, id]);
  return rows[0] && toUser(rows[0]);
}

export async function getUserByUsername(ctx: SqlContext, username: string): Promise<UserRecord | undefined> {
  const { rows } = await ctx.db.query(`SELECT * FROM ${ctx.t.users} WHERE tenant = $1 AND username = $2`, [
    ctx.tenant,
    username,
  ]);
  return rows[0] && toUser(rows[0]);
}

export async function saveUser(ctx: SqlContext, u: UserRecord): Promise<void> {
  // A username taken by another id of the tenant fails on the UNIQUE constraint (23505), as the contract requires.
  await ctx.db.query(
    `INSERT INTO ${ctx.t.users} (tenant, id, username, password_hash, email, email_verified, name, created_at,
       updated_at, mfa_required, second_factors, disabled)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)
     ON CONFLICT (tenant, id) DO UPDATE SET username = EXCLUDED.username, password_hash = EXCLUDED.password_hash,
       email = EXCLUDED.email, email_verified = EXCLUDED.email_verified, name = EXCLUDED.name,
       created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, mfa_required = EXCLUDED.mfa_required,
       second_factors = EXCLUDED.second_factors, disabled = EXCLUDED.disabled`,
    [
      ctx.tenant,
      u.id,
      u.username,
      u.passwordHash,
      u.email ?? null,
      u.emailVerified ?? null,
      u.name ?? null,
      u.createdAt,
      u.updatedAt,
      u.mfaRequired ?? null,
      JSON.stringify(compact({ totp: u.totp, passkeys: u.passkeys, recoveryCodes: u.recoveryCodes, admin: u.admin })),
      u.disabled ?? null,
    ],
  );
}

export async function deleteUser(ctx: SqlContext, id: string): Promise<boolean> {
  const clockNow = ctx.clock.now();
  // One transaction: the user's grants revoked (as revokeGrant), consents and sessions gone, then the user row.
  const { tenant } = ctx;
  return ctx.tx(async (tx) => {
    const { rows } = await tx.query<{ id: string }>(
      `UPDATE ${ctx.t.grants} SET revoked_at = $3
       WHERE tenant = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 RETURNING id`,
      [tenant, id, clockNow],
    );
    const ids = rows.map((r) => r.id);
    if (ids.length > 0) await dropGrantTokens(ctx, tx, ids, clockNow);
    await tx.query(`DELETE FROM ${ctx.t.consents} WHERE tenant = $1 AND user_id = $2`, [tenant, id]);
    await tx.query(`DELETE FROM ${ctx.t.records} WHERE tenant = $1 AND owner = $2`, [tenant, userOwner(id)]);
    const deleted = await tx.query(`DELETE FROM ${ctx.t.users} WHERE tenant = $1 AND id = $2`, [tenant, id]);
    return deleted.rowCount > 0;
  });
}

export async function listUsers(ctx: SqlContext): Promise<UserRecord[]> {
  const { rows } = await ctx.db.query(`SELECT * FROM ${ctx.t.users} WHERE tenant = $1 ORDER BY created_at, id`, [
    ctx.tenant,
  ]);
  return rows.map(toUser);
}

export function toUser(r: SqlRow): UserRecord {
  // second_factors holds the user's optional JSON extras: the factors, and the admin mark (no column of its own).
  const factors = jsonObject(r.second_factors ?? {}) as Pick<
    UserRecord,
    'totp' | 'passkeys' | 'recoveryCodes' | 'admin'
  >;
  return compact({
    id: String(r.id),
    username: String(r.username),
    passwordHash: String(r.password_hash),
    email: optString(r.email),
    emailVerified: r.email_verified === null || r.email_verified === undefined ? undefined : Boolean(r.email_verified),
    name: optString(r.name),
    mfaRequired: r.mfa_required === null || r.mfa_required === undefined ? undefined : Boolean(r.mfa_required),
    disabled: r.disabled === null || r.disabled === undefined ? undefined : Boolean(r.disabled),
    totp: factors.totp,
    passkeys: factors.passkeys,
    recoveryCodes: factors.recoveryCodes,
    admin: factors.admin === true ? true : undefined,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  });
}
