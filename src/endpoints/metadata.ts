/**
 * Authorization server metadata: RFC 8414 and OpenID Connect Discovery 1.0. Built from what the endpoints and the
 * grants declare (no list of fields by endpoint here); every value advertised is one the server really supports.
 */
import type { Deps, EndpointDeclaration } from '../context.js';
import { grantMetadata } from '../grants/index.js';

/** The issuer's path without a trailing slash ('' at the root): every endpoint lives under it. */
export function issuerPath(issuer: string): string {
  return new URL(issuer).pathname.replace(/\/$/, '');
}

/**
 * The well-known paths that serve the metadata: RFC 8414 §3.1 path insertion, plus the OIDC Discovery §4 suffix form
 * (`<issuer path>/.well-known/openid-configuration`) that many MCP clients try.
 */
export function metadataPaths(issuer: string): string[] {
  const path = issuerPath(issuer);
  if (!path) return ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];
  return [
    `/.well-known/oauth-authorization-server${path}`,
    `/.well-known/openid-configuration${path}`,
    `${path}/.well-known/openid-configuration`,
    `${path}/.well-known/oauth-authorization-server`,
  ];
}

/** The metadata documents (same content for both well-known names): found from the issuer, read by browsers too. */
export const discoveryDeclaration = { path: metadataPaths, cors: true } satisfies EndpointDeclaration;

/**
 * The metadata document: the issuer, what each endpoint declares (in the order given), the server-wide fields (scopes,
 * ID tokens, claims, resource indicators), what the grants declare, then `extra`.
 */
export function buildMetadata(
  deps: Pick<Deps, 'config' | 'keys' | 'scopesSupported'>,
  endpoints: readonly EndpointDeclaration[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const { config } = deps;
  const grants = grantMetadata(config);
  const endpointFields = endpoints.map(
    (e) => e.metadata?.(config.issuer + (typeof e.path === 'string' ? e.path : ''), config) ?? {},
  );
  return Object.assign(
    { issuer: config.issuer },
    ...endpointFields,
    {
      scopes_supported: deps.scopesSupported,
      response_types_supported: grants.responseTypesSupported,
      grant_types_supported: grants.grantTypesSupported,
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: deps.keys.algorithms(),
      claims_supported: [
        'sub',
        'iss',
        'aud',
        'exp',
        'iat',
        'auth_time',
        'nonce',
        'at_hash',
        'name',
        'preferred_username',
        'email',
        'email_verified',
      ],
      resource_indicators_supported: true,
    },
    grants.fields,
    extra,
  ) as Record<string, unknown>;
}
