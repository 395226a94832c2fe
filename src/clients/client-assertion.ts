/**
 * private_key_jwt client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): the client signs a short JWT with a
 * key from its `jwks` (inline) or `jwks_uri` (fetched SSRF-safely, cached). Each assertion is single use: its
 * (client, jti) pair is claimed in the store's replay guard in one atomic step, so of concurrent uses on any number of
 * replicas exactly one passes.
 */
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { AssertionVerifier } from '../core/client-auth.js';
import type { Clock } from '../core/clock.js';
import { hashToken } from '../core/crypto.js';
import { ExpiringCache } from '../core/expiring-cache.js';
import type { ReplayGuard } from '../model/ports.js';
import { safeGet, type OutboundPolicy } from './ssrf.js';

/** The signature algorithms accepted on an assertion (advertised as token_endpoint_auth_signing_alg_values_supported). */
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
/** Longest an assertion may still be valid for, counted from now (bounds the jti replay list too). */
const MAX_LIFETIME_S = 600;
/** How far ahead of ours a client's clock may run, for `iat` and the lifetime cap. */
const CLOCK_SKEW_S = 60;
/**
 * How long past `exp` the replay guard keeps an assertion's key: replicas whose clocks run behind the one that
 * recorded it (or Redis's own clock, which drops the key) still see it used while they would accept the assertion.
 */
const REPLAY_SKEW_MS = 60_000;
/** A fetched jwks_uri is reused for five minutes, for at most this many clients' URIs. */
const JWKS_CACHE_MS = 300_000;
const JWKS_CACHE_MAX = 1000;

/** Builds the verifier the token, revocation and introspection endpoints use. */
export function createAssertionVerifier(deps: {
  issuer: string;
  clock: Clock;
  store: ReplayGuard;
  policy: OutboundPolicy;
}): AssertionVerifier {
  const remote = new ExpiringCache<JWTVerifyGetKey>(JWKS_CACHE_MAX, deps.clock);
  const keysFor = async (jwks: { keys: Record<string, unknown>[] } | undefined, jwksUri: string | undefined) => {
    if (jwks) return createLocalJWKSet(jwks);
    if (!jwksUri) return undefined;
    const cached = remote.get(jwksUri);
    if (cached) return cached;
    const res = await safeGet(new URL(jwksUri), deps.policy, 'application/jwk-set+json, application/json');
    if (res.status !== 200) return undefined;
    const keys = createLocalJWKSet(JSON.parse(res.body) as JSONWebKeySet);
    remote.set(jwksUri, keys, deps.clock.now() + JWKS_CACHE_MS);
    return keys;
  };
  return async (client, assertion) => {
    try {
      const keys = await keysFor(client.jwks, client.jwksUri);
      if (!keys) return false;
      const { payload } = await jwtVerify(assertion, keys, {
        issuer: client.clientId,
        subject: client.clientId,
        // draft-ietf-oauth-rfc7523bis: the issuer identifier is the only audience value (checked as the sole value
        // below). The token endpoint URL that RFC 7523 §3 and OIDC Core §9 allowed is refused: a client told a
        // "token endpoint" by a malicious AS would sign an assertion that AS could replay here (audience injection).
        audience: deps.issuer,
        currentDate: new Date(deps.clock.now()),
        requiredClaims: ['exp', 'jti'],
        algorithms: ASSERTION_ALGORITHMS,
      });
      if (Array.isArray(payload.aud) && payload.aud.length !== 1) return false;
      const now = Math.floor(deps.clock.now() / 1000);
      // Measured from now, not from iat, which the client picks: a future iat must not stretch the lifetime.
      if (payload.exp! - now > MAX_LIFETIME_S + CLOCK_SKEW_S) return false;
      if (payload.iat !== undefined && payload.iat > now + CLOCK_SKEW_S) return false;
      if (payload.exp! - (payload.iat ?? now) > MAX_LIFETIME_S) return false;
      // Hashed: the store holds no client-chosen string; JSON keeps (client, jti) pairs unambiguous.
      const key = `jwt-assertion:${hashToken(JSON.stringify([client.clientId, payload.jti]))}`;
      return await deps.store.firstUse(key, payload.exp! * 1000 + REPLAY_SKEW_MS);
    } catch (err) {
      if (err instanceof errors.JOSEError || err instanceof SyntaxError || (err as Error).name === 'OutboundFetchError')
        return false;
      throw err;
    }
  };
}
