/**
 * JWT client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): private_key_jwt, where the client signs a short JWT
 * with a key from its `jwks` (inline) or `jwks_uri` (fetched SSRF-safely, cached: clients/remote-jwks.ts), and
 * client_secret_jwt, where it signs with HS256 keyed with its client secret (kept sealed for this: ClientRecord
 * clientSecretSealed). Each assertion is single use: its (client, jti) pair is claimed in the store's replay guard in
 * one atomic step, so of concurrent uses on any number of replicas exactly one passes.
 */
import { createLocalJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { openClientSecret, type AssertionVerifier } from '../core/client-auth.js';
import type { Clock } from '../core/clock.js';
import { hashToken } from '../core/crypto.js';
import { isSealed, type Sealer } from '../core/sealing.js';
import type { ReplayGuard } from '../model/ports.js';
import type { ClientRecord } from '../model/records.js';
import { isVerificationFailure, RemoteKeySets } from './remote-jwks.js';
import type { OutboundPolicy } from './ssrf.js';

/** The signature algorithms accepted on a private_key_jwt assertion (and from trusted IdPs and workload issuers). */
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
/** The one algorithm of client_secret_jwt (RFC 7518 §3.2: the secret is a 256-bit HMAC key or longer). */
export const SECRET_ASSERTION_ALGORITHMS = ['HS256'];
/** Longest an assertion may still be valid for, counted from now (bounds the jti replay list too). */
const MAX_LIFETIME_S = 600;
/** How far ahead of ours a client's clock may run, for `iat` and the lifetime cap. */
export const CLOCK_SKEW_S = 60;
/**
 * How long past `exp` the replay guard keeps an assertion's key: replicas whose clocks run behind the one that
 * recorded it (or Redis's own clock, which drops the key) still see it used while they would accept the assertion.
 */
export const REPLAY_SKEW_MS = 60_000;

/**
 * The lifetime rule of every assertion Gatehouse accepts (`exp` required): at most `maxSeconds` from now and from
 * `iat`, and `iat` not beyond the clock skew ahead. Measured from now, not only from `iat`, which the signer picks: a
 * future `iat` must not stretch the lifetime.
 */
export function lifetimeAcceptable(payload: JWTPayload, nowSeconds: number, maxSeconds: number): boolean {
  if (payload.exp === undefined || payload.exp - nowSeconds > maxSeconds + CLOCK_SKEW_S) return false;
  if (payload.iat !== undefined && payload.iat > nowSeconds + CLOCK_SKEW_S) return false;
  return payload.exp - (payload.iat ?? nowSeconds) <= maxSeconds;
}

/** Builds the verifier the token, revocation and introspection endpoints use. */
export function createAssertionVerifier(deps: {
  issuer: string;
  /** The token endpoint URL: a client_secret_jwt assertion may name it as `aud` (see below). */
  tokenEndpoint: string;
  clock: Clock;
  store: ReplayGuard;
  policy: OutboundPolicy;
  /** Opens client_secret_jwt secrets; without it (no encryptionKey) no such client exists. */
  sealer: Sealer | undefined;
}): AssertionVerifier {
  const remote = new RemoteKeySets(deps.clock);
  const publicKeys = (client: ClientRecord): JWTVerifyGetKey | undefined => {
    if (client.jwks) return createLocalJWKSet(client.jwks);
    return client.jwksUri ? remote.keysAt(client.jwksUri, deps.policy) : undefined;
  };
  const secretKey = (client: ClientRecord): Uint8Array | undefined => {
    if (!deps.sealer || !isSealed(client.clientSecretSealed)) return undefined;
    // OIDC Core §10.1: the key is the octets of the UTF-8 representation of the client secret.
    return new TextEncoder().encode(openClientSecret(deps.sealer, client.clientId, client.clientSecretSealed));
  };
  return async (client, assertion) => {
    try {
      const secretJwt = client.tokenEndpointAuthMethod === 'client_secret_jwt';
      const options = {
        issuer: client.clientId,
        subject: client.clientId,
        currentDate: new Date(deps.clock.now()),
        requiredClaims: ['exp', 'jti'],
      };
      let payload: JWTPayload;
      if (secretJwt) {
        const key = secretKey(client);
        if (!key) return false;
        // The token endpoint URL that RFC 7523 §3 and OIDC Core §9 name is accepted here, unlike for private_key_jwt:
        // audience injection needs a key the client also uses with another server, and this secret was issued by (or
        // configured for) this server alone.
        ({ payload } = await jwtVerify(assertion, key, {
          ...options,
          audience: [deps.issuer, deps.tokenEndpoint],
          algorithms: SECRET_ASSERTION_ALGORITHMS,
        }));
      } else {
        const keys = publicKeys(client);
        if (!keys) return false;
        // draft-ietf-oauth-rfc7523bis: the issuer identifier is the only audience value (checked as the sole value
        // below). The token endpoint URL that RFC 7523 §3 and OIDC Core §9 allowed is refused: a client told a
        // "token endpoint" by a malicious AS would sign an assertion that AS could replay here (audience injection).
        ({ payload } = await jwtVerify(assertion, keys, {
          ...options,
          audience: deps.issuer,
          algorithms: ASSERTION_ALGORITHMS,
        }));
      }
      if (Array.isArray(payload.aud) && payload.aud.length !== 1) return false;
      if (!lifetimeAcceptable(payload, Math.floor(deps.clock.now() / 1000), MAX_LIFETIME_S)) return false;
      // Hashed: the store holds no client-chosen string; JSON keeps (client, jti) pairs unambiguous.
      const key = `jwt-assertion:${hashToken(JSON.stringify([client.clientId, payload.jti]))}`;
      return await deps.store.firstUse(key, payload.exp! * 1000 + REPLAY_SKEW_MS);
    } catch (err) {
      if (isVerificationFailure(err)) return false;
      throw err;
    }
  };
}
