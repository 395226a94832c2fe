/**
 * The one error type a resource server sees from `gatehouse/resource`: RFC 6750 §3.1 error codes with their HTTP
 * status, plus `temporarily_unavailable` (503) when the authorization server cannot be reached to check a token.
 */

/**
 * The RFC 6750 §3.1 error codes, RFC 9449's `invalid_dpop_proof` and `use_dpop_nonce`, plus `temporarily_unavailable`
 * when the authorization server is unreachable.
 */
export type ResourceAuthErrorCode =
  | 'invalid_request'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'temporarily_unavailable';

/** HTTP status for each {@link ResourceAuthErrorCode} (RFC 6750 §3.1). */
const STATUS: Readonly<Record<ResourceAuthErrorCode, 400 | 401 | 403 | 503>> = {
  invalid_request: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  // RFC 9449 §7.1, §9: answered with 401 and a DPoP challenge.
  invalid_dpop_proof: 401,
  use_dpop_nonce: 401,
  temporarily_unavailable: 503,
};

/** Options of {@link ResourceAuthError}. */
export interface ResourceAuthErrorOptions {
  /** For insufficient_scope: every scope the request needs (goes into the challenge's `scope`). */
  requiredScopes?: readonly string[];
  /** True when the request carried no Bearer credentials at all: the challenge then has no `error` (RFC 6750 §3.1). */
  credentialsMissing?: boolean;
  /** The authentication scheme whose challenge carries the error (RFC 9449 §7.1): `DPoP`, or `Bearer` (default). */
  scheme?: 'Bearer' | 'DPoP';
  /** For use_dpop_nonce: the nonce the client must put in its next proof (sent as `DPoP-Nonce`). */
  dpopNonce?: string;
  /** The underlying error, for logs only. */
  cause?: unknown;
}

/**
 * A token was missing, malformed, invalid or lacked scope. `description` is safe to send to the client; `cause`
 * is for logs only.
 * @example
 * try { await verifier.verify(token) } catch (e) { if (e instanceof ResourceAuthError) reply(e.status, e.toJSON()) }
 */
export class ResourceAuthError extends Error {
  /** RFC 6750 §3.1 error code. */
  readonly code: ResourceAuthErrorCode;
  /** 400, 401, 403 or 503. */
  readonly status: 400 | 401 | 403 | 503;
  /** Human-readable text that is safe to return to the client. */
  readonly description: string;
  /** For insufficient_scope: the scopes the request needs. */
  readonly requiredScopes: readonly string[] | undefined;
  /** True when no Bearer credentials were sent (the WWW-Authenticate challenge then carries no error). */
  readonly credentialsMissing: boolean;
  /** The scheme whose challenge carries the error: `DPoP` for proof errors and DPoP requests, else `Bearer`. */
  readonly scheme: 'Bearer' | 'DPoP';
  /** For use_dpop_nonce: the nonce to use (the `DPoP-Nonce` response header). */
  readonly dpopNonce: string | undefined;

  constructor(code: ResourceAuthErrorCode, description: string, options: ResourceAuthErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ResourceAuthError';
    this.code = code;
    this.status = STATUS[code];
    this.description = description;
    this.requiredScopes = options.requiredScopes;
    this.credentialsMissing = options.credentialsMissing ?? false;
    this.scheme = options.scheme ?? 'Bearer';
    this.dpopNonce = options.dpopNonce;
  }

  /** The JSON error body `{ error, error_description }` (RFC 6749 §5.2 style). */
  toJSON(): { error: ResourceAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}
