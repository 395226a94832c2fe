/** Shared by the grants: the audience rule and building the token response. */
import { formatScope } from '../core/scope.js';
import type { MintedAccessToken } from '../core/tokens.js';
import type { Deps } from '../context.js';
import type { TokenResponse } from './types.js';

/**
 * What the audit event of a token response (or of a refusal) says beyond what the token endpoint knows (grant type,
 * client): kept beside the object in a WeakMap, so nothing of it is serialized into the response.
 */
export interface IssuedFacts {
  subject?: string;
  resources?: string[];
  grantId?: string;
  /** Token exchange: the upstream whose token was handed out, the client the subject token was issued to. */
  upstream?: string;
  subjectClientId?: string;
  /** Why a request was refused, beyond the error code (e.g. the upstream wants a new sign-in). */
  reason?: string;
}

const factsOf = new WeakMap<object, IssuedFacts>();

/** Notes facts for the audit event of `target` (a TokenResponse, or an error thrown by a grant). */
export function noteFacts<T extends object>(target: T, facts: IssuedFacts): T {
  factsOf.set(target, { ...factsOf.get(target), ...facts });
  return target;
}

/** The facts noted for `target`. */
export function issuedFacts(target: unknown): IssuedFacts | undefined {
  return typeof target === 'object' && target !== null ? factsOf.get(target) : undefined;
}

/** RFC 9068 §3 / RFC 8707: the token's aud is the granted resource(s), else the configured default, else the client. */
export function audienceFor(resources: readonly string[], clientId: string, deps: Pick<Deps, 'config'>): string[] {
  if (resources.length > 0) return [...resources];
  if (deps.config.defaultResource) return [deps.config.defaultResource];
  return [clientId];
}

/** Builds the RFC 6749 §5.1 response. */
export function tokenResponse(
  access: MintedAccessToken,
  scope: readonly string[],
  extra: { refreshToken?: string; idToken?: string; grantId?: string } = {},
): TokenResponse {
  const out: TokenResponse = {
    access_token: access.token,
    token_type: access.jkt !== undefined ? 'DPoP' : 'Bearer',
    expires_in: access.expiresIn,
  };
  noteFacts(out, {
    subject: access.sub,
    resources: access.audience,
    ...(extra.grantId !== undefined && { grantId: extra.grantId }),
  });
  if (scope.length > 0) out.scope = formatScope(scope);
  if (extra.refreshToken) out.refresh_token = extra.refreshToken;
  if (extra.idToken) out.id_token = extra.idToken;
  return out;
}

/** Whether the client gets a refresh token for this grant (it must hold the grant type; optionally offline_access). */
export function issuesRefreshToken(
  grantTypes: readonly string[],
  scope: readonly string[],
  deps: Pick<Deps, 'config'>,
): boolean {
  if (!grantTypes.includes('refresh_token')) return false;
  return !deps.config.tokens.refreshRequiresOfflineAccess || scope.includes('offline_access');
}

/** Standard OIDC claims for the ID token / userinfo, filtered by scope (OIDC Core §5.4). */
export function userClaims(
  user: { id: string; username: string; email?: string; emailVerified?: boolean; name?: string },
  scope: readonly string[],
): Record<string, unknown> {
  const claims: Record<string, unknown> = { sub: user.id };
  if (scope.includes('profile')) {
    claims.preferred_username = user.username;
    if (user.name) claims.name = user.name;
  }
  if (scope.includes('email') && user.email) {
    claims.email = user.email;
    claims.email_verified = user.emailVerified ?? false;
  }
  return claims;
}
