import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import {
  fastifyBearerAuth,
  fastifyBearerAuthPlugin,
  fastifyProtectedResourceMetadata,
} from '../../src/resource/index.js';
import type { AuthenticatedFastifyRequest } from '../../src/resource/index.js';
import { describeAuth, describeMiddleware, nodeRequest } from './middleware-suite.js';

describeMiddleware('Fastify', async (verifier, metadata) => {
  const app = Fastify();
  await app.register(fastifyProtectedResourceMetadata(metadata));
  // Plugin form: protects every route in this encapsulated scope.
  await app.register(async (api) => {
    await api.register(fastifyBearerAuthPlugin(verifier));
    api.get('/mcp', async (request) => describeAuth((request as AuthenticatedFastifyRequest).auth));
  });
  // Hook form, per route, with an extra scope.
  app.get('/mcp/admin', { preHandler: fastifyBearerAuth(verifier, { requiredScopes: ['admin'] }) }, async (request) =>
    describeAuth((request as AuthenticatedFastifyRequest).auth),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { request: (path, init) => nodeRequest(base, path, init), close: () => app.close() };
});
