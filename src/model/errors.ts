/**
 * OAuth error types: one class per wire error code (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 7591 §3.2.2;
 * RFC 8707 §2; OIDC Core §3.1.2.6). `description` is safe to send to a client; `detail` and `cause` are for logs only.
 */

/** Every error code Gatehouse puts on the wire. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'invalid_target'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'invalid_request_uri'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'authorization_pending'
  | 'slow_down'
  | 'expired_token'
  | 'server_error'
  | 'temporarily_unavailable';

interface OAuthErrorOptions {
  /** Internal detail for logs; never sent to the client. */
  detail?: string;
  cause?: unknown;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  headers?: Record<string, string>;
}

/** Base class: a protocol error with its HTTP status and whether it may be sent back via redirect. */
export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  readonly status: number;
  readonly description: string;
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;
  /** False when the redirect_uri or client is not trusted, so the error must be shown, not redirected. */
  redirectable = true;

  constructor(code: OAuthErrorCode, status: number, description: string, options: OAuthErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.code = code;
    this.status = status;
    this.description = description;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** The RFC 6749 §5.2 JSON body. */
  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/** invalid_request (400): a parameter is missing, repeated, malformed or unsupported. */
export class InvalidRequest extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_request', 400, description, options);
  }
}

/** invalid_client (401): client authentication failed (RFC 6749 §5.2). */
export class InvalidClient extends OAuthError {
  constructor(description = 'client authentication failed', options?: OAuthErrorOptions) {
    super('invalid_client', 401, description, options);
    this.redirectable = false;
  }
}

/** invalid_grant (400): code, refresh token or verifier is invalid, expired, revoked or not the client's. */
export class InvalidGrant extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_grant', 400, description, options);
  }
}

/** unauthorized_client (400): the client may not use this grant or response type. */
export class UnauthorizedClient extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('unauthorized_client', 400, description, options);
  }
}

/** unsupported_grant_type (400). */
export class UnsupportedGrantType extends OAuthError {
  constructor(description = 'grant_type is not supported', options?: OAuthErrorOptions) {
    super('unsupported_grant_type', 400, description, options);
  }
}

/** unsupported_response_type (400): only `code` is supported (OAuth 2.1). */
export class UnsupportedResponseType extends OAuthError {
  constructor(description = 'only response_type=code is supported', options?: OAuthErrorOptions) {
    super('unsupported_response_type', 400, description, options);
  }
}

/** invalid_scope (400). */
export class InvalidScope extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_scope', 400, description, options);
  }
}

/** access_denied (403 when not redirected): the user or policy refused. */
export class AccessDenied extends OAuthError {
  constructor(description = 'the resource owner denied the request', options?: OAuthErrorOptions) {
    super('access_denied', 403, description, options);
  }
}

/** RFC 8628 §3.5 authorization_pending (400): the user has not yet approved or denied the device. */
export class AuthorizationPending extends OAuthError {
  constructor(description = 'the user has not yet completed the authorization') {
    super('authorization_pending', 400, description);
  }
}

/** RFC 8628 §3.5 slow_down (400): the device polls too fast; its interval grows by 5 seconds. */
export class SlowDown extends OAuthError {
  constructor(description = 'polling too fast: wait 5 seconds more between requests') {
    super('slow_down', 400, description);
  }
}

/** RFC 8628 §3.5 access_denied at the token endpoint (400, as every §5.2 error): the user denied the device. */
export class DeviceAccessDenied extends OAuthError {
  constructor(description = 'the user denied the authorization') {
    super('access_denied', 400, description);
  }
}

/** RFC 8628 §3.5 expired_token (400): the device code expired; the device must start again. */
export class ExpiredToken extends OAuthError {
  constructor(description = 'the device code has expired') {
    super('expired_token', 400, description);
  }
}

/** invalid_target (400): RFC 8707 §2, a resource indicator is malformed or not allowed. */
export class InvalidTarget extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_target', 400, description, options);
  }
}

/** invalid_token (401): RFC 6750 §3.1. */
export class InvalidToken extends OAuthError {
  constructor(description = 'the access token is invalid', options?: OAuthErrorOptions) {
    super('invalid_token', 401, description, options);
  }
}

