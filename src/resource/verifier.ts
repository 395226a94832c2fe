/**
 * Access-token verification for resource servers: RFC 9068 JWT access tokens checked locally against the issuer's
 * JWKS, or opaque tokens checked by RFC 7662 introspection. Audience binding follows RFC 8707 / MCP. One verifier may
 * trust several issuers (a list, or a tenant template); each token is then checked with its own issuer's keys only.
 */
import { decodeJwt, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import type { CryptoKey, JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from 'jose';
import { discoverAuthorizationServer, MetadataNotFoundError } from './discovery.js';
import type { AuthorizationServerMetadata, FetchLike } from './discovery.js';
import { ResourceAuthError } from './errors.js';
import { checkIssuer, parseIssuerTemplate, TENANT_PATTERN } from './issuers.js';
import type { IssuerTemplate } from './issuers.js';
import { remoteKeys } from './keys.js';
import { DpopChecker, type DpopOptions, type DpopRequest } from './dpop.js';
import { protectedResourceMetadataUrl } from './metadata.js';

/**
 * Options of {@link createResourceVerifier}. Give exactly one of `issuer`, `issuers` or `issuerTemplate`.
 */
export interface ResourceVerifierOptions {
  /** The authorization server's issuer identifier, exactly as it appears in its metadata and in `iss`. */
  issuer?: string;
  /**
   * Several trusted issuers (JWT mode only), each spelt exactly as in its metadata and in `iss`. A token is verified
   * with the keys of the issuer its `iss` names, and only if that issuer is in this list.
   */
  issuers?: readonly string[];
  /**
   * A tenant issuer template (JWT mode only), e.g. `https://auth.example.com/{tenant}`: exactly one `{tenant}`, filling
   * a whole path segment of a normalised URL. A token's `iss` must be exactly the template with a tenant matching
   * `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$` (and allowed by `tenants`); its issuer's metadata and keys are then
   * discovered on first use. Without `tenants`, any such name costs one discovery (then a negative-cache entry): give
   * `tenants` when the set is known.
   */
  issuerTemplate?: string;
  /**
   * With `issuerTemplate`: the tenants accepted, as a list or a predicate (called for every token before anything is
   * fetched; keep it fast, cache it yourself if it queries a store). A predicate that throws fails the request as
   * `temporarily_unavailable`. Default: every tenant the template matches.
   */
  tenants?: readonly string[] | ((tenant: string) => boolean | Promise<boolean>);
  /**
   * Issuers to advertise in RFC 9728 `authorization_servers` ({@link ResourceVerifier.authorizationServers}). Each
   * must be trusted. Default: `[issuer]`, or `issuers`; an `issuerTemplate` has no finite list, so with a template it
   * is empty unless given here.
   */
  authorizationServers?: readonly string[];
  /**
   * With `issuers` / `issuerTemplate`: most issuers whose metadata and keys are kept (least recently used dropped
   * first, rediscovered when needed again). Default: the length of `issuers`, or 100 for a template.
   */
  maxIssuers?: number;
  /**
   * Seconds a failed discovery of an issuer is remembered: requests naming it fail at once meanwhile instead of
   * fetching again. Default 0 with `issuer` (the next call retries), 30 with `issuers` / `issuerTemplate`, where a
   * token can name an issuer that does not exist.
   */
  discoveryCooldownSeconds?: number;
  /** This resource's canonical URI (RFC 8707), e.g. `https://mcp.example.com/mcp`; tokens must name it in `aud`. */
  resource: string;
  /** Scopes every request must carry; `verify` may add more per call. */
  requiredScopes?: readonly string[];
  /** `jwt` (default): check RFC 9068 JWTs locally. `introspection`: ask the authorization server (RFC 7662). */
  mode?: 'jwt' | 'introspection';
  /** Client credentials for the introspection endpoint (client_secret_basic); required in introspection mode. */
  introspection?: IntrospectionOptions;
  /** Allowed clock skew for `exp`/`nbf`, in seconds. Default 0. `iat` may lie up to max(this, 60) seconds ahead. */
  clockToleranceSeconds?: number;
  /** fetch implementation for discovery, JWKS and introspection; default the global one. */
  fetch?: FetchLike;
  /** Minimum seconds between JWKS refetches triggered by an unknown `kid`. Default 30. */
  jwksCooldownSeconds?: number;
  /** Seconds a fetched JWKS is used before it is refetched. Default 600. */
  jwksCacheMaxAgeSeconds?: number;
  /** Timeout of each HTTP request to the authorization server, in milliseconds. Default 5000. */
  timeoutMs?: number;
  /**
   * DPoP (RFC 9449): tokens with `cnf.jkt` are accepted only as `Authorization: DPoP` with a valid proof of that key
   * (never as Bearer). On by default with in-process replay detection; give `replayStore` to share it between
   * replicas. `false`: DPoP-bound tokens are refused altogether and challenges name only Bearer.
   */
  dpop?: DpopOptions | false;
}

/** Introspection-mode settings (RFC 7662). */
export interface IntrospectionOptions {
  /** This resource server's client_id at the authorization server. */
  clientId: string;
  /** Its client secret, sent with client_secret_basic (RFC 6749 §2.3.1). */
  clientSecret: string;
  /** Cache active results for this many seconds (never past the token's `exp`). Default 0: no cache. */
  cacheTtlSeconds?: number;
  /** Most tokens kept in that cache; the least recently used is dropped first. Default 1000. */
  cacheMaxEntries?: number;
}

/** Per-call options of {@link ResourceVerifier.verify}. */
export interface VerifyOptions {
  /** Scopes this request needs, in addition to the verifier's `requiredScopes`. */
  requiredScopes?: readonly string[];
  /** The scheme the token came with (the adapters set it): a DPoP-bound token is accepted only with `DPoP`. */
  scheme?: 'Bearer' | 'DPoP';
  /** With scheme `DPoP`: the request's proof, method and public URL (RFC 9449 §7). */
  dpop?: DpopRequest;
}

/** Claims of a verified token: the RFC 9068 JWT payload, or the RFC 7662 introspection response. */
export interface AccessTokenClaims extends JWTPayload {
  client_id?: string;
  scope?: string;
  /** RFC 9449 §6: the key a DPoP-bound token is bound to. */
  cnf?: { jkt?: string };
}

/** What a verified access token says. */
export interface AuthInfo {
  /** The access token as received. */
  token: string;
  /** `sub`: the resource owner, or the client itself for client-credentials tokens (RFC 9068 §2.2). */
  subject: string;
  /** `client_id` of the client the token was issued to. */
  clientId: string;
  /** Granted scopes, split from the `scope` claim. */
  scopes: string[];
  /** `aud` as an array. */
  audience: string[];
  /** `exp`, in seconds since the epoch. */
  expiresAt: number;
  /** `jti` (always present for JWT access tokens; optional in introspection responses). */
  jti: string | undefined;
  /** Every claim of the token (JWT payload or introspection response). `claims.iss` is the verified issuer in JWT mode. */
  claims: AccessTokenClaims;
  /** With `issuerTemplate`: the tenant named by the token's issuer. Absent otherwise. */
  tenant?: string;
  /** RFC 9449: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`), whose proof came with it. */
  dpopJkt?: string;
}

/** Verifies access tokens for one resource; made by {@link createResourceVerifier}. */
export interface ResourceVerifier {
  /** The configured `issuer`; `undefined` when the verifier was made with `issuers` or `issuerTemplate`. */
  readonly issuer: string | undefined;
  /** The fixed list of trusted issuers: `[issuer]`, or `issuers`; empty with `issuerTemplate`. */
  readonly issuers: readonly string[];
  /** The configured `issuerTemplate`, if any. */
  readonly issuerTemplate: string | undefined;
  /**
   * What RFC 9728 metadata should list in `authorization_servers`: the `authorizationServers` option, else `issuers`
   * (empty for a template without that option). Pass it as `authorizationServers` to the metadata route.
   */
  readonly authorizationServers: readonly string[];
  /** The configured resource (canonical URI). */
  readonly resource: string;
  /** Scopes every request must carry. */
  readonly requiredScopes: readonly string[];
  /** `jwt` or `introspection`. */
  readonly mode: 'jwt' | 'introspection';
  /** RFC 9728 metadata URL of the resource, for `resource_metadata` in challenges. */
  readonly resourceMetadataUrl: string;
  /** The DPoP proof algorithms accepted (for `WWW-Authenticate: DPoP algs`); empty with `dpop: false`. */
  readonly dpopAlgorithms: readonly string[];
  /** Verifies a token; throws {@link ResourceAuthError}. */
  verify(token: string, options?: VerifyOptions): Promise<AuthInfo>;
  /**
   * The discovered authorization-server metadata of a trusted issuer (discovering it when not yet done); `issuer` is
   * required when the verifier trusts more than one. Rejects with a TypeError for an issuer it does not trust.
   */
  authorizationServerMetadata(issuer?: string): Promise<AuthorizationServerMetadata>;
}

/** A {@link ResourceVerifier} made with one `issuer`. */
export interface SingleIssuerResourceVerifier extends ResourceVerifier {
  readonly issuer: string;
}

// RFC 9068 §4 / OAuth 2.1: asymmetric signatures only; `none` and HMAC are never accepted.
const ALGORITHMS = ['ES256', 'RS256', 'EdDSA'];
// RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat and jti are REQUIRED (iss and aud are added by jose's options).
const REQUIRED_CLAIMS = ['exp', 'iat', 'sub', 'client_id', 'jti'];
/**
 * How far in the future `iat` may lie (or clockToleranceSeconds, if larger): this server's clock may lag the
 * authorization server's a little, but a token from further ahead was not issued now.
 */
const IAT_FUTURE_SKEW_SECONDS = 60;

/** Longest a verified token is remembered (see ResourceVerifier #verified). */
const VERIFIED_TTL_MS = 60_000;

interface JwtState {
  metadata: AuthorizationServerMetadata;
  jwks: JWTVerifyGetKey;
  options: JWTVerifyOptions;
}

interface IntrospectionState {
  metadata: AuthorizationServerMetadata;
  endpoint: string;
}

type IssuerState = JwtState | IntrospectionState;

function invalidToken(description: string, cause?: unknown): ResourceAuthError {
  return new ResourceAuthError('invalid_token', description, { cause });
}

/** The other spelling of a URI that differs only by a trailing slash. */
function slashVariant(uri: string): string {
  return uri.endsWith('/') ? uri.slice(0, -1) : `${uri}/`;
}

function checkResource(resource: string): void {
  try {
    new URL(resource);
  } catch {
    throw new TypeError(`resource must be an absolute URI: ${resource}`);
  }
  // RFC 8707 §2: a resource indicator MUST NOT include a fragment.
  if (resource.includes('#')) throw new TypeError('resource must not contain a fragment');
}

/** Endpoint URLs from the metadata: absolute, and https whenever the issuer is https (no downgrade). */
function endpoint(metadata: AuthorizationServerMetadata, member: string, issuer: string): string {
  const value = metadata[member];
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (issuer.startsWith('https:') && url.protocol !== 'https:')) {
    throw new ResourceAuthError('temporarily_unavailable', `the authorization server metadata has no usable ${member}`);
  }
  return url.href;
}

/** Maps a jose verification error to a client-safe {@link ResourceAuthError}. */
function fromJoseError(error: unknown): ResourceAuthError {
  if (error instanceof ResourceAuthError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalidToken('the access token has expired', error);
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason } = error as { claim?: string; reason?: string };
      if (claim === 'typ') return invalidToken('the token is not a JWT access token (typ must be at+jwt)', error);
      if (reason === 'missing') return invalidToken(`the access token lacks the "${claim}" claim`, error);
      if (claim === 'aud') return invalidToken('the access token was not issued for this resource', error);
      if (claim === 'iss') return invalidToken('the access token was issued by an untrusted issuer', error);
      if (claim === 'nbf') return invalidToken('the access token is not valid yet', error);
      return invalidToken(`the access token "${claim}" claim is invalid`, error);
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalidToken('the access token signature is invalid', error);
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return invalidToken('no signing key matches the access token', error);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalidToken('the access token signing algorithm is not accepted', error);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return invalidToken('the access token is malformed', error);
    default:
      // JWKS timeout, non-200 or unparsable JWKS, network failure: not the token's fault.
      return new ResourceAuthError('temporarily_unavailable', 'the signing keys could not be loaded', { cause: error });
  }
}

