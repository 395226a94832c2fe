/** GET /health (also under the issuer's path): the store's reachability. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { healthCheck, healthDeclaration } from '../../endpoints/health.js';
import { json, scopeOf, servedPaths, type RouteContext, type RoutePlugin } from './context.js';

export const healthRoutes: RoutePlugin = { endpoints: [healthDeclaration], routes: health };

async function health(app: FastifyInstance, { deps, storeStatus }: RouteContext): Promise<void> {
  const check = async (request: FastifyRequest, reply: FastifyReply) => {
    const report = await healthCheck(scopeOf(request).deps);
    if (report.storage.status === 'up') storeStatus.succeeded();
    return json(reply, report.status === 'ok' ? 200 : 503, report);
  };
  for (const path of servedPaths(healthDeclaration, deps.config.issuer)) app.get(path, check);
}
