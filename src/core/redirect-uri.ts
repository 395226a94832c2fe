/**
 * Redirect URI rules. Registration (RFC 7591 §2, RFC 8252 §7, OAuth 2.1 §2.3.1) and matching at the
 * authorization endpoint: exact string match (RFC 9700 §4.1.3), except the RFC 8252 §7.3 loopback rule:
 * a registered loopback URI without a port matches the same URI with any port.
 */

/** Why a redirect URI was refused at registration. */
export type RedirectUriProblem =
  | 'not_absolute'
  | 'has_fragment'
  | 'http_not_loopback'
  | 'insecure_scheme'
  | 'web_client_non_https'
  | 'has_userinfo';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** True for http(s) URLs whose host is a loopback address or `localhost`. */
export function isLoopback(url: URL): boolean {
  return LOOPBACK_HOSTS.has(url.hostname);
}

/**
 * Private-use URI schemes (RFC 8252 §7.1). The RFC recommends reverse-domain names (`com.example.app:`), but real MCP
 * clients register simple vendor schemes (`cursor://`, `vscode://`), so any syntactically valid scheme is accepted
 * except those that could execute or read locally.
 */
function isPrivateUseScheme(protocol: string): boolean {
  const scheme = protocol.slice(0, -1);
  // Also accept simple vendor schemes seen in practice (cursor://, vscode://) but never dangerous ones.
  const forbidden = new Set(['javascript', 'data', 'vbscript', 'file', 'about', 'blob', 'ftp', 'ws', 'wss']);
  return /^[a-z][a-z0-9+.-]*$/.test(scheme) && !forbidden.has(scheme);
}

/**
 * Validates one redirect URI for registration. `applicationType` follows OIDC Registration §2:
 * `web` clients use https (loopback http allowed for development), `native` clients use loopback http,
 * private-use schemes or https.
 */
export function checkRedirectUriForRegistration(
  raw: string,
  applicationType: 'web' | 'native',
): RedirectUriProblem | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not_absolute';
  }
  if (raw.includes('#')) return 'has_fragment';
  if (url.username || url.password) return 'has_userinfo';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') return isLoopback(url) ? undefined : 'http_not_loopback';
  if (!isPrivateUseScheme(url.protocol)) return 'insecure_scheme';
  return applicationType === 'web' ? 'web_client_non_https' : undefined;
}

/** Human-readable text for a registration problem. */
export function describeRedirectUriProblem(problem: RedirectUriProblem, uri: string): string {
  switch (problem) {
    case 'not_absolute':
      return `redirect_uri ${JSON.stringify(uri)} is not an absolute URI`;
    case 'has_fragment':
      return `redirect_uri ${JSON.stringify(uri)} must not contain a fragment`;
    case 'has_userinfo':
      return `redirect_uri ${JSON.stringify(uri)} must not contain user info`;
    case 'http_not_loopback':
      return `redirect_uri ${JSON.stringify(uri)} uses http but is not a loopback address; use https`;
    case 'insecure_scheme':
      return `redirect_uri ${JSON.stringify(uri)} uses a forbidden scheme`;
    case 'web_client_non_https':
      return `redirect_uri ${JSON.stringify(uri)}: web clients must use https or loopback http (use application_type=native for custom schemes)`;
  }
}

/**
 * Finds the registered redirect URI that `requested` matches, or undefined.
 * Exact string match, or RFC 8252 §7.3: a registered http loopback URI without a port matches the same URI
 * text with any port (clients bind an ephemeral port at run time).
 */
export function matchRedirectUri(registered: readonly string[], requested: string): string | undefined {
  if (registered.includes(requested)) return requested;
  const withoutPort = LOOPBACK_WITH_PORT.exec(requested);
  if (!withoutPort) return undefined;
  if (Number(withoutPort[2]) > 65535) return undefined;
  const portless = withoutPort[1]! + withoutPort[3]!;
  if (portless.includes('#')) return undefined;
  // The registered form must itself be port-less loopback http, and match character for character.
  return registered.find((candidate) => candidate === portless);
}

// http://<loopback host>:<port><rest>  -> groups: prefix, port, rest
const LOOPBACK_WITH_PORT = /^(http:\/\/(?:127\.0\.0\.1|\[::1\]|localhost)):(\d{1,5})((?:[/?].*)?)$/;
