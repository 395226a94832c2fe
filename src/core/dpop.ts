/**
 * DPoP proofs (RFC 9449 §4.3): checking the `DPoP` header of one request, without HTTP or a store of its own. The
 * caller gives the method, the URL the proof must name (the issuer's configured endpoint URL, never the URL as the
 * request arrived behind a proxy), the access token when one is presented (`ath`), and the replay guard; it gets
 * back the RFC 7638 thumbprint (`jkt`) of the proof's key. Server nonces (§8) are stateless: an HMAC of a time window
 * under a server secret, so every replica issues and accepts the same ones.
 */
import { createHash, createHmac, createPublicKey, type KeyObject } from 'node:crypto';
import type { JsonWebKeyInput } from 'node:crypto';
import type { JWK } from 'jose';
import { InvalidDpopProof, UseDpopNonce } from '../model/errors.js';
import type { ReplayGuard } from '../model/ports.js';
import type { Clock } from './clock.js';
import { hashToken, safeEqual } from './crypto.js';
import { decodeCompactJws, isJsonObject, verifyJwsSignature } from './jws.js';

/** Every DPoP proof algorithm Gatehouse can check: asymmetric only (§4.2: never `none` or a MAC). */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;
export type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
/** Longest `DPoP` header value looked at: an RSA-4096 proof is about 1.5 KB. */
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

