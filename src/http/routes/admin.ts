/**
 * The admin API: tenants created, read, changed and deleted at run time (`/admin/tenants`, under the deployment
 * issuer's path only). Off unless the config names an admin token; every call carries it as a Bearer token, compared
 * by its SHA-256 in constant time.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual, sha256 } from '../../core/crypto.js';
import { bearerToken } from '../../core/params.js';
import { TenantAdminError } from '../../tenants/admin.js';
import { json, scopeOf, type RouteContext } from './context.js';

export type { AdminOptions } from './context.js';

const CHALLENGE = 'Bearer realm="gatehouse-admin"';

/** The form the admin token is kept and compared in (config `adminTokenSha256`): SHA-256, hex. */
export function adminTokenDigest(token: string): string {
  return sha256(token).toString('hex');
}

export async function adminRoutes(app: FastifyInstance, { deps, issuerPath, options }: RouteContext): Promise<void> {
  const admin = options.admin;
  if (!admin) return;
  const base = `${issuerPath}/admin/tenants`;

  /** Runs `handle` for an authenticated call on the deployment's own path; a tenant's path has no admin API. */
  const guarded =
    <R extends FastifyRequest>(handle: (request: R, reply: FastifyReply) => Promise<unknown>) =>
    async (request: R, reply: FastifyReply) => {
      if (scopeOf(request).deps !== deps) {
        return reply
          .code(404)
          .type('application/json')
          .send('{"error":"not_found","error_description":"no such endpoint"}');
      }
      const token = bearerToken(request.headers.authorization);
      const presented = token ? adminTokenDigest(token) : '';
      if (!token || !safeEqual(presented, admin.tokenSha256)) {
        reply.header('www-authenticate', token ? `${CHALLENGE}, error="invalid_token"` : CHALLENGE);
        return json(reply, 401, { error: 'invalid_token', error_description: 'the admin token is missing or wrong' });
      }
      try {
        return await handle(request, reply);
      } catch (err) {
        if (err instanceof TenantAdminError) {
          return json(reply, err.status, { error: err.code, error_description: err.message });
        }
        throw err;
      }
    };
  const body = (request: FastifyRequest): Record<string, unknown> => {
    if (!request.headers['content-type']?.toLowerCase().startsWith('application/json')) {
      throw new TenantAdminError(400, 'invalid_tenant', 'the body must be application/json');
    }
    const value = request.body;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new TenantAdminError(400, 'invalid_tenant', 'the body must be a JSON object');
    }
    return value as Record<string, unknown>;
  };
  type ById = FastifyRequest<{ Params: { id: string } }>;

  app.get(
    base,
    guarded(async (_request, reply) =>
      json(reply, 200, { tenants: (await admin.tenants.list()).map((t) => admin.tenants.view(t)) }),
    ),
  );
  app.post(
    base,
    guarded(async (request, reply) => {
      const { id, settings } = body(request);
      return json(reply, 201, admin.tenants.view(await admin.tenants.create(id, settings)));
    }),
  );
  app.get(
    `${base}/:id`,
    guarded(async (request: ById, reply) =>
      json(reply, 200, admin.tenants.view(await admin.tenants.get(request.params.id))),
    ),
  );
  app.put(
    `${base}/:id`,
    guarded(async (request: ById, reply) =>
      json(reply, 200, admin.tenants.view(await admin.tenants.update(request.params.id, body(request).settings))),
    ),
  );
  app.delete(
    `${base}/:id`,
    guarded(async (request: ById, reply) => {
      const removed = await admin.tenants.remove(request.params.id);
      return json(reply, 200, { id: request.params.id, removed });
    }),
  );
}
