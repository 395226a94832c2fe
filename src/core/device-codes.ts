/**
 * The codes of the device authorization grant (RFC 8628): the device code (a bearer secret the device polls with,
 * 256 random bits) and the user code the user types (§6.1: short, from an alphabet without vowels or look-alikes, so
 * it is easy to read aloud, type and hard to misread; 8 of 20 characters, about 34.6 bits, which is why the page that
 * takes it is rate limited and a code lives minutes).
 */
import { randomInt } from 'node:crypto';
import { hashToken, keyedHash, randomToken } from './crypto.js';

/** RFC 8628 §6.1: consonants only (no vowels, so no words), no look-alikes (no 0/O, 1/I/L confusion). */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
/** Characters of a user code (shown as two groups of four). */
export const USER_CODE_LENGTH = 8;

/** The grant type URN (RFC 8628 §3.4). */
export const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

/** A fresh device code: 32 random bytes, base64url. */
export function newDeviceCode(): string {
  return randomToken(32);
}

/** The store key of a device code: its SHA-256 (the code has 256 bits of entropy). */
export function hashDeviceCode(deviceCode: string): string {
  return hashToken(deviceCode);
}

/** A fresh user code, normalised (8 characters of the alphabet, uniformly chosen). */
export function newUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/** How a user code is shown: `XXXX-XXXX`. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/**
 * What the user typed, normalised (RFC 8628 §6.1): case ignored, dashes and white space dropped. Undefined when the
 * result cannot be a user code (wrong length or a character outside the alphabet), so it is refused without a store
 * lookup.
 */
export function normaliseUserCode(input: string | undefined): string | undefined {
  if (input === undefined || input.length > 64) return undefined;
  const code = input.toUpperCase().replace(/[\s\-\u2010-\u2015]/gu, '');
  if (code.length !== USER_CODE_LENGTH) return undefined;
  for (const c of code) if (!USER_CODE_ALPHABET.includes(c)) return undefined;
  return code;
}

/**
 * The store key of a user code: keyed with the server pepper. A plain hash would not protect it: 20^8 codes are
 * enumerated offline in seconds, so a reader of the store could otherwise recover every pending user code.
 */
export function hashUserCode(pepper: string, code: string): string {
  return keyedHash(pepper, `gatehouse device user code\n${code}`);
}
