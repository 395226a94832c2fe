/**
 * The Fastify app: routes -> endpoint handlers. HTTP framing lives here and only here: form bodies (with duplicate
 * detection), the Basic header, cookies, CORS, status codes and headers.
 */
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { interactionDeclaration } from '../authorization/interaction.js';
import type { Deps } from '../context.js';
import { parseRawParams } from '../core/params.js';
import { issuerPath } from '../endpoints/metadata.js';
import { makeErrorHandler, StoreStatus } from './errors.js';
import { browserPages, type BrowserPages } from './browser-pages.js';
import type { OAuthError } from '../model/errors.js';
import { serverLimitOptions } from './limits.js';
import { refuseNulCharacters } from './nul-guard.js';
import { requestIdFor, sendRequestId } from './request-id.js';
import { metricsRoute } from './metrics.js';
import { accountRoutes } from './routes/account.js';
import { adminRoutes } from './routes/admin.js';
import { authorizationRoutes } from './routes/authorization.js';
import {
  endpointPathMatcher,
  scopeFor,
  scopeOf,
  servedPaths,
  setScope,
  type IssuerScope,
  type AppOptions,
  type RouteContext,
  type RoutePlugin,
} from './routes/context.js';
import { reservedSegments, tenantPathRewriter } from './tenant-routing.js';
import { discoveryRoutes } from './routes/discovery.js';
import { healthRoutes } from './routes/health.js';
import { deviceRoutes } from './routes/device.js';
import { parRoutes } from './routes/par.js';
import { registrationRoutes } from './routes/registration.js';
import { setupRoutes } from './routes/setup.js';
import { tokenRoutes } from './routes/token.js';

export type { AppOptions } from './routes/context.js';

/**
 * The endpoint groups, in registration order: a new endpoint group is one plugin module plus one entry here. Their
 * endpoint declarations are the one list of endpoints (discovery fields in this order, CORS, error pages).
 */
const ROUTE_PLUGINS: readonly RoutePlugin[] = [
  discoveryRoutes,
  healthRoutes,
  authorizationRoutes,
  parRoutes,
  deviceRoutes,
  accountRoutes,
  setupRoutes,
  tokenRoutes,
  registrationRoutes,
];
const ENDPOINTS = ROUTE_PLUGINS.flatMap((plugin) => plugin.endpoints);

/** The interaction id in a path: it names a pending sign-in, so it is never logged. */
const INTERACTION_ID = new RegExp(`${interactionDeclaration.path}/[^/]+`);

/**
 * The request path as logged: without the query (a client may put `?access_token=` in a URL) and with the interaction
 * id redacted (it names a pending sign-in; the browser binding guards it, but logs are read by more people).
 */
export function loggedPath(url: string): string {
  return url.split('?', 1)[0]!.replace(INTERACTION_ID, `${interactionDeclaration.path}/[redacted]`);
}

