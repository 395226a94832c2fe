/** Framework-neutral request authentication shared by the Express, Fastify and fetch adapters. */
import { extractBearerToken, hasQueryAccessToken, wwwAuthenticate } from './challenge.js';
import { ResourceAuthError } from './errors.js';
import { protectedResourceMetadata, protectedResourceMetadataPath } from './metadata.js';
import type { ProtectedResourceMetadataOptions } from './metadata.js';
import type { AuthInfo, ResourceVerifier } from './verifier.js';

/** Options shared by every bearer-auth middleware. */
export interface BearerAuthOptions {
  /** Scopes this route needs, in addition to the verifier's `requiredScopes`. */
  requiredScopes?: readonly string[];
  /** `resource_metadata` for challenges; default the verifier's RFC 9728 metadata URL. */
  resourceMetadataUrl?: string;
  /** Optional `realm` for challenges. */
  realm?: string;
}

/**
 * What the middleware puts on the request: {@link AuthInfo} plus the fields of the MCP SDK's `AuthInfo`
 * (`resource` as a URL, `extra`), so `@modelcontextprotocol/sdk` transports accept it as `req.auth`.
 */
export interface RequestAuth extends AuthInfo {
  /** RFC 8707 resource the token was accepted for (the verifier's `resource`). */
  resource: URL;
  /** For SDK consumers: `subject`, `audience`, `jti`, `claims`, and `tenant` when an issuer template matched. */
  extra: Record<string, unknown>;
}

/** A ready-to-send error: status, headers (WWW-Authenticate, JSON content type) and `{ error, error_description }`. */
export interface BearerErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: string; error_description: string };
}

/** Per-middleware constants, computed once. */
export interface BearerContext {
  verifier: ResourceVerifier;
  verifyOptions: { requiredScopes: readonly string[] } | undefined;
  challengeScopes: readonly string[];
  resourceMetadataUrl: string;
  realm: string | undefined;
}

/** @internal Precomputes what each request needs. */
export function bearerContext(verifier: ResourceVerifier, options: BearerAuthOptions = {}): BearerContext {
  const extra = options.requiredScopes ?? [];
  return {
    verifier,
    verifyOptions: extra.length > 0 ? { requiredScopes: [...extra] } : undefined,
    challengeScopes: [...new Set([...verifier.requiredScopes, ...extra])],
    resourceMetadataUrl: options.resourceMetadataUrl ?? verifier.resourceMetadataUrl,
    realm: options.realm,
  };
}

/** Adds the MCP SDK `AuthInfo` fields (`resource`, `extra`) to a verified {@link AuthInfo}. */
export function toRequestAuth(info: AuthInfo, resource: string): RequestAuth {
  const extra: Record<string, unknown> = {
    subject: info.subject,
    audience: info.audience,
    jti: info.jti,
    claims: info.claims,
  };
  if (info.tenant !== undefined) extra['tenant'] = info.tenant;
  return { ...info, resource: new URL(resource), extra };
}

/** @internal Header → token → verified auth. Throws {@link ResourceAuthError}. */
export async function authenticate(
  ctx: BearerContext,
  authorization: string | readonly string[] | null | undefined,
  url: string | undefined,
): Promise<RequestAuth> {
  // RFC 6750 §2.3 / §5.3 and MCP: tokens MUST NOT travel in the query string; only the header (§2.1) is accepted.
  if (hasQueryAccessToken(url)) {
    throw new ResourceAuthError(
      'invalid_request',
      'access tokens must be sent in the Authorization header, not the URL',
    );
  }
  const token = extractBearerToken(authorization);
  const info = await ctx.verifier.verify(token, ctx.verifyOptions);
  return toRequestAuth(info, ctx.verifier.resource);
}

/**
 * Turns a {@link ResourceAuthError} into the response RFC 6750 §3 requires: 401 / 403 / 400 with a
 * `WWW-Authenticate: Bearer` challenge carrying `resource_metadata` (RFC 9728 §5.1), or 503 without one.
 */
export function bearerErrorResponse(
  error: ResourceAuthError,
  options: { resourceMetadataUrl?: string; scope?: readonly string[]; realm?: string } = {},
): BearerErrorResponse {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  };
  if (error.status !== 503) {
    const scope = error.code === 'insufficient_scope' ? (error.requiredScopes ?? options.scope) : options.scope;
    // RFC 6750 §3: a 401 MUST carry WWW-Authenticate; §3.1: no error code when the request had no credentials.
    headers['www-authenticate'] = wwwAuthenticate({
      realm: options.realm,
      resourceMetadata: options.resourceMetadataUrl,
      error: error.credentialsMissing ? undefined : error.code,
      errorDescription: error.credentialsMissing ? undefined : error.description,
      scope,
    });
  }
  return { status: error.status, headers, body: error.toJSON() };
}

/** @internal The error response for a middleware context. */
export function contextErrorResponse(ctx: BearerContext, error: ResourceAuthError): BearerErrorResponse {
  return bearerErrorResponse(error, {
    resourceMetadataUrl: ctx.resourceMetadataUrl,
    scope: ctx.challengeScopes,
    realm: ctx.realm,
  });
}

/** @internal The metadata route's path, JSON body and headers. */
export interface MetadataRoute {
  path: string;
  body: string;
  headers: Record<string, string>;
}

/** @internal Precomputes the RFC 9728 metadata response (served with CORS so browser-based clients can read it). */
export function metadataRoute(options: ProtectedResourceMetadataOptions): MetadataRoute {
  return {
    path: protectedResourceMetadataPath(options.resource),
    body: JSON.stringify(protectedResourceMetadata(options)),
    headers: {
      'content-type': 'application/json',
      'cache-control': 'public, max-age=300',
      'access-control-allow-origin': '*',
    },
  };
}

/** @internal Headers for a CORS preflight on the metadata route. */
export const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': '*',
  'access-control-max-age': '86400',
};
