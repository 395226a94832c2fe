/**
 * refresh_token grant (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14.2): rotation on every use; reuse of a rotated
 * token revokes the whole family; scope may only narrow. A concurrent retry of the same token inside the grace
 * window gets the very same new pair, sealed under the old token (core/crypto sealWithSecret).
 */
import { hashToken, openWithSecret, randomToken, sealWithSecret } from '../core/crypto.js';
import { InvalidGrant, InvalidTarget } from '../core/errors.js';
import { requiredParam } from '../core/params.js';
import { resolveResources } from '../core/resource.js';
import { parseScope, requireScopeSubset } from '../core/scope.js';
import { audienceFor, tokenResponse, userClaims } from './issue.js';
import { list, single, type GrantHandler, type TokenResponse } from './types.js';

const SEAL_CONTEXT = 'gatehouse refresh successor v1';

export const refreshTokenGrant: GrantHandler = {
  grantType: 'refresh_token',
  repeatableParams: ['resource'],
  allowsPublicClients: true,
  async handle(params, client, deps) {
    const presented = requiredParam(params, 'refresh_token');
    const tokenHash = hashToken(presented);
    const found = await deps.storage.getRefreshToken(tokenHash);
    if (!found || found.token.clientId !== client.clientId) {
      throw new InvalidGrant('the refresh token is invalid, expired or revoked');
    }
    const { token, grant } = found;
    const now = deps.clock.now();
    const graceMs = deps.config.tokens.refreshGraceSeconds * 1000;
    if (grant.revokedAt !== undefined) throw new InvalidGrant('the refresh token is invalid, expired or revoked');

    // Already rotated: skip minting and let the store decide between grace (same pair) and reuse (revoke).
    if (token.rotatedAt !== undefined && token.successor !== undefined && now - token.rotatedAt <= graceMs) {
      const replay = openWithSecret(presented, SEAL_CONTEXT, token.successor);
      if (replay) return JSON.parse(replay) as TokenResponse;
    }

    const scope = parseScope(single(params, 'scope'));
    if (scope.length > 0) requireScopeSubset(scope, grant.scope);
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
    });
    const nextToken = randomToken();
    let idToken: string | undefined;
    if (accessScope.includes('openid')) {
      const user = await deps.storage.getUser(grant.userId);
      if (!user) throw new InvalidGrant('the user no longer exists');
      idToken = await deps.minter.idToken({
        sub: user.id,
        clientId: client.clientId,
        authTime: grant.authTime,
        accessToken: access.token,
        claims: userClaims(user, accessScope),
      });
    }
    // RFC 6749 §6: the new refresh token keeps the scope of the one presented.
    const response = tokenResponse(access, accessScope, { refreshToken: nextToken, idToken });
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
      sealWithSecret(presented, SEAL_CONTEXT, JSON.stringify(response)),
      { jti: access.jti, expiresAt: access.expiresAt },
      now,
      graceMs,
    );
    switch (result.status) {
      case 'rotated':
        return response;
      case 'grace': {
        const replay = openWithSecret(presented, SEAL_CONTEXT, result.successor);
        if (replay) return JSON.parse(replay) as TokenResponse;
        throw new InvalidGrant('the refresh token is invalid, expired or revoked');
      }
      case 'reused':
        deps.logger.warn({ clientId: client.clientId, grantId: result.grantId }, 'refresh token reused; grant revoked');
        throw new InvalidGrant('the refresh token has already been used');
      case 'not_found':
        throw new InvalidGrant('the refresh token is invalid, expired or revoked');
    }
  },
};
