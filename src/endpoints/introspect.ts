/**
 * Introspection endpoint, RFC 7662. Only authenticated confidential clients may call it (§2.1), and an access token is
 * only described to a resource server named in `introspection.allowedClients` or to a client named in the token's
 * audience (§4: otherwise any client, even one registered a second ago, could read anybody's token). Revoked,
 * expired, unknown or not-yours tokens answer `{"active": false}` and nothing more (§2.2).
 */
import { hashToken } from '../core/crypto.js';
import { InvalidClient, InvalidRequest } from '../model/errors.js';
import { audienceOf, verifyOwnAccessToken, type AccessTokenPayload } from '../core/access-token.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { formatScope } from '../core/scope.js';
import { clientAuthMethods, requireClient, type ClientAuthDeps, type RequestLimitDeps } from './client-request.js';
import { limitRequest } from '../core/rate-limit.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { GrantStore, RevocationStore } from '../model/ports.js';

/** What introspection uses: client authentication, access-token verification, and reads only. */
export type IntrospectDeps = ClientAuthDeps &
  RequestLimitDeps &
  Pick<Deps, 'keys' | 'config' | 'clock'> & {
    storage: Pick<GrantStore, 'getRefreshToken'> & Pick<RevocationStore, 'isAccessTokenRevoked'>;
  };

export const introspectDeclaration = {
  path: '/introspect',
  cors: true,
  metadata: (url, config) => ({
    introspection_endpoint: url,
    // Only confidential clients may introspect (§2.1).
    introspection_endpoint_auth_methods_supported: clientAuthMethods(config).filter((m) => m !== 'none'),
  }),
} satisfies EndpointDeclaration;

export type IntrospectionResponse = { active: false } | ({ active: true } & Record<string, unknown>);

const INACTIVE: IntrospectionResponse = { active: false };

export async function introspectEndpoint(
  raw: RawParams,
  authorization: string | undefined,
  deps: IntrospectDeps,
  context?: AuditRequestContext,
): Promise<IntrospectionResponse> {
  const params = collapseParams(raw);
  const client = await requireClient(params, authorization, deps);
  // Counted once authenticated, so nobody can spend another client's allowance by naming it.
  await limitRequest(deps, 'introspect', 'client', client.clientId, context);
  if (client.tokenEndpointAuthMethod === 'none') {
    throw new InvalidClient('introspection requires an authenticated (confidential) client');
  }
  const token = params.token as string | undefined;
  if (!token) throw new InvalidRequest('token is required');

  if (token.includes('.')) {
    const claims = await verifyOwnAccessToken(token, deps);
    // RFC 7662 §2.2: a caller not allowed to introspect this token is told it is inactive, like for an unknown one.
    if (!claims || !mayIntrospect(client.clientId, claims, deps)) return INACTIVE;
    if (await deps.storage.isAccessTokenRevoked(claims.jti)) return INACTIVE;
    const jkt = claims.cnf?.jkt;
    const out: Record<string, unknown> = {
      active: true,
      // RFC 9449 §6.2: a DPoP-bound token says so, with the key it is bound to.
      token_type: jkt !== undefined ? 'DPoP' : 'Bearer',
      client_id: claims.client_id,
      sub: claims.sub,
      aud: claims.aud,
      iss: claims.iss,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
    };
    if (claims.scope) out.scope = claims.scope;
    if (claims.auth_time !== undefined) out.auth_time = claims.auth_time;
    if (jkt !== undefined) out.cnf = { jkt };
    return out as IntrospectionResponse;
  }

  const found = await deps.storage.getRefreshToken(hashToken(token));
  // A refresh token is only revealed to the client it was issued to.
  if (!found || found.token.clientId !== client.clientId) return INACTIVE;
  const { token: record, grant } = found;
  if (record.rotatedAt !== undefined || grant.revokedAt !== undefined) return INACTIVE;
  return {
    active: true,
    token_type: 'refresh_token',
    client_id: record.clientId,
    sub: grant.userId,
    scope: formatScope(record.scope),
    iss: deps.config.issuer,
    exp: Math.floor(record.expiresAt / 1000),
    iat: Math.floor(record.createdAt / 1000),
  };
}

function mayIntrospect(clientId: string, claims: AccessTokenPayload, deps: Pick<Deps, 'config'>): boolean {
  return deps.config.introspection.allowedClients.includes(clientId) || audienceOf(claims).includes(clientId);
}
