import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

// Wrap the real safeEqual so we can prove the verifier comparison goes through the constant-time path.
vi.mock('./crypto.js', async (importOriginal) => {
  const mod = await importOriginal<typeof import('./crypto.js')>();
  return { ...mod, safeEqual: vi.fn(mod.safeEqual) };
});

import { safeEqual } from './crypto.js';
import { InvalidGrant, InvalidRequest, OAuthError } from '../model/errors.js';
import { checkCodeChallenge, s256, verifyCodeVerifier } from './pkce.js';
import { thrown } from '../../test/helpers/thrown.js';

// RFC 7636 Appendix B.
const RFC_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const RFC_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

const caught = (fn: () => unknown): OAuthError => thrown(fn, OAuthError);

describe('s256 (RFC 7636 §4.2)', () => {
  it('matches the RFC 7636 Appendix B test vector', () => {
    expect(s256(RFC_VERIFIER)).toBe(RFC_CHALLENGE);
  });

  it('is BASE64URL(SHA256(ASCII(verifier))) without padding, 43 chars', () => {
    const verifier = 'a'.repeat(43);
    const expected = createHash('sha256').update(verifier, 'ascii').digest('base64url');
    expect(s256(verifier)).toBe(expected);
    expect(s256(verifier)).toHaveLength(43);
    expect(s256(verifier)).not.toMatch(/[=+/]/);
  });
});

describe('checkCodeChallenge (RFC 7636 §4.3, OAuth 2.1 §4.1.1: S256 only)', () => {
  it('accepts the RFC 7636 Appendix B challenge with method S256 and returns it', () => {
    expect(checkCodeChallenge(RFC_CHALLENGE, 'S256')).toBe(RFC_CHALLENGE);
  });

  it('refuses a missing code_challenge with invalid_request', () => {
    const err = caught(() => checkCodeChallenge(undefined, 'S256'));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.code).toBe('invalid_request');
    expect(err.status).toBe(400);
    expect(err.description).toBe('code_challenge is required (PKCE S256)');
    expect(caught(() => checkCodeChallenge('', 'S256'))).toBeInstanceOf(InvalidRequest);
  });

  it('refuses method plain (RFC 9700 §2.1.1)', () => {
    const err = caught(() => checkCodeChallenge(RFC_VERIFIER, 'plain'));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.description).toBe('code_challenge_method must be S256');
  });

  it('refuses an omitted method (RFC 7636 §4.3 would default to plain)', () => {
    const err = caught(() => checkCodeChallenge(RFC_CHALLENGE, undefined));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.description).toBe('code_challenge_method must be S256');
  });

  it('treats the method name case-sensitively (s256 is not S256)', () => {
    expect(caught(() => checkCodeChallenge(RFC_CHALLENGE, 's256'))).toBeInstanceOf(InvalidRequest);
  });

  it.each([
    ['42 chars', RFC_CHALLENGE.slice(0, 42)],
    ['44 chars', `${RFC_CHALLENGE}A`],
    ['padded with =', `${RFC_CHALLENGE}=`],
    ['standard base64 + and /', `${RFC_CHALLENGE.slice(0, 41)}+/`],
    ['a space', `${RFC_CHALLENGE.slice(0, 42)} `],
    ['a period (legal in verifiers, not in base64url)', `${RFC_CHALLENGE.slice(0, 42)}.`],
  ])('refuses a challenge that is not 43 base64url chars: %s', (_label, challenge) => {
    const err = caught(() => checkCodeChallenge(challenge, 'S256'));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.description).toBe('code_challenge is not a valid S256 challenge');
  });
});

describe('verifyCodeVerifier (RFC 7636 §4.6)', () => {
  it('accepts the RFC 7636 Appendix B verifier for its challenge', () => {
    expect(() => verifyCodeVerifier(RFC_VERIFIER, RFC_CHALLENGE)).not.toThrow();
  });

  it('compares through the constant-time safeEqual with the transformed verifier', () => {
    vi.mocked(safeEqual).mockClear();
    verifyCodeVerifier(RFC_VERIFIER, RFC_CHALLENGE);
    expect(safeEqual).toHaveBeenCalledTimes(1);
    expect(safeEqual).toHaveBeenCalledWith(RFC_CHALLENGE, RFC_CHALLENGE);
  });

  it('refuses a mismatching verifier with invalid_grant', () => {
    const other = `${RFC_VERIFIER.slice(0, -1)}l`;
    const err = caught(() => verifyCodeVerifier(other, RFC_CHALLENGE));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err.code).toBe('invalid_grant');
    expect(err.status).toBe(400);
    expect(err.description).toBe('PKCE verification failed');
  });

  it('refuses when the verifier is sent as the challenge itself (plain downgrade)', () => {
    // An attacker who saw the challenge must not be able to redeem with it.
    expect(caught(() => verifyCodeVerifier(RFC_CHALLENGE, RFC_CHALLENGE))).toBeInstanceOf(InvalidGrant);
  });

  it('refuses a missing or empty verifier with invalid_request (a missing parameter, OAuth 2.1 §3.2.4)', () => {
    for (const missing of [undefined, '']) {
      const err = caught(() => verifyCodeVerifier(missing, RFC_CHALLENGE));
      expect(err).toBeInstanceOf(InvalidRequest);
      expect(err.description).toBe('code_verifier is required');
    }
  });

  it('accepts the boundary lengths 43 and 128 (RFC 7636 §4.1)', () => {
    const v43 = 'A'.repeat(43);
    const v128 = 'z'.repeat(128);
    expect(() => verifyCodeVerifier(v43, s256(v43))).not.toThrow();
    expect(() => verifyCodeVerifier(v128, s256(v128))).not.toThrow();
  });

  it('accepts every unreserved character [A-Z a-z 0-9 - . _ ~] (RFC 7636 §4.1)', () => {
    const v = 'ABCXYZabcxyz0123456789-._~'.padEnd(43, '~');
    expect(() => verifyCodeVerifier(v, s256(v))).not.toThrow();
  });

  it.each([
    ['42 chars (too short)', 'a'.repeat(42)],
    ['129 chars (too long)', 'a'.repeat(129)],
    ['a plus sign', `${'a'.repeat(42)}+`],
    ['a slash', `${'a'.repeat(42)}/`],
    ['a space', `${'a'.repeat(42)} `],
    ['a percent-encoded char', `${'a'.repeat(40)}%7E`],
    ['a non-ASCII letter', `${'a'.repeat(42)}é`],
  ])('refuses a malformed verifier with invalid_request even if its hash would match: %s', (_label, verifier) => {
    const err = caught(() => verifyCodeVerifier(verifier, s256(verifier)));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.description).toBe('code_verifier is malformed');
  });

  it('refuses when the stored challenge has a different length (no throw from the comparison)', () => {
    const err = caught(() => verifyCodeVerifier(RFC_VERIFIER, RFC_CHALLENGE.slice(0, 20)));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err.description).toBe('PKCE verification failed');
  });
});
