/** Framework-neutral request authentication shared by the Express, Fastify and fetch adapters. */
import {
  dpopWwwAuthenticate,
  extractAccessToken,
  extractBearerToken,
  hasQueryAccessToken,
  wwwAuthenticate,
} from './challenge.js';
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
  /**
   * The public base URL clients call this server at (scheme, host, port, and a path prefix a proxy strips), for the
   * `htu` of DPoP proofs: the request's path is appended to it. Default: the origin of the verifier's `resource`, so
   * a server behind a TLS-terminating proxy checks the URL the client signed, not the one the proxy forwarded.
   */
  publicBaseUrl?: string;
}

/** What an adapter reads from a request for {@link authenticate}. */
export interface RequestParts {
  authorization: string | readonly string[] | null | undefined;
  /** The request target as received (a path, or an absolute URL for fetch-style requests). */
  url: string | undefined;
  method: string | undefined;
  /** Every value of the `DPoP` header. */
  dpop: string | readonly string[] | null | undefined;
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
  /** DPoP proof algorithms for the challenge; empty when the verifier does not take DPoP. */
  dpopAlgorithms: readonly string[];
  /** The public base URL without a trailing slash (DPoP htu). */
  publicBaseUrl: string;
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
    dpopAlgorithms: verifier.dpopAlgorithms,
    publicBaseUrl: (options.publicBaseUrl ?? new URL(verifier.resource).origin).replace(/\/+$/, ''),
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

/** The path of a request target (a path or an absolute URL), without query and fragment. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  let path = url;
  if (!path.startsWith('/')) {
    try {
      path = new URL(path).pathname;
    } catch {
      return '/';
    }
  }
  const end = path.search(/[?#]/);
  return end === -1 ? path : path.slice(0, end);
}

/** @internal Header → token → verified auth. Throws {@link ResourceAuthError}. */
export async function authenticate(ctx: BearerContext, request: RequestParts): Promise<RequestAuth> {
  const { authorization, url } = request;
  // RFC 6750 §2.3 / §5.3 and MCP: tokens MUST NOT travel in the query string; only the header (§2.1) is accepted.
  if (hasQueryAccessToken(url)) {
    throw new ResourceAuthError(
      'invalid_request',
      'access tokens must be sent in the Authorization header, not the URL',
    );
  }
  if (ctx.dpopAlgorithms.length === 0) {
    const token = extractBearerToken(authorization);
    return toRequestAuth(await ctx.verifier.verify(token, ctx.verifyOptions), ctx.verifier.resource);
  }
  const { token, scheme } = extractAccessToken(authorization);
  if (scheme === 'Bearer') {
    // The hot path: nothing DPoP-specific is read unless the token turns out to be bound.
    return toRequestAuth(await ctx.verifier.verify(token, ctx.verifyOptions), ctx.verifier.resource);
  }
  try {
    const info = await ctx.verifier.verify(token, {
      ...ctx.verifyOptions,
      scheme,
      dpop: { proof: request.dpop, method: request.method ?? 'GET', url: ctx.publicBaseUrl + pathOf(url) },
    });
    return toRequestAuth(info, ctx.verifier.resource);
  } catch (error) {
    // The request used DPoP: its challenge carries the error (RFC 9449 §7.1).
    if (error instanceof ResourceAuthError && error.scheme !== 'DPoP' && !error.credentialsMissing) {
      throw new ResourceAuthError(error.code, error.description, {
        cause: error,
        scheme: 'DPoP',
        ...(error.requiredScopes !== undefined && { requiredScopes: error.requiredScopes }),
        ...(error.dpopNonce !== undefined && { dpopNonce: error.dpopNonce }),
      });
    }
    throw error;
  }
}

/**
 * Turns a {@link ResourceAuthError} into the response RFC 6750 §3 requires: 401 / 403 / 400 with a
 * `WWW-Authenticate: Bearer` challenge carrying `resource_metadata` (RFC 9728 §5.1), or 503 without one.
 */
export function bearerErrorResponse(
  error: ResourceAuthError,
  options: {
    resourceMetadataUrl?: string;
    scope?: readonly string[];
    realm?: string;
    /** The DPoP proof algorithms accepted: adds a `DPoP` challenge beside Bearer (RFC 9449 §7.1). */
    dpopAlgorithms?: readonly string[];
  } = {},
): BearerErrorResponse {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  };
  if (error.status !== 503) {
    const scope = error.code === 'insufficient_scope' ? (error.requiredScopes ?? options.scope) : options.scope;
    // RFC 6750 §3: a 401 MUST carry WWW-Authenticate; §3.1: no error code when the request had no credentials.
    // With DPoP both schemes are offered; the error goes with the scheme it concerns (RFC 9449 §7.1).
    const dpop = options.dpopAlgorithms !== undefined && options.dpopAlgorithms.length > 0;
    const bearerError = !error.credentialsMissing && (!dpop || error.scheme === 'Bearer');
    const bearer = wwwAuthenticate({
      realm: options.realm,
      resourceMetadata: options.resourceMetadataUrl,
      error: bearerError ? error.code : undefined,
      errorDescription: bearerError ? error.description : undefined,
      scope,
    });
    if (dpop) {
      const dpopError = !error.credentialsMissing && error.scheme === 'DPoP';
      headers['www-authenticate'] = `${bearer}, ${dpopWwwAuthenticate({
        algorithms: options.dpopAlgorithms!,
        realm: options.realm,
        error: dpopError ? error.code : undefined,
        errorDescription: dpopError ? error.description : undefined,
        ...(dpopError && { scope }),
      })}`;
      if (error.dpopNonce !== undefined) headers['dpop-nonce'] = error.dpopNonce;
    } else {
      headers['www-authenticate'] = bearer;
    }
  }
  return { status: error.status, headers, body: error.toJSON() };
}

/** @internal The error response for a middleware context. */
export function contextErrorResponse(ctx: BearerContext, error: ResourceAuthError): BearerErrorResponse {
  return bearerErrorResponse(error, {
    resourceMetadataUrl: ctx.resourceMetadataUrl,
    scope: ctx.challengeScopes,
    realm: ctx.realm,
    dpopAlgorithms: ctx.dpopAlgorithms,
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
