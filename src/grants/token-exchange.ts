/**
 * Token exchange (RFC 8693, `urn:ietf:params:oauth:grant-type:token-exchange`) for resource servers: a confidential
 * client named in `tokenExchange.resourceServers` trades a Gatehouse access token sent to it (`subject_token`, of
 * type access_token, whose `aud` is one of its `audiences`) for
 * - the user's access token at an upstream identity provider: `resource` (or `audience`) =
 *   `urn:gatehouse:upstream:<id>`, the upstream one of its `upstreams`. The upstream tokens are those the user's
 *   sign-in brought for the subject token's grant (found by its jti), read under their binding (grant, user, the
 *   token's client, upstream): never a passthrough of the Gatehouse token, never another grant's tokens;
 * - a Gatehouse access token for another audience: `resource` (or `audience`) = a resource URI of its `audiencesOut`;
 *   same user, the subject token's scope or the requested part of it, recorded under the same grant (revoking the
 *   grant revokes it).
 * No actor tokens, no refresh tokens. Every exchange, refused ones too, is logged (`token_exchange`) without tokens.
 */
import {
  InvalidGrant,
  InvalidRequest,
  InvalidScope,
  InvalidTarget,
  OAuthError,
  UnauthorizedClient,
} from '../model/errors.js';
import { audienceOf, verifyOwnAccessToken, type AccessTokenPayload } from '../core/access-token.js';
import { resolveResources } from '../core/resource.js';
import type { AuditRequestContext } from '../core/audit.js';
import { parseScope } from '../core/scope.js';
import type { Config } from '../config/schema.js';
import type { Deps } from '../context.js';
import type { GrantStore, RevocationStore } from '../model/ports.js';
import type { ClientRecord } from '../model/records.js';
import type { UpstreamTokens } from '../upstream/provider.js';
import { noteFacts, tokenResponse, type IssuedFacts } from './issue.js';
import { list, single, type DpopBinding, type GrantHandler, type TokenParams, type TokenResponse } from './types.js';
import {
  freshUpstreamTokens,
  UpstreamSignInRequiredError,
  UpstreamTokenBindingError,
  type FreshUpstreamTokensDeps,
} from './upstream-tokens.js';

export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** How a token exchange names an upstream identity provider as its target (RFC 8693 has no field for it). */
export const UPSTREAM_TARGET_PREFIX = 'urn:gatehouse:upstream:';

/** Verifying the subject token, finding its grant, reading its upstream tokens, minting, logging. */
export type TokenExchangeDeps = Pick<Deps, 'config' | 'clock' | 'keys' | 'logger' | 'minter' | 'audit'> &
  FreshUpstreamTokensDeps & {
    storage: Pick<GrantStore, 'getAccessTokenGrantId' | 'addAccessToken'> &
      Pick<RevocationStore, 'isAccessTokenRevoked'>;
  };

type ResourceServer = Config['tokenExchange']['resourceServers'][number];

/** What the audit event (token.issued / token.refused, emitted by the token endpoint) says of one exchange. */
interface Audit {
  client_id: string;
  sub?: string;
  subject_client_id?: string;
  audience?: string;
  upstream?: string;
  reason?: string;
}

/** The exchange's facts for its audit event (grants/issue.ts noteFacts). */
function factsOfExchange(audit: Audit): IssuedFacts {
  return {
    ...(audit.sub !== undefined && { subject: audit.sub }),
    ...(audit.subject_client_id !== undefined && { subjectClientId: audit.subject_client_id }),
    ...(audit.audience !== undefined && { resources: [audit.audience] }),
    ...(audit.upstream !== undefined && { upstream: audit.upstream }),
    ...(audit.reason !== undefined && { reason: audit.reason }),
  };
}

