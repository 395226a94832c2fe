/**
 * Signing keys (table `signing_keys`) and named secrets (`secrets`), each tenant with its own. Key-set changes run
 * under an advisory lock per schema and tenant, so replicas starting or rotating together end up with one key set.
 */
import type { SigningKeyRecord } from '../../model/records.js';
import type { SqlContext } from './context.js';
import type { SqlQueryable, SqlRow } from './driver.js';
import { lockKey } from './migrations.js';
import { compact, optNumber } from './rows.js';

export async function listSigningKeys(ctx: SqlContext): Promise<SigningKeyRecord[]> {
  return selectKeys(ctx, ctx.db);
}

export async function initSigningKeys(ctx: SqlContext, initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
  return ctx.tx(async (tx) => {
    // The lock makes "check then insert" one step across replicas, so they all end up with the same key set.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey('keys', ctx.schema, ctx.tenant)]);
    const { rows } = await tx.query(
      `SELECT 1 FROM ${ctx.t.signing_keys} WHERE tenant = $1 AND status = 'active' LIMIT 1`,
      [ctx.tenant],
    );
    if (rows.length === 0) for (const key of initial) await insertKey(ctx, tx, key, true);
    return selectKeys(ctx, tx);
  });
}

export async function rotateSigningKey(ctx: SqlContext, key: SigningKeyRecord, retireUntil: number): Promise<void> {
  await ctx.tx(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey('keys', ctx.schema, ctx.tenant)]);
    await tx.query(
      `UPDATE ${ctx.t.signing_keys} SET status = 'retired', expires_at = $4
       WHERE tenant = $1 AND status = 'active' AND alg = $2 AND kid <> $3`,
      [ctx.tenant, key.alg, key.kid, retireUntil],
    );
    await insertKey(ctx, tx, { ...key, status: 'active', expiresAt: undefined }, false);
  });
}

export async function getOrCreateSecret(ctx: SqlContext, name: string, candidate: string): Promise<string> {
  // Two statements on purpose: after losing the insert race, the SELECT takes a fresh snapshot that sees the winner.
  await ctx.db.query(
    `INSERT INTO ${ctx.t.secrets} (tenant, name, value, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant, name) DO NOTHING`,
    [ctx.tenant, name, candidate, ctx.clock.now()],
  );
  const { rows } = await ctx.db.query<{ value: string }>(
    `SELECT value FROM ${ctx.t.secrets} WHERE tenant = $1 AND name = $2`,
    [ctx.tenant, name],
  );
  if (!rows[0]) throw new Error(`secret ${name} vanished after insert`);
  return rows[0].value;
}

async function insertKey(ctx: SqlContext, tx: SqlQueryable, k: SigningKeyRecord, keepExisting: boolean): Promise<void> {
  await tx.query(
    `INSERT INTO ${ctx.t.signing_keys} (tenant, kid, alg, private_jwk, public_jwk, status, created_at, expires_at)
     VALUES ($1, $2, $3, $4::text::jsonb, $5::text::jsonb, $6, $7, $8)
     ON CONFLICT (tenant, kid) DO ${
       keepExisting
         ? 'NOTHING'
         : `UPDATE SET alg = EXCLUDED.alg, private_jwk = EXCLUDED.private_jwk, public_jwk = EXCLUDED.public_jwk,
            status = EXCLUDED.status, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`
     }`,
    [
      ctx.tenant,
      k.kid,
      k.alg,
      JSON.stringify(k.privateJwk),
      JSON.stringify(k.publicJwk),
      k.status,
      k.createdAt,
      k.expiresAt ?? null,
    ],
  );
}

async function selectKeys(ctx: SqlContext, q: SqlQueryable): Promise<SigningKeyRecord[]> {
  const { rows } = await q.query(
    `SELECT * FROM ${ctx.t.signing_keys}
     WHERE tenant = $1 AND (status = 'active' OR expires_at IS NULL OR expires_at > $2)
     ORDER BY created_at DESC, kid DESC`,
    [ctx.tenant, ctx.clock.now()],
  );
  return rows.map(toKey);
}

function toKey(r: SqlRow): SigningKeyRecord {
  return compact({
    kid: String(r.kid),
    alg: String(r.alg) as SigningKeyRecord['alg'],
    privateJwk: r.private_jwk as Record<string, unknown>,
    publicJwk: r.public_jwk as Record<string, unknown>,
    createdAt: Number(r.created_at),
    status: String(r.status) as SigningKeyRecord['status'],
    expiresAt: optNumber(r.expires_at),
  });
}
