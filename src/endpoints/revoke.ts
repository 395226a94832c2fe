/**
 * Revocation endpoint, RFC 7009. A refresh token revokes its whole grant (its refresh tokens and the access tokens
 * issued under it); an access token is revoked by its jti. Unknown tokens and tokens of other clients answer 200
 * with no effect (RFC 7009 §2.2), so the endpoint cannot be used to probe tokens.
 */
import { hashToken } from '../core/crypto.js';
import { InvalidRequest } from '../model/errors.js';
import { identifyOwnAccessToken } from '../core/access-token.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { clientAuthMethods, requireClient, type ClientAuthDeps, type RequestLimitDeps } from './client-request.js';
import { limitRequest } from '../core/rate-limit.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { GrantStore, RevocationStore } from '../model/ports.js';
import { revokeGrantAndUpstreamTokens, type RevokeGrantDeps } from '../grants/upstream-tokens.js';

/** What revocation uses: client authentication, access-token verification, and revoking a grant or a token id. */
export type RevokeDeps = ClientAuthDeps &
  RequestLimitDeps &
  RevokeGrantDeps &
  Pick<Deps, 'keys' | 'config' | 'clock' | 'minter'> & {
    storage: Pick<GrantStore, 'getRefreshToken'> & Pick<RevocationStore, 'revokeAccessToken'>;
  };

export const revokeDeclaration = {
  path: '/revoke',
  cors: true,
  metadata: (url, config) => ({
    revocation_endpoint: url,
    revocation_endpoint_auth_methods_supported: clientAuthMethods(config),
  }),
} satisfies EndpointDeclaration;

export async function revokeEndpoint(
  raw: RawParams,
  authorization: string | undefined,
  deps: RevokeDeps,
  context?: AuditRequestContext,
): Promise<void> {
  const params = collapseParams(raw);
  const client = await requireClient(params, authorization, deps);
  // Counted once authenticated, so nobody can spend another client's allowance by naming it.
  await limitRequest(deps, 'revoke', 'client', client.clientId, context);
  const token = params.token as string | undefined;
  if (!token) throw new InvalidRequest('token is required');
  const hint = params.token_type_hint as string | undefined;

  // Try the hinted type first (RFC 7009 §2.1), then the other.
  const order = hint === 'access_token' ? ['access', 'refresh'] : ['refresh', 'access'];
  for (const kind of order) {
    if (kind === 'refresh') {
      // JWTs contain dots; refresh tokens never do, so skip the lookup for obvious access tokens.
      if (token.includes('.')) continue;
      const found = await deps.storage.getRefreshToken(hashToken(token));
      if (found) {
        if (found.token.clientId === client.clientId) {
          await revokeGrantAndUpstreamTokens(
            found.grant.id,
            deps,
            {
              reason: 'revocation_endpoint',
              clientId: client.clientId,
              subject: found.grant.userId,
            },
            context,
          );
        }
        return;
      }
    } else {
      // The jti's MAC is enough here (core/access-token-mac.ts): only a jti this issuer gave to this client can be
      // revoked, so forged tokens cannot fill the revocation list, and no signature is verified for genuine ones.
      const claims = await identifyOwnAccessToken(token, deps);
      if (claims) {
        if (claims.client_id === client.clientId) {
          await deps.storage.revokeAccessToken(claims.jti, claims.exp * 1000);
          deps.audit.emit(
            { type: 'token.revoked', jti: claims.jti, clientId: client.clientId, subject: claims.sub },
            context,
          );
        }
        return;
      }
    }
  }
}
