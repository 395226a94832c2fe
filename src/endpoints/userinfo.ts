/** OIDC UserInfo endpoint (OIDC Core §5.3), bearer token per RFC 6750 §2.1. */
import { InsufficientScope, InvalidToken } from '../model/errors.js';
import { audienceOf, verifyOwnAccessToken } from '../core/access-token.js';
import { userClaims } from '../grants/issue.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { RevocationStore, UserStore } from '../model/ports.js';

/** What userinfo uses: access-token verification, the revocation list, and reading the user. */
export type UserinfoDeps = Pick<Deps, 'keys' | 'config' | 'clock'> & {
  storage: Pick<RevocationStore, 'isAccessTokenRevoked'> & Pick<UserStore, 'getUser'>;
};

export const userinfoDeclaration = {
  path: '/userinfo',
  cors: true,
  metadata: (url) => ({ userinfo_endpoint: url }),
} satisfies EndpointDeclaration;

const challenge = (error?: string) =>
  error ? `Bearer realm="gatehouse", error="${error}"` : 'Bearer realm="gatehouse"';

/** Returns the claims the token's scope allows. `token` was extracted from the Authorization header or form body. */
export async function userinfoEndpoint(
  token: string | undefined,
  deps: UserinfoDeps,
): Promise<Record<string, unknown>> {
  if (!token) throw new InvalidToken('a bearer token is required', { headers: { 'www-authenticate': challenge() } });
  const claims = await verifyOwnAccessToken(token, deps);
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
