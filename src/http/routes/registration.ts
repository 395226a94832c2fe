/** Dynamic client registration (RFC 7591) and its management protocol (RFC 7592). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidRequest } from '../../model/errors.js';
import {
  deleteClientRegistration,
  readClientRegistration,
  registerClient,
  registerDeclaration,
  updateClientRegistration,
} from '../../endpoints/register.js';
import { json, scopeOf, type RouteContext, type RoutePlugin } from './context.js';
import { auditContextOf } from '../request-id.js';

export const registrationRoutes: RoutePlugin = { endpoints: [registerDeclaration], routes: registration };

async function registration(app: FastifyInstance, { issuerPath }: RouteContext): Promise<void> {
  const path = issuerPath + registerDeclaration.path;
  const jsonBody = (request: FastifyRequest): unknown => {
    if (!request.headers['content-type']?.toLowerCase().startsWith('application/json')) {
      throw new InvalidRequest('the body must be application/json');
    }
    return request.body;
  };
  app.post(path, async (request, reply) =>
    json(
      reply,
      201,
      await registerClient(
        jsonBody(request),
        request.headers.authorization,
        scopeOf(request).deps,
        request.ip,
        auditContextOf(request),
      ),
    ),
  );
  app.get<{ Params: { id: string } }>(`${path}/:id`, async (request, reply) =>
    json(
      reply,
      200,
      await readClientRegistration(request.params.id, request.headers.authorization, scopeOf(request).deps),
    ),
  );
  app.put<{ Params: { id: string } }>(`${path}/:id`, async (request, reply) =>
    json(
      reply,
      200,
      await updateClientRegistration(
        request.params.id,
        jsonBody(request),
        request.headers.authorization,
        scopeOf(request).deps,
        auditContextOf(request),
      ),
    ),
  );
  app.delete<{ Params: { id: string } }>(`${path}/:id`, async (request, reply) => {
    await deleteClientRegistration(
      request.params.id,
      request.headers.authorization,
      scopeOf(request).deps,
      auditContextOf(request),
    );
    return reply.code(204).header('cache-control', 'no-store').send();
  });
}
