/**
 * Random identifiers and secrets, hashing for stored secrets, constant-time comparison.
 * Server-generated 256-bit secrets need only a fast keyed hash (no brute force is possible); user passwords
 * and admin-chosen secrets use scrypt (core/password.ts).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
} from 'node:crypto';

/**
 * Random bytes from a 4 KiB pool refilled by randomFillSync (the CSPRNG, as randomBytes): ~0.2 µs a call instead of
 * ~2.3 µs for a small randomBytes, several times per token request (Node's randomUUID pools the same way). The view
 * is only valid until the next call: callers turn it into a string (or copy it) at once and never keep it.
 */
const RANDOM_POOL = Buffer.alloc(4096);
let randomPoolOffset = RANDOM_POOL.length;
function pooledRandom(bytes: number): Buffer {
  if (bytes > RANDOM_POOL.length) return randomBytes(bytes);
  if (randomPoolOffset + bytes > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomPoolOffset = 0;
  }
  const view = RANDOM_POOL.subarray(randomPoolOffset, randomPoolOffset + bytes);
  randomPoolOffset += bytes;
  return view;
}

/** A 256-bit random token, base64url (43 chars). Used for codes, refresh tokens, secrets. */
export function randomToken(bytes = 32): string {
  return pooledRandom(bytes).toString('base64url');
}

/** A shorter random identifier (128 bits) for ids that are not secrets on their own. */
export function randomId(): string {
  return pooledRandom(16).toString('base64url');
}

/** SHA-256 of a high-entropy token, base64url. Lookup key for codes, refresh tokens, registration tokens. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** HMAC-SHA-256 keyed hash, base64url (used for server-generated client secrets with a server pepper). */
export function keyedHash(key: string | Buffer, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}

/** Constant-time string equality (lengths leak, contents do not). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    // Compare against itself so timing does not depend on where the strings differ.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** base64url SHA-256 of a string (PKCE S256, at_hash halves). */
export function sha256(input: string): Buffer {
  return createHash('sha256').update(input).digest();
}

const HKDF_ZERO_SALT = Buffer.alloc(32);
const HKDF_FIRST_BLOCK = Buffer.from([1]);

/**
 * HKDF-SHA-256 (RFC 5869) with an empty salt and a 32-byte output: the same bytes as
 * `hkdfSync('sha256', secret, '', info, 32)`, as its two HMACs (extract: PRK = HMAC(zeros, secret); expand, one
 * block: HMAC(PRK, info || 0x01)). node:crypto's hkdfSync builds KeyObjects per call and costs ~15 µs against ~5 µs,
 * on every refresh rotation (crypto.test.ts checks the two agree).
 */
export function hkdfSha256(secret: string, info: string): Buffer {
  const prk = createHmac('sha256', HKDF_ZERO_SALT).update(secret).digest();
  return createHmac('sha256', prk).update(info).update(HKDF_FIRST_BLOCK).digest();
}

/**
 * AES-256-GCM with a key derived (HKDF) from `secret` and `context`. Used to keep a value that only the holder
 * of `secret` may read back: e.g. the response of a refresh rotation, encrypted under the old refresh token, so
 * a retry inside the grace window gets the same pair while the store holds nothing usable.
 */
export function sealWithSecret(secret: string, context: string, plaintext: string): string {
  const key = hkdfSha256(secret, context);
  const iv = Buffer.from(pooledRandom(12));
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** Inverse of {@link sealWithSecret}; returns undefined if the secret or data is wrong. */
export function openWithSecret(secret: string, context: string, sealed: string): string | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    const key = hkdfSha256(secret, context);
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12), { authTagLength: 16 });
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * Encryption at rest for secrets the server must read back (e.g. upstream tokens): AES-256-GCM with a 32-byte key
 * from config (`encryptionKey`, base64). Output: `v1.<iv>.<tag>.<ciphertext>` (base64url). The `aad` binds a value
 * to its record, so a ciphertext copied to another record does not decrypt.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(base64Key: string) {
    const key = Buffer.from(base64Key, 'base64');
    if (key.length !== 32) throw new TypeError('encryptionKey must be 32 bytes, base64-encoded');
    this.key = key;
  }

  seal(plaintext: string, aad = ''): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(
      '.',
    );
  }

  /** Decrypts; throws if the key, aad or data is wrong. */
  open(sealed: string, aad = ''): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('not a sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  }
}
