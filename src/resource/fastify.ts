/** Fastify adapter: a preHandler hook (and a plugin form) setting `request.auth`, and the RFC 9728 metadata route. */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ResourceAuthError } from './errors.js';
import { authenticate, bearerContext, contextErrorResponse, metadataRoute, PREFLIGHT_HEADERS } from './http.js';
import type { BearerAuthOptions, RequestAuth } from './http.js';
import type { ProtectedResourceMetadataOptions } from './metadata.js';
import type { ResourceVerifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by {@link fastifyBearerAuth} / {@link fastifyBearerAuthPlugin}: the verified access token. */
    auth?: RequestAuth;
  }
}

/** A Fastify request after {@link fastifyBearerAuth} ran: `request.auth` is set. */
export type AuthenticatedFastifyRequest = FastifyRequest & { auth: RequestAuth };

/** The hook {@link fastifyBearerAuth} returns; use as `preHandler` (or `onRequest`). */
export type FastifyBearerAuthHook = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

/**
 * Fastify preHandler hook: accepts only `Authorization: Bearer`, sets `request.auth` ({@link RequestAuth}), or
 * replies 401 / 403 / 400 with a `WWW-Authenticate` challenge and `{ error, error_description }`.
 * @example
 * app.post('/mcp', { preHandler: fastifyBearerAuth(verifier) }, async (request) => request.auth?.subject);
 */
export function fastifyBearerAuth(verifier: ResourceVerifier, options: BearerAuthOptions = {}): FastifyBearerAuthHook {
  const ctx = bearerContext(verifier, options);
  return async (request, reply) => {
    const distinct = request.raw.headersDistinct?.['authorization'];
    const header = distinct !== undefined && distinct.length > 1 ? distinct : request.headers.authorization;
    try {
      request.auth = await authenticate(ctx, {
        authorization: header,
        url: request.url,
        method: request.method,
        dpop: request.raw.headersDistinct?.['dpop'] ?? request.headers.dpop,
      });
      return undefined;
    } catch (error) {
      if (!(error instanceof ResourceAuthError)) throw error;
      const out = contextErrorResponse(ctx, error);
      return reply.code(out.status).headers(out.headers).send(out.body);
    }
  };
}

/**
 * Fastify plugin adding {@link fastifyBearerAuth} as a preHandler to the context it is registered in (it is not
 * encapsulated): register it inside the scope holding the protected routes.
 * @example
 * app.register(async (api) => { await api.register(fastifyBearerAuthPlugin(verifier)); api.post('/mcp', handler); });
 */
export function fastifyBearerAuthPlugin(
  verifier: ResourceVerifier,
  options: BearerAuthOptions = {},
): FastifyPluginAsync {
  const hook = fastifyBearerAuth(verifier, options);
  const plugin = async (app: FastifyInstance): Promise<void> => {
    if (!app.hasRequestDecorator('auth')) app.decorateRequest('auth', undefined);
    app.addHook('preHandler', hook);
  };
  // What fastify-plugin does: apply hooks and decorators to the registering context rather than a child.
  return Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'gatehouse-bearer-auth',
  });
}

/**
 * Fastify plugin serving the RFC 9728 metadata at its well-known path (GET, HEAD, CORS preflight).
 * @example
 * await app.register(fastifyProtectedResourceMetadata({ resource, authorizationServers: [issuer] }));
 */
export function fastifyProtectedResourceMetadata(options: ProtectedResourceMetadataOptions): FastifyPluginAsync {
  const route = metadataRoute(options);
  return async (app) => {
    app.get(route.path, async (_request, reply) => reply.headers(route.headers).send(route.body));
    app.options(route.path, async (_request, reply) => reply.code(204).headers(PREFLIGHT_HEADERS).send());
  };
}
