/**
 * DPoP at the resource server (RFC 9449 §7): checking the proof that comes with `Authorization: DPoP <token>` —
 * typ, asymmetric algorithm, a public embedded key, the signature, `htm` / `htu` of this request, `iat` in a window,
 * `ath` the hash of the token, the key's thumbprint equal to the token's `cnf.jkt`, a `jti` used once, and
 * optionally a server nonce. Single use is kept by a {@link DpopReplayStore}: in-process by default, or one shared by
 * every replica of the resource server.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, EmbeddedJWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { ResourceAuthError } from './errors.js';

/** Proof algorithms accepted by default (asymmetric only; RFC 9449 §4.2 forbids `none` and MACs). */
export const DEFAULT_DPOP_ALGORITHMS: readonly string[] = Object.freeze(['ES256', 'EdDSA', 'RS256', 'PS256']);

/**
 * Where the `jti` of every accepted proof is remembered until the proof could no longer be accepted. The default is
 * in-process (an lru-cache bounded by `maxEntries`): enough for one process. Replicas behind a load balancer must share
 * one, or a proof captured on its way to one replica could be replayed to another within the iat window: implement
 * `firstUse` atomically over a shared store (Redis `SET key 1 NX PXAT expiresAt`, an SQL insert on a primary key).
 */
export interface DpopReplayStore {
  /** True the first time `key` is seen before `expiresAt` (epoch ms), false for every later call. Must be atomic. */
  firstUse(key: string, expiresAt: number): boolean | Promise<boolean>;
}

/** Server nonces (RFC 9449 §9): stateless, an HMAC of a time window; give every replica the same `secret`. */
export interface DpopNonceOptions {
  /** At least 32 characters; the same on every replica. */
  secret: string;
  /** Length of a nonce window, seconds (the previous window's nonce is still accepted). Default 300. */
  windowSeconds?: number;
}

/** DPoP settings of a verifier (`dpop` in ResourceVerifierOptions). */
export interface DpopOptions {
  /** Proof algorithms accepted. Default ES256, EdDSA, RS256, PS256. */
  algorithms?: readonly string[];
  /** How old a proof's `iat` may be, seconds. Default 60. */
  iatWindowSeconds?: number;
  /** How far ahead of this server's clock `iat` may be, seconds. Default 5. */
  iatFutureSkewSeconds?: number;
  /** Where used `jti`s are kept. Default: in-process, see {@link DpopReplayStore}. */
  replayStore?: DpopReplayStore;
  /** Most proofs the default in-process replay store remembers. Default 100000. */
  maxEntries?: number;
  /** Require a server nonce in every proof (`use_dpop_nonce` + `DPoP-Nonce` otherwise). Default: none. */
  nonce?: DpopNonceOptions;
  /** Refuse Bearer tokens altogether: only DPoP-bound tokens presented with a proof. Default false. */
  required?: boolean;
}

