/**
 * What the route plugins are and share: their endpoint declarations, the deps, the app options, the issuer's path and
 * the HTTP framing helpers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Deps, EndpointDeclaration } from '../../context.js';
import { issuerPath } from '../../endpoints/metadata.js';
import { InvalidRequest } from '../../model/errors.js';
import { parseRawParams, type RawParams } from '../../core/params.js';
import type { ClientRecord } from '../../model/records.js';
import type { StoreStatus } from '../errors.js';
import type { TenantDirectory } from '../tenant-routing.js';
import type { TenantAdmin } from '../../tenants/admin.js';

/** Options for the HTTP app beyond the deps. */
export interface AppOptions {
  /** Extra metadata fields (e.g. client_id_metadata_document_supported). */
  metadataExtra?: Record<string, unknown>;
  /** Extra consent-page warnings for a client (e.g. CIMD localhost-only redirect URIs). */
  consentWarnings?: (client: ClientRecord) => string[];
  /** The tenants this deployment serves under its issuer (`<issuer>/<tenant>`); none without. */
  tenants?: TenantDirectory;
  /** The admin API (`/admin/...`); none without. */
  admin?: AdminOptions;
  /** Prometheus metrics (http/metrics.ts): every response observed; `/metrics` on this app when `tokenSha256`. */
  metrics?: AppMetrics;
}

/** What the app needs of the metrics (http/metrics.ts GatehouseMetrics). */
export interface AppMetrics {
  observeRequest(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Serve `<issuer path>/metrics` on the main port behind this token (SHA-256 hex); unset = not on the main port. */
  tokenSha256?: string;
}

/**
 * What the admin API needs: the admin token's SHA-256 (hex), if one is configured, and the tenant operations. The API
 * is on when the token is configured or a config-file client may get the admin scope (tenants/store-admin.ts).
 */
export interface AdminOptions {
  tokenSha256?: string;
  tenants: TenantAdmin;
}

/**
 * One issuer the app serves: the deployment's own, or a tenant's (`<deployment issuer>/<tenant>`). Routes are
 * registered once, at the deployment's paths (a tenant's request path is rewritten to them, http/tenant-routing.ts);
 * every handler takes its deps and the URLs it emits from the scope of the request.
 */
export interface IssuerScope {
  deps: Deps;
  /** This issuer's path without a trailing slash ('' at the root): the URLs handlers emit start with it. */
  issuerPath: string;
}

const SCOPE = Symbol('gatehouse.issuerScope');
const scopes = new WeakMap<Deps, IssuerScope>();

/** The scope of `deps` (one object per deps, so per-scope memos hold). */
export function scopeFor(deps: Deps): IssuerScope {
  let scope = scopes.get(deps);
  if (!scope) scopes.set(deps, (scope = { deps, issuerPath: issuerPath(deps.config.issuer) }));
  return scope;
}

/** Sets the issuer a request is for (the app's tenant hook, before any handler). */
export function setScope(request: FastifyRequest, scope: IssuerScope): void {
  (request as unknown as Record<symbol, IssuerScope>)[SCOPE] = scope;
}

/** The issuer a request is for. */
export function scopeOf(request: FastifyRequest): IssuerScope {
  return (request as unknown as Record<symbol, IssuerScope>)[SCOPE]!;
}

/**
 * `build` run once per issuer scope and kept as long as the scope lives (a tenant evicted from the registry's cache
 * takes its memo with it): what a plugin derives from the deps (cookie helpers, the metadata document).
 */
export function perScope<T>(build: (scope: IssuerScope) => T): (request: FastifyRequest) => T {
  const built = new WeakMap<IssuerScope, T>();
  return (request) => {
    const scope = scopeOf(request);
    let value = built.get(scope);
    if (value === undefined) built.set(scope, (value = build(scope)));
    return value;
  };
}

/**
 * Passed to every route plugin as its options. (Not named `prefix`: Fastify would read that as a route prefix.)
 */
export interface RouteContext {
  /** The deployment's own deps: what is the same for every issuer (its config's paths, the store's health). */
  deps: Deps;
  options: AppOptions;
  /** The deployment issuer's path without a trailing slash ('' at the root): every route is registered under it. */
  issuerPath: string;
  storeStatus: StoreStatus;
  /** Every route plugin's endpoint declarations, in plugin order (what discovery is built from). */
  endpoints: readonly EndpointDeclaration[];
}

/**
 * An endpoint group: the declarations of the endpoints it serves and the Fastify plugin that serves them. The route
 * plugins' `endpoints` together are the one list of endpoints (discovery, CORS, error pages read it).
 */
export interface RoutePlugin {
  endpoints: readonly EndpointDeclaration[];
  routes: (app: FastifyInstance, context: RouteContext) => Promise<void>;
}

/** The absolute paths `endpoint` is served at for `issuer`. */
export function servedPaths(endpoint: EndpointDeclaration, issuer: string): string[] {
  return typeof endpoint.path === 'string' ? [issuerPath(issuer) + endpoint.path] : endpoint.path(issuer);
}

/** Whether a request path (without its query) is one of `endpoints`' paths, or below one that has subPaths. */
export function endpointPathMatcher(
  endpoints: readonly EndpointDeclaration[],
  issuer: string,
): (path: string) => boolean {
  const exact = new Set<string>();
  const below: string[] = [];
  for (const endpoint of endpoints) {
    for (const path of servedPaths(endpoint, issuer)) {
      exact.add(path);
      if (endpoint.subPaths) below.push(path + '/');
    }
  }
  return (path) => exact.has(path) || below.some((prefix) => path.startsWith(prefix));
}

/** The form body as parsed by the app's content-type parser; anything else is invalid_request. */
export function formParams(request: FastifyRequest): RawParams {
  const body = request.body;
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body) || request.headers['content-type']?.includes('json')) {
    throw new InvalidRequest('the body must be application/x-www-form-urlencoded');
  }
  return body as RawParams;
}

/** The query string, keeping every value so duplicates can be refused. */
export function queryParams(request: FastifyRequest): RawParams {
  const q = request.url.indexOf('?');
  return q < 0 ? {} : parseRawParams(request.url.slice(q + 1));
}

/** A JSON response that no cache may keep (RFC 6749 §5.1). */
export function json(reply: FastifyReply, status: number, body: unknown) {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .type('application/json')
    .send(JSON.stringify(body));
}
