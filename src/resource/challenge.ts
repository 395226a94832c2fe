/**
 * RFC 6750 request side: reading a Bearer token from the Authorization header (§2.1) and building the
 * `WWW-Authenticate: Bearer ...` challenge (§3) with RFC 9728 §5.1 `resource_metadata`.
 */
import { ResourceAuthError } from './errors.js';

/** Parameters of a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1). */
export interface BearerChallenge {
  /** RFC 9728 §5.1: URL of this resource's protected-resource metadata. */
  resourceMetadata?: string;
  /** RFC 6750 §3.1 error code; leave unset when the request carried no token. */
  error?: string;
  /** Human-readable text; characters outside RFC 6750 §3's allowed set are replaced. */
  errorDescription?: string;
  /** URI of a page describing the error. */
  errorUri?: string;
  /** Scopes needed for the request (RFC 6750 §3; MCP step-up authorization). */
  scope?: string | readonly string[];
  /** Protection space (RFC 9110 §11.5). */
  realm?: string;
}

// RFC 9110 §5.6.4 quoted-string: escape DQUOTE and backslash; control characters (CR, LF, ...) can never appear.
function quoted(value: string): string {
  return `"${value.replace(/[\x00-\x1f\x7f]/g, ' ').replace(/["\\]/g, '\\$&')}"`;
}

