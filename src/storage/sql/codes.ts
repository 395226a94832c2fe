/** Authorization codes (table `authorization_codes`): read without spending, consumed exactly once. */
import type { AuthorizationCodeRecord, CodeLookupResult, ConsumeCodeResult } from '../../model/records.js';
import type { SqlContext } from './context.js';
import type { SqlRow } from './driver.js';
import { compact, optString, optStrings, strings } from './rows.js';

export async function saveAuthorizationCode(ctx: SqlContext, c: AuthorizationCodeRecord): Promise<void> {
  // DO NOTHING, not an upsert: re-saving must never reset `consumed`.
  await ctx.db.query(
    `INSERT INTO ${ctx.t.authorization_codes} (tenant, code_hash, grant_id, client_id, user_id, redirect_uri, scope,
       resource, code_challenge, nonce, auth_time, created_at, expires_at, redirect_uri_sent, amr, dpop_jkt)
     VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8::text[], $9, $10, $11, $12, $13, $14, $15::text[], $16)
     ON CONFLICT (tenant, code_hash) DO NOTHING`,
    [
      ctx.tenant,
      c.codeHash,
      c.grantId,
      c.clientId,
      c.userId,
      c.redirectUri,
      c.scope,
      c.resource,
      c.codeChallenge,
      c.nonce ?? null,
      c.authTime,
      c.createdAt,
      c.expiresAt,
      c.redirectUriSent,
      c.amr ?? null,
      c.dpopJkt ?? null,
    ],
  );
}

export async function getAuthorizationCode(ctx: SqlContext, codeHash: string): Promise<CodeLookupResult> {
  const { rows } = await ctx.db.query(
    `SELECT * FROM ${ctx.t.authorization_codes} WHERE tenant = $1 AND code_hash = $2 AND expires_at > $3`,
    [ctx.tenant, codeHash, ctx.clock.now()],
  );
  const r = rows[0];
  if (!r) return { status: 'not_found' };
  if (r.consumed === true) return { status: 'reused', grantId: String(r.grant_id), clientId: String(r.client_id) };
  return { status: 'live', code: toCode(r) };
}

export async function consumeAuthorizationCode(ctx: SqlContext, codeHash: string): Promise<ConsumeCodeResult> {
  const now = ctx.clock.now();
  // One statement. The conditional UPDATE is the race: concurrent updaters of the row queue on its lock, re-check
  // NOT consumed after the winner commits, and match nothing. The second branch reads the statement's snapshot,
  // which may predate that winner, so it is not asked whether the row is consumed: a live code this UPDATE did not
  // win was redeemed by someone else, now or before.
  const { rows } = await ctx.db.query(
    `WITH won AS (
       UPDATE ${ctx.t.authorization_codes} SET consumed = true
       WHERE tenant = $1 AND code_hash = $2 AND NOT consumed AND expires_at > $3 RETURNING *
     )
     SELECT true AS won, * FROM won
     UNION ALL
     SELECT false AS won, c.* FROM ${ctx.t.authorization_codes} c
     WHERE c.tenant = $1 AND c.code_hash = $2 AND c.expires_at > $3 AND NOT EXISTS (SELECT 1 FROM won)`,
    [ctx.tenant, codeHash, now],
  );
  const r = rows[0];
  if (!r) return { status: 'not_found' };
  if (r.won === true) return { status: 'consumed', code: toCode(r) };
  return { status: 'reused', grantId: String(r.grant_id), clientId: String(r.client_id) };
}

function toCode(r: SqlRow): AuthorizationCodeRecord {
  return compact({
    codeHash: String(r.code_hash),
    grantId: String(r.grant_id),
    clientId: String(r.client_id),
    userId: String(r.user_id),
    redirectUri: String(r.redirect_uri),
    redirectUriSent: r.redirect_uri_sent === true,
    scope: strings(r.scope),
    resource: strings(r.resource),
    codeChallenge: String(r.code_challenge),
    nonce: optString(r.nonce),
    authTime: Number(r.auth_time),
    amr: optStrings(r.amr),
    dpopJkt: optString(r.dpop_jkt),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
  });
}
