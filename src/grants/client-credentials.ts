/** client_credentials grant (RFC 6749 §4.4, OAuth 2.1 §4.2): confidential clients acting for themselves. */
import { UnauthorizedClient } from '../model/errors.js';
import { resolveResources } from '../core/resource.js';
import { parseScope, resolveRequestedScopes } from '../core/scope.js';
import type { Deps } from '../context.js';
import { audienceFor, tokenResponse } from './issue.js';
import { list, single, type GrantHandler } from './types.js';

/** What a machine token uses: no store at all, only the scopes, the resources and the minter. */
export type ClientCredentialsDeps = Pick<Deps, 'config' | 'minter' | 'scopesSupported'>;

export const clientCredentialsGrant: GrantHandler<ClientCredentialsDeps> = {
  grantType: 'client_credentials',
  repeatableParams: ['resource'],
  allowsPublicClients: false,
  // A metadata document client has no secret of its own to act with; the document is public.
  metadataDocumentClients: false,
  // Open registration must not hand out machine tokens: only with explicit permission or an initial access token.
  dynamicRegistration: (registration) =>
    registration.allowClientCredentials || registration.initialAccessToken !== undefined,
  // A config-file client without redirect URIs is a machine client.
  staticClientDefault: (hasRedirectUris) => !hasRedirectUris,
  errorCodes: ['invalid_request', 'invalid_client', 'unauthorized_client', 'invalid_scope', 'invalid_target'],
  async handle(params, client, deps, _context, dpop) {
    if (client.tokenEndpointAuthMethod === 'none')
      throw new UnauthorizedClient('public clients cannot use client_credentials');
    const requested = parseScope(single(params, 'scope'));
    // Only an explicit allow-list grants machine scopes (none set = nothing); anything else asked for is invalid_scope
    // (RFC 6749 §5.2), never narrowed. No user is present, so user-only scopes never apply.
    const scope = resolveRequestedScopes(requested, client.scope ?? [], deps.scopesSupported, true).filter(
      (s) => s !== 'openid' && s !== 'offline_access',
    );
    const resources = resolveResources(list(params, 'resource'), deps.config.resources);
    const access = await deps.minter.accessToken({
      sub: client.clientId,
      clientId: client.clientId,
      scope,
      audience: audienceFor(resources, client.clientId, deps),
      ...(dpop && { jkt: dpop.jkt }),
    });
    return tokenResponse(access, scope);
  },
};