/** What one proof check needs from the request. */
export interface DpopRequest {
  /** Every value of the request's `DPoP` header. */
  proof: string | readonly string[] | null | undefined;
  method: string;
  /** The request's public URL (what the client called); query and fragment are ignored. */
  url: string;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const MAX_PROOF_LENGTH = 8192;
const decoder = new TextDecoder();

function invalidProof(description: string, cause?: unknown): ResourceAuthError {
  return new ResourceAuthError('invalid_dpop_proof', description, { cause, scheme: 'DPoP' });
}

/** base64url(SHA-256(token)): the `ath` a proof carries for `token`. */
export function dpopAccessTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function sameString(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** `htu` comparison: scheme and host lowercased, default port dropped, dot segments resolved; no query or fragment. */
export function normalizeHtu(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/** @internal A verifier's resolved DPoP settings. */
export class DpopChecker {
  readonly algorithms: readonly string[];
  readonly required: boolean;
  readonly #window: number;
  readonly #skew: number;
  readonly #replay: DpopReplayStore;
  readonly #nonceKey: Buffer | undefined;
  readonly #nonceWindowMs: number;

  constructor(options: DpopOptions = {}) {
    const algorithms: readonly string[] = options.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
    if (!Array.isArray(algorithms) || algorithms.length === 0)
      throw new TypeError('dpop.algorithms must be a non-empty array');
    for (const alg of algorithms as readonly string[]) {
      if (!DEFAULT_DPOP_ALGORITHMS.includes(alg)) throw new TypeError(`dpop.algorithms: ${alg} is not supported`);
    }
    this.algorithms = Object.freeze([...(algorithms as readonly string[])]);
    this.required = options.required ?? false;
    this.#window = options.iatWindowSeconds ?? 60;
    this.#skew = options.iatFutureSkewSeconds ?? 5;
    if (!(this.#window > 0) || !(this.#skew >= 0)) throw new TypeError('dpop iat windows must be positive numbers');
    if (options.replayStore !== undefined) {
      this.#replay = options.replayStore;
    } else {
      const seen = new LRUCache<string, true>({ max: options.maxEntries ?? 100_000, ttlAutopurge: false });
      this.#replay = {
        firstUse(key, expiresAt) {
          if (seen.has(key)) return false;
          seen.set(key, true, { ttl: Math.max(1, expiresAt - Date.now()) });
          return true;
        },
      };
    }
    if (options.nonce !== undefined) {
      if (typeof options.nonce.secret !== 'string' || options.nonce.secret.length < 32)
        throw new TypeError('dpop.nonce.secret must be a string of 32 characters or more');
      this.#nonceKey = createHmac('sha256', options.nonce.secret).update('gatehouse resource dpop nonce v1').digest();
    }
    this.#nonceWindowMs = (options.nonce?.windowSeconds ?? 300) * 1000;
  }

  #nonceOf(window: number): string {
    return createHmac('sha256', this.#nonceKey!).update(String(window)).digest('base64url').slice(0, 32);
  }

  /** The nonce to hand out now, when nonces are on. */
  currentNonce(): string | undefined {
    return this.#nonceKey === undefined ? undefined : this.#nonceOf(Math.floor(Date.now() / this.#nonceWindowMs));
  }

  /**
   * Checks the proof presented with `token` (bound to `jkt`) for this request; resolves when it is good, rejects
   * with invalid_dpop_proof, use_dpop_nonce (with the nonce to use) or invalid_token (a key other than the token's).
   */
  async check(request: DpopRequest, token: string, jkt: string): Promise<void> {
    let proof = request.proof;
    if (proof !== null && proof !== undefined && typeof proof !== 'string') {
      if (proof.length > 1) throw invalidProof('exactly one DPoP header is allowed');
      proof = proof[0];
    }
    if (proof === null || proof === undefined || proof === '') throw invalidProof('a DPoP proof is required');
    if (proof.length > MAX_PROOF_LENGTH) throw invalidProof('the DPoP proof is malformed');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(proof);
    } catch (cause) {
      throw invalidProof('the DPoP proof is not a JWS', cause);
    }
    if (header.typ !== 'dpop+jwt') throw invalidProof('the DPoP proof typ must be dpop+jwt');
    if (typeof header.alg !== 'string' || !this.algorithms.includes(header.alg))
      throw invalidProof('the DPoP proof algorithm is not supported');
    const jwk = header.jwk as Record<string, unknown> | undefined;
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalidProof('the DPoP proof has no jwk');
    if (jwk.kty === 'oct' || PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined))
      throw invalidProof('the DPoP proof jwk must be a public key');
    let payload: Record<string, unknown>;
    try {
      const verified = await compactVerify(proof, EmbeddedJWK, { algorithms: [...this.algorithms] });
      payload = JSON.parse(decoder.decode(verified.payload)) as Record<string, unknown>;
    } catch (cause) {
      throw invalidProof('the DPoP proof signature is invalid', cause);
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
      throw invalidProof('the DPoP proof payload is not a JSON object');
    const { jti, htm, htu, iat, ath, nonce } = payload;
    if (typeof jti !== 'string' || jti === '' || jti.length > 256) throw invalidProof('the DPoP proof jti is invalid');
    if (htm !== request.method) throw invalidProof('the DPoP proof htm does not match the request method');
    const expected = normalizeHtu(request.url);
    if (typeof htu !== 'string' || expected === undefined || normalizeHtu(htu) !== expected)
      throw invalidProof('the DPoP proof htu does not match the request URL');
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidProof('the DPoP proof has no iat');
    const now = Date.now() / 1000;
    if (iat < now - this.#window) throw invalidProof('the DPoP proof is too old');
    if (iat > now + this.#skew) throw invalidProof('the DPoP proof iat is in the future');
    if (typeof ath !== 'string') throw invalidProof('the DPoP proof has no ath');
    if (!sameString(ath, dpopAccessTokenHash(token))) throw invalidProof('the DPoP proof ath does not match the token');
    if (this.#nonceKey !== undefined) {
      const window = Math.floor(Date.now() / this.#nonceWindowMs);
      const fresh =
        typeof nonce === 'string' &&
        (sameString(nonce, this.#nonceOf(window)) || sameString(nonce, this.#nonceOf(window - 1)));
      if (!fresh)
        throw new ResourceAuthError('use_dpop_nonce', 'a DPoP nonce is required: use the one in DPoP-Nonce', {
          scheme: 'DPoP',
          dpopNonce: this.#nonceOf(window),
        });
    }
    let thumbprint: string;
    try {
      thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
    } catch (cause) {
      throw invalidProof('the DPoP proof jwk is malformed', cause);
    }
    if (thumbprint !== jkt)
      throw new ResourceAuthError('invalid_token', 'the access token is not bound to the DPoP proof key', {
        scheme: 'DPoP',
      });
    const expiresAt = Math.ceil((iat + this.#window) * 1000) + 1000;
    let first: boolean;
    try {
      first = await this.#replay.firstUse(`dpop:${thumbprint}:${jti}`, expiresAt);
    } catch (cause) {
      throw new ResourceAuthError('temporarily_unavailable', 'the DPoP replay store is unavailable', { cause });
    }
    if (!first) throw invalidProof('the DPoP proof has been used before');
  }
}