/** What each algorithm needs of the key (RFC 7518 §3.3-3.5, RFC 8037 §3.1) and the RFC 7638 thumbprint members. */
const KEY_RULES: Record<DpopAlgorithm, { kty: string; crv?: string; members: readonly string[] }> = {
  ES256: { kty: 'EC', crv: 'P-256', members: ['crv', 'kty', 'x', 'y'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
  RS256: { kty: 'RSA', members: ['e', 'kty', 'n'] },
  PS256: { kty: 'RSA', members: ['e', 'kty', 'n'] },
};
/** RFC 7518 §3.3: RSA keys of 2048 bits or more. */
const MIN_RSA_BITS = 2048;

/** RFC 7638 §3: SHA-256 over the required members, in lexicographic order, without whitespace. */
function thumbprintOf(jwk: Record<string, unknown>, members: readonly string[]): string {
  const canonical: Record<string, unknown> = {};
  for (const m of members) canonical[m] = jwk[m];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}

/** How proofs are checked (config `dpop`, resolved once per config). */
export interface DpopPolicy {
  algorithms: readonly string[];
  /** How old `iat` may be, seconds. */
  iatWindowSeconds: number;
  /** How far ahead of this server's clock `iat` may be, seconds. */
  iatFutureSkewSeconds: number;
  /** Server nonces: absent = off. */
  nonce?: DpopNonces;
}

/** What one check needs of the server: its clock and the store's replay guard (atomic across replicas). */
export interface DpopDeps {
  clock: Clock;
  storage: Pick<ReplayGuard, 'firstUse'>;
}

/** The request a proof must match. */
export interface DpopRequest {
  /** Every value of the `DPoP` header (Fastify gives a string, or an array when repeated). */
  header: string | readonly string[] | undefined;
  method: string;
  /** The URL the proof must name, as this server computes it (issuer + path); query and fragment are ignored. */
  url: string;
  /** The access token presented with the proof (resource requests, userinfo): `ath` must be its hash. */
  accessToken?: string;
  /** The status of the errors: 400 at the token endpoint (default), 401 at a protected resource. */
  status?: 400 | 401;
}

/** A valid proof: its key's thumbprint (`cnf.jkt`) and the key. */
export interface DpopProof {
  jkt: string;
  jwk: JWK;
}

/**
 * Stateless server nonces: the HMAC of a window index under a server secret. The nonce of the current window is
 * handed out; the previous window's is still accepted, so a nonce lives between one and two windows.
 */
export class DpopNonces {
  readonly #key: Buffer;
  readonly #windowMs: number;
  readonly #clock: Clock;

  constructor(secret: string | Buffer, windowSeconds: number, clock: Clock) {
    this.#key = createHmac('sha256', secret).update('gatehouse dpop nonce v1').digest();
    this.#windowMs = windowSeconds * 1000;
    this.#clock = clock;
  }

  #of(window: number): string {
    return createHmac('sha256', this.#key).update(String(window)).digest('base64url').slice(0, 32);
  }

  /** The nonce to hand out now. */
  current(): string {
    return this.#of(Math.floor(this.#clock.now() / this.#windowMs));
  }

  /** Whether `nonce` is this window's or the previous one's. */
  accepts(nonce: string): boolean {
    const window = Math.floor(this.#clock.now() / this.#windowMs);
    return safeEqual(nonce, this.#of(window)) || safeEqual(nonce, this.#of(window - 1));
  }
}

/** `htu` comparison (§4.3 step 9): scheme and host case-insensitive, default port dropped, no query or fragment. */
export function normalizeHtu(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
  // WHATWG URL parsing lowercases scheme and host, drops the default port and normalises percent-encoding case and
  // dot segments: the RFC 3986 §6.2.2 / §6.2.3 syntax- and scheme-based normalisations.
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/** base64url(SHA-256(token)): the `ath` of a proof presented with `token` (§4.2). */
export function accessTokenHash(token: string): string {
  return hashToken(token);
}

function invalid(description: string, request: DpopRequest, cause?: unknown): InvalidDpopProof {
  return new InvalidDpopProof(description, {
    ...(request.status !== undefined && { status: request.status }),
    ...(cause !== undefined && { cause }),
  });
}

/** The single `DPoP` header value, or undefined when none was sent. Two are refused (§4.3 step 1). */
export function singleDpopHeader(request: DpopRequest): string | undefined {
  const header = request.header;
  if (header === undefined) return undefined;
  if (typeof header !== 'string') {
    if (header.length === 0) return undefined;
    if (header.length > 1) throw invalid('exactly one DPoP header is allowed', request);
    return header[0];
  }
  return header;
}

/**
 * Checks the request's DPoP proof (RFC 9449 §4.3) and claims its `jti` once in the replay guard, keyed by the key's
 * thumbprint and the jti. Returns undefined when the request carries no `DPoP` header (the caller decides whether
 * one was required). Throws InvalidDpopProof, or UseDpopNonce when nonces are on and the proof lacks the current one.
 */
export async function verifyDpopProof(
  request: DpopRequest,
  policy: DpopPolicy,
  deps: DpopDeps,
): Promise<DpopProof | undefined> {
  const proof = singleDpopHeader(request);
  if (proof === undefined) return undefined;
  if (proof.length === 0 || proof.length > MAX_PROOF_LENGTH) throw invalid('the DPoP proof is malformed', request);

  // Header first, without touching the key: a compact JWS, typ, alg, and a public jwk (§4.3 steps 2-7).
  const jws = decodeCompactJws(proof);
  if (jws === undefined || !isJsonObject(jws.header)) throw invalid('the DPoP proof is not a JWS', request);
  const header = jws.header;
  if (header.typ !== 'dpop+jwt') throw invalid('the DPoP proof typ must be dpop+jwt', request);
  const alg = header.alg;
  if (typeof alg !== 'string' || !policy.algorithms.includes(alg) || !(alg in KEY_RULES))
    throw invalid('the DPoP proof algorithm is not supported', request);
  // RFC 7515 §4.1.11: no extension is understood here, so a critical one fails the proof (b64: false included).
  if (header.crit !== undefined || header.b64 !== undefined)
    throw invalid('the DPoP proof uses an unsupported JWS extension', request);
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk))
    throw invalid('the DPoP proof has no jwk header', request);
  if (jwk.kty === 'oct' || PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined))
    throw invalid('the DPoP proof jwk must be a public key', request);
  const rule = KEY_RULES[alg as DpopAlgorithm];
  if (jwk.kty !== rule.kty || (rule.crv !== undefined && jwk.crv !== rule.crv))
    throw invalid('the DPoP proof jwk does not fit its algorithm', request);
  if (rule.members.some((m) => typeof jwk[m] !== 'string')) throw invalid('the DPoP proof jwk is malformed', request);
  if ((jwk.use !== undefined && jwk.use !== 'sig') || (jwk.alg !== undefined && jwk.alg !== alg))
    throw invalid('the DPoP proof jwk is not for this algorithm', request);

  // The key is imported once (§4.3 step 7), then the signature checked on the threadpool.
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' });
  } catch (cause) {
    throw invalid('the DPoP proof jwk is malformed', request, cause);
  }
  if (key.type !== 'public') throw invalid('the DPoP proof jwk must be a public key', request);
  if (rule.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS)
    throw invalid('the DPoP proof RSA key is too short', request);
  if (!(await verifyJwsSignature(alg, key, jws.signingInput, jws.signature)))
    throw invalid('the DPoP proof signature is invalid', request);
  const payload = jws.payload;
  if (!isJsonObject(payload)) throw invalid('the DPoP proof payload is not a JSON object', request);

  // Claims (§4.3 steps 8-12).
  const { jti, htm, htu, iat, ath, nonce } = payload;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)
    throw invalid('the DPoP proof jti is missing or invalid', request);
  if (htm !== request.method) throw invalid('the DPoP proof htm does not match the request method', request);
  const expected = normalizeHtu(request.url);
  if (typeof htu !== 'string' || expected === undefined || normalizeHtu(htu) !== expected)
    throw invalid('the DPoP proof htu does not match the request URL', request);
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('the DPoP proof has no iat', request);
  const now = deps.clock.now() / 1000;
  if (iat < now - policy.iatWindowSeconds) throw invalid('the DPoP proof is too old', request);
  if (iat > now + policy.iatFutureSkewSeconds) throw invalid('the DPoP proof iat is in the future', request);
  if (request.accessToken !== undefined) {
    if (typeof ath !== 'string') throw invalid('the DPoP proof has no ath for the access token', request);
    if (!safeEqual(ath, accessTokenHash(request.accessToken)))
      throw invalid('the DPoP proof ath does not match the access token', request);
  }
  if (policy.nonce !== undefined && (typeof nonce !== 'string' || !policy.nonce.accepts(nonce))) {
    throw new UseDpopNonce(policy.nonce.current(), request.status !== undefined ? { status: request.status } : {});
  }

  const jkt = thumbprintOf(jwk, rule.members);
  // Single use across replicas, for as long as the proof could be accepted (§11.1).
  const expiresAt = Math.ceil((iat + policy.iatWindowSeconds) * 1000) + 1000;
  if (!(await deps.storage.firstUse(`dpop:${hashToken(JSON.stringify([jkt, jti]))}`, expiresAt)))
    throw invalid('the DPoP proof has been used before', request);
  return { jkt, jwk: jwk };
}

