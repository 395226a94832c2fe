/** RFC 9728 OAuth 2.0 Protected Resource Metadata: the document and where it is served. */

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** Input of {@link protectedResourceMetadata} (camelCase mirror of RFC 9728 §2). */
export interface ProtectedResourceMetadataOptions {
  /** This resource's identifier (RFC 8707 canonical URI), e.g. `https://mcp.example.com/mcp`. */
  resource: string;
  /**
   * Issuer identifiers of the authorization servers that issue tokens for this resource (at least one). For a
   * verifier, pass `verifier.authorizationServers`: its `issuer` or `issuers`. A verifier made with an
   * `issuerTemplate` has no finite list: give it `authorizationServers` (the tenants' issuers clients should be
   * offered), or serve one resource, and one metadata document, per tenant.
   */
  authorizationServers: readonly string[];
  /** Scopes this resource understands. */
  scopesSupported?: readonly string[];
  /** How tokens may be sent; only `header` is honoured by this library's middleware. Default `['header']`. */
  bearerMethodsSupported?: readonly ('header' | 'body' | 'query')[];
  /** Human-readable name of the resource. */
  resourceName?: string;
  /** URL of developer documentation for the resource. */
  resourceDocumentation?: string;
  /** Further RFC 9728 §2 members, copied as given (snake_case). */
  extra?: Readonly<Record<string, unknown>>;
}

/** The RFC 9728 §2 metadata document. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  bearer_methods_supported: string[];
  resource_name?: string;
  resource_documentation?: string;
  [member: string]: unknown;
}

/** Parses a resource identifier; RFC 9728 §1.2 / RFC 8707 §2: an absolute URI without a fragment. */
function parseResource(resource: string): URL {
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw new TypeError(`resource must be an absolute URL: ${resource}`);
  }
  if (resource.includes('#')) throw new TypeError('resource must not contain a fragment (RFC 8707 §2)');
  return url;
}

/**
 * Builds the RFC 9728 protected-resource metadata document.
 * @example
 * protectedResourceMetadata({ resource: 'https://mcp.example.com/mcp', authorizationServers: ['https://auth.example.com'], scopesSupported: ['mcp'] })
 */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  parseResource(options.resource);
  if (options.authorizationServers.length === 0) {
    // RFC 9728 §2 / MCP: clients pick the authorization server from this list, so it needs at least one entry.
    throw new TypeError(
      'authorizationServers must not be empty (a verifier with an issuerTemplate lists none unless given authorizationServers)',
    );
  }
  const doc: ProtectedResourceMetadata = {
    ...options.extra,
    // RFC 9728 §3.3: `resource` MUST be identical to the identifier the well-known URL was derived from.
    resource: options.resource,
    authorization_servers: [...options.authorizationServers],
    bearer_methods_supported: [...(options.bearerMethodsSupported ?? ['header'])],
  };
  if (options.scopesSupported !== undefined) doc.scopes_supported = [...options.scopesSupported];
  if (options.resourceName !== undefined) doc.resource_name = options.resourceName;
  if (options.resourceDocumentation !== undefined) doc.resource_documentation = options.resourceDocumentation;
  return doc;
}

/**
 * The path the metadata is served at (RFC 9728 §3.1): `/.well-known/oauth-protected-resource`, with the resource's
 * path appended for a resource that has one (`https://x/mcp` → `/.well-known/oauth-protected-resource/mcp`).
 */
export function protectedResourceMetadataPath(resource: string): string {
  const { pathname } = parseResource(resource);
  // RFC 9728 §3.1: a terminating slash after the host is removed before inserting the well-known segment.
  return pathname === '/' ? WELL_KNOWN : `${WELL_KNOWN}${pathname}`;
}

/**
 * The absolute metadata URL for a resource (RFC 9728 §3.1), the value for `resource_metadata` in challenges.
 * @example
 * protectedResourceMetadataUrl('https://mcp.example.com/mcp') // 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp'
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = parseResource(resource);
  return `${url.origin}${protectedResourceMetadataPath(resource)}${url.search}`;
}
