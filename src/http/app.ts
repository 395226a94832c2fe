/**
 * The Fastify app: routes -> endpoint handlers. HTTP framing lives here and only here: form bodies (with duplicate
 * detection), the Basic header, cookies, CORS, status codes and headers.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Deps } from '../context.js';
import { InvalidRequest } from '../core/errors.js';
import { bearerToken, parseRawParams, type RawParams } from '../core/params.js';
import { authorizeEndpoint } from '../endpoints/authorize.js';
import { healthCheck } from '../endpoints/health.js';
import { submitConsent, submitLogin, viewInteraction, type InteractionView } from '../endpoints/interaction.js';
import { introspectEndpoint } from '../endpoints/introspect.js';
import { buildMetadata, metadataPaths, PATHS } from '../endpoints/metadata.js';
import {
  deleteClientRegistration,
  readClientRegistration,
  registerClient,
  updateClientRegistration,
} from '../endpoints/register.js';
import { revokeEndpoint } from '../endpoints/revoke.js';
import { tokenEndpoint } from '../endpoints/token.js';
import { userinfoEndpoint } from '../endpoints/userinfo.js';
import { consentPage, errorPage, loginPage } from '../ui/pages.js';
import { PAGE_HEADERS } from '../ui/html.js';
import { browserBinding, checkCsrf, csrfToken, newBrowserNonce, parseCookies, setCookie, signValue, unsignValue } from './cookies.js';
import { makeErrorHandler, StoreStatus, toOAuthError } from './errors.js';
import { serverLimitOptions } from './limits.js';
import { refuseNulCharacters } from './nul-guard.js';
import { requestIdFor, sendRequestId } from './request-id.js';
import type { SessionRecord } from '../storage/types.js';

const CSRF_COOKIE = 'gatehouse_csrf';

/** Options for the HTTP app beyond the deps. */
export interface AppOptions {
  /** Extra metadata fields (e.g. client_id_metadata_document_supported). */
  metadataExtra?: Record<string, unknown>;
  /** Extra consent-page warnings for a client (e.g. CIMD localhost-only redirect URIs). */
  consentWarnings?: (client: import('../storage/types.js').ClientRecord) => string[];
}

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
  const secureCookies = issuerUrl.protocol === 'https:';
  const cookiePath = prefix || '/';

  // Form bodies are parsed once here, keeping every value so duplicates can be refused (RFC 6749 §3.1).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseRawParams(body as string));
  });
  const isPagePath = (request: FastifyRequest) => {
    const path = request.url.split('?', 1)[0]!;
    return path === prefix + PATHS.authorize || path.startsWith(`${prefix}/interaction/`);
  };
  const errorHandler = makeErrorHandler(logger, storeStatus, config.retryAfterSeconds, isPagePath);
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

  const formParams = (request: FastifyRequest): RawParams => {
    const body = request.body;
    if (body === undefined || body === null) return {};
    if (typeof body !== 'object' || Array.isArray(body) || request.headers['content-type']?.includes('json')) {
      throw new InvalidRequest('the body must be application/x-www-form-urlencoded');
    }
    return body as RawParams;
  };
  const queryParams = (request: FastifyRequest): RawParams => {
    const q = request.url.indexOf('?');
    return q < 0 ? {} : parseRawParams(request.url.slice(q + 1));
  };
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).header('cache-control', 'no-store').header('pragma', 'no-cache').type('application/json').send(JSON.stringify(body));

  const cookies = (request: FastifyRequest) => parseCookies(request.headers.cookie);
  const currentSession = async (request: FastifyRequest): Promise<SessionRecord | undefined> => {
    const id = unsignValue(cookies(request)[config.session.cookieName], deps.cookieKey);
    return id ? deps.storage.getSession(id) : undefined;
  };
  /** The binding of the requesting browser, from its signed nonce cookie; undefined without one. */
  const requestBinding = (request: FastifyRequest): string | undefined => {
    const nonce = unsignValue(cookies(request)[CSRF_COOKIE], deps.cookieKey);
    return nonce ? browserBinding(nonce) : undefined;
  };
  const browserNonce = (request: FastifyRequest, reply: FastifyReply): string => {
    const existing = unsignValue(cookies(request)[CSRF_COOKIE], deps.cookieKey);
    if (existing) return existing;
    const nonce = newBrowserNonce();
    reply.header('set-cookie', setCookie(CSRF_COOKIE, signValue(nonce, deps.cookieKey), { secure: secureCookies, path: cookiePath }));
    return nonce;
  };
  const sendPage = (reply: FastifyReply, status: number, html: string) => reply.code(status).headers(PAGE_HEADERS).send(html);
  const pageError = (reply: FastifyReply, err: unknown) => {
    const error = toOAuthError(err, config.retryAfterSeconds);
    if (error.status >= 500) reply.log.error({ err }, 'interaction failed');
    for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
    return sendPage(reply, error.status, errorPage(error, reply.request.id));
  };
  const interactionPath = (id: string) => `${prefix}/interaction/${encodeURIComponent(id)}`;
  const renderView = (request: FastifyRequest, reply: FastifyReply, view: InteractionView, status = 200) => {
    if (view.stage === 'done') return reply.code(303).header('cache-control', 'no-store').redirect(view.location, 303);
    const nonce = browserNonce(request, reply);
    const csrf = csrfToken(deps.cookieKey, nonce, view.interaction.id);
    if (view.stage === 'login') {
      return sendPage(reply, status, loginPage({ action: `${interactionPath(view.interaction.id)}/login`, csrf, client: view.client, redirectUri: view.interaction.redirectUri, error: view.error, username: view.username }));
    }
    return sendPage(
      reply,
      status,
      consentPage({
        action: `${interactionPath(view.interaction.id)}/consent`,
        csrf,
        client: view.client,
        interaction: view.interaction,
        user: view.user,
        warnings: options.consentWarnings?.(view.client) ?? [],
      }),
    );
  };

  // --- discovery and keys ---
  const metadataJson = () => JSON.stringify(buildMetadata(deps, options.metadataExtra));
  let metadataCache = metadataJson();
  let metadataAlgs = deps.keys.algorithms().join();
  for (const path of metadataPaths(config.issuer)) {
    app.get(path, async (_request, reply) => {
      // Rebuilt only when the key algorithms change (they appear in id_token_signing_alg_values_supported).
      const algs = deps.keys.algorithms().join();
      if (algs !== metadataAlgs) {
        metadataAlgs = algs;
        metadataCache = metadataJson();
      }
      return reply.header('cache-control', 'public, max-age=300').type('application/json').send(metadataCache);
    });
  }
  app.get(prefix + PATHS.jwks, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('application/jwk-set+json').send(deps.keys.publicJwksJson()),
  );

  // --- health ---
  const health = async (_request: FastifyRequest, reply: FastifyReply) => {
    const report = await healthCheck(deps);
    if (report.storage.status === 'up') storeStatus.succeeded();
    return json(reply, report.status === 'ok' ? 200 : 503, report);
  };
  app.get('/health', health);
  if (prefix) app.get(prefix + '/health', health);

  // --- authorization and interaction ---
  const authorize = async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const raw = request.method === 'POST' ? formParams(request) : queryParams(request);
      // The nonce cookie is set here, before the 303 to the interaction: a top-level navigation, so SameSite=Lax
      // cookies come back on every interaction step.
      const bindBrowser = () => browserBinding(browserNonce(request, reply));
      const outcome = await authorizeEndpoint(raw, await currentSession(request), deps, bindBrowser);
      if (outcome.kind === 'redirect') return reply.header('cache-control', 'no-store').redirect(outcome.location, 303);
      if (outcome.kind === 'interaction') return reply.header('cache-control', 'no-store').redirect(interactionPath(outcome.interactionId), 303);
      return sendPage(reply, outcome.error.status, errorPage(outcome.error, request.id));
    } catch (err) {
      return pageError(reply, err);
    }
  };
  app.get(prefix + PATHS.authorize, authorize);
  app.post(prefix + PATHS.authorize, authorize);

  app.get<{ Params: { id: string } }>(`${prefix}/interaction/:id`, async (request, reply) => {
    try {
      return renderView(request, reply, await viewInteraction(request.params.id, await currentSession(request), requestBinding(request), deps));
    } catch (err) {
      return pageError(reply, err);
    }
  });

  const requireCsrf = (request: FastifyRequest, id: string, form: RawParams) => {
    const nonce = unsignValue(cookies(request)[CSRF_COOKIE], deps.cookieKey);
    const submitted = form.csrf?.length === 1 ? form.csrf[0] : undefined;
    if (!checkCsrf(deps.cookieKey, nonce, id, submitted)) {
      const err = new InvalidRequest('the form has expired or did not come from this site; go back and try again');
      err.redirectable = false;
      throw err;
    }
  };
  const field = (form: RawParams, name: string): string | undefined => {
    const v = form[name];
    if (v && v.length > 1) throw new InvalidRequest(`parameter ${name} must not be included more than once`);
    return v?.[0];
  };

  app.post<{ Params: { id: string } }>(`${prefix}/interaction/:id/login`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, request.params.id, form);
      const outcome = await submitLogin(
        request.params.id,
        requestBinding(request),
        field(form, 'username') ?? '',
        field(form, 'password') ?? '',
        request.ip,
        deps,
      );
      if (!outcome.ok && outcome.retryAfterSeconds !== undefined) {
        // Throttled: the password was not checked; the form comes back with when to try again.
        reply.header('retry-after', String(outcome.retryAfterSeconds));
        return renderView(request, reply, outcome.view, 429);
      }
      if (!outcome.ok) return renderView(request, reply, outcome.view, 401);
      reply.header(
        'set-cookie',
        setCookie(config.session.cookieName, signValue(outcome.session.id, deps.cookieKey), {
          secure: secureCookies,
          path: cookiePath,
          maxAgeSeconds: config.session.ttl,
        }),
      );
      return reply.header('cache-control', 'no-store').redirect(interactionPath(request.params.id), 303);
    } catch (err) {
      return pageError(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>(`${prefix}/interaction/:id/consent`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, request.params.id, form);
      const location = await submitConsent(request.params.id, await currentSession(request), requestBinding(request), field(form, 'decision'), deps);
      return reply.header('cache-control', 'no-store').redirect(location, 303);
    } catch (err) {
      return pageError(reply, err);
    }
  });

  // --- token, revocation, introspection, userinfo ---
  app.post(prefix + PATHS.token, async (request, reply) => json(reply, 200, await tokenEndpoint(formParams(request), request.headers.authorization, deps)));
  app.post(prefix + PATHS.revoke, async (request, reply) => {
    await revokeEndpoint(formParams(request), request.headers.authorization, deps);
    return reply.code(200).header('cache-control', 'no-store').send();
  });
  app.post(prefix + PATHS.introspect, async (request, reply) =>
    json(reply, 200, await introspectEndpoint(formParams(request), request.headers.authorization, deps)),
  );
  // RFC 6750 §3: a request without a usable token gets the challenge, here with error="invalid_request" (§3.1).
  const malformedBearer = (description: string) =>
    new InvalidRequest(description, { headers: { 'www-authenticate': 'Bearer realm="gatehouse", error="invalid_request"' } });
  const userinfo = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers.authorization;
    let token: string | undefined;
    if (header !== undefined) {
      token = bearerToken(header);
      if (!token) throw malformedBearer('malformed Authorization header');
    }
    if (request.method === 'POST') {
      const bodyToken = formParams(request).access_token;
      if (bodyToken && token) throw malformedBearer('use only one method to send the access token');
      if (bodyToken) {
        if (bodyToken.length > 1) throw malformedBearer('access_token must not be included more than once');
        token = bodyToken[0];
      }
    }
    return json(reply, 200, await userinfoEndpoint(token, deps));
  };
  app.get(prefix + PATHS.userinfo, userinfo);
  app.post(prefix + PATHS.userinfo, userinfo);

  // --- dynamic client registration (RFC 7591 / 7592) ---
  const jsonBody = (request: FastifyRequest): unknown => {
    if (!request.headers['content-type']?.toLowerCase().startsWith('application/json')) {
      throw new InvalidRequest('the body must be application/json');
    }
    return request.body;
  };
  app.post(prefix + PATHS.register, async (request, reply) =>
    json(reply, 201, await registerClient(jsonBody(request), request.headers.authorization, deps, request.ip)),
  );
  app.get<{ Params: { id: string } }>(`${prefix}${PATHS.register}/:id`, async (request, reply) =>
    json(reply, 200, await readClientRegistration(request.params.id, request.headers.authorization, deps)),
  );
  app.put<{ Params: { id: string } }>(`${prefix}${PATHS.register}/:id`, async (request, reply) =>
    json(reply, 200, await updateClientRegistration(request.params.id, jsonBody(request), request.headers.authorization, deps)),
  );
  app.delete<{ Params: { id: string } }>(`${prefix}${PATHS.register}/:id`, async (request, reply) => {
    await deleteClientRegistration(request.params.id, request.headers.authorization, deps);
    return reply.code(204).header('cache-control', 'no-store').send();
  });

  return app;
}
