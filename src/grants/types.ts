/** What every grant module exports, and what the token endpoint returns (RFC 6749 §5.1). */
import type { GrantClientRules } from '../core/client-metadata.js';
import type { Config } from '../config/schema.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { ClientRecord } from '../model/records.js';

/** RFC 6749 §5.1 successful token response. */
export interface TokenResponse {
  access_token: string;
  /** `DPoP` when the access token is bound to the proof's key (RFC 9449 §5, `cnf.jkt`). */
  token_type: 'Bearer' | 'DPoP';
  /** Absent only for an upstream token the upstream gave no lifetime (token exchange; GitHub's OAuth app tokens). */
  expires_in?: number;
  /** RFC 8693 §2.2.1: what a token exchange issued. */
  issued_token_type?: string;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
}

/**
 * The DPoP proof the token endpoint checked for this request (RFC 9449 §4.3), once for every grant: the thumbprint
 * of its key. A grant mints its access token with it (`cnf.jkt`); absent: no proof, a Bearer token.
 */
export interface DpopBinding {
  jkt: string;
}

/** Form parameters after the HTTP edge rejected duplicates: single values, or lists for repeatable ones. */
export type TokenParams = Record<string, string | string[] | undefined>;

/**
 * A grant module: everything the server needs to know about one grant type. The registry (grants/index.ts) lists the
 * modules; token dispatch, discovery, client-metadata validation (registration, static clients, metadata documents)
 * and the config schema all read it, so a new grant is one module plus one line there.
 *
 * From GrantClientRules (what clients listing it must satisfy): `grantType`, `allowsPublicClients` (also checked at
 * the token endpoint), `responseTypes`, `requiresGrantTypes`, `requiresRedirectUris`, `registrationDefault`,
 * `metadataDocumentClients`, `checkClient`.
 */
export interface GrantHandler<D> extends GrantClientRules {
  /** Parameters that may appear more than once (e.g. RFC 8707 `resource`). */
  repeatableParams: readonly string[];
  /** Its config switch: false = the server does not offer it at all (not advertised, refused everywhere). Default on. */
  enabled?(config: Config): boolean;
  /** Whether dynamically registered clients (RFC 7591) may list it under this registration policy. Default yes. */
  dynamicRegistration?(registration: Config['registration']): boolean;
  /** Whether a config-file client gets it when its `grant_types` is absent, given whether it has redirect_uris. */
  staticClientDefault?(hasRedirectUris: boolean): boolean;
  /** What it adds to the discovery document (RFC 8414 / OIDC Discovery), besides its grant_types_supported entry. */
  metadata?(config: Config): Record<string, unknown>;
  /** The token-endpoint error codes it may answer with (RFC 6749 §5.2 and extensions): documentation only. */
  errorCodes: readonly string[];
  /**
   * Answers a token request of this grant type. `deps` is the slice of Deps the grant declares (its services and the
   * store methods it calls, nothing more); the token endpoint passes every grant's slice together (GrantDeps in
   * grants/index.ts). A property, not a method, so the registry's type checks each grant's slice strictly. `context`:
   * the request being served, for the audit events the grant emits (core/audit.ts). `dpop`: the key of the request's
   * valid DPoP proof, checked by the token endpoint; a grant that mints an access token passes its `jkt` to the
   * minter (AccessTokenClaims.jkt).
   */
  handle: (
    params: TokenParams,
    client: ClientRecord,
    deps: D,
    context?: AuditRequestContext,
    dpop?: DpopBinding,
  ) => Promise<TokenResponse>;
  /**
   * Answers a request of this grant type that authenticates no client: none presented, or only a `client_id` (passed
   * here). RFC 7523 §3.1 makes client authentication optional for assertion grants, where the assertion itself names
   * who is asking. Without it such a request is invalid_client, as for every grant.
   */
  handleUnauthenticated?: (
    params: TokenParams,
    clientId: string | undefined,
    deps: D,
    dpop?: DpopBinding,
  ) => Promise<TokenResponse>;
}

/** Reads a single-valued parameter. */
export function single(params: TokenParams, name: string): string | undefined {
  const v = params[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a repeatable parameter as a list. */
export function list(params: TokenParams, name: string): string[] {
  const v = params[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}
