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
import type { ReplayGuard } from '../storage/types.js';
import { safeGet, type OutboundPolicy } from './ssrf.js';

const MAX_LIFETIME_S = 600;
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
  tokenEndpoint: string;
  clock: Clock;
  store: ReplayGuard;
  policy: OutboundPolicy;
}): AssertionVerifier {
  const remote = new ExpiringCache<JWTVerifyGetKey>(JWKS_CACHE_MAX, deps.clock);
  const keysFor = async (jwks: { keys: Record<string, unknown>[] } | undefined, jwksUri: string | undefined) => {
    if (jwks) return createLocalJWKSet(jwks as JSONWebKeySet);
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
        // RFC 7523 §3: the audience identifies the AS; the issuer or the token endpoint URL are accepted.
        audience: [deps.issuer, deps.tokenEndpoint],
        currentDate: new Date(deps.clock.now()),
        requiredClaims: ['exp', 'jti'],
        algorithms: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
      });
      const now = Math.floor(deps.clock.now() / 1000);
      // The lifetime counts from now at the latest: an iat in the future must not stretch it (jose accepts one),
      // else a pre-minted assertion stays usable, and its replay-guard key stored, for as long as the client likes.
      if (payload.exp! - Math.min(payload.iat ?? now, now) > MAX_LIFETIME_S) return false;
      // Hashed: the store holds no client-chosen string; JSON keeps (client, jti) pairs unambiguous.
      const key = `jwt-assertion:${hashToken(JSON.stringify([client.clientId, payload.jti]))}`;
      return await deps.store.firstUse(key, payload.exp! * 1000 + REPLAY_SKEW_MS);
    } catch (err) {
      if (err instanceof errors.JOSEError || err instanceof SyntaxError || (err as Error).name === 'OutboundFetchError') return false;
      throw err;
    }
  };
}
