/**
 * Token exchange for resource servers (RFC 8693): the user's access token at an upstream identity provider, or a
 * Gatehouse access token for another resource, traded for the access token the request came with. The resource
 * server authenticates as its own confidential client (client_secret_basic), which Gatehouse's `tokenExchange`
 * setting must name for the audience of the tokens it receives and for each upstream or audience it asks for.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { discoverAuthorizationServer, type FetchLike } from './discovery.js';
import { ResourceAuthError } from './errors.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
/** How Gatehouse names an upstream identity provider as an exchange's target. */
const UPSTREAM_TARGET_PREFIX = 'urn:gatehouse:upstream:';

/** Options of {@link createTokenExchangeClient}. */
export interface TokenExchangeClientOptions {
  /** Gatehouse's issuer: its token endpoint is discovered (RFC 8414) on first use. Or give `tokenEndpoint`. */
  issuer?: string;
  /** Gatehouse's token endpoint, instead of `issuer`. */
  tokenEndpoint?: string;
  /** The resource server's client at Gatehouse (listed in `tokenExchange.resourceServers`). */
  clientId: string;
  clientSecret: string;
  /** fetch implementation; default the global one. */
  fetch?: FetchLike;
  /** Per-request timeout in milliseconds; default 5000. */
  timeoutMs?: number;
  /** Most exchanged tokens kept (per access token and target); default 1000; 0 = no cache. */
  cacheSize?: number;
  /**
   * Longest a token is served from the cache, seconds; default 300. It is also never served past its own expiry
   * less 30 s, nor past the access token it was exchanged for: a revocation at Gatehouse shows within this bound.
   */
  maxCacheSeconds?: number;
}

/** What the exchange needs of a verified request: the access token as received (AuthInfo.token) and its expiry. */
export interface ExchangeAuth {
  token: string;
  /** `exp` of the token, seconds since the epoch (AuthInfo.expiresAt). */
  expiresAt?: number;
}

/** Error codes of a refused exchange: RFC 6749 §5.2 / RFC 8693 §2.2.2, or Gatehouse unreachable. */
export type TokenExchangeErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'temporarily_unavailable'
  | 'server_error';

/**
 * Gatehouse refused the exchange, or could not be reached. `signInAgain` is true for `invalid_grant`: the user's
 * token, grant or upstream tokens are gone or expired, and a new authorization (an upstream sign-in) is the way on;
 * the other codes are the resource server's configuration or a fault.
 */
export class TokenExchangeError extends Error {
  readonly code: TokenExchangeErrorCode;
  /** Gatehouse's HTTP status; 0 when it could not be reached. */
  readonly status: number;
  readonly description: string;
  readonly signInAgain: boolean;

