import { describe, expect, it } from 'vitest';
import {
  formatUserCode,
  hashUserCode,
  newDeviceCode,
  newUserCode,
  normaliseUserCode,
  USER_CODE_ALPHABET,
} from './device-codes.js';

describe('device authorization codes (RFC 8628 §6.1)', () => {
  it('user codes are 8 characters of the 20 consonants, shown as XXXX-XXXX, each character used', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const code = newUserCode();
      expect(code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{8}$/);
      expect(formatUserCode(code)).toBe(`${code.slice(0, 4)}-${code.slice(4)}`);
      for (const c of code) seen.add(c);
    }
    expect([...seen].sort().join('')).toBe(USER_CODE_ALPHABET);
  });

  it('input is normalised: case, dashes (also typographic ones) and white space; anything else is not a code', () => {
    expect(normaliseUserCode('bcdf-ghjk')).toBe('BCDFGHJK');
    expect(normaliseUserCode(' BCDF GHJK ')).toBe('BCDFGHJK');
    expect(normaliseUserCode('bc-df–gh\tjk')).toBe('BCDFGHJK');
    for (const bad of [
      undefined,
      '',
      'BCDF-GHJ',
      'BCDF-GHJKL',
      'AEIO-UAEI',
      'BCDF-GHJ1',
      'BCDF_GHJK',
      'x'.repeat(65),
    ]) {
      expect(normaliseUserCode(bad), String(bad)).toBeUndefined();
    }
  });

  it('device codes carry 256 bits; user codes are keyed by the pepper', () => {
    expect(newDeviceCode()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newDeviceCode()).not.toBe(newDeviceCode());
    expect(hashUserCode('pepper-a', 'BCDFGHJK')).toBe(hashUserCode('pepper-a', 'BCDFGHJK'));
    expect(hashUserCode('pepper-a', 'BCDFGHJK')).not.toBe(hashUserCode('pepper-b', 'BCDFGHJK'));
  });
});