/**
 * A token without `kid` while the JWKS holds several keys for its `alg` (e.g. mid-rotation): jose hands back the
 * candidates, and the token is accepted if one of them verifies it. Any other error is mapped and rethrown.
 */
async function retryEachKey(token: string, options: JWTVerifyOptions, error: unknown): Promise<AccessTokenClaims> {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw fromJoseError(error);
  for await (const key of error as AsyncIterable<CryptoKey>) {
    try {
      return (await jwtVerify<AccessTokenClaims>(token, key, options)).payload;
    } catch (inner) {
      if ((inner as { code?: unknown } | null)?.code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
        throw fromJoseError(inner);
    }
  }
  throw invalidToken('the access token signature is invalid', error);
}

function splitScope(scope: string | undefined): string[] {
  if (scope === undefined || scope === '') return [];
  const parts = scope.split(' ');
  return parts.includes('') ? parts.filter((s) => s !== '') : parts;
}

function hasAll(granted: readonly string[], required: readonly string[]): boolean {
  for (let i = 0; i < required.length; i++) if (!granted.includes(required[i]!)) return false;
  return true;
}

/** The access token's `iss`, read before its signature is checked: it only picks which issuer's keys to check it with. */
function unverifiedIssuer(token: string): string {
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch (error) {
    throw fromJoseError(error);
  }
  if (typeof iss !== 'string') throw invalidToken('the access token lacks the "iss" claim');
  return iss;
}

/** What a trusted issuer matched: nothing more for a listed issuer, the tenant for a template. */
interface Trust {
  tenant?: string;
}

const LISTED: Trust = Object.freeze({});

class Verifier implements ResourceVerifier {
  readonly issuer: string | undefined;
  readonly issuers: readonly string[];
  readonly issuerTemplate: string | undefined;
  readonly authorizationServers: readonly string[];
  readonly resource: string;
  readonly requiredScopes: readonly string[];
  readonly mode: 'jwt' | 'introspection';
  readonly resourceMetadataUrl: string;
  readonly dpopAlgorithms: readonly string[];
  readonly #dpop: DpopChecker | undefined;
  readonly #opts: ResourceVerifierOptions;
  readonly #audiences: readonly string[];
  readonly #fetch: FetchLike | undefined;
  readonly #tolerance: number;
  readonly #iatSkew: number;
  /** With `issuers`: the trusted set. */
  readonly #trusted: ReadonlySet<string> | undefined;
  /** With `issuerTemplate`: the parsed template, and the tenants it is narrowed to. */
  readonly #template: IssuerTemplate | undefined;
  readonly #allowedTenants: ReadonlySet<string> | undefined;
  readonly #tenantPredicate: ((tenant: string) => boolean | Promise<boolean>) | undefined;
  /** With one `issuer`: its state once discovered. */
  #single: IssuerState | undefined;
  /**
   * With several issuers: each one's metadata and keys, created on first use. Bounded, since a template names
   * unboundedly many issuers; an evicted issuer is simply discovered again.
   */
  readonly #states: LRUCache<string, IssuerState> | undefined;
  /** Discoveries in progress, shared by concurrent callers (at most one per issuer). */
  readonly #pending = new Map<string, Promise<IssuerState>>();
  /**
   * Recently failed discoveries (discoveryCooldownSeconds > 0), kept apart from #states so that tokens naming
   * issuers that do not exist cannot evict the ones that do.
   */
  readonly #failed: LRUCache<string, ResourceAuthError> | undefined;
  /** Active introspection results (introspection mode with cacheTtlSeconds > 0 only). */
  readonly #cache: LRUCache<string, AuthInfo> | undefined;
  /**
   * JWT mode: tokens whose signature and claims already verified, keyed by the whole token string (signature
   * included, so a tampered copy never hits), each with the issuer state it verified under (a re-fetched key set is a
   * new state, so its tokens verify again). Kept until the token's exp, at most VERIFIED_TTL_MS and never longer than
   * jwksCacheMaxAgeSeconds (a key the issuer drops stops being trusted about as soon as before: within twice that);
   * scopes, the issuer's trust and iat are still checked on every call.
   */
  readonly #verified = new LRUCache<string, { payload: AccessTokenClaims; state: JwtState }>({ max: 10_000 });
  readonly #basic: string | undefined;

  constructor(opts: ResourceVerifierOptions) {
    const given = (['issuer', 'issuers', 'issuerTemplate'] as const).filter((name) => opts[name] !== undefined);
    if (given.length !== 1) {
      throw new TypeError(
        'createResourceVerifier needs exactly one of issuer, issuers or issuerTemplate; ' +
          (given.length === 0 ? 'none was given' : `${given.join(' and ')} were given`),
      );
    }
    if (opts.tenants !== undefined && opts.issuerTemplate === undefined) {
      throw new TypeError('tenants narrows an issuerTemplate; it cannot be used with issuer or issuers');
    }
    checkResource(opts.resource);
    this.#opts = opts;
    this.#dpop = opts.dpop === false ? undefined : new DpopChecker(opts.dpop);
    this.dpopAlgorithms = this.#dpop?.algorithms ?? Object.freeze([]);
    this.mode = opts.mode ?? 'jwt';
    if (this.mode !== 'jwt' && this.mode !== 'introspection') throw new TypeError(`unknown mode: ${String(this.mode)}`);
    if (this.mode === 'introspection' && opts.issuer === undefined) {
      // An opaque token does not say who issued it: asking every trusted issuer would hand it to the wrong ones.
      throw new TypeError(
        'introspection mode needs a single issuer: an opaque token does not say which issuer to ask ' +
          '(use JWT mode, or one verifier per issuer)',
      );
    }
    if (opts.issuer !== undefined) {
      checkIssuer(opts.issuer);
      this.issuer = opts.issuer;
      this.issuers = Object.freeze([opts.issuer]);
    } else if (opts.issuers !== undefined) {
      const list: readonly string[] = opts.issuers;
      if (!Array.isArray(list) || list.length === 0) {
        throw new TypeError('issuers must be a non-empty array of issuer identifiers');
      }
      const unique = new Set<string>();
      for (const issuer of list as readonly unknown[]) {
        if (typeof issuer !== 'string') throw new TypeError('issuers must hold strings');
        checkIssuer(issuer, 'each of issuers');
        unique.add(issuer);
      }
      this.issuers = Object.freeze([...unique]);
      this.#trusted = unique;
    } else {
      this.#template = parseIssuerTemplate(opts.issuerTemplate!);
      this.issuerTemplate = opts.issuerTemplate;
      this.issuers = Object.freeze([]);
      const tenants = opts.tenants;
      if (typeof tenants === 'function') {
        this.#tenantPredicate = tenants;
      } else if (tenants !== undefined) {
        if (!Array.isArray(tenants)) throw new TypeError('tenants must be an array of tenant names or a function');
        for (const tenant of tenants as readonly unknown[]) {
          if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) {
            throw new TypeError(`tenants holds an invalid tenant name: ${String(tenant)}`);
          }
        }
        this.#allowedTenants = new Set(tenants);
      }
    }
    if (opts.authorizationServers !== undefined) {
      for (const server of opts.authorizationServers) {
        if (typeof server !== 'string' || this.#match(server) === undefined) {
          throw new TypeError(`authorizationServers names ${String(server)}, which this verifier does not trust`);
        }
      }
      this.authorizationServers = Object.freeze([...opts.authorizationServers]);
    } else {
      this.authorizationServers = this.issuers;
    }
    const several = opts.issuer === undefined;
    const maxIssuers = opts.maxIssuers ?? (this.#template !== undefined ? 100 : this.issuers.length);
    if (several) {
      if (!Number.isSafeInteger(maxIssuers) || maxIssuers < 1)
        throw new TypeError('maxIssuers must be a positive integer');
      this.#states = new LRUCache({ max: maxIssuers });
    }
    const cooldownSeconds = opts.discoveryCooldownSeconds ?? (several ? 30 : 0);
    if (typeof cooldownSeconds !== 'number' || !(cooldownSeconds >= 0)) {
      throw new TypeError('discoveryCooldownSeconds must be a number >= 0');
    }
    if (cooldownSeconds > 0) {
      this.#failed = new LRUCache({
        max: Math.max(1000, several ? maxIssuers : 1),
        ttl: Math.max(1, Math.floor(cooldownSeconds * 1000)),
      });
    }
    this.resource = opts.resource;
    this.requiredScopes = Object.freeze([...(opts.requiredScopes ?? [])]);
    this.resourceMetadataUrl = protectedResourceMetadataUrl(opts.resource);
    // RFC 8707 / MCP: the token's audience must be this resource; a trailing-slash difference is not a different resource.
    this.#audiences = Object.freeze([opts.resource, slashVariant(opts.resource)]);
    this.#fetch = opts.fetch;
    this.#tolerance = opts.clockToleranceSeconds ?? 0;
    this.#iatSkew = Math.max(this.#tolerance, IAT_FUTURE_SKEW_SECONDS);
    if (this.mode === 'introspection') {
      const creds = opts.introspection;
      if (creds === undefined || !creds.clientId || !creds.clientSecret) {
        throw new TypeError('introspection mode needs introspection.clientId and introspection.clientSecret');
      }
      // RFC 6749 §2.3.1: client_secret_basic encodes id and secret with application/x-www-form-urlencoded first.
      const form = (s: string) => new URLSearchParams([['', s]]).toString().slice(1);
      this.#basic = `Basic ${btoa(`${form(creds.clientId)}:${form(creds.clientSecret)}`)}`;
      const ttlSeconds = creds.cacheTtlSeconds ?? 0;
      if (ttlSeconds > 0) {
        const max = creds.cacheMaxEntries ?? 1000;
        if (!Number.isSafeInteger(max) || max < 1)
          throw new TypeError('introspection.cacheMaxEntries must be a positive integer');
        this.#cache = new LRUCache({ max, ttl: Math.max(1, Math.floor(ttlSeconds * 1000)) });
      }
    }
  }

  /** Whether `iss` is trusted by the configuration alone (the issuer, the list, the template and a tenant list). */
  #match(iss: string): Trust | undefined {
    if (this.issuer !== undefined) return iss === this.issuer ? LISTED : undefined;
    if (this.#trusted !== undefined) return this.#trusted.has(iss) ? LISTED : undefined;
    const tenant = this.#template!.match(iss);
    if (tenant === undefined || (this.#allowedTenants !== undefined && !this.#allowedTenants.has(tenant))) {
      return undefined;
    }
    return { tenant };
  }

  /** Whether `iss` is trusted, asking the tenant predicate too; runs before anything is fetched for it. */
  async #trust(iss: string): Promise<Trust | undefined> {
    const trust = this.#match(iss);
    if (trust?.tenant === undefined || this.#tenantPredicate === undefined) return trust;
    let allowed: boolean;
    try {
      allowed = await this.#tenantPredicate(trust.tenant);
    } catch (cause) {
      throw new ResourceAuthError('temporarily_unavailable', 'the tenant could not be checked', { cause });
    }
    return allowed === true ? trust : undefined;
  }

  async authorizationServerMetadata(issuer?: string): Promise<AuthorizationServerMetadata> {
    const name = issuer ?? this.issuer;
    if (name === undefined) {
      throw new TypeError('authorizationServerMetadata(issuer) needs the issuer when the verifier trusts several');
    }
    if ((await this.#trust(name)) === undefined) throw new TypeError(`${name} is not trusted by this verifier`);
    return (await this.#stateOf(name)).metadata;
  }

  /**
   * A trusted issuer's state: known, or discovered once (concurrent callers share the attempt). A failed attempt is
   * forgotten at once (the next call retries), or remembered for discoveryCooldownSeconds.
   */
  #stateOf(issuer: string): IssuerState | Promise<IssuerState> {
    const known = this.#states === undefined ? this.#single : this.#states.get(issuer);
    if (known !== undefined) return known;
    const pending = this.#pending.get(issuer);
    if (pending !== undefined) return pending;
    const failed = this.#failed?.get(issuer);
    if (failed !== undefined) {
      return Promise.reject(new ResourceAuthError(failed.code, failed.description, { cause: failed }));
    }
    const attempt = this.#load(issuer).then(
      (state) => {
        this.#pending.delete(issuer);
        if (this.#states === undefined) this.#single = state;
        else this.#states.set(issuer, state);
        return state;
      },
      (error: unknown) => {
        this.#pending.delete(issuer);
        const failure =
          // One of several trusted issuers answering "no such issuer" (a tenant that does not exist): the token is
          // what is wrong, and the client should get a new one, not retry. A single configured issuer keeps 503: its
          // absence is the resource server's misconfiguration or an outage.
          error instanceof MetadataNotFoundError && this.#states !== undefined
            ? new ResourceAuthError('invalid_token', 'the token names an issuer that publishes no metadata', {
                cause: error,
              })
            : error instanceof ResourceAuthError
              ? error
              : new ResourceAuthError(
                  'temporarily_unavailable',
                  'the authorization server metadata could not be loaded',
                  {
                    cause: error,
                  },
                );
        this.#failed?.set(issuer, failure);
        throw failure;
      },
    );
    this.#pending.set(issuer, attempt);
    return attempt;
  }

  async #load(issuer: string): Promise<IssuerState> {
    const opts = this.#opts;
    const metadata = await discoverAuthorizationServer(issuer, { fetch: opts.fetch, timeoutMs: opts.timeoutMs });
    if (this.mode === 'introspection') {
      return { metadata, endpoint: endpoint(metadata, 'introspection_endpoint', issuer) };
    }
    // This issuer's own metadata names its keys: a token is never checked with another issuer's.
    const jwksUri = endpoint(metadata, 'jwks_uri', issuer);
    // Unknown kid → at most one JWKS refetch per cooldown, so forged kids cannot cause a fetch storm.
    const jwks = remoteKeys(jwksUri, {
      fetch: this.#fetch,
      cooldownMs: (opts.jwksCooldownSeconds ?? 30) * 1000,
      cacheMaxAgeMs: (opts.jwksCacheMaxAgeSeconds ?? 600) * 1000,
      timeoutMs: Math.round(opts.timeoutMs ?? 5000),
    });
    return {
      metadata,
      jwks,
      options: {
        // RFC 9068 §4: iss MUST exactly match the issuer; aud MUST contain this resource; typ MUST be at+jwt
        // (jose compares media types, so `application/at+jwt` is accepted too); exp MUST be in the future.
        issuer,
        audience: [...this.#audiences],
        typ: 'at+jwt',
        algorithms: ALGORITHMS,
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: this.#tolerance,
      },
    };
  }

  async verify(token: string, options?: VerifyOptions): Promise<AuthInfo> {
    if (typeof token !== 'string' || token === '') throw new ResourceAuthError('invalid_request', 'no access token');
    if (this.mode === 'introspection') return this.#verifyIntrospection(token, options);
    let state: JwtState;
    let tenant: string | undefined;
    if (this.issuer !== undefined) {
      state = (this.#single ?? (await this.#stateOf(this.issuer))) as JwtState;
    } else {
      // The unverified iss only chooses the keys; jwtVerify below checks it again against the same issuer.
      const iss = unverifiedIssuer(token);
      const trust = await this.#trust(iss);
      if (trust === undefined) throw invalidToken('the access token was issued by an untrusted issuer');
      tenant = trust.tenant;
      state = (await this.#stateOf(iss)) as JwtState;
    }
    let payload: AccessTokenClaims;
    const known = this.#verified.get(token);
    if (known !== undefined && known.state === state && (known.payload.exp as number) * 1000 > Date.now()) {
      payload = known.payload;
    } else {
      try {
        ({ payload } = await jwtVerify<AccessTokenClaims>(token, state.jwks, state.options));
      } catch (error) {
        payload = await retryEachKey(token, state.options, error);
      }
      // Never longer than the key set is cached: a key the issuer drops stops verifying within that time, as before.
      const jwksMaxAgeMs = (this.#opts.jwksCacheMaxAgeSeconds ?? 600) * 1000;
      const ttl = Math.min(VERIFIED_TTL_MS, jwksMaxAgeMs, (payload.exp as number) * 1000 - Date.now());
      if (ttl > 0) this.#verified.set(token, { payload, state }, { ttl });
    }
    // jose checks iat only when given maxTokenAge: refuse a token issued in the future, beyond the clock skew.
    if (typeof payload.iat !== 'number' || payload.iat > Date.now() / 1000 + this.#iatSkew) {
      throw invalidToken('the access token iat claim is in the future');
    }
    const { sub, client_id: clientId, scope, jti, aud, exp } = payload;
    if (typeof sub !== 'string' || typeof clientId !== 'string' || typeof jti !== 'string') {
      throw invalidToken('the access token sub, client_id or jti claim is not a string');
    }
    if (scope !== undefined && typeof scope !== 'string')
      throw invalidToken('the access token scope claim is not a string');
    const scopes = splitScope(scope);
    // Bearer tokens without cnf (the common case) pay one property read and one comparison here.
    const jkt =
      payload.cnf !== undefined || options?.scheme === 'DPoP' || this.#dpop?.required === true
        ? await this.#checkBinding(token, payload.cnf, options)
        : undefined;
    this.#checkScopes(scopes, options);
    const info: AuthInfo = {
      token,
      subject: sub,
      clientId,
      scopes,
      audience: typeof aud === 'string' ? [aud] : (aud as string[]),
      expiresAt: exp as number,
      jti,
      claims: payload,
    };
    if (tenant !== undefined) info.tenant = tenant;
    if (jkt !== undefined) info.dpopJkt = jkt;
    return info;
  }

  /**
   * RFC 9449 §7: a token bound to a key (`cnf.jkt`) needs the DPoP scheme and a valid proof of that key for this
   * request; the DPoP scheme needs a bound token. Returns the thumbprint, or undefined for a bearer token.
   */
  async #checkBinding(token: string, cnf: unknown, options: VerifyOptions | undefined): Promise<string | undefined> {
    const jkt = typeof cnf === 'object' && cnf !== null ? (cnf as { jkt?: unknown }).jkt : undefined;
    if (cnf !== undefined && typeof jkt !== 'string')
      throw new ResourceAuthError('invalid_token', 'the access token has an unsupported confirmation (cnf)');
    const checker = this.#dpop;
    if (options?.scheme === 'DPoP') {
      if (checker === undefined) {
        throw new ResourceAuthError('invalid_token', 'no Bearer access token was sent', { credentialsMissing: true });
      }
      if (jkt === undefined)
        throw new ResourceAuthError('invalid_token', 'the access token is not DPoP-bound', { scheme: 'DPoP' });
      if (options.dpop === undefined)
        throw new ResourceAuthError('invalid_dpop_proof', 'a DPoP proof is required', { scheme: 'DPoP' });
      await checker.check(options.dpop, token, jkt as string);
      return jkt as string;
    }
    if (jkt !== undefined) {
      // RFC 9449 §7.1: a DPoP-bound token used as a bearer token is refused, with the DPoP challenge.
      throw new ResourceAuthError(
        'invalid_token',
        checker === undefined
          ? 'DPoP-bound access tokens are not accepted here'
          : 'the access token is DPoP-bound: send it with the DPoP scheme and a proof',
        { scheme: 'DPoP' },
      );
    }
    if (checker?.required === true)
      throw new ResourceAuthError('invalid_token', 'only DPoP-bound access tokens are accepted', { scheme: 'DPoP' });
    return undefined;
  }

  #checkScopes(scopes: readonly string[], options: VerifyOptions | undefined): void {
    const extra = options?.requiredScopes;
    if (hasAll(scopes, this.requiredScopes) && (extra === undefined || hasAll(scopes, extra))) return;
    const required = [...new Set([...this.requiredScopes, ...(extra ?? [])])];
    // RFC 6750 §3.1: insufficient_scope → 403, naming the scopes needed (MCP step-up authorization).
    throw new ResourceAuthError('insufficient_scope', 'the access token lacks a required scope', {
      requiredScopes: required,
    });
  }

  async #verifyIntrospection(token: string, options: VerifyOptions | undefined): Promise<AuthInfo> {
    let info = this.#cache?.get(token);
    if (info === undefined) {
      const state = (this.#single ?? (await this.#stateOf(this.issuer!))) as IntrospectionState;
      info = await this.#introspect(token, state);
      this.#remember(token, info);
    }
    const cnf = info.claims.cnf;
    const jkt =
      cnf !== undefined || options?.scheme === 'DPoP' || this.#dpop?.required === true
        ? await this.#checkBinding(token, cnf, options)
        : undefined;
    this.#checkScopes(info.scopes, options);
    return jkt === undefined ? { ...info } : { ...info, dpopJkt: jkt };
  }

  /** Caches an active result for cacheTtlSeconds, never past the token's exp (lru-cache's own per-entry TTL). */
  #remember(token: string, info: AuthInfo): void {
    if (this.#cache === undefined) return;
    const ttlMs = Math.min((this.#opts.introspection?.cacheTtlSeconds ?? 0) * 1000, info.expiresAt * 1000 - Date.now());
    // A TTL of 0 would mean "forever" to lru-cache: a token at (or within clock tolerance past) its exp is not kept.
    if (ttlMs >= 1) this.#cache.set(token, info, { ttl: Math.floor(ttlMs) });
  }

  async #introspect(token: string, state: IntrospectionState): Promise<AuthInfo> {
    const fetchImpl = this.#fetch ?? fetch;
    let response: Response;
    try {
      // RFC 7662 §2.1: POST, form-encoded `token`, with client authentication.
      response = await fetchImpl(state.endpoint, {
        method: 'POST',
        headers: {
          authorization: this.#basic!,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 5000),
      });
    } catch (cause) {
      throw new ResourceAuthError('temporarily_unavailable', 'the introspection endpoint could not be reached', {
        cause,
      });
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new ResourceAuthError('temporarily_unavailable', 'the introspection endpoint refused the request', {
        cause: new Error(`introspection returned HTTP ${response.status}`),
      });
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (cause) {
      throw new ResourceAuthError('temporarily_unavailable', 'the introspection response is not JSON', { cause });
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ResourceAuthError('temporarily_unavailable', 'the introspection response is not a JSON object');
    }
    const claims = body as AccessTokenClaims & { active?: unknown; token_type?: unknown };
    // RFC 7662 §2.2: `active` is REQUIRED; anything but true means the token must not be accepted.
    if (claims.active !== true) throw invalidToken('the access token is not active');
    if (typeof claims.token_type === 'string' && !/^(bearer|dpop|access_token)$/i.test(claims.token_type)) {
      throw invalidToken('the token is not a bearer access token');
    }
    if (claims.iss !== undefined && claims.iss !== this.issuer) {
      throw invalidToken('the access token was issued by an untrusted issuer');
    }
    const now = Math.floor(Date.now() / 1000);
    const { exp, nbf, aud, client_id: clientId, scope, sub, jti } = claims;
    if (typeof exp !== 'number') throw invalidToken('the access token has no expiry');
    if (exp <= now - this.#tolerance) throw invalidToken('the access token has expired');
    if (typeof nbf === 'number' && nbf > now + this.#tolerance) throw invalidToken('the access token is not valid yet');
    // RFC 8707 / MCP: the token must have been issued for this resource.
    const audience =
      typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === 'string') : [];
    if (!audience.some((a) => this.#audiences.includes(a))) {
      throw invalidToken('the access token was not issued for this resource');
    }
    if (typeof clientId !== 'string') throw invalidToken('the introspection response has no client_id');
    if (scope !== undefined && typeof scope !== 'string') throw invalidToken('the access token scope is not a string');
    return {
      token,
      subject: typeof sub === 'string' ? sub : clientId,
      clientId,
      scopes: splitScope(scope),
      audience,
      expiresAt: exp,
      jti: typeof jti === 'string' ? jti : undefined,
      claims,
    };
  }
}

/**
 * Creates a verifier for one resource, trusting one `issuer`, a list of `issuers`, or an `issuerTemplate` (JWT mode
 * only for the last two). Authorization-server discovery happens lazily, per issuer, on the first `verify` naming it.
 * Throws a TypeError for an invalid configuration (e.g. none or more than one of issuer / issuers / issuerTemplate).
 * @example
 * const verifier = createResourceVerifier({ issuer: 'https://auth.example.com', resource: 'https://mcp.example.com/mcp', requiredScopes: ['mcp'] });
 * const auth = await verifier.verify(token); // auth.subject, auth.scopes, ...
 * @example
 * const tenants = createResourceVerifier({ issuerTemplate: 'https://auth.example.com/{tenant}', tenants: ['acme'], resource });
 * const { tenant } = await tenants.verify(token); // 'acme' for a token whose iss is https://auth.example.com/acme
 */
export function createResourceVerifier(
  options: ResourceVerifierOptions & { issuer: string },
): SingleIssuerResourceVerifier;
export function createResourceVerifier(options: ResourceVerifierOptions): ResourceVerifier;
export function createResourceVerifier(options: ResourceVerifierOptions): ResourceVerifier {
  return new Verifier(options);
}