  constructor(code: TokenExchangeErrorCode, status: number, description: string, options?: { cause?: unknown }) {
    super(description, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenExchangeError';
    this.code = code;
    this.status = status;
    this.description = description;
    this.signInAgain = code === 'invalid_grant';
  }

  /**
   * What the resource server answers its own client: when the user must sign in again (at Gatehouse, and so at the
   * upstream), `invalid_token` (401, with the Bearer challenge `bearerErrorResponse` builds, so the MCP client
   * authorizes again); anything else is Gatehouse's or the upstream's trouble, `temporarily_unavailable` (503).
   */
  toResourceAuthError(): ResourceAuthError {
    if (this.signInAgain) {
      return new ResourceAuthError('invalid_token', 'the user must sign in again', { cause: this });
    }
    return new ResourceAuthError('temporarily_unavailable', 'the upstream token could not be obtained', {
      cause: this,
    });
  }
}

/** What {@link createTokenExchangeClient} returns: plain functions, which may be destructured and passed around. */
export interface TokenExchangeClient {
  /**
   * The user's access token at upstream `upstreamId` (an id of Gatehouse's `upstreams`), for the request's access
   * token. Throws {@link TokenExchangeError}.
   * @example
   * const gh = await upstreamToken(extra.authInfo, 'github');
   */
  upstreamToken: (auth: ExchangeAuth, upstreamId: string) => Promise<string>;
  /** A Gatehouse access token for `resource`, same user, the request token's scope or `scope` of it. */
  accessTokenFor: (auth: ExchangeAuth, resource: string, scope?: readonly string[]) => Promise<string>;
}

interface Cached {
  token: string;
}

const EXPIRY_SKEW_MS = 30_000;

/** Makes a {@link TokenExchangeClient} for one resource server. */
export function createTokenExchangeClient(options: TokenExchangeClientOptions): TokenExchangeClient {
  if ((options.issuer === undefined) === (options.tokenEndpoint === undefined)) {
    throw new TypeError('createTokenExchangeClient needs exactly one of issuer or tokenEndpoint');
  }
  const fetchImpl = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxCacheMs = (options.maxCacheSeconds ?? 300) * 1000;
  const cacheSize = options.cacheSize ?? 1000;
  const cache = cacheSize > 0 ? new LRUCache<string, Cached>({ max: cacheSize, ttlAutopurge: false }) : undefined;
  const basic = `Basic ${Buffer.from(
    `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`,
  ).toString('base64')}`;
  let endpoint: Promise<string> | undefined;

  function tokenEndpoint(): Promise<string> {
    if (options.tokenEndpoint !== undefined) return Promise.resolve(options.tokenEndpoint);
    endpoint ??= discoverAuthorizationServer(options.issuer!, { fetch: fetchImpl, timeoutMs }).then((meta) => {
      if (typeof meta.token_endpoint !== 'string') throw new TypeError(`${options.issuer} names no token_endpoint`);
      return meta.token_endpoint;
    });
    // A failed discovery is tried again next time.
    endpoint.catch(() => (endpoint = undefined));
    return endpoint;
  }

  async function exchange(auth: ExchangeAuth, target: string, scope?: readonly string[]): Promise<string> {
    if (typeof auth?.token !== 'string' || auth.token === '') {
      throw new TypeError('the request has no access token to exchange (pass the verified AuthInfo)');
    }
    const key = `${createHash('sha256').update(auth.token).digest('base64url')} ${target} ${scope?.join(' ') ?? ''}`;
    const hit = cache?.get(key);
    if (hit) return hit.token;

    const form = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE,
      subject_token: auth.token,
      subject_token_type: ACCESS_TOKEN,
      requested_token_type: ACCESS_TOKEN,
      resource: target,
    });
    if (scope && scope.length > 0) form.set('scope', scope.join(' '));
    let response: Response;
    let body: Record<string, unknown>;
    try {
      response = await fetchImpl(await tokenEndpoint(), {
        method: 'POST',
        headers: {
          authorization: basic,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: form.toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      body = (await response.json()) as Record<string, unknown>;
    } catch (err) {
      throw new TokenExchangeError('temporarily_unavailable', 0, 'the authorization server could not be reached', {
        cause: err,
      });
    }
    if (!response.ok || typeof body.access_token !== 'string') {
      const code = typeof body.error === 'string' ? (body.error as TokenExchangeErrorCode) : 'server_error';
      const description =
        typeof body.error_description === 'string' ? body.error_description : `HTTP ${response.status}`;
      throw new TokenExchangeError(code, response.status, description);
    }
    if (cache) {
      const now = Date.now();
      let until = now + maxCacheMs;
      if (typeof body.expires_in === 'number') until = Math.min(until, now + body.expires_in * 1000 - EXPIRY_SKEW_MS);
      if (auth.expiresAt !== undefined) until = Math.min(until, auth.expiresAt * 1000);
      if (until > now) cache.set(key, { token: body.access_token }, { ttl: until - now });
    }
    return body.access_token;
  }

  return {
    upstreamToken: (auth, upstreamId) => exchange(auth, UPSTREAM_TARGET_PREFIX + upstreamId),
    accessTokenFor: (auth, resource, scope) => exchange(auth, resource, scope),
  };
}
