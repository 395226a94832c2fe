import { hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  hashToken,
  hkdfSha256,
  keyedHash,
  openWithSecret,
  randomId,
  randomToken,
  safeEqual,
  sealWithSecret,
  sha256,
} from './crypto.js';

describe('randomToken / randomId', () => {
  it('randomToken is 256 bits of base64url (43 chars) by default, and unique', () => {
    const a = randomToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(randomToken()).not.toBe(a);
  });

  it('randomToken honours the byte count', () => {
    expect(Buffer.from(randomToken(16), 'base64url')).toHaveLength(16);
    expect(randomToken(16)).toHaveLength(22);
  });

  it('stays unique across many refills of the pool, mixed sizes included', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(i % 3 === 0 ? randomToken() : i % 3 === 1 ? randomId() : randomToken(7));
    expect(seen.size).toBe(20_000);
    expect(Buffer.from(randomToken(5000), 'base64url')).toHaveLength(5000);
  });

  it('randomId is 128 bits (22 base64url chars)', () => {
    expect(randomId()).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(randomId()).not.toBe(randomId());
  });
});

describe('hashToken / sha256 / keyedHash', () => {
  it('hashToken is SHA-256 base64url (FIPS 180-2 "abc" vector) and deterministic', () => {
    expect(hashToken('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
    expect(hashToken('abc')).toBe(hashToken('abc'));
    expect(hashToken('abd')).not.toBe(hashToken('abc'));
    expect(hashToken('')).toBe('47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU');
  });

  it('sha256 returns the raw 32-byte digest', () => {
    expect(sha256('abc').toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('keyedHash is HMAC-SHA-256 base64url (RFC 4231 test case 2)', () => {
    const expected = Buffer.from('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', 'hex').toString(
      'base64url',
    );
    expect(keyedHash('Jefe', 'what do ya want for nothing?')).toBe(expected);
    expect(keyedHash(Buffer.from('Jefe'), 'what do ya want for nothing?')).toBe(expected);
    expect(keyedHash('other', 'what do ya want for nothing?')).not.toBe(expected);
  });
});

describe('safeEqual', () => {
  it('is true only for identical strings', () => {
    expect(safeEqual('', '')).toBe(true);
    expect(safeEqual('secret', 'secret')).toBe(true);
    expect(safeEqual('secret', 'secreT')).toBe(false);
    expect(safeEqual('Secret', 'secret')).toBe(false);
  });

  it('is false (and does not throw) for different lengths', () => {
    expect(safeEqual('secret', 'secret1')).toBe(false);
    expect(safeEqual('', 'x')).toBe(false);
  });

  it('compares UTF-8 bytes, not UTF-16 code units', () => {
    expect(safeEqual('é', 'é')).toBe(true);
    // Same JS length (1), different byte lengths (2 vs 1).
    expect(safeEqual('é', 'e')).toBe(false);
    // NFC vs NFD are different byte strings.
    expect(safeEqual('\u00e9', 'e\u0301')).toBe(false);
  });
});

describe('hkdfSha256', () => {
  it("gives node:crypto hkdfSync's bytes (empty salt, 32 bytes) for any secret and info", () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string(), (secret, info) => {
        const expected = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), info, 32));
        expect(hkdfSha256(secret, info).equals(expected)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('sealWithSecret / openWithSecret (AES-256-GCM, HKDF key)', () => {
  const secret = 'old-refresh-token-value';
  const context = 'refresh-successor';

  it('round-trips, including empty and non-ASCII plaintext', () => {
    for (const plaintext of ['{"access_token":"a","refresh_token":"b"}', '', 'ünïcødé ✓']) {
      expect(openWithSecret(secret, context, sealWithSecret(secret, context, plaintext))).toBe(plaintext);
    }
  });

  it('produces base64url of iv(12) + tag(16) + ciphertext, with a fresh IV each time', () => {
    const a = sealWithSecret(secret, context, 'hello');
    const b = sealWithSecret(secret, context, 'hello');
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(12 + 16 + 5);
    expect(a).not.toBe(b);
    expect(openWithSecret(secret, context, b)).toBe('hello');
  });

  it('returns undefined with the wrong secret', () => {
    const sealed = sealWithSecret(secret, context, 'hello');
    expect(openWithSecret('another-token', context, sealed)).toBeUndefined();
    expect(openWithSecret('', context, sealed)).toBeUndefined();
  });

  it('returns undefined with the wrong context (domain separation)', () => {
    expect(openWithSecret(secret, 'other-context', sealWithSecret(secret, context, 'hello'))).toBeUndefined();
  });

  it.each([
    ['iv', 0],
    ['auth tag', 12],
    ['ciphertext', 28],
    ['last ciphertext byte', -1],
  ])('returns undefined when the %s is tampered with', (_label, index) => {
    const raw = Buffer.from(sealWithSecret(secret, context, 'hello world'), 'base64url');
    const i = index < 0 ? raw.length + index : index;
    raw[i] = raw[i]! ^ 0x01;
    expect(openWithSecret(secret, context, raw.toString('base64url'))).toBeUndefined();
  });

  it('returns undefined for truncated, appended-to, empty or garbage input', () => {
    const sealed = sealWithSecret(secret, context, 'hello world');
    const raw = Buffer.from(sealed, 'base64url');
    expect(openWithSecret(secret, context, raw.subarray(0, raw.length - 1).toString('base64url'))).toBeUndefined();
    expect(
      openWithSecret(secret, context, Buffer.concat([raw, Buffer.from([0])]).toString('base64url')),
    ).toBeUndefined();
    expect(openWithSecret(secret, context, raw.subarray(0, 28).toString('base64url'))).toBeUndefined();
    expect(openWithSecret(secret, context, '')).toBeUndefined();
    expect(openWithSecret(secret, context, '!!!not base64!!!')).toBeUndefined();
  });
});
