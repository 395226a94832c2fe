/**
 * The Fastify app: routes -> endpoint handlers. HTTP framing lives here and only here: form bodies (with duplicate
 * detection), the Basic header, cookies, CORS, status codes and headers.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Deps } from '../context.js';
import { parseRawParams } from '../core/params.js';
import { metadataPaths, PATHS } from '../endpoints/metadata.js';
import { makeErrorHandler, StoreStatus } from './errors.js';
import { serverLimitOptions } from './limits.js';
import { refuseNulCharacters } from './nul-guard.js';
import { requestIdFor, sendRequestId } from './request-id.js';
import { authorizationRoutes } from './routes/authorization.js';
import type { AppOptions, RouteContext } from './routes/context.js';
import { discoveryRoutes } from './routes/discovery.js';
import { healthRoutes } from './routes/health.js';
import { registrationRoutes } from './routes/registration.js';
import { tokenRoutes } from './routes/token.js';

export type { AppOptions } from './routes/context.js';

/** The endpoint groups, in registration order: a new endpoint group is one plugin module plus one entry here. */
const ROUTE_PLUGINS = [discoveryRoutes, healthRoutes, authorizationRoutes, tokenRoutes, registrationRoutes];

/**
 * The request path as logged: without the query (a client may put `?access_token=` in a URL) and with the interaction
 * id redacted (it names a pending sign-in; the browser binding guards it, but logs are read by more people).
 */
export function loggedPath(url: string): string {
  return url.split('?', 1)[0]!.replace(/\/interaction\/[^/]+/, '/interaction/[redacted]');
}

/** Fastify's request serializer, with the path made safe (see loggedPath). */
function serializeRequest(req: FastifyRequest) {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? loggedPath(req.url) : undefined,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/** Builds the Fastify app. Call `listen` on it, or `inject` in tests. */
export function buildApp(deps: Deps, options: AppOptions = {}): FastifyInstance {
  const { config, logger } = deps;
  const app = Fastify({
    // A child whose req serializer replaces Fastify's (Fastify merges the instance's serializers over its own).
    loggerInstance: logger.child({}, { serializers: { req: serializeRequest } }) as unknown as FastifyBaseLogger,
    // Per-request lines only at debug: they cost throughput and add nothing an access log does not.
    logController: new LogController({ disableRequestLogging: !logger.isLevelEnabled('debug') }),
    bodyLimit: config.bodyLimit,
    // Fastify also accepts a hop count at run time; its types omit it.
    trustProxy: config.trustProxy as boolean | string[],
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: false },
    ...serverLimitOptions(config.http),
    // Routing errors (malformed URL, over-long path parameter) get the same mapping as every other error.
    frameworkErrors: (err, request, reply) => void errorHandler(err, request, reply),
    // X-Request-Id is read (validated) by requestIdFor, not taken verbatim by Fastify.
    requestIdHeader: false,
    genReqId: requestIdFor,
  });
  app.addHook('onSend', sendRequestId);
  const storeStatus = new StoreStatus(logger);
  const issuerUrl = new URL(config.issuer);
  const prefix = issuerUrl.pathname.replace(/\/$/, '');

  // Form bodies are parsed once here, keeping every value so duplicates can be refused (RFC 6749 §3.1).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseRawParams(body as string));
  });
  const isPagePath = (request: FastifyRequest) => {
    const path = request.url.split('?', 1)[0]!;
    return path === prefix + PATHS.authorize || path.startsWith(`${prefix}/interaction/`);
  };
  const errorHandler = makeErrorHandler(storeStatus, config.retryAfterSeconds, isPagePath);
  app.setErrorHandler(errorHandler);
  // After body parsing, before any handler: no value may carry U+0000.
  app.addHook('preValidation', async (request) => refuseNulCharacters(request));
  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).type('application/json').send('{"error":"not_found","error_description":"no such endpoint"}');
  });

  // CORS for browser-based clients (MCP Inspector): any origin, no credentials.
  const corsPaths = new Set([
    ...metadataPaths(config.issuer),
    prefix + PATHS.jwks,
    prefix + PATHS.token,
    prefix + PATHS.register,
    prefix + PATHS.revoke,
    prefix + PATHS.introspect,
    prefix + PATHS.userinfo,
  ]);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    if (!corsPaths.has(path) && !path.startsWith(prefix + PATHS.register + '/')) return;
    reply.header('access-control-allow-origin', '*');
    reply.header('access-control-expose-headers', 'WWW-Authenticate, Retry-After, X-Request-Id');
    if (request.method === 'OPTIONS') {
      reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, PUT, DELETE, OPTIONS')
        .header('access-control-allow-headers', 'Authorization, Content-Type, MCP-Protocol-Version')
        .header('access-control-max-age', '86400')
        .send();
    }
  });
  // Any successful request proves the store is reachable again (logged once per state change).
  app.addHook('onResponse', async (_request, reply) => {
    if (storeStatus.isDown && reply.statusCode < 500) storeStatus.succeeded();
  });

  // The endpoint groups, each a Fastify plugin; they inherit every hook, parser and handler set above.
  const context: RouteContext = { deps, options, issuerPath: prefix, storeStatus };
  for (const routes of ROUTE_PLUGINS) void app.register(routes, context);

  return app;
}
