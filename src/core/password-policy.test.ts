import { describe, expect, it } from 'vitest';
import { DEFAULT_PASSWORD_POLICY, parseDenyList, passwordProblem } from './password-policy.js';

describe('password policy', () => {
  const policy = {
    ...DEFAULT_PASSWORD_POLICY,
    denyList: parseDenyList('# common\nPassword1234\n\n  letmein12345  \n'),
  };

  it('accepts a long passphrase, and counts code points, not UTF-16 units', () => {
    expect(passwordProblem('correct horse battery staple', policy, 'alice')).toBeUndefined();
    expect(passwordProblem('🐴🐴🐴🐴🐴🐴🐴🐴🐴🐴🐴x', policy)).toBeUndefined();
    expect(passwordProblem('🐴'.repeat(6), policy)).toBe('use at least 12 characters');
  });

  it('refuses short, overlong, username, one repeated character, padded, and deny-listed passwords', () => {
    expect(passwordProblem('short', policy)).toBe('use at least 12 characters');
    expect(passwordProblem('x'.repeat(255) + 'yz', policy)).toBe('use at most 256 characters');
    expect(passwordProblem('Alice.Example', policy, 'alice.example')).toBe('do not use your username as the password');
    expect(passwordProblem('aaaaaaaaaaaaaaaa', policy)).toBe('do not repeat one character');
    expect(passwordProblem(' leading space here', policy)).toMatch(/space/);
    expect(passwordProblem('PASSWORD1234', policy)).toMatch(/breaches/);
    expect(passwordProblem('letmein12345', policy)).toMatch(/breaches/);
  });

  it('without a deny list only the structural rules apply', () => {
    expect(passwordProblem('Password1234', DEFAULT_PASSWORD_POLICY)).toBeUndefined();
  });
});
