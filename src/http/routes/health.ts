/** GET /health (also under the issuer's path): the store's reachability. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { healthCheck } from '../../endpoints/health.js';
import { json, type RouteContext } from './context.js';

export async function healthRoutes(
  app: FastifyInstance,
  { deps, issuerPath, storeStatus }: RouteContext,
): Promise<void> {
  const health = async (_request: FastifyRequest, reply: FastifyReply) => {
    const report = await healthCheck(deps);
    if (report.storage.status === 'up') storeStatus.succeeded();
    return json(reply, report.status === 'ok' ? 200 : 503, report);
  };
  app.get('/health', health);
  if (issuerPath) app.get(issuerPath + '/health', health);
}
