/**
 * Token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): parse, refuse duplicates, authenticate the client, look the grant
 * up, check the client may use it, dispatch. The response is a typed object; the HTTP layer serializes it.
 */
import { authenticateClient, formCredentials, presentedCredentials } from '../core/client-auth.js';
import {
  InvalidClient,
  InvalidRequest,
  OAuthError,
  UnauthorizedClient,
  UnsupportedGrantType,
} from '../model/errors.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { grantHandler, type GrantDeps, type TokenResponse } from '../grants/index.js';
import { issuedFacts } from '../grants/issue.js';
import { parseScope } from '../core/scope.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import {
  clientAssertionAlgorithms,
  clientAuthMethods,
  type ClientAuthDeps,
  type RequestLimitDeps,
} from './client-request.js';
import { limitRequest } from '../core/rate-limit.js';
import type { DpopBinding } from '../grants/types.js';
import { dpopMetadata, endpointProof, type EndpointDpopDeps, type DpopInput } from '../core/dpop.js';

export const tokenDeclaration = {
  path: '/token',
  cors: true,
  metadata: (url, config) => ({
    token_endpoint: url,
    token_endpoint_auth_methods_supported: clientAuthMethods(config),
    token_endpoint_auth_signing_alg_values_supported: clientAssertionAlgorithms(config),
    ...dpopMetadata(config),
  }),
} satisfies EndpointDeclaration;

/** What the token endpoint uses: client authentication, and what it hands the grants (every grant's slice). */
export type TokenEndpointDeps = Pick<Deps, 'config' | 'audit' | 'clientActivity'> &
  ClientAuthDeps &
  EndpointDpopDeps &
  RequestLimitDeps &
  GrantDeps;

/** What the audit event of a token request knows from the endpoint itself. */
interface TokenRequestFacts {
  grantType?: string;
  clientId?: string;
}

/**
 * Handles one token request, and emits its audit event: token.issued (grant type, client, subject, resources,
 * scopes, grant) or token.refused (the error code). The event is built from what the request already holds (the
 * grant's facts ride beside the response in a WeakMap, grants/issue.ts): no store access.
 */
export async function tokenEndpoint(
  raw: RawParams,
  authorization: string | undefined,
  deps: TokenEndpointDeps,
  context?: AuditRequestContext,
  dpop?: DpopInput,
): Promise<TokenResponse> {
  const facts: TokenRequestFacts = {};
  try {
    const response = await handleTokenRequest(raw, authorization, deps, facts, context, dpop);
    const noted = issuedFacts(response);
    deps.audit.emit(
      {
        type: 'token.issued',
        grantType: facts.grantType!,
        ...(facts.clientId !== undefined && { clientId: facts.clientId }),
        scopes: parseScope(response.scope),
        resources: noted?.resources ?? [],
        ...(noted?.subject !== undefined && { subject: noted.subject }),
        ...(noted?.grantId !== undefined && { grantId: noted.grantId }),
        ...(noted?.upstream !== undefined && { upstream: noted.upstream }),
        ...(noted?.subjectClientId !== undefined && { subjectClientId: noted.subjectClientId }),
        ...(response.refresh_token !== undefined && { refreshToken: true }),
        ...(response.id_token !== undefined && { idToken: true }),
      },
      context,
    );
    return response;
  } catch (err) {
    if (err instanceof OAuthError) {
      const noted = issuedFacts(err);
      deps.audit.emit(
        {
          type: 'token.refused',
          error: err.code,
          ...(facts.grantType !== undefined && { grantType: facts.grantType }),
          ...(facts.clientId !== undefined && { clientId: facts.clientId }),
          ...(noted?.subject !== undefined && { subject: noted.subject }),
          ...(noted?.resources !== undefined && { resources: noted.resources }),
          ...(noted?.upstream !== undefined && { upstream: noted.upstream }),
          ...(noted?.reason !== undefined && { reason: noted.reason }),
        },
        context,
      );
    }
    throw err;
  }
}

/** The token request's DPoP proof (htu: this issuer's token endpoint), as the grants receive it. */
async function tokenProof(dpop: DpopInput | undefined, deps: TokenEndpointDeps): Promise<DpopBinding | undefined> {
  const proof = await endpointProof(dpop, tokenDeclaration.path, deps);
  return proof && { jkt: proof.jkt };
}

async function handleTokenRequest(
  raw: RawParams,
  authorization: string | undefined,
  deps: TokenEndpointDeps,
  facts: TokenRequestFacts,
  context: AuditRequestContext | undefined,
  dpop: DpopInput | undefined,
): Promise<TokenResponse> {
  const grantTypeValues = raw.grant_type?.filter((v) => v !== '') ?? [];
  if (grantTypeValues.length === 0) throw new InvalidRequest('grant_type is required');
  if (grantTypeValues.length > 1) throw new InvalidRequest('parameter grant_type must not be included more than once');
  const handler = grantHandler(grantTypeValues[0]!, deps.config);
  if (!handler) throw new UnsupportedGrantType(`grant_type ${grantTypeValues[0]} is not supported`);
  facts.grantType = handler.grantType;
  const params = collapseParams(raw, handler.repeatableParams);

  const presented = presentedCredentials(authorization, formCredentials(params));
  if (presented?.clientId !== undefined) facts.clientId = presented.clientId;
  // RFC 7523 §3.1: an assertion grant may come without client authentication (a client_id at most); the grant decides.
  if (handler.handleUnauthenticated && (!presented || presented.method === 'none'))
    return handler.handleUnauthenticated(params, presented?.clientId, deps, await tokenProof(dpop, deps));
  if (!presented) throw new InvalidClient('client authentication is required', { detail: 'no client credentials' });
  const client = await authenticateClient(presented, deps);
  // Counted once authenticated, so nobody can spend another client's allowance by naming it.
  await limitRequest(deps, 'token', 'client', client.clientId, context);
  if (!client.grantTypes.includes(handler.grantType)) {
    throw new UnauthorizedClient(`the client is not allowed to use ${handler.grantType}`);
  }
  if (!handler.allowsPublicClients && client.tokenEndpointAuthMethod === 'none') {
    throw new UnauthorizedClient(`public clients cannot use ${handler.grantType}`);
  }
  // RFC 9449 §5: the proof is checked once here, for whichever grant; the grant binds what it mints to its key.
  const proof = await tokenProof(dpop, deps);
  const isPublic = client.tokenEndpointAuthMethod === 'none';
  if (
    !proof &&
    deps.config.dpop.enabled &&
    (client.dpopBoundAccessTokens === true || (isPublic && deps.config.dpop.requireForPublicClients))
  )
    throw new InvalidRequest('a DPoP proof is required for this client', { detail: 'dpop proof missing' });
  const response = await handler.handle(params, client, deps, context, proof);
  // The garbage collection's "last token" mark: a store write at most once a day per client and replica.
  await deps.clientActivity.tokenIssued(client);
  return response;
}