// RFC 6750 §3: error_description and error_uri are limited to %x20-21 / %x23-5B / %x5D-7E.
function restricted(value: string): string {
  return value
    .replace(/"/g, "'")
    .replace(/\\/g, '/')
    .replace(/[^\x20-\x7e]/g, '?');
}

/**
 * Builds a `WWW-Authenticate` value: `Bearer resource_metadata="...", error="...", error_description="...", scope="..."`.
 * Omit `error` when no token was sent (RFC 6750 §3.1).
 * @example
 * res.setHeader('WWW-Authenticate', wwwAuthenticate({ resourceMetadata: url, error: 'insufficient_scope', scope: ['files:write'] }));
 */
export function wwwAuthenticate(challenge: BearerChallenge = {}): string {
  const params: string[] = [];
  if (challenge.realm !== undefined) params.push(`realm=${quoted(challenge.realm)}`);
  if (challenge.resourceMetadata !== undefined) params.push(`resource_metadata=${quoted(challenge.resourceMetadata)}`);
  if (challenge.error !== undefined) params.push(`error=${quoted(restricted(challenge.error))}`);
  if (challenge.errorDescription !== undefined) {
    params.push(`error_description=${quoted(restricted(challenge.errorDescription))}`);
  }
  if (challenge.errorUri !== undefined) params.push(`error_uri=${quoted(restricted(challenge.errorUri))}`);
  const scope = typeof challenge.scope === 'string' ? challenge.scope : challenge.scope?.join(' ');
  if (scope !== undefined && scope !== '') params.push(`scope=${quoted(scope)}`);
  return params.length === 0 ? 'Bearer' : `Bearer ${params.join(', ')}`;
}

/** Parameters of a `WWW-Authenticate: DPoP` challenge (RFC 9449 §7.1). */
export interface DpopChallenge {
  /** The proof algorithms accepted (`algs`). */
  algorithms: readonly string[];
  /** `invalid_token`, `invalid_dpop_proof`, `use_dpop_nonce`, ...; unset when the request carried no token. */
  error?: string;
  errorDescription?: string;
  scope?: string | readonly string[];
  realm?: string;
}

/**
 * Builds a `WWW-Authenticate` DPoP challenge: `DPoP error="...", error_description="...", algs="ES256 ..."`.
 * @example
 * res.setHeader('WWW-Authenticate', `${wwwAuthenticate({ resourceMetadata })}, ${dpopWwwAuthenticate({ algorithms: ['ES256'] })}`);
 */
export function dpopWwwAuthenticate(challenge: DpopChallenge): string {
  const params: string[] = [];
  if (challenge.realm !== undefined) params.push(`realm=${quoted(challenge.realm)}`);
  if (challenge.error !== undefined) params.push(`error=${quoted(restricted(challenge.error))}`);
  if (challenge.errorDescription !== undefined) {
    params.push(`error_description=${quoted(restricted(challenge.errorDescription))}`);
  }
  const scope = typeof challenge.scope === 'string' ? challenge.scope : challenge.scope?.join(' ');
  if (scope !== undefined && scope !== '') params.push(`scope=${quoted(scope)}`);
  params.push(`algs=${quoted(challenge.algorithms.join(' '))}`);
  return `DPoP ${params.join(', ')}`;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// RFC 9110 §11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
const CREDENTIALS = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/s;

/**
 * Reads the access token from an Authorization header value (RFC 6750 §2.1). Pass every value when the header was
 * repeated. Throws {@link ResourceAuthError}: 401 without error code when there are no Bearer credentials, 400
 * invalid_request when the header is malformed, repeated or names two schemes.
 */
export function extractBearerToken(authorization: string | readonly string[] | null | undefined): string {
  return readCredentials(authorization, false).token;
}

/**
 * Reads the access token and its scheme from an Authorization header value: `Bearer` (RFC 6750 §2.1) or `DPoP`
 * (RFC 9449 §7.1). Errors as {@link extractBearerToken}.
 */
export function extractAccessToken(authorization: string | readonly string[] | null | undefined): {
  token: string;
  scheme: 'Bearer' | 'DPoP';
} {
  return readCredentials(authorization, true);
}

function readCredentials(
  authorization: string | readonly string[] | null | undefined,
  dpop: boolean,
): { token: string; scheme: 'Bearer' | 'DPoP' } {
  let value: string | null | undefined;
  if (typeof authorization === 'string' || authorization == null) {
    value = authorization;
  } else if (authorization.length > 1) {
    throw new ResourceAuthError('invalid_request', 'more than one Authorization header was sent');
  } else {
    value = authorization[0];
  }
  value = value?.trim();
  if (value === undefined || value === null || value === '') {
    throw new ResourceAuthError('invalid_token', 'no access token was sent', { credentialsMissing: true });
  }
  const match = CREDENTIALS.exec(value);
  const scheme = match?.[1];
  if (match === null || scheme === undefined) {
    throw new ResourceAuthError('invalid_request', 'the Authorization header is malformed');
  }
  // RFC 9110 §11.1: the auth-scheme is case-insensitive.
  const lower = scheme.toLowerCase();
  const isDpop = dpop && lower === 'dpop';
  if (lower !== 'bearer' && !isDpop) {
    // "Basic x, Bearer y": two sets of credentials in one field (RFC 6750 §3.1: more than one method).
    if (/,\s*(?:bearer|dpop)(?:\s|$)/i.test(value)) {
      throw new ResourceAuthError('invalid_request', 'the Authorization header carries more than one scheme');
    }
    // RFC 6750 §3.1: a request using another method "lacks any authentication information" for Bearer.
    throw new ResourceAuthError('invalid_token', 'no Bearer access token was sent', { credentialsMissing: true });
  }
  const token = match[2];
  if (token === undefined || token === '') {
    throw new ResourceAuthError('invalid_request', 'the Authorization header has no access token');
  }
  if (!B64TOKEN.test(token)) {
    throw new ResourceAuthError(
      'invalid_request',
      token.includes(',')
        ? 'the Authorization header carries more than one scheme'
        : 'the Authorization header is malformed',
    );
  }
  return { token, scheme: isDpop ? 'DPoP' : 'Bearer' };
}

/**
 * True when a request target carries an `access_token` query parameter, which this library refuses
 * (RFC 6750 §2.3 / §5.3; MCP: tokens MUST NOT be sent in the URI query string).
 */
export function hasQueryAccessToken(url: string | undefined): boolean {
  if (url === undefined) return false;
  const q = url.indexOf('?');
  if (q === -1) return false;
  const hash = url.indexOf('#', q);
  return new URLSearchParams(url.slice(q + 1, hash === -1 ? undefined : hash)).has('access_token');
}
