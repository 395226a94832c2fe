/** Clients (table `clients`), and deleteClient's cascade over the client's grants, consents, codes and records. */
import type { ClientRecord } from '../../model/records.js';
import { clientOwner } from '../../model/record-kinds.js';
import type { SqlContext } from './context.js';
import type { SqlRow } from './driver.js';
import { compact, optString, strings } from './rows.js';

/** Client fields kept in the `metadata` jsonb column: RFC 7591 metadata by its name, and the sealed secret. */
const CLIENT_METADATA = {
  clientName: 'client_name',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  clientUri: 'client_uri',
  logoUri: 'logo_uri',
  contacts: 'contacts',
  tosUri: 'tos_uri',
  policyUri: 'policy_uri',
  softwareId: 'software_id',
  softwareVersion: 'software_version',
  jwks: 'jwks',
  jwksUri: 'jwks_uri',
  requirePushedAuthorizationRequests: 'require_pushed_authorization_requests',
  dpopBoundAccessTokens: 'dpop_bound_access_tokens',
  clientSecretSealed: 'client_secret_sealed',
} as const satisfies Partial<Record<keyof ClientRecord, string>>;
/** Key in `metadata` marking a client without a scope allow-list (ClientRecord.scope absent, not []). */
const SCOPE_UNSET = 'scope_unset';

export async function getClient(ctx: SqlContext, clientId: string): Promise<ClientRecord | undefined> {
  const { rows } = await ctx.db.query(`SELECT * FROM ${ctx.t.clients} WHERE tenant = $1 AND client_id = $2`, [
    ctx.tenant,
    clientId,
  ]);
  return rows[0] && toClient(rows[0]);
}

export async function saveClient(ctx: SqlContext, client: ClientRecord): Promise<void> {
  const metadata: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(CLIENT_METADATA)) {
    const value = client[key as keyof typeof CLIENT_METADATA];
    if (value !== undefined) metadata[column] = value;
  }
  // The scope column is NOT NULL (schema v1): "no allow-list" is kept as a marker beside it, so it never reads back as [].
  if (client.scope === undefined) metadata[SCOPE_UNSET] = true;
  await ctx.db.query(
    `INSERT INTO ${ctx.t.clients} (tenant, client_id, client_secret_hash, registration_access_token_hash,
       redirect_uris, grant_types, response_types, scope, token_endpoint_auth_method, application_type, source,
       metadata, client_secret_expires_at, created_at, updated_at, name_key)
     VALUES ($1, $2, $3, $4, $5::text[], $6::text[], $7::text[], $8::text[], $9, $10, $11, $12::text::jsonb, $13, $14,
       $15, $16)
     ON CONFLICT (tenant, client_id) DO UPDATE SET
       client_secret_hash = EXCLUDED.client_secret_hash,
       registration_access_token_hash = EXCLUDED.registration_access_token_hash,
       redirect_uris = EXCLUDED.redirect_uris, grant_types = EXCLUDED.grant_types,
       response_types = EXCLUDED.response_types, scope = EXCLUDED.scope,
       token_endpoint_auth_method = EXCLUDED.token_endpoint_auth_method,
       application_type = EXCLUDED.application_type, source = EXCLUDED.source, metadata = EXCLUDED.metadata,
       client_secret_expires_at = EXCLUDED.client_secret_expires_at,
       created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, name_key = EXCLUDED.name_key`,
    [
      ctx.tenant,
      client.clientId,
      client.clientSecretHash ?? null,
      client.registrationAccessTokenHash ?? null,
      client.redirectUris,
      client.grantTypes,
      client.responseTypes,
      client.scope ?? [],
      client.tokenEndpointAuthMethod,
      client.applicationType,
      client.source,
      JSON.stringify(metadata),
      client.clientSecretExpiresAt,
      client.createdAt,
      client.updatedAt,
      client.clientName?.toLowerCase() ?? null,
    ],
  );
}

/** One transaction: the client row, its grants (after their access-token ids are revoked), consents, codes, records. */
export async function deleteClient(ctx: SqlContext, clientId: string): Promise<boolean> {
  const now = ctx.clock.now();
  return ctx.tx(async (tx) => {
    const { tenant } = ctx;
    const deleted = await tx.query(`DELETE FROM ${ctx.t.clients} WHERE tenant = $1 AND client_id = $2`, [
      tenant,
      clientId,
    ]);
    // Access tokens are self-contained JWTs: revoke their ids before their grants (and refs) disappear.
    await tx.query(
      `INSERT INTO ${ctx.t.revoked_jtis} (tenant, jti, expires_at)
       SELECT $1::text, a.jti, max(a.expires_at) FROM ${ctx.t.access_token_refs} a
       JOIN ${ctx.t.grants} g ON g.tenant = a.tenant AND g.id = a.grant_id
       WHERE g.tenant = $1 AND g.client_id = $2 AND a.expires_at > $3 GROUP BY a.jti
       ON CONFLICT (tenant, jti) DO UPDATE
         SET expires_at = GREATEST(${ctx.t.revoked_jtis}.expires_at, EXCLUDED.expires_at)`,
      [tenant, clientId, now],
    );
    // Their refresh tokens and access-token refs go with them (ON DELETE CASCADE on (tenant, grant_id)).
    await tx.query(`DELETE FROM ${ctx.t.grants} WHERE tenant = $1 AND client_id = $2`, [tenant, clientId]);
    await tx.query(`DELETE FROM ${ctx.t.consents} WHERE tenant = $1 AND client_id = $2`, [tenant, clientId]);
    await tx.query(`DELETE FROM ${ctx.t.authorization_codes} WHERE tenant = $1 AND client_id = $2`, [tenant, clientId]);
    await tx.query(`DELETE FROM ${ctx.t.records} WHERE tenant = $1 AND owner = $2`, [tenant, clientOwner(clientId)]);
    return deleted.rowCount > 0;
  });
}

export async function countClients(ctx: SqlContext): Promise<number> {
  const { rows } = await ctx.db.query<{ count: unknown }>(
    `SELECT count(*) AS count FROM ${ctx.t.clients} WHERE tenant = $1`,
    [ctx.tenant],
  );
  return Number(rows[0]?.count ?? 0);
}

export async function listClients(ctx: SqlContext): Promise<ClientRecord[]> {
  const { rows } = await ctx.db.query(
    `SELECT * FROM ${ctx.t.clients} WHERE tenant = $1 ORDER BY created_at, client_id`,
    [ctx.tenant],
  );
  return rows.map(toClient);
}

export function toClient(r: SqlRow): ClientRecord {
  const meta = (r.metadata ?? {}) as Record<string, unknown>;
  const client: ClientRecord = {
    clientId: String(r.client_id),
    clientSecretHash: optString(r.client_secret_hash),
    registrationAccessTokenHash: optString(r.registration_access_token_hash),
    redirectUris: strings(r.redirect_uris),
    grantTypes: strings(r.grant_types),
    responseTypes: strings(r.response_types),
    scope: meta[SCOPE_UNSET] === true ? undefined : strings(r.scope),
    tokenEndpointAuthMethod: String(r.token_endpoint_auth_method) as ClientRecord['tokenEndpointAuthMethod'],
    applicationType: String(r.application_type) as ClientRecord['applicationType'],
    source: String(r.source) as ClientRecord['source'],
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    clientSecretExpiresAt: Number(r.client_secret_expires_at),
  };
  for (const [key, column] of Object.entries(CLIENT_METADATA)) {
    if (meta[column] !== undefined) (client as unknown as Record<string, unknown>)[key] = meta[column];
  }
  return compact(client);
}
