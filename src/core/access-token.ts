/**
 * Verifies access tokens this server issued (introspection, revocation, userinfo, token exchange, the admin API).
 *
 * Cost per token, cheapest first (issue #12: distinct, never-seen tokens at introspection and revocation):
 * 1. The exact token string was minted by this process or verified before: a cache hit (per key set, until `exp`).
 *    Keyed by the whole string, signature included, so a tampered copy never hits.
 * 2. Revocation only ({@link identifyOwnAccessToken}): the jti's MAC (core/access-token-mac.ts) proves this issuer
 *    minted exactly these claims, in about a microsecond; see there why that is enough for revocation and not for
 *    introspection.
 * 3. The signature, checked with node:crypto's callback `verify` (the libuv threadpool) rather than jose's
 *    WebCrypto `jwtVerify`: in a micro-benchmark ~75 µs of CPU per ES256 token instead of ~115–170 µs; in the server,
 *    callgrind counts about the same instructions either way (bench/README.md), so the gain is an event loop free
 *    meanwhile. What saves the work is not verifying at all (1. and 2.). The checks are jose's for our tokens:
 *    compact JWS of three base64url parts, a JSON-object header with `typ: at+jwt`, no `crit`, a `kid` of the
 *    current key set whose `alg` it names, the signature under that key, then `iss`, `exp` (strictly after now),
 *    `nbf`, `iat` (not from the future), the required claims and their types. All claims are checked again on a
 *    cache hit (a few comparisons).
 *
 * Every path refuses a token whose key is no longer in the key set (removed after its overlap): the caches and the
 * key lookup are per key set (KeyManager.publicJwks() is a new object on every key change), and the MAC path checks
 * the header's kid against it too.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { JWK, JWTPayload } from 'jose';
import type { AccessTokenMac } from './access-token-mac.js';
import type { Clock } from './clock.js';
import { ExpiringCache } from './expiring-cache.js';
import { decodeCompactJws, isJsonObject, verifyJwsSignature } from './jws.js';
import type { KeyManager } from './keys.js';

/** The claims of a valid RFC 9068 access token. */
export interface AccessTokenPayload extends JWTPayload {
  sub: string;
  client_id: string;
  jti: string;
  exp: number;
  iat: number;
  scope?: string;
  /** RFC 9449 §6.1: the DPoP key the token is bound to. */
  cnf?: { jkt?: string };
}

/** What verifying needs (a slice of the server's Deps, declared here so core does not import the composition root). */
export interface AccessTokenVerifierDeps {
  keys: Pick<KeyManager, 'publicJwks'>;
  config: { issuer: string };
  clock: Clock;
  /** The issuer's minter: its jti MAC, when it tags jtis (revocation's fast path). */
  minter?: { readonly accessTokenMac: AccessTokenMac | undefined };
}

// bench/lib/scenarios.mjs ISSUED_CACHE_FLUSH mints this many throwaway tokens so its distinct tokens miss the cache.
const VERIFIED_MAX = 10_000;
/** How far in the future `iat` may be: clock drift between replicas. */
const IAT_FUTURE_SKEW_SECONDS = 60;

interface VerificationKey {
  alg: string;
  key: KeyObject;
}

/** What is derived from one key set: its keys by kid, and the tokens known good under it. */
interface KeySetState {
  byKid: Map<string, VerificationKey>;
  verified: ExpiringCache<AccessTokenPayload>;
}

/** Keyed by the key set object, so a key change (rotation, removal) starts with no cached verdicts. */
const states = new WeakMap<object, KeySetState>();

