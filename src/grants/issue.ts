/** Shared by the grants: the audience rule, building the token response, and starting a user's grant. */
import { amrOf, authenticationClaims } from '../core/authentication.js';
import { hashToken, randomToken } from '../core/crypto.js';
import { formatScope } from '../core/scope.js';
import type { MintedAccessToken } from '../core/tokens.js';
import type { Deps } from '../context.js';
import { InvalidGrant } from '../model/errors.js';
import type { GrantStore } from '../model/ports.js';
import type { ClientRecord, UserRecord } from '../model/records.js';
import type { DpopBinding, TokenResponse } from './types.js';

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

/** What starting a user's grant uses: the minter and the store's createGrant. */
export type UserGrantDeps = Pick<Deps, 'clock' | 'config' | 'minter'> & { storage: Pick<GrantStore, 'createGrant'> };

/** What the user approved (a redeemed code, an approved device): the grant to start and how the user signed in. */
export interface UserApproval {
  grantId: string;
  scope: string[];
  /** The resources granted (stored on the grant). */
  resource: string[];
  /** The resources this token is for (the granted ones, or the narrower set the token request asked for). */
  audienceResources: readonly string[];
  authTime: number;
  amr?: string[];
  nonce?: string;
}

/**
 * The tokens of a user's approval: a resource-bound access token, a refresh token under the client's rule, an ID
 * token with `openid`, and the grant holding them, created once. `created: false` (the grant was revoked while this
 * was in flight, e.g. a replayed code) stores nothing and is invalid_grant with `usedMessage`.
 */
export async function issueUserGrant(
  approval: UserApproval,
  user: UserRecord,
  client: ClientRecord,
  dpop: DpopBinding | undefined,
  deps: UserGrantDeps,
  usedMessage: string,
): Promise<TokenResponse> {
  const now = deps.clock.now();
  const access = await deps.minter.accessToken({
    sub: user.id,
    clientId: client.clientId,
    scope: approval.scope,
    audience: audienceFor(approval.audienceResources, client.clientId, deps),
    authTime: approval.authTime,
    ...(dpop && { jkt: dpop.jkt }),
  });
  const grantExpiresAt = now + deps.config.tokens.grantTtl * 1000;
  const refreshToken = issuesRefreshToken(client.grantTypes, approval.scope, deps) ? randomToken() : undefined;
  const { created } = await deps.storage.createGrant(
    {
      id: approval.grantId,
      clientId: client.clientId,
      userId: user.id,
      scope: approval.scope,
      resource: approval.resource,
      authTime: approval.authTime,
      amr: amrOf(approval.amr),
      ...(approval.nonce !== undefined && { nonce: approval.nonce }),
      // RFC 9449 §5: a public client's refresh tokens are bound to the proof's key; a confidential client's are not.
      ...(dpop && client.tokenEndpointAuthMethod === 'none' && { dpopJkt: dpop.jkt }),
      createdAt: now,
      expiresAt: grantExpiresAt,
    },
    refreshToken
      ? {
          tokenHash: hashToken(refreshToken),
          grantId: approval.grantId,
          clientId: client.clientId,
          scope: approval.scope,
          createdAt: now,
          expiresAt: Math.min(now + deps.config.tokens.refreshTokenTtl * 1000, grantExpiresAt),
        }
      : undefined,
    { jti: access.jti, expiresAt: access.expiresAt },
  );
  if (!created) throw new InvalidGrant(usedMessage);

  let idToken: string | undefined;
  if (approval.scope.includes('openid')) {
    idToken = await deps.minter.idToken({
      sub: user.id,
      clientId: client.clientId,
      ...(approval.nonce !== undefined && { nonce: approval.nonce }),
      authTime: approval.authTime,
      accessToken: access.token,
      claims: { ...userClaims(user, approval.scope), ...authenticationClaims(approval.amr) },
    });
  }
  return tokenResponse(access, approval.scope, { refreshToken, idToken, grantId: approval.grantId });
}
