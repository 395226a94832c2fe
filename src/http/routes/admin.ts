/**
 * The admin API, JSON over HTTP:
 * - `/admin/tenants[/:id]`: tenants created, read, changed and deleted at run time (deployment only);
 * - `/admin/{clients,users,grants,consents,keys}/...`: the deployment's own scope;
 * - `/admin/tenants/:tenant/{clients,...}/...`: a tenant's scope, with the deployment's credentials;
 * - `/<tenant>/admin/{clients,...}/...`: a tenant's scope, with that tenant's own client_credentials token.
 *
 * Credentials: the deployment's admin token (config `adminToken` / `adminTokenSha256`, compared by its SHA-256 in
 * constant time), or an access token of the scope's own issuer from client_credentials carrying the `gatehouse:admin`
 * scope, held by a config-file (source `static`) client whose allow-list still includes that scope. Off (404) in a
 * scope that has neither. Every call is audited by {@link auditAdminCall}. The operations are tenants/store-admin.ts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Deps } from '../../context.js';
import { verifyOwnAccessToken } from '../../core/access-token.js';
import { safeEqual, sha256 } from '../../core/crypto.js';
import { bearerToken } from '../../core/params.js';
import { TenantAdminError } from '../../tenants/admin.js';
import { ADMIN_SCOPE, AdminError, adminClientsOf, storeAdminFor, type StoreAdmin } from '../../tenants/store-admin.js';
import { runOperation } from '../../tenants/operations.js';
import { adminTraceRoutes } from './admin-traces.js';
import { auditContextOf } from '../request-id.js';
import { json, scopeOf, type RouteContext } from './context.js';

export type { AdminOptions } from './context.js';

const CHALLENGE = 'Bearer realm="gatehouse-admin"';

/** The form the admin token is kept and compared in (config `adminTokenSha256`): SHA-256, hex. */
export function adminTokenDigest(token: string): string {
  return sha256(token).toString('hex');
}

/** Who made an admin call: the deployment's admin token, or a client's admin-scoped token. */
type Actor = { kind: 'admin_token' } | { kind: 'client'; clientId: string };

/**
 * The one place an admin call is recorded: method, route, tenant, outcome, status and who. Never a body, token or
 * secret (the path holds ids only; the query is left out).
 */
export function auditAdminCall(
  deps: Pick<Deps, 'audit'>,
  request: FastifyRequest,
  entry: { outcome: 'ok' | 'refused' | 'unauthenticated'; status: number; actor?: Actor },
): void {
  const client = entry.actor?.kind === 'client' ? entry.actor.clientId : undefined;
  deps.audit.emit(
    {
      type: 'admin.call',
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: entry.status,
      actor: client ?? (entry.actor ? 'token' : 'none'),
      outcome: entry.outcome === 'ok' ? 'success' : entry.outcome === 'refused' ? 'denied' : 'failure',
      ...(client !== undefined && { clientId: client }),
    },
    auditContextOf(request),
  );
}

class Refused extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, string>,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.error_description);
  }
}

const notFound = () => new Refused(404, { error: 'not_found', error_description: 'no such endpoint' });

