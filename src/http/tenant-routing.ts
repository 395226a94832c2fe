/**
 * Which issuer a request is for. A tenant's issuer is `<deployment issuer>/<tenant>`, so its endpoints are the
 * deployment's paths with the tenant segment inserted: `<P>/<tenant>/token`, and for the metadata RFC 8414 §3.1
 * path insertion, `/.well-known/oauth-authorization-server<P>/<tenant>` (P = the deployment issuer's path). The app
 * registers every route once, at the deployment's paths; Fastify's rewriteUrl takes the tenant segment out before
 * routing, and a hook then finds the tenant's deps. One string split per request, one map lookup (O(1) in the number
 * of tenants).
 */
import type { Deps } from '../context.js';
import { issuerPath } from '../endpoints/metadata.js';
import { isTenantId } from '../model/tenants.js';

/** Where the app finds a tenant's deps: the registry (tenants/registry.ts), cached and bounded. */
export interface TenantDirectory {
  /** The tenant's deps, or undefined when there is no such tenant. */
  resolve(id: string): Promise<Deps | undefined>;
}

/** The well-known names whose path-inserted forms carry a tenant. */
const WELL_KNOWN = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];

/** A request path split into the deployment path it is served at and the tenant it names, if any. */
export interface RoutedPath {
  url: string;
  tenant?: string;
}

/**
 * The rewriter for a deployment issuer. `reserved` are the first path segments (below the issuer's path) of the
 * deployment's own endpoints: never a tenant, so `/token` stays the deployment's.
 */
export function tenantPathRewriter(issuer: string, reserved: ReadonlySet<string>): (url: string) => RoutedPath {
  const base = issuerPath(issuer);
  const wellKnown = WELL_KNOWN.map((name) => name + base + '/');
  return (url) => {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q);
    // /.well-known/<name><P>/<tenant>: exactly one segment after the deployment's form.
    for (let i = 0; i < wellKnown.length; i++) {
      const prefix = wellKnown[i]!;
      if (path.startsWith(prefix)) {
        const tenant = path.slice(prefix.length);
        if (isTenantId(tenant)) return { url: WELL_KNOWN[i]! + base + query, tenant };
        return { url };
      }
    }
    // <P>/<tenant>/rest
    if (base && !(path === base || path.startsWith(base + '/'))) return { url };
    const start = base.length + 1;
    const slash = path.indexOf('/', start);
    const segment = slash < 0 ? path.slice(start) : path.slice(start, slash);
    if (!isTenantId(segment) || reserved.has(segment)) return { url };
    const rest = slash < 0 ? '' : path.slice(slash);
    return { url: (base + rest || '/') + query, tenant: segment };
  };
}

/** The first path segments below the issuer's path that the deployment's own endpoints use. */
export function reservedSegments(issuer: string, paths: readonly string[]): Set<string> {
  const base = issuerPath(issuer);
  const out = new Set<string>(['.well-known', 'admin', 'health', 'metrics']);
  for (const path of paths) {
    const below = base && path.startsWith(base + '/') ? path.slice(base.length) : path;
    const segment = below.split('/')[1];
    if (segment) out.add(segment);
  }
  return out;
}
