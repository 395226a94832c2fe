/**
 * Authorization server metadata: RFC 8414 and OpenID Connect Discovery 1.0. Built once at start; every value
 * advertised is one the server really supports.
 */
import type { Deps } from '../context.js';
import { grantMetadata } from '../grants/index.js';

/** Endpoint paths relative to the issuer. */
export const PATHS = {
  authorize: '/authorize',
  token: '/token',
  register: '/register',
  revoke: '/revoke',
  introspect: '/introspect',
  userinfo: '/userinfo',
  jwks: '/jwks.json',
} as const;

/** The metadata document (same content for both well-known names). */
export function buildMetadata(
  deps: Pick<Deps, 'config' | 'keys' | 'scopesSupported'>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const { issuer, registration } = deps.config;
  const authMethods = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];
  const assertionAlgs = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
  const algs = deps.keys.algorithms();
  const grants = grantMetadata(deps.config);
  const metadata: Record<string, unknown> = {
    issuer,
    authorization_endpoint: issuer + PATHS.authorize,
    token_endpoint: issuer + PATHS.token,
    jwks_uri: issuer + PATHS.jwks,
    userinfo_endpoint: issuer + PATHS.userinfo,
    revocation_endpoint: issuer + PATHS.revoke,
    introspection_endpoint: issuer + PATHS.introspect,
    scopes_supported: deps.scopesSupported,
    response_types_supported: grants.responseTypesSupported,
    response_modes_supported: ['query'],
    grant_types_supported: grants.grantTypesSupported,
    token_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: assertionAlgs,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    authorization_response_iss_parameter_supported: true,
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algs,
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
    prompt_values_supported: ['none', 'login', 'consent'],
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    claims_parameter_supported: false,
    resource_indicators_supported: true,
    ...grants.fields,
    ...extra,
  };
  if (registration.enabled) metadata.registration_endpoint = issuer + PATHS.register;
  return metadata;
}

/**
 * The well-known paths that serve the metadata: RFC 8414 §3.1 path insertion, plus the OIDC Discovery §4 suffix form
 * (`<issuer path>/.well-known/openid-configuration`) that many MCP clients try.
 */
export function metadataPaths(issuer: string): string[] {
  const path = new URL(issuer).pathname.replace(/\/$/, '');
  if (!path) return ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];
  return [
    `/.well-known/oauth-authorization-server${path}`,
    `/.well-known/openid-configuration${path}`,
    `${path}/.well-known/openid-configuration`,
    `${path}/.well-known/oauth-authorization-server`,
  ];
}
