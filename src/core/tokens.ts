/**
 * Token minting. Access tokens are RFC 9068 JWTs (`typ: at+jwt`); ID tokens follow OIDC Core §2 with at_hash
 * (§3.1.3.6). Refresh tokens and codes are opaque random strings (core/crypto).
 */
import { createHash, KeyObject } from 'node:crypto';
import { epochSeconds, type Clock } from './clock.js';
import { randomId, sha256 } from './crypto.js';
import type { ActiveKey, KeyManager, SigningAlg } from './keys.js';
import { rememberIssued, type AccessTokenPayload } from './access-token.js';
import { AccessTokenMac } from './access-token-mac.js';
import { signJwsInput } from './jws.js';

/** node:crypto form of each imported signing key, converted once. */
const keyObjects = new WeakMap<object, KeyObject>();

/**
 * Compact JWS (RFC 7515 §7.1) of an encoded header and payload. Signed with node:crypto (core/jws.ts signJwsInput: on
 * the libuv threadpool when there is a core to spare): WebCrypto (what jose's SignJWT uses) does the ECDSA work on
 * the event loop in Node 20 and costs about three times the main-thread time per token.
 */
async function signEncodedJws(headerB64: string, payloadB64: string, signer: ActiveKey): Promise<string> {
  let key = keyObjects.get(signer.key);
  if (!key) {
    key = KeyObject.from(signer.key);
    keyObjects.set(signer.key, key);
  }
  const input = `${headerB64}.${payloadB64}`;
  return `${input}.${await signJwsInput(signer.alg, key, input)}`;
}

/** Compact JWS of `header` and `payload` (see {@link signEncodedJws}). */
function signJws(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signer: ActiveKey,
): Promise<string> {
  return signEncodedJws(b64json(header), b64json(payload), signer);
}

const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** What an access token says. */
export interface AccessTokenClaims {
  /** User id, or the client_id for client_credentials (RFC 9068 §2.2). */
  sub: string;
  clientId: string;
  scope: string[];
  /** The resource(s) the token is for (RFC 8707); the client_id when none was named. */
  audience: string[];
  /** When the user signed in, epoch ms. */
  authTime?: number;
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`). */
  jkt?: string;
}

/** A minted access token with its id and expiry (epoch ms). */
export interface MintedAccessToken {
  token: string;
  jti: string;
  /** Its `sub` and `aud` (for the audit event of the response it goes into). */
  sub: string;
  audience: string[];
  expiresAt: number;
  expiresIn: number;
  /** Set when the token is DPoP-bound (its `cnf.jkt`). */
  jkt?: string;
}

/** Mints JWT access and ID tokens with the current keys. */
export class TokenMinter {
  /** Tags access-token ids (core/access-token-mac.ts) when the server gave a secret; absent, jtis are plain. */
  readonly accessTokenMac: AccessTokenMac | undefined;

  constructor(
    private readonly issuer: string,
    private readonly keys: KeyManager,
    private readonly clock: Clock,
    private readonly ttls: { accessTokenTtl: number; idTokenTtl: number },
    /** The issuer's stored secret the jti MAC key is derived from (server.ts passes its cookie key). */
    macSecret?: string,
  ) {
    this.accessTokenMac = macSecret === undefined ? undefined : new AccessTokenMac(macSecret, issuer);
  }

  /** RFC 9068 access token. */
  async accessToken(claims: AccessTokenClaims, alg?: SigningAlg): Promise<MintedAccessToken> {
    const signer = this.keys.signer(alg);
    const iat = epochSeconds(this.clock);
    const exp = iat + this.ttls.accessTokenTtl;
    const random = randomId();
    const payload: Record<string, unknown> = {
      iss: this.issuer,
      sub: claims.sub,
      aud: claims.audience.length === 1 ? claims.audience[0] : claims.audience,
      client_id: claims.clientId,
      iat,
      exp,
      jti: random,
    };
    if (claims.scope.length > 0) payload.scope = claims.scope.join(' ');
    if (claims.authTime !== undefined) payload.auth_time = Math.floor(claims.authTime / 1000);
    if (claims.jkt !== undefined) payload.cnf = { jkt: claims.jkt };
    const headerB64 = b64json({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' });
    let json = JSON.stringify(payload);
    let jti = random;
    if (this.accessTokenMac) {
      // The tag covers the header and every claim (the jti as `random` while tagging); it goes into the jti itself.
      // Put in place in the JSON (the bytes JSON.stringify gives for the tagged jti: base64url and '.' need no
      // escaping), as AccessTokenMac.verify puts it back, instead of serialising the payload a second time.
      jti = `${random}.${this.accessTokenMac.tag(headerB64, json)}`;
      json = json.replace(`"jti":"${random}"`, `"jti":"${jti}"`);
      payload.jti = jti;
    }
    const token = await signEncodedJws(headerB64, Buffer.from(json).toString('base64url'), signer);
    // This process produced exactly this string, so it needs no verification here (exact-string cache).
    rememberIssued(this.keys, token, payload as AccessTokenPayload, this.clock);
    return {
      token,
      jti,
      sub: claims.sub,
      audience: claims.audience,
      expiresAt: exp * 1000,
      expiresIn: this.ttls.accessTokenTtl,
      ...(claims.jkt !== undefined && { jkt: claims.jkt }),
    };
  }

  /** OIDC ID token for `clientId`, with at_hash of the access token it accompanies. */
  async idToken(input: {
    sub: string;
    clientId: string;
    nonce?: string;
    /** epoch ms */
    authTime: number;
    accessToken: string;
    claims?: Record<string, unknown>;
    alg?: SigningAlg;
  }): Promise<string> {
    const signer = this.keys.signer(input.alg);
    const iat = epochSeconds(this.clock);
    const payload: Record<string, unknown> = {
      ...input.claims,
      iss: this.issuer,
      sub: input.sub,
      aud: input.clientId,
      iat,
      exp: iat + this.ttls.idTokenTtl,
      auth_time: Math.floor(input.authTime / 1000),
      at_hash: atHash(input.accessToken, signer.alg),
    };
    if (input.nonce !== undefined) payload.nonce = input.nonce;
    return signJws({ alg: signer.alg, kid: signer.kid, typ: 'JWT' }, payload, signer);
  }
}

/** OIDC Core §3.1.3.6: left half of the hash of the access token, base64url. SHA-256 for ES256/RS256. */
export function atHash(accessToken: string, alg: SigningAlg): string {
  // EdDSA with Ed25519 uses SHA-512 per OIDC errata; ES256/RS256 use SHA-256.
  if (alg === 'EdDSA') {
    const digest = createHash('sha512').update(accessToken).digest();
    return digest.subarray(0, digest.length / 2).toString('base64url');
  }
  const digest = sha256(accessToken);
  return digest.subarray(0, 16).toString('base64url');
}
