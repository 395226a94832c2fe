/**
 * Token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): parse, refuse duplicates, authenticate the client, look the grant
 * up, check the client may use it, dispatch. The response is a typed object; the HTTP layer serializes it.
 */
import { authenticateClient, formCredentials, presentedCredentials } from '../core/client-auth.js';
import { InvalidClient, InvalidRequest, UnauthorizedClient, UnsupportedGrantType } from '../model/errors.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { grantHandler, type GrantDeps, type TokenResponse } from '../grants/index.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import {
  clientAssertionAlgorithms,
  clientAuthMethods,
  type ClientAuthDeps,
  type RequestLimitDeps,
} from './client-request.js';
import { limitRequest } from '../core/rate-limit.js';

export const tokenDeclaration = {
  path: '/token',
  cors: true,
  metadata: (url, config) => ({
    token_endpoint: url,
    token_endpoint_auth_methods_supported: clientAuthMethods(config),
    token_endpoint_auth_signing_alg_values_supported: clientAssertionAlgorithms(config),
  }),
} satisfies EndpointDeclaration;

/** What the token endpoint uses: client authentication, and what it hands the grants (every grant's slice). */
export type TokenEndpointDeps = Pick<Deps, 'config' | 'clientActivity'> & ClientAuthDeps & RequestLimitDeps & GrantDeps;

/** Handles one token request. */
export async function tokenEndpoint(
  raw: RawParams,
  authorization: string | undefined,
  deps: TokenEndpointDeps,
): Promise<TokenResponse> {
  const grantTypeValues = raw.grant_type?.filter((v) => v !== '') ?? [];
  if (grantTypeValues.length === 0) throw new InvalidRequest('grant_type is required');
  if (grantTypeValues.length > 1) throw new InvalidRequest('parameter grant_type must not be included more than once');
  const handler = grantHandler(grantTypeValues[0]!, deps.config);
  if (!handler) throw new UnsupportedGrantType(`grant_type ${grantTypeValues[0]} is not supported`);
  const params = collapseParams(raw, handler.repeatableParams);

  const presented = presentedCredentials(authorization, formCredentials(params));
  // RFC 7523 §3.1: an assertion grant may come without client authentication (a client_id at most); the grant decides.
  if (handler.handleUnauthenticated && (!presented || presented.method === 'none'))
    return handler.handleUnauthenticated(params, presented?.clientId, deps);
  if (!presented) throw new InvalidClient('client authentication is required', { detail: 'no client credentials' });
  const client = await authenticateClient(presented, deps);
  // Counted once authenticated, so nobody can spend another client's allowance by naming it.
  await limitRequest(deps, 'token', 'client', client.clientId);
  if (!client.grantTypes.includes(handler.grantType)) {
    throw new UnauthorizedClient(`the client is not allowed to use ${handler.grantType}`);
  }
  if (!handler.allowsPublicClients && client.tokenEndpointAuthMethod === 'none') {
    throw new UnauthorizedClient(`public clients cannot use ${handler.grantType}`);
  }
  const response = await handler.handle(params, client, deps);
  // The garbage collection's "last token" mark: a store write at most once a day per client and replica.
  await deps.clientActivity.tokenIssued(client);
  return response;
}
