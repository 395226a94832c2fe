import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signJwsInput, verifyJwsSignature, type JwsSignAlgorithm } from './jws.js';

const pairs = {
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: generateKeyPairSync('ed25519'),
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
} satisfies Record<JwsSignAlgorithm, unknown>;

describe('signJwsInput / verifyJwsSignature', () => {
  for (const alg of Object.keys(pairs) as JwsSignAlgorithm[]) {
    it(`${alg}: a signature verifies; a changed input or signature does not`, async () => {
      const { privateKey, publicKey } = pairs[alg];
      const input = 'eyJhbGciOiJ4In0.eyJzdWIiOiJhIn0';
      const signature = Buffer.from(await signJwsInput(alg, privateKey, input), 'base64url');
      expect(await verifyJwsSignature(alg, publicKey, input, signature)).toBe(true);
      expect(await verifyJwsSignature(alg, publicKey, `${input}x`, signature)).toBe(false);
      const flipped = Buffer.from(signature);
      flipped[5] = flipped[5]! ^ 1;
      expect(await verifyJwsSignature(alg, publicKey, input, flipped)).toBe(false);
    });
  }

  it('refuses, without throwing, a short ES256 signature, a key of another type and an unknown algorithm', async () => {
    const input = 'a.b';
    const signature = Buffer.from(await signJwsInput('ES256', pairs.ES256.privateKey, input), 'base64url');
    expect(await verifyJwsSignature('ES256', pairs.ES256.publicKey, input, signature.subarray(1))).toBe(false);
    expect(await verifyJwsSignature('ES256', pairs.EdDSA.publicKey, input, signature)).toBe(false);
    expect(await verifyJwsSignature('EdDSA', pairs.ES256.publicKey, input, signature)).toBe(false);
    expect(await verifyJwsSignature('HS256', pairs.ES256.publicKey, input, signature)).toBe(false);
  });
});
