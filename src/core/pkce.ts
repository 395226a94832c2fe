/** PKCE, RFC 7636. Only S256 is accepted (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1). */
import { InvalidGrant, InvalidRequest } from '../model/errors.js';
import { safeEqual, sha256 } from './crypto.js';

// RFC 7636 §4.1: 43..128 chars of [A-Z a-z 0-9 - . _ ~].
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
// A S256 challenge is base64url(SHA-256) = 43 chars, no padding.
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** Validates the authorization request's PKCE parameters. Throws InvalidRequest (redirectable). */
export function checkCodeChallenge(challenge: string | undefined, method: string | undefined): string {
  if (!challenge) throw new InvalidRequest('code_challenge is required (PKCE S256)');
  if (method !== 'S256') {
    throw new InvalidRequest('code_challenge_method must be S256');
  }
  if (!S256_CHALLENGE.test(challenge)) throw new InvalidRequest('code_challenge is not a valid S256 challenge');
  return challenge;
}

/** S256 transform: BASE64URL(SHA256(ASCII(verifier))). */
export function s256(verifier: string): string {
  return sha256(verifier).toString('base64url');
}

/**
 * Syntax of a token request's code_verifier (RFC 7636 §4.1). Missing or malformed is a bad request, invalid_request
 * (OAuth 2.1 §3.2.4), checked before the code is spent; only a well-formed verifier that fails to verify is
 * invalid_grant (RFC 7636 §4.6).
 */
export function checkCodeVerifierSyntax(verifier: string | undefined): asserts verifier is string {
  if (!verifier) throw new InvalidRequest('code_verifier is required');
  if (!VERIFIER.test(verifier)) throw new InvalidRequest('code_verifier is malformed');
}

/** Checks a token request's code_verifier against the stored challenge in constant time. */
export function verifyCodeVerifier(verifier: string | undefined, challenge: string): void {
  checkCodeVerifierSyntax(verifier);
  if (!safeEqual(s256(verifier), challenge)) throw new InvalidGrant('PKCE verification failed');
}
