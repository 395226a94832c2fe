/**
 * A tenant's configuration: the deployment's config with the tenant's settings over it. What a tenant may set is
 * listed here; deployment-wide settings (listener, store, proxies, limits, encryption, logging) are not a tenant's.
 * What names an identity or a trust (users, clients, enterprise IdPs, workload issuers, upstreams, resources, the
 * registration token, the resource servers allowed to introspect or to exchange tokens) is never inherited: a tenant starts with none of the
 * deployment's.
 */
import { ConfigError } from '../model/errors.js';
import { isTenantId } from '../model/tenants.js';
import { parseConfig } from './load.js';
import type { Config } from './schema.js';

/** The config keys a tenant may set. */
export const TENANT_SETTINGS = [
  'branding',
  'pages',
  'scopes',
  'strictScopes',
  'resources',
  'defaultResource',
  'tokens',
  'signing',
  'registration',
  'introspection',
  'session',
  'consent',
  'interactionTtl',
  'pushedAuthorizationRequests',
  'deviceAuthorization',
  'mfa',
  'loginRateLimit',
  'rateLimits',
  'clientIdMetadataDocuments',
  'enterpriseIdps',
  'workloadIssuers',
  'upstreams',
  'tokenExchange',
  'users',
  'clients',
] as const satisfies readonly (keyof Config)[];

const ALLOWED = new Set<string>(TENANT_SETTINGS);

/** The issuer of tenant `id`: the deployment's issuer plus one path segment. */
export function tenantIssuer(deploymentIssuer: string, id: string): string {
  return `${deploymentIssuer}/${id}`;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` deep-merged onto `base`: objects key by key, anything else (arrays included) replaced. */
function merge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = merge(base[key], value);
  return out;
}

/**
 * The config tenant `id` runs with. Throws ConfigError naming the setting (prefixed `tenants[<id>]`) when `settings`
 * has a key a tenant may not set or a value the config schema refuses.
 */
export function tenantConfig(deployment: Config, id: string, settings: Record<string, unknown>): Config {
  if (!isTenantId(id)) throw new ConfigError(`invalid tenant id "${id}": lowercase letters, digits and hyphens`);
  const refused = Object.keys(settings).filter((key) => !ALLOWED.has(key));
  if (refused.length > 0) {
    throw new ConfigError(
      `invalid configuration:\n  tenants[${id}]: ${refused.join(', ')}: not a tenant setting (a tenant may set ${TENANT_SETTINGS.join(', ')})`,
    );
  }
  const own = {
    users: [],
    clients: [],
    enterpriseIdps: [],
    workloadIssuers: [],
    upstreams: [],
    tokenExchange: { resourceServers: [] },
    resources: [],
    defaultResource: undefined,
    registration: { ...deployment.registration, initialAccessToken: undefined },
    introspection: { ...deployment.introspection, allowedClients: [] },
    tenants: [],
    adminToken: undefined,
    adminTokenSha256: undefined,
  };
  const merged = merge({ ...deployment, ...own }, settings) as Record<string, unknown>;
  let config: Config;
  try {
    config = parseConfig({ ...merged, issuer: tenantIssuer(deployment.issuer, id) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(err.message.replace(/\n {2}/g, `\n  tenants[${id}].`));
  }
  // What the tenant leaves as the deployment has it is the deployment's own object: a thousand tenants then share
  // one copy of each (less memory, and a request touches fewer distinct objects).
  const shared = config as unknown as Record<string, unknown>;
  const base = deployment as unknown as Record<string, unknown>;
  const baseJson = deploymentJson(deployment);
  for (const key of Object.keys(shared)) {
    const value = shared[key];
    if (typeof value === 'object' && value !== null && baseJson.get(key) === JSON.stringify(value)) {
      shared[key] = base[key];
    }
  }
  return config;
}

/** The deployment config's object-valued keys as JSON, computed once per deployment config. */
const deploymentJsonCache = new WeakMap<Config, Map<string, string>>();
function deploymentJson(deployment: Config): Map<string, string> {
  let json = deploymentJsonCache.get(deployment);
  if (!json) {
    json = new Map();
    for (const [key, value] of Object.entries(deployment)) {
      if (typeof value === 'object' && value !== null) json.set(key, JSON.stringify(value));
    }
    deploymentJsonCache.set(deployment, json);
  }
  return json;
}
