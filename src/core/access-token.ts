/** Verifies access tokens this server issued (for introspection, revocation and userinfo). */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import type { Deps } from '../context.js';

/** The claims of a valid RFC 9068 access token. */
export interface AccessTokenPayload extends JWTPayload {
  sub: string;
  client_id: string;
  jti: string;
  exp: number;
  iat: number;
  scope?: string;
}

/**
 * Tokens whose signature this process has already checked, so a resource server introspecting the same token on
 * every request costs a map lookup instead of an ECDSA verification. Safe to lose; bounded; an entry is only used
 * until the token's `exp`, and a key leaves the JWKS only after every token it signed has expired.
 */
const verifiedBy = new WeakMap<object, Map<string, AccessTokenPayload>>();
const VERIFIED_MAX = 10_000;
/** How far in the future `iat` may be: clock drift between replicas. */
const IAT_FUTURE_SKEW_SECONDS = 60;

/**
 * Returns the token's claims when it is a well-formed, correctly signed, unexpired access token of this issuer,
 * else undefined. Revocation is checked separately (one store round trip, only when the signature is good).
 */
export async function verifyOwnAccessToken(
  token: string,
  deps: Pick<Deps, 'keys' | 'config' | 'clock'>,
): Promise<AccessTokenPayload | undefined> {
  // One cache per key manager: another Gatehouse in the same process has other keys.
  let verified = verifiedBy.get(deps.keys);
  if (!verified) verifiedBy.set(deps.keys, (verified = new Map()));
  const cached = verified.get(token);
  if (cached) {
    if (cached.exp * 1000 > deps.clock.now()) return cached;
    verified.delete(token);
  }
  const payload = await verifySignature(token, deps);
  if (payload) {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
    verified.set(token, payload);
  }
  return payload;
}

async function verifySignature(
  token: string,
  deps: Pick<Deps, 'keys' | 'config' | 'clock'>,
): Promise<AccessTokenPayload | undefined> {
  try {
    const { payload } = await jwtVerify(token, deps.keys.verificationKeys(), {
      issuer: deps.config.issuer,
      typ: 'at+jwt',
      currentDate: new Date(deps.clock.now()),
      requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
    });
    // jose checks iat only with maxTokenAge; a token issued in the future was not issued by this server's clock.
    if (typeof payload.iat !== 'number' || payload.iat > deps.clock.now() / 1000 + IAT_FUTURE_SKEW_SECONDS) return undefined;
    return payload as AccessTokenPayload;
  } catch (err) {
    if (err instanceof errors.JOSEError || err instanceof TypeError) return undefined;
    throw err;
  }
}
