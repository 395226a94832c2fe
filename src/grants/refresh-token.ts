/**
 * refresh_token grant (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14.2): rotation on every use; reuse of a rotated
 * token revokes the whole family; scope may only narrow. A retry of the same token inside the (short) grace window by
 * the same client with identical parameters gets the very same new pair, sealed under the old token (core/crypto
 * sealWithSecret) together with a hash of the request that rotated; every such replay is logged.
 */
import { DEVICE_CODE_GRANT_TYPE } from '../core/device-codes.js';
import { hashToken, openWithSecret, randomToken, safeEqual, sealWithSecret } from '../core/crypto.js';
import { InvalidGrant, InvalidTarget } from '../model/errors.js';
import { requiredParam } from '../core/params.js';
import { resolveResources } from '../core/resource.js';
import { parseScope, requireScopeSubset } from '../core/scope.js';
import type { Deps } from '../context.js';
import type { GrantStore, UserStore } from '../model/ports.js';
import { authenticationClaims } from '../core/authentication.js';
import { audienceFor, tokenResponse, userClaims } from './issue.js';
import { list, single, type GrantHandler, type TokenParams, type TokenResponse } from './types.js';
import { deleteUpstreamTokens, revokeGrantAndUpstreamTokens, type RevokeGrantDeps } from './upstream-tokens.js';

/** What refreshing uses: its grant family's tokens (read, rotated once, or the family revoked on reuse), the user. */
export type RefreshTokenDeps = Pick<Deps, 'clock' | 'config' | 'logger' | 'minter' | 'audit'> &
  RevokeGrantDeps & {
    storage: Pick<GrantStore, 'getRefreshToken' | 'rotateRefreshToken'> & Pick<UserStore, 'getUser'>;
  };

// v2: the sealed successor carries the binding of the request that rotated (v1 sealed the bare response).
const SEAL_CONTEXT = 'gatehouse refresh successor v2';

/** What a grace retry must repeat exactly to get the same pair: the client, the requested scope and resources. */
function requestBinding(clientId: string, params: TokenParams): string {
  const scope = [...new Set(parseScope(single(params, 'scope')))].sort();
  const resource = [...new Set(list(params, 'resource'))].sort();
  return hashToken(JSON.stringify([clientId, scope, resource]));
}

/** The winner's response, if `sealed` opens under the presented token; `bound` says whether the request matches. */
function openSuccessor(
  presented: string,
  sealed: string,
  binding: string,
): { response: TokenResponse; bound: boolean } | undefined {
  const opened = openWithSecret(presented, SEAL_CONTEXT, sealed);
  if (opened === undefined) return undefined;
  const { bind, response } = JSON.parse(opened) as { bind: string; response: TokenResponse };
  return { response, bound: safeEqual(bind, binding) };
}

