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

/** Options for the HTTP app beyond the deps. */
export interface AppOptions {
  /** Extra metadata fields (e.g. client_id_metadata_document_supported). */
  metadataExtra?: Record<string, unknown>;
  /** Extra consent-page warnings for a client (e.g. CIMD localhost-only redirect URIs). */
  consentWarnings?: (client: ClientRecord) => string[];
}

/**
 * Passed to every route plugin as its options. (Not named `prefix`: Fastify would read that as a route prefix.)
 */
export interface RouteContext {
  deps: Deps;
  options: AppOptions;
  /** The issuer's path without a trailing slash ('' at the root): every endpoint lives under it. */
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
