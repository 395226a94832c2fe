/**
 * authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2).
 * A code is redeemed once; a replay revokes everything the code issued (RFC 9700 §4.5.3.1 / RFC 6749 §4.1.2).
 */
import { hashToken, randomToken } from '../core/crypto.js';
import { InvalidGrant, InvalidTarget } from '../core/errors.js';
import { requiredParam } from '../core/params.js';
import { checkCodeVerifierSyntax, verifyCodeVerifier } from '../core/pkce.js';
import { matchRedirectUri } from '../core/redirect-uri.js';
import { resolveResources } from '../core/resource.js';
import { audienceFor, issuesRefreshToken, tokenResponse, userClaims } from './issue.js';
import { list, single, type GrantHandler } from './types.js';

export const authorizationCodeGrant: GrantHandler = {
  grantType: 'authorization_code',
  repeatableParams: ['resource'],
  allowsPublicClients: true,
  async handle(params, client, deps) {
    const code = requiredParam(params, 'code');
    // Syntax first (invalid_request): a malformed request must not spend the code.
    checkCodeVerifierSyntax(requiredParam(params, 'code_verifier'));
    const result = await deps.storage.consumeAuthorizationCode(hashToken(code));
    if (result.status === 'not_found') throw new InvalidGrant('the authorization code is invalid or expired');
    if (result.status === 'reused') {
      // The first redemption may not have created its grant yet: revokeGrant then leaves a tombstone, and that
      // redeemer's createGrant reports created: false instead of storing a live grant (one atomic step in the store).
      await deps.storage.revokeGrant(result.grantId, deps.clock.now());
      deps.logger.warn({ clientId: result.clientId, grantId: result.grantId }, 'authorization code replayed; grant revoked');
      throw new InvalidGrant('the authorization code has already been used');
    }
    const record = result.code;
    if (record.clientId !== client.clientId) throw new InvalidGrant('the authorization code was issued to another client');

    // RFC 6749 §4.1.3: redirect_uri must be identical to the one in the authorization request. Omitted only when
    // the client has a single registered URI that the authorization request defaulted to.
    const redirectUri = single(params, 'redirect_uri');
    if (redirectUri !== undefined ? redirectUri !== record.redirectUri : !(client.redirectUris.length === 1 && matchRedirectUri(client.redirectUris, record.redirectUri))) {
      throw new InvalidGrant('redirect_uri does not match the authorization request');
    }
    verifyCodeVerifier(single(params, 'code_verifier'), record.codeChallenge);

    // RFC 8707 §2.2: the token request may narrow the resources to a subset of those authorized.
    let resources = record.resource;
    const requested = list(params, 'resource');
    if (requested.length > 0) {
      const asked = resolveResources(requested, deps.config.resources);
      if (!asked.every((r) => record.resource.includes(r))) throw new InvalidTarget('resource was not authorized');
      resources = asked;
    }

    const now = deps.clock.now();
    const access = await deps.minter.accessToken({
      sub: record.userId,
      clientId: client.clientId,
      scope: record.scope,
      audience: audienceFor(resources, client.clientId, deps),
      authTime: record.authTime,
    });
    const grantExpiresAt = now + deps.config.tokens.grantTtl * 1000;
    let refreshToken: string | undefined;
    if (issuesRefreshToken(client.grantTypes, record.scope, deps)) refreshToken = randomToken();
    const { created } = await deps.storage.createGrant(
      {
        id: record.grantId,
        clientId: client.clientId,
        userId: record.userId,
        scope: record.scope,
        resource: record.resource,
        authTime: record.authTime,
        nonce: record.nonce,
        createdAt: now,
        expiresAt: grantExpiresAt,
      },
      refreshToken
        ? {
            tokenHash: hashToken(refreshToken),
            grantId: record.grantId,
            clientId: client.clientId,
            scope: record.scope,
            createdAt: now,
            expiresAt: Math.min(now + deps.config.tokens.refreshTokenTtl * 1000, grantExpiresAt),
          }
        : undefined,
      { jti: access.jti, expiresAt: access.expiresAt },
    );
    // The code was replayed (and its grant revoked) while this redemption was in flight: nothing was stored.
    if (!created) throw new InvalidGrant('the authorization code has already been used');

    let idToken: string | undefined;
    if (record.scope.includes('openid')) {
      const user = await deps.storage.getUser(record.userId);
      if (!user) throw new InvalidGrant('the user no longer exists');
      idToken = await deps.minter.idToken({
        sub: user.id,
        clientId: client.clientId,
        nonce: record.nonce,
        authTime: record.authTime,
        accessToken: access.token,
        claims: userClaims(user, record.scope),
      });
    }
    return tokenResponse(access, record.scope, { refreshToken, idToken });
  },
};