export async function adminRoutes(app: FastifyInstance, { deps, issuerPath, options }: RouteContext): Promise<void> {
  const admin = options.admin;
  if (!admin) return;
  const base = `${issuerPath}/admin`;

  /** The credentials of the request, checked for `scope` (the deps the operation runs in). */
  const authenticate = async (request: FastifyRequest, scope: Deps, deploymentToken: boolean): Promise<Actor> => {
    const token = bearerToken(request.headers.authorization);
    const adminToken = deploymentToken ? admin.tokenSha256 : undefined;
    const clients = adminClientsOf(scope.config);
    if (adminToken === undefined && clients.length === 0) throw notFound();
    const fail = () =>
      new Refused(
        401,
        { error: 'invalid_token', error_description: 'the admin credentials are missing or wrong' },
        { 'www-authenticate': token ? `${CHALLENGE}, error="invalid_token"` : CHALLENGE },
      );
    if (!token) throw fail();
    if (adminToken !== undefined && safeEqual(adminTokenDigest(token), adminToken)) return { kind: 'admin_token' };
    if (clients.length === 0) throw fail();
    const claims = await verifyOwnAccessToken(token, scope);
    // A machine token (sub = client, no grant behind it) of a config-file client still allowed the admin scope.
    if (!claims || claims.sub !== claims.client_id || !clients.includes(claims.client_id)) throw fail();
    if (!(claims.scope ?? '').split(' ').includes(ADMIN_SCOPE)) {
      throw new Refused(
        403,
        { error: 'insufficient_scope', error_description: `the token lacks the ${ADMIN_SCOPE} scope` },
        { 'www-authenticate': `${CHALLENGE}, error="insufficient_scope", scope="${ADMIN_SCOPE}"` },
      );
    }
    const [revoked, grantId, client] = await Promise.all([
      scope.storage.isAccessTokenRevoked(claims.jti),
      scope.storage.getAccessTokenGrantId(claims.jti),
      scope.storage.getClient(claims.client_id),
    ]);
    if (revoked || grantId !== undefined || client?.source !== 'static' || !client.scope?.includes(ADMIN_SCOPE)) {
      throw fail();
    }
    return { kind: 'client', clientId: claims.client_id };
  };

  const bodyOf = (request: FastifyRequest): unknown => {
    if (request.body === undefined || request.body === null) return {};
    if (!request.headers['content-type']?.toLowerCase().startsWith('application/json')) {
      throw new Refused(400, { error: 'invalid_request', error_description: 'the body must be application/json' });
    }
    return request.body;
  };

  type Params = Record<string, string>;
  type Call = (ops: StoreAdmin, request: FastifyRequest<{ Params: Params }>, scope: Deps) => Promise<unknown>;

  /**
   * Runs an admin call: picks the scope (the deployment's, a tenant's by `/admin/tenants/:tenant`, or the tenant whose
   * path the request came on), authenticates, runs `call`, answers and audits.
   */
  const handled =
    (
      call: (scope: Deps, request: FastifyRequest<{ Params: Params }>) => Promise<unknown>,
      status = 200,
      byTenantParam = false,
      deploymentOnly = false,
    ) =>
    async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
      const own = scopeOf(request).deps;
      const onTenantPath = own !== deps;
      let scope = own;
      let actor: Actor | undefined;
      try {
        if (onTenantPath && (byTenantParam || deploymentOnly)) throw notFound();
        if (byTenantParam) {
          // The deployment's credentials first: nobody learns which tenants exist without them.
          actor = await authenticate(request, deps, true);
          const resolved = await options.tenants?.resolve(request.params.tenant!);
          if (!resolved) throw new Refused(404, { error: 'not_found', error_description: 'no such tenant' });
          scope = resolved;
        } else {
          actor = await authenticate(request, scope, !onTenantPath);
        }
        const result = await call(scope, request);
        auditAdminCall(scope, request, { outcome: 'ok', status, actor });
        return json(reply, status, result);
      } catch (err) {
        let refusal: Refused | undefined;
        if (err instanceof Refused) refusal = err;
        else if (err instanceof AdminError || err instanceof TenantAdminError) {
          refusal = new Refused(err.status, { error: err.code, error_description: err.message });
        }
        if (!refusal) throw err;
        const outcome = refusal.status === 401 || actor === undefined ? 'unauthenticated' : 'refused';
        auditAdminCall(scope, request, { outcome, status: refusal.status, actor });
        for (const [name, value] of Object.entries(refusal.headers)) reply.header(name, value);
        return json(reply, refusal.status, refusal.body);
      }
    };

  /** Registers one store operation at `/admin/<path>` and `/admin/tenants/:tenant/<path>`. */
  const route = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, call: Call, status = 200) => {
    const run = (scope: Deps, request: FastifyRequest<{ Params: Params }>) =>
      call(storeAdminFor(scope, 'admin', auditContextOf(request)), request, scope);
    app.route({ method, url: `${base}/${path}`, handler: handled(run, status) });
    app.route({ method, url: `${base}/tenants/:tenant/${path}`, handler: handled(run, status, true) });
  };
  const query = (request: FastifyRequest) => request.query as Record<string, unknown>;

  route('GET', 'clients', (ops, r) => ops.listClients(query(r)));
  route('POST', 'clients', (ops, r) => ops.createClient(bodyOf(r)), 201);
  route('GET', 'clients/:id', (ops, r) => ops.getClient(r.params.id!));
  route('PUT', 'clients/:id', (ops, r) => ops.updateClient(r.params.id!, bodyOf(r)));
  route('DELETE', 'clients/:id', (ops, r) => ops.deleteClient(r.params.id!));
  route('POST', 'clients/:id/rotate-secret', (ops, r) => ops.rotateClientSecret(r.params.id!));

  route('GET', 'users', (ops, r) => ops.listUsers(query(r)));
  route('POST', 'users', (ops, r) => ops.createUser(bodyOf(r)), 201);
  route('GET', 'users/:id', (ops, r) => ops.getUser(r.params.id!));
  route('PUT', 'users/:id/password', (ops, r) => ops.setPassword(r.params.id!, bodyOf(r)));
  route('POST', 'users/:id/disable', (ops, r) => ops.disableUser(r.params.id!));
  route('POST', 'users/:id/enable', (ops, r) => ops.enableUser(r.params.id!));
  route('DELETE', 'users/:id', (ops, r) => ops.deleteUser(r.params.id!));

  route('GET', 'grants', (ops, r) => ops.listGrants(query(r)));
  route('DELETE', 'grants/:id', (ops, r) => ops.revokeGrant(r.params.id!));
  route('GET', 'consents', (ops, r) => ops.listConsents(query(r)));
  route('DELETE', 'consents/:userId/:clientId', (ops, r) => ops.revokeConsent(r.params.userId!, r.params.clientId!));

  route('GET', 'keys', (ops) => ops.listKeys());
  route('POST', 'keys/rotate', (ops, r) => ops.rotateKey(bodyOf(r)));
  route('POST', 'keys/:kid/retire', (ops, r) => ops.retireKey(r.params.kid!));
  // Upstreams are settings (the config file's, a tenant's `upstreams`): read here, with their discovery checked now.
  const upstreamOp = (name: 'upstream.list' | 'upstream.links') => (ops: StoreAdmin, r: FastifyRequest, scope: Deps) =>
    runOperation(
      {
        admin: ops,
        storage: scope.storage,
        config: scope.config,
        upstream: (entry) => scope.upstreams.get(entry.id),
      },
      name,
      { check: query(r).check !== 'false' },
    );
  route('GET', 'upstreams', upstreamOp('upstream.list'));
  route('GET', 'upstreams/links', upstreamOp('upstream.links'));
  adminTraceRoutes(app, base, handled);

  // ---- tenants (the deployment's list) ----
  const tenantsBase = `${base}/tenants`;
  const tenantCall = (call: (request: FastifyRequest<{ Params: Params }>) => Promise<unknown>, status = 200) =>
    handled((_scope, request) => call(request), status, false, true);
  const settingsBody = (request: FastifyRequest): Record<string, unknown> => {
    const value = bodyOf(request);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new TenantAdminError(400, 'invalid_tenant', 'the body must be a JSON object');
    }
    return value as Record<string, unknown>;
  };

  app.get(
    tenantsBase,
    tenantCall(async () => ({ tenants: (await admin.tenants.list()).map((t) => admin.tenants.view(t)) })),
  );
  app.post(
    tenantsBase,
    tenantCall(async (request) => {
      if (request.body === undefined || request.body === null) {
        throw new TenantAdminError(400, 'invalid_tenant', 'the body must be application/json');
      }
      const { id, settings } = settingsBody(request);
      return admin.tenants.view(await admin.tenants.create(id, settings));
    }, 201),
  );
  app.get(
    `${tenantsBase}/:id`,
    tenantCall(async (request) => admin.tenants.view(await admin.tenants.get(request.params.id!))),
  );
  app.put(
    `${tenantsBase}/:id`,
    tenantCall(async (request) =>
      admin.tenants.view(await admin.tenants.update(request.params.id!, settingsBody(request).settings)),
    ),
  );
  app.delete(
    `${tenantsBase}/:id`,
    tenantCall(async (request) => {
      const removed = await admin.tenants.remove(request.params.id!);
      return { id: request.params.id, removed };
    }),
  );
}
