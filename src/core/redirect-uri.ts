/**
 * Redirect URI rules. Registration (RFC 7591 §2, RFC 8252 §7, OAuth 2.1 §2.3.1) and matching at the
 * authorization endpoint: exact string match (RFC 9700 §4.1.3), except the RFC 8252 §7.3 loopback rule:
 * a registered http loopback URI matches the same URI with any port, whether or not it was registered with one.
 */

/** Why a redirect URI was refused at registration. */
export type RedirectUriProblem =
  | 'not_absolute'
  | 'has_fragment'
  | 'http_not_loopback'
  | 'insecure_scheme'
  | 'web_client_non_https'
  | 'has_userinfo'
  | 'bad_loopback_port'
  | 'has_control_or_space';

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
  // WHATWG URL parsing drops tabs and newlines and trims spaces and controls, so such a URI would be validated as
  // another string than the one stored, matched and shown: refuse it outright.
  if (/[\u0000-\u0020\u007f-\u009f]/.test(raw)) return 'has_control_or_space';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not_absolute';
  }
  if (raw.includes('#')) return 'has_fragment';
  if (url.username || url.password) return 'has_userinfo';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    if (!isLoopback(url)) return 'http_not_loopback';
    // Matching refuses such a port at request time, so the URI could never be used.
    return splitLoopback(raw) === null ? 'bad_loopback_port' : undefined;
  }
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
    case 'has_control_or_space':
      return `redirect_uri ${JSON.stringify(uri)} must not contain spaces or control characters`;
    case 'has_userinfo':
      return `redirect_uri ${JSON.stringify(uri)} must not contain user info`;
    case 'http_not_loopback':
      return `redirect_uri ${JSON.stringify(uri)} uses http but is not a loopback address; use https`;
    case 'insecure_scheme':
      return `redirect_uri ${JSON.stringify(uri)} uses a forbidden scheme`;
    case 'bad_loopback_port':
      return `redirect_uri ${JSON.stringify(uri)}: a loopback port must be a decimal number 1-65535 without leading zeros`;
    case 'web_client_non_https':
      return `redirect_uri ${JSON.stringify(uri)}: web clients must use https or loopback http (use application_type=native for custom schemes)`;
  }
}

/**
 * Finds the registered redirect URI that `requested` matches, or undefined.
 * Exact string match, or RFC 8252 §7.3 / OAuth 2.1 §8.4.2: for an http loopback URI (127.0.0.1, [::1], localhost)
 * the port is ignored, with or without a port in the registered URI (clients bind whatever port is free at run
 * time); scheme, host, path and query still match character for character. A port must be canonical decimal
 * (1-65535, no leading zero), so `:080` or `:0` never matches; other hosts never get the port exemption.
 */
export function matchRedirectUri(registered: readonly string[], requested: string): string | undefined {
  const asked = splitLoopback(requested);
  // An http loopback URI with a non-canonical port is refused even when registered verbatim.
  if (asked === null) return undefined;
  if (registered.includes(requested)) return requested;
  if (asked === undefined || asked.rest.includes('#')) return undefined;
  return registered.find((candidate) => {
    const c = splitLoopback(candidate);
    return c != null && c.host === asked.host && c.rest === asked.rest;
  });
}

// http://<loopback host>[:<port>]<rest> -> groups: host, port, rest. The port group takes any digits so a
// non-canonical port is recognised (and refused) instead of slipping into `rest`.
const LOOPBACK_URI = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(?::(\d*))?((?:[/?].*)?)$/s;

/**
 * Host and rest of an http loopback URI; undefined when it is not one; null when its port is not canonical
 * decimal 1-65535 without a leading zero.
 */
function splitLoopback(uri: string): { host: string; rest: string } | null | undefined {
  const m = LOOPBACK_URI.exec(uri);
  if (!m) return undefined;
  const port = m[2];
  if (port !== undefined && !(/^[1-9]\d{0,4}$/.test(port) && Number(port) <= 65535)) return null;
  return { host: m[1]!, rest: m[3]! };
}