export const tokenExchangeGrant: GrantHandler<TokenExchangeDeps> = {
  grantType: TOKEN_EXCHANGE_GRANT_TYPE,
  repeatableParams: ['resource', 'audience'],
  allowsPublicClients: false,
  metadataDocumentClients: false,
  // Only configured resource servers may exchange, and those are named by client_id in the config.
  dynamicRegistration: () => false,
  enabled: (config) => config.tokenExchange.resourceServers.length > 0,
  errorCodes: [
    'invalid_request',
    'invalid_client',
    'unauthorized_client',
    'invalid_grant',
    'invalid_scope',
    'invalid_target',
  ],
  async handle(params, client, deps, context, dpop) {
    const audit: Audit = { client_id: client.clientId };
    try {
      return noteFacts(await exchange(params, client, audit, deps, context, dpop), factsOfExchange(audit));
    } catch (err) {
      if (err instanceof OAuthError) noteFacts(err, factsOfExchange(audit));
      throw err;
    }
  },
};

async function exchange(
  params: TokenParams,
  client: ClientRecord,
  audit: Audit,
  deps: TokenExchangeDeps,
  context: AuditRequestContext | undefined,
  dpop: DpopBinding | undefined,
): Promise<TokenResponse> {
  // The token endpoint refuses public clients already (allowsPublicClients); this grant is never theirs.
  if (client.tokenEndpointAuthMethod === 'none') throw new UnauthorizedClient('public clients cannot exchange tokens');
  const server = deps.config.tokenExchange.resourceServers.find((r) => r.clientId === client.clientId);
  if (!server) throw new UnauthorizedClient('this client is not a resource server that may exchange tokens');

  const subjectToken = single(params, 'subject_token');
  if (!subjectToken) throw new InvalidRequest('subject_token is required');
  if (single(params, 'subject_token_type') !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  if (single(params, 'actor_token') !== undefined || single(params, 'actor_token_type') !== undefined) {
    throw new InvalidRequest('actor tokens are not supported');
  }
  const requestedType = single(params, 'requested_token_type') ?? ACCESS_TOKEN_TYPE;
  if (requestedType !== ACCESS_TOKEN_TYPE)
    throw new InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
  const targets = [...list(params, 'resource'), ...list(params, 'audience')];
  if (targets.length === 0) throw new InvalidRequest('resource or audience is required: the target of the exchange');
  if (targets.length > 1) throw new InvalidTarget('name one target: one resource or one audience');
  const target = targets[0]!;

  // The target first: a client asking for what it may never have learns nothing about the subject token.
  let upstreamId: string | undefined;
  let audience: string | undefined;
  if (target.startsWith(UPSTREAM_TARGET_PREFIX)) {
    upstreamId = target.slice(UPSTREAM_TARGET_PREFIX.length);
    audit.upstream = upstreamId;
    if (!server.upstreams.includes(upstreamId) || !deps.upstreams.has(upstreamId)) {
      throw new InvalidTarget(`this client may not get tokens of the upstream ${upstreamId}`);
    }
  } else {
    audit.audience = target;
    audience = resolveResources([target], deps.config.resources)[0]!;
    audit.audience = audience;
    if (!server.audiencesOut.includes(audience))
      throw new InvalidTarget(`this client may not get tokens for ${audience}`);
  }

  const claims = await verifySubjectToken(subjectToken, server, deps);
  audit.sub = claims.sub;
  audit.subject_client_id = claims.client_id;
  if (upstreamId !== undefined) return upstreamTokenResponse(claims, upstreamId, audit, deps, context);
  // An upstream's token is the upstream's: it cannot be bound to the proof's key here, so it stays Bearer.
  return gatehouseTokenResponse(claims, audience!, single(params, 'scope'), client, deps, dpop);
}

/** The subject token's claims if it is a live Gatehouse access token sent to this resource server. */
async function verifySubjectToken(
  token: string,
  server: ResourceServer,
  deps: TokenExchangeDeps,
): Promise<AccessTokenPayload> {
  const claims = await verifyOwnAccessToken(token, deps);
  if (!claims) throw new InvalidGrant('the subject token is not a valid access token of this server');
  if (await deps.storage.isAccessTokenRevoked(claims.jti)) throw new InvalidGrant('the subject token was revoked');
  if (!audienceOf(claims).some((a) => server.audiences.includes(a))) {
    throw new InvalidGrant('the subject token was not issued for this resource server');
  }
  return claims;
}

/**
 * The upstream tokens of the subject token's grant, for its user and client: the one place this grant reads them.
 */
async function upstreamTokensFor(
  grantId: string,
  binding: { subject: string; clientId: string; upstreamId: string },
  deps: TokenExchangeDeps,
): Promise<UpstreamTokens | undefined> {
  // Refreshed first when they expire within a minute: once across replicas (grants/upstream-tokens.ts).
  return freshUpstreamTokens(grantId, binding, deps);
}

async function upstreamTokenResponse(
  claims: AccessTokenPayload,
  upstreamId: string,
  audit: Audit,
  deps: TokenExchangeDeps,
  context: AuditRequestContext | undefined,
): Promise<TokenResponse> {
  const grantId = await deps.storage.getAccessTokenGrantId(claims.jti);
  if (grantId === undefined) throw new InvalidGrant('the subject token has no grant with upstream tokens');
  let tokens: UpstreamTokens | undefined;
  try {
    tokens = await upstreamTokensFor(grantId, { subject: claims.sub, clientId: claims.client_id, upstreamId }, deps);
  } catch (err) {
    // The upstream wants a new sign-in (it refused the refresh, or the refresh token is spent): the caller's user
    // signs in again, so the client gets invalid_grant (the resource helper's signInAgain), never a 500.
    if (err instanceof UpstreamSignInRequiredError) {
      deps.logger.info({ grantId, reason: err.reason }, err.message);
      audit.reason = `upstream_sign_in_required: ${err.reason}`;
      throw new InvalidGrant(`the user must sign in at the upstream ${upstreamId} again`);
    }
    // Bound to another user, client, upstream or upstream client: refused like a missing one, the reason logged.
    if (!(err instanceof UpstreamTokenBindingError)) throw err;
    deps.logger.warn({ grantId, mismatch: err.mismatch }, err.message);
    deps.audit.emit(
      {
        type: 'upstream.binding_mismatch',
        grantId,
        mismatch: err.mismatch,
        subject: claims.sub,
        clientId: claims.client_id,
      },
      context,
    );
    throw new InvalidGrant(`the subject token's grant holds no tokens of the upstream ${upstreamId}`);
  }
  if (!tokens) throw new InvalidGrant(`the subject token's grant holds no tokens of the upstream ${upstreamId}`);
  const now = deps.clock.now();
  if (tokens.expiresAt !== undefined && tokens.expiresAt <= now) {
    throw new InvalidGrant(`the upstream ${upstreamId} token has expired: the user signs in again`);
  }
  const out: TokenResponse = {
    access_token: tokens.accessToken,
    issued_token_type: ACCESS_TOKEN_TYPE,
    // RFC 8693 §2.2.1: Bearer when it can be used as one; an upstream's access token is.
    token_type: 'Bearer',
  };
  if (tokens.expiresAt !== undefined) out.expires_in = Math.floor((tokens.expiresAt - now) / 1000);
  if (tokens.scope) out.scope = tokens.scope;
  return out;
}

async function gatehouseTokenResponse(
  claims: AccessTokenPayload,
  audience: string,
  scopeParam: string | undefined,
  client: ClientRecord,
  deps: TokenExchangeDeps,
  dpop: DpopBinding | undefined,
): Promise<TokenResponse> {
  const held = parseScope(claims.scope);
  const requested = parseScope(scopeParam);
  const notHeld = requested.filter((s) => !held.includes(s));
  if (notHeld.length > 0) throw new InvalidScope(`the subject token does not hold the scope ${notHeld.join(' ')}`);
  // No session and no refresh token come with an exchanged token.
  const scope = (requested.length > 0 ? requested : held).filter((s) => s !== 'openid' && s !== 'offline_access');
  const access = await deps.minter.accessToken({
    sub: claims.sub,
    clientId: client.clientId,
    scope,
    audience: [audience],
    authTime: typeof claims.auth_time === 'number' ? claims.auth_time * 1000 : undefined,
    ...(dpop && { jkt: dpop.jkt }),
  });
  // Under the subject token's grant, if it has one: revoking that grant revokes this token too.
  const grantId = await deps.storage.getAccessTokenGrantId(claims.jti);
  if (grantId !== undefined)
    await deps.storage.addAccessToken(grantId, { jti: access.jti, expiresAt: access.expiresAt });
  return { ...tokenResponse(access, scope), issued_token_type: ACCESS_TOKEN_TYPE };
}
