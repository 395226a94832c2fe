/**
 * `GET /admin/traces/:id` (and `/admin/tenants/:tenant/traces/:id`, `/<tenant>/admin/traces/:id`): a flow trace by
 * its reference id (core/flow-trace.ts), read from the scope's own store, so a tenant's traces are only found in its
 * scope. Registered by adminRoutes (admin.ts) through its `handled` wrapper: the same credentials, scope choice and
 * audit as every admin call.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Deps } from '../../context.js';
import { readTrace } from '../../core/flow-trace.js';
import { AdminError } from '../../tenants/store-admin.js';

type Request = FastifyRequest<{ Params: Record<string, string> }>;

/** admin.ts's `handled`: runs `call` in the request's scope once its admin credentials are checked. */
export type AdminHandled = (
  call: (scope: Deps, request: Request) => Promise<unknown>,
  status?: number,
  byTenantParam?: boolean,
) => (request: Request, reply: FastifyReply) => Promise<unknown>;

export function adminTraceRoutes(app: FastifyInstance, base: string, handled: AdminHandled): void {
  const read = async (scope: Deps, request: Request) => {
    const trace = await readTrace(scope.storage, request.params.id!);
    if (!trace) throw new AdminError(404, 'not_found', 'no such trace: unknown, or older than trace.ttlSeconds');
    return trace;
  };
  app.get(`${base}/traces/:id`, handled(read));
  app.get(`${base}/tenants/:tenant/traces/:id`, handled(read, 200, true));
}
