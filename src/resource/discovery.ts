/** Authorization-server discovery for resource servers: RFC 8414 metadata, with OpenID Connect Discovery fallback. */
import { ResourceAuthError } from './errors.js';

/** The members of RFC 8414 §2 metadata a resource server uses; others are kept as `unknown`. */
export interface AuthorizationServerMetadata {
  issuer: string;
  jwks_uri?: string;
  introspection_endpoint?: string;
  introspection_endpoint_auth_methods_supported?: string[];
  scopes_supported?: string[];
  [member: string]: unknown;
}

/** A `fetch`-compatible function. */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Options of {@link discoverAuthorizationServer}. */
export interface DiscoveryOptions {
  /** fetch implementation; default the global one. */
  fetch?: FetchLike;
  /** Per-request timeout in milliseconds; default 5000. */
  timeoutMs?: number;
}

/**
 * Metadata URLs to try for an issuer, in order: RFC 8414 §3.1 (path-inserted for an issuer with a path), then
 * OpenID Connect Discovery (path-inserted, then appended), as the MCP authorization spec prescribes.
 */
export function authorizationServerMetadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  if (path === '') {
    return [`${url.origin}/.well-known/oauth-authorization-server`, `${url.origin}/.well-known/openid-configuration`];
  }
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
}

function unavailable(description: string, cause?: unknown): ResourceAuthError {
  return new ResourceAuthError('temporarily_unavailable', description, { cause });
}

/**
 * Fetches and checks an issuer's metadata. The `issuer` member MUST equal the configured issuer exactly (RFC 8414
 * §3.3), otherwise discovery fails. Throws {@link ResourceAuthError} `temporarily_unavailable` on failure.
 * @example
 * const meta = await discoverAuthorizationServer('https://auth.example.com');
 */
export async function discoverAuthorizationServer(
  issuer: string,
  options: DiscoveryOptions = {},
): Promise<AuthorizationServerMetadata> {
  const fetchImpl = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  const tried: string[] = [];
  for (const url of authorizationServerMetadataUrls(issuer)) {
    let response: Response;
    try {
      response = await fetchImpl(url, {
        method: 'GET',
        headers: { accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      throw unavailable('the authorization server could not be reached', cause);
    }
    if (!response.ok) {
      await response.body?.cancel();
      tried.push(`${url} -> ${response.status}`);
      // A 4xx (or an unfollowed redirect) means "not here": try the next well-known location.
      if (response.status < 500) continue;
      throw unavailable('the authorization server metadata is unavailable', new Error(tried.join('; ')));
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (cause) {
      throw unavailable('the authorization server metadata is not valid JSON', cause);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw unavailable('the authorization server metadata is not a JSON object');
    }
    const metadata = body as AuthorizationServerMetadata;
    // RFC 8414 §3.3: the issuer value returned MUST be identical to the issuer the metadata URL was built from.
    // No normalisation on either side: the configured issuer must be spelt exactly as the server publishes it.
    if (metadata.issuer !== issuer) {
      const named =
        typeof metadata.issuer === 'string' ? `"${metadata.issuer}"` : `${String(metadata.issuer)} (not a string)`;
      const slashOnly =
        typeof metadata.issuer === 'string' && metadata.issuer.replace(/\/$/, '') === issuer.replace(/\/$/, '');
      throw unavailable(
        `the metadata issuer ${named} differs from the configured issuer "${issuer}"` +
          (slashOnly
            ? " (only by a trailing slash: RFC 8414 §3.3 compares them exactly; configure the metadata's spelling)"
            : ''),
        new Error(`metadata at ${url} names issuer ${named}, configured issuer "${issuer}"`),
      );
    }
    return metadata;
  }
  throw new MetadataNotFoundError(tried);
}

/**
 * Every well-known location answered "not here" (4xx): the server is up and this issuer does not exist there (e.g. a
 * deleted tenant), which a verifier trusting several issuers reports as a bad token rather than an outage.
 */
export class MetadataNotFoundError extends ResourceAuthError {
  constructor(tried: string[]) {
    super('temporarily_unavailable', 'no authorization server metadata was found', {
      cause: new Error(tried.join('; ')),
    });
  }
}
