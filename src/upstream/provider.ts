/**
 * Upstream identity providers (config `upstreams`): the contract between the relying-party side (how Gatehouse talks
 * to an upstream: upstream/client.ts) and the authorization flow (how a sign-in goes upstream and comes back:
 * authorization/upstream-sign-in.ts). Gatehouse stays the authorization server MCP clients talk to; an upstream only
 * tells it who the user is, and its tokens are kept (sealed) for resource servers to be vended later.
 */

/** Who the upstream says the user is, validated (ID token signature and claims, or the userinfo mapping). */
export interface UpstreamIdentity {
  /** The configured upstream's id (`upstreams[].id`). */
  upstreamId: string;
  /** The upstream's issuer (OIDC) or its configured identifier (oauth2): with `subject`, the stable identity. */
  issuer: string;
  subject: string;
  email?: string;
  emailVerified?: boolean;
  name?: string;
}

/** The upstream's tokens from a code exchange (or, later, a refresh). Never logged; stored only sealed. */
export interface UpstreamTokens {
  tokenType: string;
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  /** Epoch ms; absent when the upstream says nothing (GitHub's non-expiring tokens). */
  expiresAt?: number;
  scope?: string;
}

/** What going upstream needs kept until the callback: kept in the pending upstream authorization record. */
export interface UpstreamRequest {
  /** The authorization URL to send the browser to. */
  url: string;
  /** Our state, nonce and PKCE verifier for this one request (random, single-use). */
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** Why an upstream sign-in failed: what the flow tells the client (or shows on a page) and logs. */
export type UpstreamFailure =
  /** The user refused at the upstream (error=access_denied). */
  | 'access_denied'
  /** The upstream answered with an error of its own, or a response that does not validate (bad ID token, nonce, iss). */
  | 'invalid_response'
  /** The upstream did not answer in time, or answered 5xx / garbage. */
  | 'unavailable'
  /** The upstream refused a refresh token (`invalid_grant`): spent, revoked or expired; a new sign-in is needed. */
  | 'invalid_grant';

export class UpstreamError extends Error {
  constructor(
    readonly failure: UpstreamFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

/** The last discovery / JWKS outcome of an upstream, as known without going to the network. */
export interface UpstreamStatus {
  /** 'up': the last check succeeded (or nothing to discover: oauth2); 'degraded': it failed; 'unknown': not yet. */
  status: 'up' | 'degraded' | 'unknown';
  /** What was checked: the discovery document and JWKS (oidc), or nothing (oauth2: configured endpoints). */
  discovery: 'ok' | 'failed' | 'unchecked' | 'static';
  /** Epoch ms of the last check, when there was one. */
  checkedAt?: number;
  /** Why the last check failed (no secrets: the upstream's URL and HTTP status at most). */
  error?: string;
}

/** One configured upstream, ready to use (discovery done lazily, cached; timeouts on every call). */
export interface UpstreamProvider {
  readonly id: string;
  /** Shown on the sign-in page ("Sign in with <name>"). */
  readonly name: string;
  /** The upstream issuer (OIDC) or configured identifier (oauth2). */
  readonly issuer: string;
  /** A new authorization request towards the upstream, with fresh state, nonce and PKCE S256 (when it allows). */
  begin(redirectUri: string): Promise<UpstreamRequest>;
  /**
   * Completes it from the callback's query: checks the response came from this upstream (RFC 9207 `iss` when sent:
   * mix-up defence), exchanges the code (PKCE verifier, client authentication), validates the identity (OIDC: the
   * ID token with jose against the upstream JWKS: iss, aud, azp, exp, iat, nonce; oauth2: the userinfo mapping).
   * Throws UpstreamError. The caller has already matched `state` to its pending record.
   */
  complete(
    callback: URLSearchParams,
    pending: Pick<UpstreamRequest, 'nonce' | 'codeVerifier'> & { redirectUri: string },
  ): Promise<{ identity: UpstreamIdentity; tokens: UpstreamTokens }>;
  /**
   * Refreshes at the token endpoint (grant_type=refresh_token, client authentication as for the code). An upstream
   * that does not rotate gets its refresh token carried forward; an ID token in the answer is validated as at sign-in
   * (no nonce). Throws UpstreamError; `invalid_grant` when the upstream refuses the refresh token.
   */
  refresh(refreshToken: string): Promise<UpstreamTokens>;
  /**
   * An upstream Gatehouse registered at (`registration: dynamic`): the stored registration's generation, from the
   * store (no network), undefined when there is none. Part of the upstream client generation of its tokens.
   */
  readonly registrationGeneration?: () => Promise<string | undefined>;
  /** The last discovery / JWKS outcome, from memory (no network). */
  status(): UpstreamStatus;
  /**
   * Checks discovery and the JWKS now (oidc), at most once per `minIntervalMs` (concurrent callers share one check),
   * and returns the status after it. Never throws.
   */
  probe(minIntervalMs?: number): Promise<UpstreamStatus>;
}
