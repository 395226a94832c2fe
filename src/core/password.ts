/**
 * Password hashing with scrypt (node:crypto, async so the event loop keeps serving). Format:
 * `scrypt$<log2N>$<r>$<p>$<salt b64u>$<hash b64u>`. Also used for weak admin-chosen client secrets.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a password with scrypt (N = 2^log2N, r = 8, p = 1). */
export async function hashPassword(password: string, log2N = 15): Promise<string> {
  const salt = randomBytes(16);
  const N = 2 ** log2N;
  const key = await scrypt(password, salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 + 1024 * 1024 });
  return `scrypt$${log2N}$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Verifies a password against a hash from {@link hashPassword}, in constant time. False for malformed hashes. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const log2N = Number(parts[1]);
  const r = Number(parts[2]);
  const p = Number(parts[3]);
  if (![log2N, r, p].every(Number.isInteger) || log2N < 10 || log2N > 22 || r < 1 || r > 32 || p < 1 || p > 16) {
    return false;
  }
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length < 16) return false;
  const N = 2 ** log2N;
  const key = await scrypt(password, salt, expected.length, { N, r, p, maxmem: 128 * N * r * 2 + 1024 * 1024 });
  return timingSafeEqual(key, expected);
}

/** The scrypt cost (log2N) recorded in a hash from {@link hashPassword}; undefined when it is not one. */
export function hashCost(encoded: string): number | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const log2N = Number(parts[1]);
  return Number.isInteger(log2N) ? log2N : undefined;
}

/**
 * True when a hash that just verified should be replaced by one at the configured cost: a stored cost other than
 * the configured one makes that user's sign-in slower or faster than the dummy check for unknown usernames, which
 * would let the username be found by timing. Other parameters than ours (r, p, key length) count as outdated too.
 */
export function needsRehash(encoded: string, log2N: number): boolean {
  const parts = encoded.split('$');
  return (
    hashCost(encoded) !== log2N ||
    parts[2] !== '8' ||
    parts[3] !== '1' ||
    Buffer.from(parts[5]!, 'base64url').length !== 32
  );
}

const dummyHashes = new Map<number, string>();
/**
 * Does the work of one real check at cost `log2N` (the configured one: stored hashes converge on it, see
 * {@link needsRehash}), so unknown usernames are not distinguishable by timing. The dummy "hash" is random bytes in
 * the stored format: verifying it costs the same scrypt as a real one, it can never match, and it needs no hashing
 * up front (which would make the first unknown-user attempt slower).
 */
export async function verifyPasswordDummy(password: string, log2N = 15): Promise<void> {
  let dummy = dummyHashes.get(log2N);
  if (!dummy) {
    dummy = `scrypt$${log2N}$8$1$${randomBytes(16).toString('base64url')}$${randomBytes(32).toString('base64url')}`;
    dummyHashes.set(log2N, dummy);
  }
  await verifyPassword(password, dummy);
}
