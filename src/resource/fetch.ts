/** fetch-style adapter (`(Request) => Promise<Response>`): Hono, Bun, Deno, Workers, Next.js route handlers. */
import { ResourceAuthError } from './errors.js';
import { authenticate, bearerContext, contextErrorResponse, metadataRoute, PREFLIGHT_HEADERS } from './http.js';
import type { BearerAuthOptions, RequestAuth } from './http.js';
import type { ProtectedResourceMetadataOptions } from './metadata.js';
import type { ResourceVerifier } from './verifier.js';

/** A fetch-style handler that receives the verified auth; extra arguments (env, ctx) are passed through. */
export type AuthenticatedFetchHandler<A extends unknown[] = []> = (
  request: Request,
  auth: RequestAuth,
  ...rest: A
) => Response | Promise<Response>;

/**
 * Wraps a fetch-style handler: it runs only with a valid `Authorization: Bearer` token; otherwise 401 / 403 / 400 is
 * returned with a `WWW-Authenticate` challenge and `{ error, error_description }`.
 * @example
 * export default { fetch: withBearerAuth(verifier, (req, auth) => Response.json({ hello: auth.subject })) };
 */
export function withBearerAuth<A extends unknown[] = []>(
  verifier: ResourceVerifier,
  handler: AuthenticatedFetchHandler<A>,
  options: BearerAuthOptions = {},
): (request: Request, ...rest: A) => Promise<Response> {
  const ctx = bearerContext(verifier, options);
  return async (request, ...rest) => {
    let auth: RequestAuth;
    try {
      // Repeated Authorization fields arrive joined by ", ", which the header parser refuses (400).
      auth = await authenticate(ctx, {
        authorization: request.headers.get('authorization'),
        url: request.url,
        method: request.method,
        // Repeated DPoP fields arrive joined by ", ": no JWS contains a comma, so the proof check refuses them.
        dpop: request.headers.get('dpop'),
      });
    } catch (error) {
      if (!(error instanceof ResourceAuthError)) throw error;
      const out = contextErrorResponse(ctx, error);
      return new Response(JSON.stringify(out.body), { status: out.status, headers: out.headers });
    }
    return handler(request, auth, ...rest);
  };
}

/**
 * fetch-style RFC 9728 metadata route: returns the response for a request to the well-known path, else `undefined`.
 * @example
 * const metadata = fetchProtectedResourceMetadata({ resource, authorizationServers: [issuer] });
 * const handle = (req: Request) => metadata(req) ?? api(req);
 */
export function fetchProtectedResourceMetadata(
  options: ProtectedResourceMetadataOptions,
): (request: Request) => Response | undefined {
  const route = metadataRoute(options);
  return (request) => {
    if (new URL(request.url).pathname !== route.path) return undefined;
    if (request.method === 'GET') return new Response(route.body, { status: 200, headers: route.headers });
    if (request.method === 'HEAD') return new Response(null, { status: 200, headers: route.headers });
    if (request.method === 'OPTIONS') return new Response(null, { status: 204, headers: PREFLIGHT_HEADERS });
    return new Response(null, { status: 405, headers: { allow: 'GET, HEAD, OPTIONS' } });
  };
}