/** insufficient_scope (403): RFC 6750 §3.1. */
export class InsufficientScope extends OAuthError {
  constructor(description = 'the access token lacks a required scope', options?: OAuthErrorOptions) {
    super('insufficient_scope', 403, description, options);
  }
}

/** invalid_redirect_uri (400): RFC 7591 §3.2.2. Never redirected. */
export class InvalidRedirectUri extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_redirect_uri', 400, description, options);
    this.redirectable = false;
  }
}

/** invalid_client_metadata (400): RFC 7591 §3.2.2. */
export class InvalidClientMetadata extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_client_metadata', 400, description, options);
  }
}

/** login_required / consent_required / interaction_required (OIDC Core §3.1.2.6), for prompt=none. */
export class InteractionRequired extends OAuthError {
  constructor(code: 'login_required' | 'consent_required' | 'interaction_required', description: string) {
    super(code, 400, description);
  }
}

/** request_not_supported / request_uri_not_supported (OIDC Core §3.1.2.6): no request objects (RFC 9101). */
export class RequestNotSupported extends OAuthError {
  constructor(code: 'request_not_supported' | 'request_uri_not_supported', description: string) {
    super(code, 400, description);
  }
}

/**
 * invalid_request_uri (400, OIDC Core §3.1.2.6): a pushed request's request_uri that is unknown, expired, already used
 * or another client's (RFC 9126 §4). Shown on a page, never redirected: nothing of the request can be trusted.
 */
export class InvalidRequestUri extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions) {
    super('invalid_request_uri', 400, description, options);
    this.redirectable = false;
  }
}

/**
 * invalid_dpop_proof (RFC 9449 §5, §7.1): the DPoP proof is missing where required, malformed, badly signed, for
 * another request, too old or replayed. 400 at the token endpoint; 401 (with a DPoP challenge) at a protected resource.
 */
export class InvalidDpopProof extends OAuthError {
  constructor(description: string, options?: OAuthErrorOptions & { status?: 400 | 401 }) {
    super('invalid_dpop_proof', options?.status ?? 400, description, options);
  }
}

/** use_dpop_nonce (RFC 9449 §8, §9): the server wants a nonce in the proof; the `DPoP-Nonce` header carries it. */
export class UseDpopNonce extends OAuthError {
  constructor(nonce: string, options?: OAuthErrorOptions & { status?: 400 | 401 }) {
    super('use_dpop_nonce', options?.status ?? 400, 'a DPoP nonce is required: use the one in the DPoP-Nonce header', {
      ...options,
      headers: { 'dpop-nonce': nonce, ...(options?.headers ?? {}) },
    });
  }
}

/** server_error (500): reveals nothing; the cause goes to the log. */
export class ServerError extends OAuthError {
  constructor(detail?: string, options?: OAuthErrorOptions) {
    super('server_error', 500, 'the server encountered an unexpected condition', { ...options, detail });
  }
}

/** temporarily_unavailable (503): the store is unreachable; the client may retry. */
export class TemporarilyUnavailable extends OAuthError {
  constructor(retryAfterSeconds = 5, options?: OAuthErrorOptions) {
    super('temporarily_unavailable', 503, 'the service is temporarily unavailable, retry later', {
      ...options,
      headers: { 'retry-after': String(retryAfterSeconds), ...(options?.headers ?? {}) },
    });
  }
}

/**
 * Over a request limit (registration, config `rateLimits`): 429 (RFC 6585) with Retry-After. RFC 6749 and RFC 7591
 * define no code for it; temporarily_unavailable (RFC 6749 §4.1.2.1, registered for every endpoint in the IANA OAuth
 * extensions error registry) is the registered code that says "retry later", and what other servers answer with
 * their 429s (e.g. Coder's OAuth2 provider); `slow_down` is the device grant's polling signal only (RFC 8628 §3.5), and
 * unregistered codes (`too_many_requests`, `rate_limited`) mean nothing to a generic client.
 */
export class RateLimited extends OAuthError {
  constructor(description: string, retryAfterSeconds: number) {
    super('temporarily_unavailable', 429, description, { headers: { 'retry-after': String(retryAfterSeconds) } });
  }
}

/** Thrown by a store when its backend cannot be reached; the HTTP layer maps it to 503. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

/** A configuration problem, naming the field (also thrown by core when the store does not match the configuration). */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