export const refreshTokenGrant: GrantHandler<RefreshTokenDeps> = {
  grantType: 'refresh_token',
  repeatableParams: ['resource'],
  allowsPublicClients: true,
  // Refresh tokens are only issued by the code grant and the device grant, so the grant alone would be useless.
  requiresGrantTypes: ['authorization_code', DEVICE_CODE_GRANT_TYPE],
  staticClientDefault: (hasRedirectUris) => hasRedirectUris,
  errorCodes: [
    'invalid_request',
    'invalid_client',
    'invalid_grant',
    'unauthorized_client',
    'invalid_scope',
    'invalid_target',
  ],
  async handle(params, client, deps, context, dpop) {
    const presented = requiredParam(params, 'refresh_token');
    const tokenHash = hashToken(presented);
    const found = await deps.storage.getRefreshToken(tokenHash);
    if (!found) throw new InvalidGrant('the refresh token is invalid, expired or revoked');
    const { token, grant } = found;
    const now = deps.clock.now();
    const graceMs = deps.config.tokens.refreshGraceSeconds * 1000;
    if (grant.revokedAt !== undefined) throw new InvalidGrant('the refresh token is invalid, expired or revoked');
    // RFC 9449 §5: a refresh token bound to a DPoP key (a public client's) is used only with a proof of that key;
    // checked before anything else, a grace retry included, so a stolen token is worth nothing without the key.
    if (grant.dpopJkt !== undefined && dpop?.jkt !== grant.dpopJkt)
      throw new InvalidGrant(
        dpop ? 'the refresh token is bound to another DPoP key' : 'the refresh token is DPoP-bound: send a proof',
      );
    const binding = requestBinding(client.clientId, params);

    // RFC 6749 §6: only narrowing of what the presented token carries; anything more is invalid_scope, never dropped
    // (checked before the grace replay too, so a retry asking for more does not silently get the pair).
    const scope = parseScope(single(params, 'scope'));
    if (scope.length > 0) requireScopeSubset(scope, token.scope);

    /**
     * RFC 9700 §4.14.2: a rotated token is good only for a retry inside the grace window by the same client with
     * identical parameters, which gets the very same pair; anything else is reuse and revokes the family.
     */
    const replayOrReuse = async (sealed: string | undefined): Promise<TokenResponse> => {
      const replay = sealed !== undefined ? openSuccessor(presented, sealed, binding) : undefined;
      // Sealed under another context (before an upgrade): cannot tell a retry from reuse, refuse without revoking.
      if (sealed !== undefined && replay === undefined)
        throw new InvalidGrant('the refresh token is invalid, expired or revoked');
      if (replay?.bound) {
        deps.logger.warn(
          { clientId: client.clientId, grantId: grant.id },
          'refresh token replayed inside the grace window; same pair returned',
        );
        return replay.response;
      }
      return reused('inside the grace window with another client or other parameters');
    };
    const reused = async (reason: string): Promise<never> => {
      deps.audit.emit(
        {
          type: 'refresh.reuse_detected',
          grantId: grant.id,
          clientId: client.clientId,
          subject: grant.userId,
        },
        context,
      );
      await revokeGrantAndUpstreamTokens(
        grant.id,
        deps,
        {
          reason: 'refresh_reuse',
          clientId: client.clientId,
          subject: grant.userId,
        },
        context,
      );
      deps.logger.warn({ clientId: client.clientId, grantId: grant.id, reason }, 'refresh token reused; grant revoked');
      throw new InvalidGrant('the refresh token has already been used');
    };

    if (token.rotatedAt !== undefined) {
      // Skip minting: inside the window the winner's pair (or a revocation), after it reuse whoever presents it.
      if (now - token.rotatedAt <= graceMs) return replayOrReuse(token.successor);
      return reused('after the grace window');
    }
    if (token.clientId !== client.clientId) throw new InvalidGrant('the refresh token is invalid, expired or revoked');

    const accessScope = scope.length > 0 ? scope : token.scope;
    let resources = grant.resource;
    const requested = list(params, 'resource');
    if (requested.length > 0) {
      const asked = resolveResources(requested, deps.config.resources);
      if (!asked.every((r) => grant.resource.includes(r))) throw new InvalidTarget('resource was not authorized');
      resources = asked;
    }

    const access = await deps.minter.accessToken({
      sub: grant.userId,
      clientId: client.clientId,
      scope: accessScope,
      audience: audienceFor(resources, client.clientId, deps),
      authTime: grant.authTime,
      ...(dpop && { jkt: dpop.jkt }),
    });
    const nextToken = randomToken();
    let idToken: string | undefined;
    if (accessScope.includes('openid')) {
      const user = await deps.storage.getUser(grant.userId);
      if (!user || user.disabled === true) throw new InvalidGrant('the user no longer exists or is disabled');
      idToken = await deps.minter.idToken({
        sub: user.id,
        clientId: client.clientId,
        authTime: grant.authTime,
        accessToken: access.token,
        // The original sign-in's methods: a refresh is no new authentication.
        claims: { ...userClaims(user, accessScope), ...authenticationClaims(grant.amr) },
      });
    }
    // RFC 6749 §6: the new refresh token keeps the scope of the one presented.
    const response = tokenResponse(access, accessScope, { refreshToken: nextToken, idToken, grantId: grant.id });
    const result = await deps.storage.rotateRefreshToken(
      tokenHash,
      {
        tokenHash: hashToken(nextToken),
        grantId: grant.id,
        clientId: client.clientId,
        scope: token.scope,
        createdAt: now,
        expiresAt: Math.min(now + deps.config.tokens.refreshTokenTtl * 1000, grant.expiresAt),
      },
      sealWithSecret(presented, SEAL_CONTEXT, JSON.stringify({ bind: binding, response })),
      { jti: access.jti, expiresAt: access.expiresAt },
      now,
      graceMs,
    );
    switch (result.status) {
      case 'rotated':
        deps.audit.emit(
          {
            type: 'refresh.rotated',
            grantId: grant.id,
            clientId: client.clientId,
            subject: grant.userId,
          },
          context,
        );
        return response;
      case 'grace':
        // A concurrent request with the same token won the rotation.
        return replayOrReuse(result.successor);
      case 'reused':
        // The store has revoked the family already; its upstream tokens go here.
        await deleteUpstreamTokens(result.grantId, deps);
        deps.audit.emit(
          {
            type: 'refresh.reuse_detected',
            grantId: result.grantId,
            clientId: client.clientId,
            subject: grant.userId,
          },
          context,
        );
        deps.audit.emit(
          {
            type: 'grant.revoked',
            grantId: result.grantId,
            reason: 'refresh_reuse',
            clientId: client.clientId,
            subject: grant.userId,
          },
          context,
        );
        deps.logger.warn({ clientId: client.clientId, grantId: result.grantId }, 'refresh token reused; grant revoked');
        throw new InvalidGrant('the refresh token has already been used');
      case 'not_found':
        throw new InvalidGrant('the refresh token is invalid, expired or revoked');
    }
  },
};
