/**
 * Compact JWS (RFC 7515 §7.1) decoding and signature checks over node:crypto, for the two hot-path verifications that
 * do not go through jose (docs/architecture.md "Libraries, and what stays hand-written"): DPoP proofs (core/dpop.ts)
 * and this server's own access tokens (core/access-token.ts), and the signing of the tokens this server mints
 * (core/tokens.ts).
 */
import { constants, sign, verify, type KeyObject } from 'node:crypto';

/** The JWS algorithms {@link signJwsInput} signs with. */
export type JwsSignAlgorithm = 'ES256' | 'EdDSA' | 'RS256';

/**
 * The base64url signature of `signingInput` (`header.payload`) by `alg` under the private `key` (RFC 7518 §3.3–3.4,
 * RFC 8037 §3.1), on the libuv threadpool. Even with one usable core (the bench pins servers to one) that beat
 * signing inline over HTTP: the bench's floor route, A/B pinned, 6,056–7,624 tokens/s on the threadpool against
 * 5,450–6,048 inline, although inline costs less CPU per signature in isolation (26 against 31 µs).
 */
export function signJwsInput(alg: JwsSignAlgorithm, key: KeyObject, signingInput: string): Promise<string> {
  const data = Buffer.from(signingInput);
  const digest = alg === 'EdDSA' ? null : 'sha256';
  const options = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key;
  return new Promise((resolve, reject) => {
    sign(digest, data, options, (err, signature) => (err ? reject(err) : resolve(signature.toString('base64url'))));
  });
}

/** A compact JWS split and decoded; header and payload are parsed JSON of any type (callers check the shape). */
export interface CompactJws {
  headerB64: string;
  /** The payload's decoded text (exactly what was signed, for a MAC over it). */
  payloadJson: string;
  header: unknown;
  payload: unknown;
  /** `header.payload`, the JWS signing input. */
  signingInput: string;
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const B64URL_OR_EMPTY = /^[A-Za-z0-9_-]*$/;

/** The three parts of `token` when it is a compact JWS whose header and payload are base64url JSON; else undefined. */
export function decodeCompactJws(token: string): CompactJws | undefined {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return undefined;
  const headerB64 = token.slice(0, first);
  const payloadB64 = token.slice(first + 1, second);
  const signatureB64 = token.slice(second + 1);
  if (!B64URL.test(headerB64) || !B64URL.test(payloadB64) || !B64URL_OR_EMPTY.test(signatureB64)) return undefined;
  const payloadJson = Buffer.from(payloadB64, 'base64url').toString('utf8');
  try {
    return {
      headerB64,
      payloadJson,
      header: JSON.parse(Buffer.from(headerB64, 'base64url').toString('utf8')),
      payload: JSON.parse(payloadJson),
      signingInput: token.slice(0, second),
      signature: Buffer.from(signatureB64, 'base64url'),
    };
  } catch {
    return undefined;
  }
}

/** Whether `value` is a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JWS algorithms {@link verifyJwsSignature} checks. */
export type JwsVerifyAlgorithm = 'ES256' | 'EdDSA' | 'RS256' | 'PS256';

/**
 * Whether `signature` is `alg`'s signature of `signingInput` under `key` (RFC 7518 §3.3–3.5, RFC 8037 §3.1), on the
 * threadpool. Any other algorithm, a malformed signature or a key that does not fit is false, never a throw.
 */
export function verifyJwsSignature(
  alg: string,
  key: KeyObject,
  signingInput: string,
  signature: Buffer,
): Promise<boolean> {
  const data = Buffer.from(signingInput);
  return new Promise((resolve) => {
    const done = (err: Error | null, ok: boolean) => resolve(err === null && ok);
    try {
      if (alg === 'ES256') {
        if (signature.length !== 64) return resolve(false);
        verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature, done);
      } else if (alg === 'EdDSA') verify(null, data, key, signature, done);
      else if (alg === 'RS256') verify('sha256', data, key, signature, done);
      else if (alg === 'PS256')
        verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature, done);
      else resolve(false);
    } catch {
      resolve(false);
    }
  });
}
