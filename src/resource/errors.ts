/**
 * The one error type a resource server sees from `gatehouse/resource`: RFC 6750 §3.1 error codes with their HTTP
 * status, plus `temporarily_unavailable` (503) when the authorization server cannot be reached to check a token.
 */

/** The RFC 6750 §3.1 error codes, plus `temporarily_unavailable` when the authorization server is unreachable. */
export type ResourceAuthErrorCode =
  'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable';

/** HTTP status for each {@link ResourceAuthErrorCode} (RFC 6750 §3.1). */
const STATUS: Readonly<Record<ResourceAuthErrorCode, 400 | 401 | 403 | 503>> = {
  invalid_request: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  temporarily_unavailable: 503,
};

/** Options of {@link ResourceAuthError}. */
export interface ResourceAuthErrorOptions {
  /** For insufficient_scope: every scope the request needs (goes into the challenge's `scope`). */
  requiredScopes?: readonly string[];
  /** True when the request carried no Bearer credentials at all: the challenge then has no `error` (RFC 6750 §3.1). */
  credentialsMissing?: boolean;
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

  constructor(code: ResourceAuthErrorCode, description: string, options: ResourceAuthErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ResourceAuthError';
    this.code = code;
    this.status = STATUS[code];
    this.description = description;
    this.requiredScopes = options.requiredScopes;
    this.credentialsMissing = options.credentialsMissing ?? false;
  }

  /** The JSON error body `{ error, error_description }` (RFC 6749 §5.2 style). */
  toJSON(): { error: ResourceAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}
