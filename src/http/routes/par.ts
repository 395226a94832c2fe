/** The pushed authorization request endpoint (RFC 9126): a JSON back channel beside the browser's /authorize. */
import type { FastifyInstance } from 'fastify';
import { parDeclaration, pushAuthorizationRequest } from '../../authorization/par.js';
import { formParams, json, scopeOf, type RouteContext, type RoutePlugin } from './context.js';

export const parRoutes: RoutePlugin = { endpoints: [parDeclaration], routes: pushedAuthorization };

async function pushedAuthorization(app: FastifyInstance, { issuerPath }: RouteContext): Promise<void> {
  // RFC 9126 §2.2: 201 Created, not to be cached.
  app.post(issuerPath + parDeclaration.path, async (request, reply) =>
    json(
      reply,
      201,
      await pushAuthorizationRequest(formParams(request), request.headers.authorization, scopeOf(request).deps, {
        header: request.raw.headersDistinct?.dpop ?? request.headers.dpop,
        method: request.method,
      }),
    ),
  );
}
