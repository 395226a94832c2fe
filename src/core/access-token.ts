/** Verifies access tokens this server issued (for introspection, revocation and userinfo). */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from './clock.js';
import { ExpiringCache } from './expiring-cache.js';
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
  keys: Pick<KeyManager, 'verificationKeys'>;
  config: { issuer: string };
  clock: Clock;
}

/**
 * Tokens whose signature this process has already checked, so a resource server introspecting the same token on
 * every request costs a map lookup instead of an ECDSA verification. Safe to lose; bounded; an entry is only used
 * until the token's `exp`, and a key leaves the JWKS only after every token it signed has expired.
 */
const verifiedBy = new WeakMap<object, ExpiringCache<AccessTokenPayload>>();
const VERIFIED_MAX = 10_000;
/** How far in the future `iat` may be: clock drift between replicas. */
const IAT_FUTURE_SKEW_SECONDS = 60;

/**
 * Returns the token's claims when it is a well-formed, correctly signed, unexpired access token of this issuer,
 * else undefined. Revocation is checked separately (one store round trip, only when the signature is good).
 */
export async function verifyOwnAccessToken(
  token: string,
  deps: AccessTokenVerifierDeps,
): Promise<AccessTokenPayload | undefined> {
  // One cache per key manager: another Gatehouse in the same process has other keys.
  let verified = verifiedBy.get(deps.keys);
  if (!verified) verifiedBy.set(deps.keys, (verified = new ExpiringCache(VERIFIED_MAX, deps.clock)));
  const cached = verified.get(token);
  if (cached) return cached;
  const payload = await verifySignature(token, deps);
  if (payload) verified.set(token, payload, payload.exp * 1000);
  return payload;
}

async function verifySignature(token: string, deps: AccessTokenVerifierDeps): Promise<AccessTokenPayload | undefined> {
  try {
    const { payload } = await jwtVerify(token, deps.keys.verificationKeys(), {
      issuer: deps.config.issuer,
      typ: 'at+jwt',
      currentDate: new Date(deps.clock.now()),
      requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
    });
    // jose checks iat only with maxTokenAge; a token issued in the future was not issued by this server's clock.
    if (typeof payload.iat !== 'number' || payload.iat > deps.clock.now() / 1000 + IAT_FUTURE_SKEW_SECONDS)
      return undefined;
    // Our key signed it, but a claim of the wrong type (e.g. an array `scope`) must read as a bad token, not a 500.
    return isWellFormed(payload) ? payload : undefined;
  } catch (err) {
    if (err instanceof errors.JOSEError || err instanceof TypeError) return undefined;
    throw err;
  }
}

function isWellFormed(p: JWTPayload): p is AccessTokenPayload {
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
