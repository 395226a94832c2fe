import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, hotp, newTotpSecret, otpauthUri, totp, verifyTotp } from './totp.js';

// RFC 6238 Appendix B: the seeds are the ASCII strings below; 8-digit values at the listed times.
const SEEDS = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
} as const;
const VECTORS: [number, string, keyof typeof SEEDS][] = [
  [59, '94287082', 'SHA1'],
  [59, '46119246', 'SHA256'],
  [59, '90693936', 'SHA512'],
  [1111111109, '07081804', 'SHA1'],
  [1111111109, '68084774', 'SHA256'],
  [1111111109, '25091201', 'SHA512'],
  [1111111111, '14050471', 'SHA1'],
  [1234567890, '89005924', 'SHA1'],
  [2000000000, '69279037', 'SHA1'],
  [20000000000, '65353130', 'SHA1'],
  [20000000000, '77737706', 'SHA256'],
  [20000000000, '47863826', 'SHA512'],
];

describe('TOTP (RFC 6238)', () => {
  it.each(VECTORS)('at %i s the %s value is %s (Appendix B)', (seconds, expected, algorithm) => {
    const secret = base32Encode(Buffer.from(SEEDS[algorithm]));
    expect(totp(secret, seconds * 1000, { digits: 8, algorithm })).toBe(expected);
  });

  it('HOTP matches RFC 4226 Appendix D', () => {
    const expected = [
      '755224',
      '287082',
      '359152',
      '969429',
      '338314',
      '254676',
      '287922',
      '162583',
      '399871',
      '520489',
    ];
    const secret = Buffer.from('12345678901234567890');
    expect(expected.map((_, i) => hotp(secret, i))).toEqual(expected);
  });

  it('base32 round-trips, ignores case, spaces and padding, refuses other characters', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      const text = base32Encode(bytes);
      expect(base32Decode(text)).toEqual(bytes);
      expect(base32Decode(text.toLowerCase().replace(/(.{4})/g, '$1 ') + '===')).toEqual(bytes);
    }
    expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI'); // RFC 4648 §10
    expect(() => base32Decode('MZXW1')).toThrow(TypeError);
  });

  it('accepts the current step and one either side, nothing further, and says which step matched', () => {
    const secret = newTotpSecret();
    const now = 1_700_000_000_000;
    const step = Math.floor(now / 30_000);
    expect(verifyTotp(secret, totp(secret, now), now)).toBe(step);
    expect(verifyTotp(secret, totp(secret, now - 30_000), now)).toBe(step - 1);
    expect(verifyTotp(secret, totp(secret, now + 30_000), now)).toBe(step + 1);
    expect(verifyTotp(secret, totp(secret, now - 60_000), now)).toBeUndefined();
    expect(verifyTotp(secret, totp(secret, now + 60_000), now)).toBeUndefined();
    expect(verifyTotp(secret, totp(secret, now - 60_000), now, { window: 2 })).toBe(step - 2);
  });

  it('refuses malformed codes and a code of another secret', () => {
    const secret = newTotpSecret();
    const now = Date.now();
    const code = totp(secret, now);
    expect(verifyTotp(secret, ` ${code.slice(0, 3)} ${code.slice(3)} `, now)).toBeDefined();
    for (const bad of ['', '12345', '1234567', 'abcdef', `${code}0`, '１２３４５６']) {
      expect(verifyTotp(secret, bad, now)).toBeUndefined();
    }
    expect(verifyTotp(newTotpSecret(), code, now)).toBeUndefined();
  });

  it('builds the otpauth URI authenticator apps scan', () => {
    expect(otpauthUri('JBSWY3DPEHPK3PXP', 'Gatehouse Example', 'alice@example.com')).toBe(
      'otpauth://totp/Gatehouse%20Example:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Gatehouse+Example',
    );
  });
});
