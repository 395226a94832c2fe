/**
 * authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2).
 * A code is redeemed once; a replay revokes everything the code issued (RFC 9700 §4.5.3.1 / RFC 6749 §4.1.2).
 */
import { hashToken } from '../core/crypto.js';
import { InvalidGrant, InvalidRequest, InvalidTarget } from '../model/errors.js';
import { requiredParam } from '../core/params.js';
import { checkCodeVerifierSyntax, verifyCodeVerifier } from '../core/pkce.js';
import { resolveResources } from '../core/resource.js';
import { issueUserGrant } from './issue.js';
import type { Deps } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { AuthorizationCodeStore, GrantStore, UserStore } from '../model/ports.js';
import { list, single, type GrantHandler } from './types.js';
import { revokeGrantAndUpstreamTokens, type RevokeGrantDeps } from './upstream-tokens.js';

/** What redeeming a code uses: the code (read, then consumed once), the grant it starts or a replay revokes, the user. */
export type AuthorizationCodeDeps = Pick<Deps, 'clock' | 'config' | 'logger' | 'minter'> &
  RevokeGrantDeps & {
    storage: Pick<AuthorizationCodeStore, 'getAuthorizationCode' | 'consumeAuthorizationCode'> &
      Pick<GrantStore, 'createGrant'> &
      Pick<UserStore, 'getUser'>;
  };

/**
 * A redeemed code came back: revoke everything it issued. The first redemption may not have created its grant yet:
 * revokeGrant then leaves a tombstone, and that redeemer's createGrant reports created: false instead of storing a
 * live grant (one atomic step in the store).
 */
async function codeReplayed(
  replay: { grantId: string; clientId: string },
  deps: AuthorizationCodeDeps,
  context: AuditRequestContext | undefined,
): Promise<never> {
  deps.audit.emit({ type: 'code.replayed', clientId: replay.clientId, grantId: replay.grantId }, context);
  await revokeGrantAndUpstreamTokens(
    replay.grantId,
    deps,
    { reason: 'code_replay', clientId: replay.clientId },
    context,
  );
  deps.logger.warn(
    { clientId: replay.clientId, grantId: replay.grantId },
    'authorization code replayed; grant revoked',
  );
  throw new InvalidGrant('the authorization code has already been used');
}

export const authorizationCodeGrant: GrantHandler<AuthorizationCodeDeps> = {
  grantType: 'authorization_code',
  repeatableParams: ['resource'],
  allowsPublicClients: true,
  // Client metadata (RFC 7591 §2, §2.1): the RFC's default grant; it goes with response type code and redirect URIs.
  responseTypes: ['code'],
  requiresRedirectUris: true,
  registrationDefault: true,
  staticClientDefault: (hasRedirectUris) => hasRedirectUris,
  // PKCE is mandatory and S256 only (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1).
  metadata: () => ({ code_challenge_methods_supported: ['S256'] }),
  errorCodes: ['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'invalid_target'],
  async handle(params, client, deps, context, dpop) {
    const code = requiredParam(params, 'code');
    // Syntax first (invalid_request): a malformed request must not spend the code.
    checkCodeVerifierSyntax(requiredParam(params, 'code_verifier'));
    const codeHash = hashToken(code);
    // Read, check, then consume: a request with the wrong client, redirect_uri or verifier must not use the code up,
    // or anyone holding the code could make the legitimate redemption fail. The record never changes after it is
    // saved, so checks made on the read still hold when the atomic consume below wins.
    const found = await deps.storage.getAuthorizationCode(codeHash);
    if (found.status === 'not_found') throw new InvalidGrant('the authorization code is invalid or expired');
    if (found.status === 'reused') return codeReplayed(found, deps, context);
    const record = found.code;
    if (record.clientId !== client.clientId)
      throw new InvalidGrant('the authorization code was issued to another client');

    // RFC 6749 §4.1.3: when the authorization request carried redirect_uri, the token request must carry the
    // identical value; when it did not, a redirect_uri sent anyway must still be the one the code was issued for.
    const redirectUri = single(params, 'redirect_uri');
    // Missing when required is a missing parameter (invalid_request, §5.2); a different value is invalid_grant.
    if (redirectUri === undefined && record.redirectUriSent === true) {
      throw new InvalidRequest('redirect_uri is required: the authorization request carried one');
    }
    if (redirectUri !== undefined && redirectUri !== record.redirectUri) {
      throw new InvalidGrant('redirect_uri does not match the authorization request');
    }
    verifyCodeVerifier(single(params, 'code_verifier'), record.codeChallenge);
    // RFC 9449 §10: a code bound to a key (dpop_jkt) is redeemed only with a proof of that key.
    if (record.dpopJkt !== undefined && dpop?.jkt !== record.dpopJkt)
      throw new InvalidGrant(
        dpop
          ? 'the DPoP proof key does not match the dpop_jkt of the authorization request'
          : 'a DPoP proof is required',
      );

    // RFC 8707 §2.2: the token request may narrow the resources to a subset of those authorized.
    let resources = record.resource;
    const requested = list(params, 'resource');
    if (requested.length > 0) {
      const asked = resolveResources(requested, deps.config.resources);
      if (!asked.every((r) => record.resource.includes(r))) throw new InvalidTarget('resource was not authorized');
      resources = asked;
    }

    // Exactly one redemption wins; a concurrent one that lost is a replay (another holder of the code).
    const result = await deps.storage.consumeAuthorizationCode(codeHash);
    if (result.status === 'not_found') throw new InvalidGrant('the authorization code is invalid or expired');
    if (result.status === 'reused') return codeReplayed(result, deps, context);
    // Whatever the scope: a code outlives nothing of a deleted user (deleteUser cannot find codes by user).
    const user = await deps.storage.getUser(record.userId);
    if (!user) throw new InvalidGrant('the user no longer exists');
    if (user.disabled === true) throw new InvalidGrant('the user is disabled');

    // A replay that revoked the grant while this redemption was in flight leaves nothing stored: invalid_grant.
    return issueUserGrant(
      { ...record, audienceResources: resources },
      user,
      client,
      dpop,
      deps,
      'the authorization code has already been used',
    );
  },
};
