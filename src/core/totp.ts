/**
 * Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), the second factor every authenticator app speaks.
 * Written here rather than taken from a package: it is one HMAC and a truncation over node:crypto, and the parts
 * that matter for security (the accepted window, single use per time step through the store's replay guard, secrets
 * sealed at rest) belong to the caller, not to a library.
 *
 * Defaults are what authenticator apps assume when the otpauth URI says nothing else: SHA-1, 6 digits, 30 s.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface TotpOptions {
  algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
  digits?: 6 | 8;
  periodSeconds?: number;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding (the form otpauth URIs carry). */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored); throws on any other character. */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const index = BASE32.indexOf(ch);
    if (index < 0) throw new TypeError('not base32');
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** A new TOTP secret: 160 random bits (RFC 4226 §4 recommends at least that), base32. */
export function newTotpSecret(): string {
  return base32Encode(randomBytes(20));
}

/** The HOTP value for one counter (RFC 4226 §5.3 dynamic truncation), zero-padded to `digits`. */
export function hotp(
  secret: Buffer,
  counter: number,
  digits = 6,
  algorithm: TotpOptions['algorithm'] = 'SHA1',
): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm.toLowerCase(), secret).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(binary).padStart(digits, '0');
}

/** The time step of `nowMs` (RFC 6238 §4: T = floor((now - T0) / X), T0 = 0). */
export function timeStep(nowMs: number, periodSeconds = 30): number {
  return Math.floor(nowMs / 1000 / periodSeconds);
}

/** The TOTP value at `nowMs`. */
export function totp(secretBase32: string, nowMs: number, options: TotpOptions = {}): string {
  return hotp(base32Decode(secretBase32), timeStep(nowMs, options.periodSeconds), options.digits, options.algorithm);
}

/**
 * Checks a code typed by the user against the steps `now - window .. now + window` (RFC 6238 §5.2: allow for clock
 * drift and typing time; one step either side is the usual choice). Returns the matching time step, so the caller
 * can make that step single-use (the replay guard), or undefined. Every candidate is compared in constant time.
 */
export function verifyTotp(
  secretBase32: string,
  code: string,
  nowMs: number,
  options: TotpOptions & { window?: number } = {},
): number | undefined {
  const digits = options.digits ?? 6;
  const typed = code.replace(/\s/g, '');
  if (!new RegExp(`^\\d{${digits}}$`).test(typed)) return undefined;
  const secret = base32Decode(secretBase32);
  const current = timeStep(nowMs, options.periodSeconds);
  const window = options.window ?? 1;
  let match: number | undefined;
  for (let step = current - window; step <= current + window; step++) {
    const expected = hotp(secret, step, digits, options.algorithm);
    if (timingSafeEqual(Buffer.from(expected), Buffer.from(typed)) && match === undefined) match = step;
  }
  return match;
}

/** The otpauth:// URI an authenticator app scans (Key Uri Format): issuer and account label, secret, defaults. */
export function otpauthUri(secretBase32: string, issuer: string, account: string, options: TotpOptions = {}): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const params = new URLSearchParams({ secret: secretBase32, issuer });
  if (options.algorithm && options.algorithm !== 'SHA1') params.set('algorithm', options.algorithm);
  if (options.digits && options.digits !== 6) params.set('digits', String(options.digits));
  if (options.periodSeconds && options.periodSeconds !== 30) params.set('period', String(options.periodSeconds));
  return `otpauth://totp/${label}?${params.toString()}`;
}