function stateOf(keys: Pick<KeyManager, 'publicJwks'>, clock: Clock): KeySetState {
  const jwks = keys.publicJwks();
  let state = states.get(jwks);
  if (!state) {
    const byKid = new Map<string, VerificationKey>();
    for (const jwk of jwks.keys) {
      if (typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string') continue;
      byKid.set(jwk.kid, { alg: jwk.alg, key: createPublicKey({ key: jwk as JWK & { kty: string }, format: 'jwk' }) });
    }
    state = { byKid, verified: new ExpiringCache(VERIFIED_MAX, clock) };
    states.set(jwks, state);
  }
  return state;
}

/**
 * The minter's note that this process just signed `token` with `claims`: a later verification of the same string is
 * a cache hit. Only the exact string: the signature is part of the key.
 */
export function rememberIssued(
  keys: Pick<KeyManager, 'publicJwks'>,
  token: string,
  claims: AccessTokenPayload,
  clock: Clock,
): void {
  stateOf(keys, clock).verified.set(token, claims, claims.exp * 1000);
}

/**
 * Returns the token's claims when it is a well-formed, correctly signed, unexpired access token of this issuer,
 * else undefined. Revocation is checked separately (one store round trip, only when the signature is good).
 */
export async function verifyOwnAccessToken(
  token: string,
  deps: AccessTokenVerifierDeps,
): Promise<AccessTokenPayload | undefined> {
  const state = stateOf(deps.keys, deps.clock);
  const cached = state.verified.get(token);
  // The claims are checked on a hit too (a few comparisons): another issuer may share the key manager (and so the
  // cache), and a token minted with a clock ahead of this one's must wait until its iat is no longer in the future.
  if (cached) return checkClaims(cached, deps);
  const parsed = parse(token, state);
  if (!parsed || !(await signatureValid(parsed))) return undefined;
  const claims = checkClaims(parsed.payload, deps);
  if (claims) state.verified.set(token, claims, claims.exp * 1000);
  return claims;
}

/**
 * For revocation (RFC 7009): the claims of an unexpired access token this issuer minted, without requiring the
 * signature when the jti's MAC proves the claims are ours (core/access-token-mac.ts explains why that suffices
 * there: the revocation can only name a jti this issuer gave to the authenticated client, so forged tokens cannot
 * fill the revocation list). Anything else falls back to {@link verifyOwnAccessToken}.
 */
export async function identifyOwnAccessToken(
  token: string,
  deps: AccessTokenVerifierDeps,
): Promise<AccessTokenPayload | undefined> {
  const mac = deps.minter?.accessTokenMac;
  if (mac) {
    const state = stateOf(deps.keys, deps.clock);
    const cached = state.verified.get(token);
    if (cached) return checkClaims(cached, deps);
    const parsed = parse(token, state);
    if (!parsed) return undefined;
    const jti = parsed.payload.jti;
    if (typeof jti === 'string' && mac.verify(parsed.headerB64, parsed.payloadJson, jti)) {
      return checkClaims(parsed.payload, deps);
    }
  }
  return verifyOwnAccessToken(token, deps);
}

interface ParsedToken {
  headerB64: string;
  payloadJson: string;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
  key: VerificationKey;
}

/** The token's parts when it is a compact JWS of ours in form: header checks and a current key; else undefined. */
function parse(token: string, state: KeySetState): ParsedToken | undefined {
  const jws = decodeCompactJws(token);
  if (!jws || jws.signature.length === 0) return undefined;
  const header = jws.header;
  if (!isJsonObject(header) || header.typ !== 'at+jwt' || header.crit !== undefined || typeof header.kid !== 'string')
    return undefined;
  const key = state.byKid.get(header.kid);
  if (!key || header.alg !== key.alg || !isJsonObject(jws.payload)) return undefined;
  return {
    headerB64: jws.headerB64,
    payloadJson: jws.payloadJson,
    payload: jws.payload,
    signingInput: jws.signingInput,
    signature: jws.signature,
    key,
  };
}

/** The signature under the kid's key, on the threadpool. */
function signatureValid(t: ParsedToken): Promise<boolean> {
  return verifyJwsSignature(t.key.alg, t.key.key, t.signingInput, t.signature);
}

/** Issuer, times, required claims and their types (the claims are authentic by now: signature or MAC). */
function checkClaims(p: Record<string, unknown>, deps: AccessTokenVerifierDeps): AccessTokenPayload | undefined {
  const now = deps.clock.now() / 1000;
  if (p.iss !== deps.config.issuer) return undefined;
  if (typeof p.exp !== 'number' || !(p.exp > now)) return undefined;
  if (p.nbf !== undefined && (typeof p.nbf !== 'number' || p.nbf > now)) return undefined;
  // A token issued in the future was not issued by this server's clock.
  if (typeof p.iat !== 'number' || p.iat > now + IAT_FUTURE_SKEW_SECONDS) return undefined;
  // Our key signed it, but a claim of the wrong type (e.g. an array `scope`) must read as a bad token, not a 500.
  return isWellFormed(p) ? p : undefined;
}

function isWellFormed(p: Record<string, unknown>): p is AccessTokenPayload {
  const aud = p.aud;
  return (
    typeof p.sub === 'string' &&
    typeof p.client_id === 'string' &&
    typeof p.jti === 'string' &&
    (p.scope === undefined || typeof p.scope === 'string') &&
    (p.auth_time === undefined || typeof p.auth_time === 'number') &&
    (p.cnf === undefined ||
      (typeof p.cnf === 'object' && p.cnf !== null && typeof (p.cnf as { jkt?: unknown }).jkt === 'string')) &&
    (aud === undefined || typeof aud === 'string' || (Array.isArray(aud) && aud.every((a) => typeof a === 'string')))
  );
}

/** The token's audience as a list (RFC 7519 §4.1.3: a string or an array of strings). */
export function audienceOf(claims: AccessTokenPayload): string[] {
  if (claims.aud === undefined) return [];
  return typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
}
