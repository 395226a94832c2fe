/** OIDC UserInfo endpoint (OIDC Core §5.3), bearer token per RFC 6750 §2.1. */
import {
  InsufficientScope,
  InvalidDpopProof,
  InvalidRequest,
  InvalidToken,
  OAuthError,
  UseDpopNonce,
} from '../model/errors.js';
import { dpopChallenge, endpointProof, type EndpointDpopDeps, type DpopInput } from '../core/dpop.js';
import { audienceOf, verifyOwnAccessToken } from '../core/access-token.js';
import { userClaims } from '../grants/issue.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { RevocationStore, UserStore } from '../model/ports.js';

/** What userinfo uses: access-token verification, the revocation list, reading the user, DPoP proofs. */
export type UserinfoDeps = Pick<Deps, 'keys' | 'config' | 'clock'> &
  EndpointDpopDeps & {
    storage: Pick<RevocationStore, 'isAccessTokenRevoked'> & Pick<UserStore, 'getUser'>;
  };

/** How the token came: its scheme, and the request's DPoP header and method. */
export interface UserinfoPresentation {
  scheme: 'Bearer' | 'DPoP';
  dpop?: DpopInput;
}

export const userinfoDeclaration = {
  path: '/userinfo',
  cors: true,
  metadata: (url) => ({ userinfo_endpoint: url }),
} satisfies EndpointDeclaration;

const bearerChallenge = (error?: string) =>
  error ? `Bearer realm="gatehouse", error="${error}"` : 'Bearer realm="gatehouse"';

/** Returns the claims the token's scope allows. `token` was extracted from the Authorization header or form body. */
export async function userinfoEndpoint(
  token: string | undefined,
  deps: UserinfoDeps,
  presented: UserinfoPresentation = { scheme: 'Bearer' },
): Promise<Record<string, unknown>> {
  // RFC 9449 §7.1: with DPoP on, every challenge offers both schemes.
  const dpopOn = deps.config.dpop.enabled;
  const challenge = (error?: string) =>
    dpopOn ? `${bearerChallenge(error)}, ${dpopChallenge(deps.config, error)}` : bearerChallenge(error);
  if (!token) throw new InvalidToken('a bearer token is required', { headers: { 'www-authenticate': challenge() } });
  if (presented.scheme === 'DPoP' && !dpopOn)
    throw new InvalidRequest('the DPoP scheme is not supported', {
      headers: { 'www-authenticate': bearerChallenge('invalid_request') },
    });
  const claims = await verifyOwnAccessToken(token, deps);
  const jkt = claims?.cnf?.jkt;
  if (claims && presented.scheme === 'DPoP') {
    // The proof must be for this request and this token (ath), made with the key the token is bound to.
    const proof = await endpointProof(presented.dpop, userinfoDeclaration.path, deps, {
      accessToken: token,
      status: 401,
    }).catch((err: unknown) => {
      if (err instanceof OAuthError) {
        const headers = { ...err.headers, 'www-authenticate': challenge(err.code) };
        throw err instanceof UseDpopNonce
          ? new UseDpopNonce(err.headers['dpop-nonce']!, { status: 401, headers })
          : new InvalidDpopProof(err.description, { status: 401, headers });
      }
      throw err;
    });
    if (!proof)
      throw new InvalidDpopProof('a DPoP proof is required with the DPoP scheme', {
        status: 401,
        headers: { 'www-authenticate': challenge('invalid_dpop_proof') },
      });
    if (proof.jkt !== jkt)
      throw new InvalidToken('the access token is not bound to the DPoP proof key', {
        headers: { 'www-authenticate': challenge('invalid_token') },
      });
  } else if (claims && jkt !== undefined) {
    // RFC 9449 §7.1: a DPoP-bound token presented as a bearer token is refused.
    throw new InvalidToken('the access token is DPoP-bound: present it with the DPoP scheme and a proof', {
      headers: { 'www-authenticate': challenge('invalid_token') },
    });
  }
  if (!claims || (await deps.storage.isAccessTokenRevoked(claims.jti))) {
    throw new InvalidToken('the access token is invalid', {
      headers: { 'www-authenticate': challenge('invalid_token') },
    });
  }
  // A token bound to a resource server (RFC 8707) is for that server: /userinfo only takes tokens issued for this
  // issuer or its userinfo endpoint, or bound to no resource (aud = the client_id), so no resource server can replay
  // a user's token to read their profile.
  const ownAudience = new Set([deps.config.issuer, deps.config.issuer + userinfoDeclaration.path, claims.client_id]);
  const audience = audienceOf(claims);
  if (audience.length === 0 || !audience.every((a) => ownAudience.has(a))) {
    throw new InvalidToken('the access token is not intended for the userinfo endpoint', {
      headers: { 'www-authenticate': challenge('invalid_token') },
    });
  }
  const scope = (claims.scope ?? '').split(' ');
  if (!scope.includes('openid')) {
    throw new InsufficientScope('the openid scope is required', {
      headers: { 'www-authenticate': `${challenge('insufficient_scope')}, scope="openid"` },
    });
  }
  const user = await deps.storage.getUser(claims.sub);
  if (!user)
    throw new InvalidToken('the user no longer exists', {
      headers: { 'www-authenticate': challenge('invalid_token') },
    });
  return userClaims(user, scope);
}