/** Fastify's request serializer, with the path made safe (see loggedPath). */
function serializeRequest(req: FastifyRequest) {
  return {
    method: req.method,
    // The path as sent: a tenant's requests keep their tenant segment (rewriteUrl takes it out for routing).
    url: typeof req.originalUrl === 'string' ? loggedPath(req.originalUrl) : undefined,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/** The tenant a request's path named (rewriteUrl puts it on the raw request; the scope hook reads it). */
const TENANT = Symbol('gatehouse.tenant');

/** The first path segments of the deployment's own endpoints: no tenant may be named like one. */
export function reservedTenantIds(issuer: string): Set<string> {
  return reservedSegments(
    issuer,
    ENDPOINTS.flatMap((endpoint) => servedPaths(endpoint, issuer)),
  );
}

/** Builds the Fastify app. Call `listen` on it, or `inject` in tests. */
export function buildApp(deps: Deps, options: AppOptions = {}): FastifyInstance {
  const { config, logger } = deps;
  const tenants = options.tenants;
  const routeTenant = tenants ? tenantPathRewriter(config.issuer, reservedTenantIds(config.issuer)) : undefined;
  const rewriteUrl =
    routeTenant &&
    ((req: IncomingMessage): string => {
      const routed = routeTenant(req.url ?? '/');
      if (routed.tenant) (req as unknown as Record<symbol, string>)[TENANT] = routed.tenant;
      return routed.url;
    });
  const app = Fastify({
    // A tenant's path is served by the deployment's routes: the tenant segment comes out here (http/tenant-routing).
    ...(rewriteUrl && { rewriteUrl }),
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
  // First of all hooks: which issuer the request is for; an unknown tenant is a plain 404.
  const ownScope = scopeFor(deps);
  app.addHook('onRequest', async (request, reply) => {
    const tenant = (request.raw as unknown as Record<symbol, string | undefined>)[TENANT];
    if (tenant === undefined) return setScope(request, ownScope);
    const tenantDeps = await tenants!.resolve(tenant);
    if (!tenantDeps) {
      return reply
        .code(404)
        .type('application/json')
        .send('{"error":"not_found","error_description":"no such issuer"}');
    }
    setScope(request, scopeFor(tenantDeps));
  });
  const storeStatus = new StoreStatus(logger);
  const prefix = issuerPath(config.issuer);

  // Form bodies are parsed once here, keeping every value so duplicates can be refused (RFC 6749 §3.1).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseRawParams(body as string));
  });
  const pagePath = endpointPathMatcher(
    ENDPOINTS.filter((e) => e.pages),
    config.issuer,
  );
  const isPagePath = (request: FastifyRequest) => pagePath(request.url.split('?', 1)[0]!);
  // The error page in the look and language of the request's issuer (the deployment's before the scope is known).
  const pagesOfScope = new WeakMap<IssuerScope, BrowserPages>();
  const renderPage = (request: FastifyRequest, error: OAuthError) => {
    const scope = scopeOf(request) ?? ownScope;
    let pages = pagesOfScope.get(scope);
    if (!pages) pagesOfScope.set(scope, (pages = browserPages(scope.deps, scope.issuerPath)));
    return pages.errorDocument(error, request.id);
  };
  const errorHandler = makeErrorHandler(storeStatus, config.retryAfterSeconds, isPagePath, renderPage);
  app.setErrorHandler(errorHandler);
  // After body parsing, before any handler: no value may carry U+0000.
  app.addHook('preValidation', async (request) => refuseNulCharacters(request));
  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).type('application/json').send('{"error":"not_found","error_description":"no such endpoint"}');
  });

  // CORS for browser-based clients (MCP Inspector): any origin, no credentials, on the endpoints that declare it.
  const corsPath = endpointPathMatcher(
    ENDPOINTS.filter((e) => e.cors),
    config.issuer,
  );
  app.addHook('onRequest', async (request, reply) => {
    if (!corsPath(request.url.split('?', 1)[0]!)) return;
    reply.header('access-control-allow-origin', '*');
    reply.header('access-control-expose-headers', 'WWW-Authenticate, Retry-After, X-Request-Id, DPoP-Nonce');
    if (request.method === 'OPTIONS') {
      reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, PUT, DELETE, OPTIONS')
        .header('access-control-allow-headers', 'Authorization, Content-Type, MCP-Protocol-Version, DPoP')
        .header('access-control-max-age', '86400')
        .send();
    }
  });
  // Metrics (off unless configured): every response counted and timed by its route pattern.
  const metrics = options.metrics;
  if (metrics) {
    app.addHook('onResponse', (request, reply) => metrics.observeRequest(request, reply));
    if (metrics.tokenSha256) metricsRoute(app, `${prefix}/metrics`, metrics, metrics.tokenSha256);
  }
  // Any successful request proves the store is reachable again (logged once per state change).
  app.addHook('onResponse', async (_request, reply) => {
    if (storeStatus.isDown && reply.statusCode < 500) storeStatus.succeeded();
  });

  // The endpoint groups, each a Fastify plugin; they inherit every hook, parser and handler set above.
  const context: RouteContext = { deps, options, issuerPath: prefix, storeStatus, endpoints: ENDPOINTS };
  for (const plugin of ROUTE_PLUGINS) void app.register(plugin.routes, context);
  void app.register(adminRoutes, context);

  return app;
}
