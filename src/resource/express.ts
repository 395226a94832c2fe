/**
 * Express (and plain node:http / connect) adapter. Typed structurally so `express` is never imported at run time:
 * Express's `Request`/`Response`/`NextFunction` satisfy these shapes.
 */
import { ResourceAuthError } from './errors.js';
import { authenticate, bearerContext, contextErrorResponse, metadataRoute, PREFLIGHT_HEADERS } from './http.js';
import type { BearerAuthOptions, RequestAuth } from './http.js';
import type { ProtectedResourceMetadataOptions } from './metadata.js';
import type { ResourceVerifier } from './verifier.js';

declare global {
  // Express merges this namespace into its Request (@types/express-serve-static-core), so importing
  // `gatehouse/resource` types `req.auth`; the global form needs no @types/express for Fastify or fetch users.
  namespace Express {
    interface Request {
      /** Set by {@link requireBearerAuth}: the verified access token. */
      auth?: RequestAuth;
    }
  }
}

/** The parts of an Express / node:http request the middleware reads. */
export interface NodeRequestLike {
  headers: Record<string, string | string[] | undefined>;
  headersDistinct?: Record<string, string[] | undefined>;
  url?: string;
  originalUrl?: string;
  method?: string;
}

/** The parts of an Express / node:http response the middleware writes. */
export interface NodeResponseLike {
  statusCode: number;
  readonly headersSent?: boolean;
  setHeader(name: string, value: string): unknown;
  end(chunk?: string): unknown;
}

/** Express-style `next`. */
export type NextLike = (error?: unknown) => void;

/** An Express-compatible middleware. */
export type NodeMiddleware = (req: NodeRequestLike, res: NodeResponseLike, next: NextLike) => void | Promise<void>;

function send(res: NodeResponseLike, status: number, headers: Record<string, string>, body?: string): void {
  if (res.headersSent === true) return;
  res.statusCode = status;
  for (const name in headers) res.setHeader(name, headers[name]!);
  res.end(body);
}

/** Node discards repeated Authorization headers in `headers`; `headersDistinct` still has them all. */
function authorizationOf(req: NodeRequestLike): string | readonly string[] | undefined {
  const all = req.headersDistinct?.['authorization'];
  return all !== undefined && all.length > 1 ? all : req.headers['authorization'];
}

/**
 * Express middleware: accepts only `Authorization: Bearer`, sets `req.auth` ({@link RequestAuth}, compatible with
 * the MCP SDK), or answers 401 / 403 / 400 with a `WWW-Authenticate` challenge and `{ error, error_description }`.
 * @example
 * app.post('/mcp', requireBearerAuth(verifier, { requiredScopes: ['mcp'] }), (req, res) => { req.auth?.clientId; ... });
 */
export function requireBearerAuth(verifier: ResourceVerifier, options: BearerAuthOptions = {}): NodeMiddleware {
  const ctx = bearerContext(verifier, options);
  return async (req, res, next) => {
    try {
      (req as { auth?: RequestAuth }).auth = await authenticate(ctx, {
        authorization: authorizationOf(req),
        url: req.originalUrl ?? req.url,
        method: req.method,
        dpop: req.headersDistinct?.['dpop'] ?? req.headers['dpop'],
      });
    } catch (error) {
      if (!(error instanceof ResourceAuthError)) return next(error);
      const out = contextErrorResponse(ctx, error);
      return send(res, out.status, out.headers, JSON.stringify(out.body));
    }
    next();
  };
}

/**
 * Express middleware serving the RFC 9728 metadata at its well-known path (GET, HEAD, CORS preflight); mount it at
 * the app root, before any auth middleware.
 * @example
 * app.use(expressProtectedResourceMetadata({ resource, authorizationServers: [issuer], scopesSupported: ['mcp'] }));
 */
export function expressProtectedResourceMetadata(options: ProtectedResourceMetadataOptions): NodeMiddleware {
  const route = metadataRoute(options);
  return (req, res, next) => {
    const url = req.originalUrl ?? req.url ?? '';
    const q = url.indexOf('?');
    if ((q === -1 ? url : url.slice(0, q)) !== route.path) return next();
    if (req.method === 'GET' || req.method === 'HEAD') {
      return send(res, 200, route.headers, req.method === 'GET' ? route.body : undefined);
    }
    if (req.method === 'OPTIONS') return send(res, 204, PREFLIGHT_HEADERS);
    send(res, 405, { allow: 'GET, HEAD, OPTIONS' });
  };
}
