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
 * Returns the token's claims when it is a well-formed, correctly signed, unexpired access token of this issuer,
 * else undefined. Revocation is checked separately (one store round trip, only when the signature is good).
 */
export async function verifyOwnAccessToken(
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
    return payload as AccessTokenPayload;
  } catch (err) {
    if (err instanceof errors.JOSEError || err instanceof TypeError) return undefined;
    throw err;
  }
}
