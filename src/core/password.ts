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

let dummyHash: Promise<string> | undefined;
/** Burns the same time as a real check, so unknown usernames are not distinguishable by timing. */
export async function verifyPasswordDummy(password: string, log2N = 15): Promise<void> {
  dummyHash ??= hashPassword('gatehouse-dummy-password', log2N);
  await verifyPassword(password, await dummyHash);
}