// --- At this server's endpoints: the issuer's policy, the endpoint URL it computes, the challenges. ---

/** The config `dpop` block (config/schema.ts), as this module reads it. */
export interface DpopConfig {
  enabled: boolean;
  algorithms: readonly string[];
  iatWindowSeconds: number;
  iatFutureSkewSeconds: number;
  nonce: boolean;
  nonceWindowSeconds: number;
}

/**
 * What checking a proof at an endpoint uses: the issuer and its `dpop` config, the clock, the cookie key (the nonce
 * secret, shared by replicas through the store) and the replay guard.
 */
export interface EndpointDpopDeps {
  config: { issuer: string; dpop: DpopConfig };
  clock: Clock;
  cookieKey: string;
  storage: Pick<ReplayGuard, 'firstUse'>;
}

/** The DPoP part of a request, as the HTTP layer read it. */
export interface DpopInput {
  /** Every value of the `DPoP` header. */
  header: string | readonly string[] | undefined;
  method: string;
}

const policies = new WeakMap<object, DpopPolicy>();

/** The issuer's proof policy; undefined when DPoP is off (the header is then ignored, RFC 9449 §5). */
export function dpopPolicy(deps: Pick<EndpointDpopDeps, 'config' | 'clock' | 'cookieKey'>): DpopPolicy | undefined {
  const config = deps.config.dpop;
  if (!config.enabled) return undefined;
  let policy = policies.get(config);
  if (!policy) {
    policy = {
      algorithms: config.algorithms,
      iatWindowSeconds: config.iatWindowSeconds,
      iatFutureSkewSeconds: config.iatFutureSkewSeconds,
      ...(config.nonce && { nonce: new DpopNonces(deps.cookieKey, config.nonceWindowSeconds, deps.clock) }),
    };
    policies.set(config, policy);
  }
  return policy;
}

/**
 * Checks the request's proof for the endpoint at `path` (below the issuer), with `accessToken` when one is presented.
 * Undefined: no proof sent, or DPoP off.
 */
export async function endpointProof(
  input: DpopInput | undefined,
  path: string,
  deps: EndpointDpopDeps,
  options: { accessToken?: string; status?: 400 | 401 } = {},
): Promise<DpopProof | undefined> {
  if (input?.header === undefined) return undefined;
  const policy = dpopPolicy(deps);
  if (!policy) return undefined;
  return verifyDpopProof(
    { header: input.header, method: input.method, url: deps.config.issuer + path, ...options },
    policy,
    deps,
  );
}

/** The `DPoP-Nonce` to send on a successful response when nonces are on (RFC 9449 §8.2), else undefined. */
export function currentDpopNonce(deps: Pick<EndpointDpopDeps, 'config' | 'clock' | 'cookieKey'>): string | undefined {
  return dpopPolicy(deps)?.nonce?.current();
}

/** RFC 9449 §7.1: `DPoP algs="..."`, with `error` when the request carried credentials. */
export function dpopChallenge(config: { dpop: DpopConfig }, error?: string): string {
  const algs = `algs="${config.dpop.algorithms.join(' ')}"`;
  return error ? `DPoP error="${error}", ${algs}` : `DPoP ${algs}`;
}

/** The discovery field (RFC 9449 §5.1). */
export function dpopMetadata(config: { dpop: DpopConfig }): Record<string, unknown> {
  return config.dpop.enabled ? { dpop_signing_alg_values_supported: [...config.dpop.algorithms] } : {};
}
