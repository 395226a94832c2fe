/**
 * DPoP proof validation (RFC 9449 §4.3) with real jose-signed proofs over the real memory store's replay guard: what
 * passes, and every refusal of the RFC's checklist, each one a proof that differs from a good one in one respect.
 */
import { createHash, generateKeyPairSync, randomUUID, sign as nodeSign } from 'node:crypto';
import fc from 'fast-check';
import { exportJWK, generateKeyPair, SignJWT, calculateJwkThumbprint, type CryptoKey, type JWK } from 'jose';
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidDpopProof, UseDpopNonce } from '../model/errors.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { ManualClock } from './clock.js';
import { accessTokenHash, DpopNonces, normalizeHtu, verifyDpopProof, type DpopPolicy } from './dpop.js';

const HTU = 'https://as.example.com/token';
const ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256'];

interface Signer {
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function signer(alg = 'ES256'): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { alg, privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

let clock: ManualClock;
let storage: MemoryStorage;
let es256: Signer;
const policy: DpopPolicy = { algorithms: ALGS, iatWindowSeconds: 60, iatFutureSkewSeconds: 5 };

beforeEach(async () => {
  clock = new ManualClock(Date.UTC(2026, 0, 1));
  storage = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  es256 ??= await signer();
});

function sign(s: Signer, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({
    htm: 'POST',
    htu: HTU,
    jti: randomUUID(),
    iat: Math.floor(clock.now() / 1000),
    ...claims,
  })
    .setProtectedHeader({ alg: s.alg, typ: 'dpop+jwt', jwk: s.jwk, ...header })
    .sign(s.privateKey);
}

const check = (header: string | string[] | undefined, extra: Record<string, unknown> = {}, p = policy) =>
  verifyDpopProof({ header, method: 'POST', url: HTU, ...extra }, p, { clock, storage });

async function refused(header: string | string[], extra: Record<string, unknown> = {}, p = policy) {
  const err = await check(header, extra, p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidDpopProof);
  return err as InvalidDpopProof;
}

describe('verifyDpopProof', () => {
  it('accepts a good proof of every supported algorithm and returns the RFC 7638 thumbprint', async () => {
    for (const alg of ALGS) {
      const s = alg === 'ES256' ? es256 : await signer(alg);
      const proof = await check(await sign(s));
      expect(proof?.jkt).toBe(s.jkt);
      expect(proof?.jwk).toEqual(s.jwk);
    }
  });

  it('no header: undefined (the caller decides whether one was required)', async () => {
    expect(await check(undefined)).toBeUndefined();
    expect(await check([])).toBeUndefined();
  });

  it('two DPoP headers are refused', async () => {
    const err = await refused([await sign(es256), await sign(es256)]);
    expect(err.description).toMatch(/exactly one/);
    expect(err.status).toBe(400);
  });

  it('refuses a wrong typ, alg none, an HMAC, an algorithm not in the policy', async () => {
    expect((await refused(await sign(es256, {}, { typ: 'JWT' }))).description).toMatch(/typ/);
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: es256.jwk })).toString('base64url')}.${Buffer.from(JSON.stringify({ htm: 'POST', htu: HTU, jti: 'x', iat: clock.now() / 1000 })).toString('base64url')}.`;
    expect((await refused(none)).description).toMatch(/algorithm/);
    const hs = await new SignJWT({ htm: 'POST', htu: HTU, jti: 'x', iat: Math.floor(clock.now() / 1000) })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0' } as JWK })
      .sign(new TextEncoder().encode('secret-secret-secret-secret-secret'));
    expect((await refused(hs)).description).toMatch(/algorithm/);
    expect((await refused(await sign(es256), {}, { ...policy, algorithms: ['EdDSA'] })).description).toMatch(
      /algorithm/,
    );
  });

  it('refuses a private jwk, a missing jwk, a bad signature, a key that did not sign it', async () => {
    const priv = await exportJWK(es256.privateKey);
    expect((await refused(await sign(es256, {}, { jwk: priv }))).description).toMatch(/public key/);
    expect((await refused(await sign(es256, {}, { jwk: undefined }))).description).toMatch(/jwk/);
    const good = await sign(es256);
    const [h, p, sig] = good.split('.');
    const flipped = `${h}.${p}.${sig!.startsWith('A') ? 'B' : 'A'}${sig!.slice(1)}`;
    expect((await refused(flipped)).description).toMatch(/signature/);
    const other = await signer();
    expect((await refused(await sign(es256, {}, { jwk: other.jwk }))).description).toMatch(/signature/);
    expect((await refused('not.a.jws')).description).toMatch(/JWS|signature/);
  });

  it('refuses a key that does not fit the algorithm, a short RSA key, a critical extension', async () => {
    const ed = await signer('EdDSA');
    // An Ed25519 key under alg ES256: signed with the EC key, so only the key rule can refuse it.
    expect((await refused(await sign(es256, {}, { jwk: ed.jwk }))).description).toMatch(/fit its algorithm/);
    // jose will not sign with a 1024-bit key: node:crypto does.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'RS256', typ: 'dpop+jwt', jwk: rsa.publicKey.export({ format: 'jwk' }) })}.${b64({
      htm: 'POST',
      htu: HTU,
      jti: randomUUID(),
      iat: Math.floor(clock.now() / 1000),
    })}`;
    const shortProof = `${input}.${nodeSign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url')}`;
    expect((await refused(shortProof)).description).toMatch(/too short/);
    const critical = await new SignJWT({
      htm: 'POST',
      htu: HTU,
      jti: randomUUID(),
      iat: Math.floor(clock.now() / 1000),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: es256.jwk, crit: ['x-ext'], 'x-ext': 1 })
      .sign(es256.privateKey, { crit: { 'x-ext': true } });
    expect((await refused(critical)).description).toMatch(/extension/);
    expect((await refused(await sign(es256, {}, { jwk: { ...es256.jwk, alg: 'ES384' } }))).description).toMatch(
      /not for this algorithm/,
    );
  });

  it('refuses htm and htu mismatches, and compares htu without query and fragment, normalised', async () => {
    expect((await refused(await sign(es256, { htm: 'GET' }))).description).toMatch(/htm/);
    expect((await refused(await sign(es256, { htm: 'post' }))).description).toMatch(/htm/);
    expect((await refused(await sign(es256, { htu: 'https://as.example.com/par' }))).description).toMatch(/htu/);
    expect((await refused(await sign(es256, { htu: 'https://evil.example.com/token' }))).description).toMatch(/htu/);
    expect((await refused(await sign(es256, { htu: 'http://as.example.com/token' }))).description).toMatch(/htu/);
    expect((await refused(await sign(es256, { htu: 42 }))).description).toMatch(/htu/);
    for (const htu of [
      'https://as.example.com/token?x=1',
      'https://as.example.com/token#frag',
      'HTTPS://AS.EXAMPLE.COM/token',
      'https://as.example.com:443/token',
      'https://as.example.com/./token',
    ]) {
      expect((await check(await sign(es256, { htu })))?.jkt, htu).toBe(es256.jkt);
    }
    // The request URL's query is ignored too.
    expect((await check(await sign(es256), { url: `${HTU}?a=b` }))?.jkt).toBe(es256.jkt);
  });

  it('iat: up to iatWindowSeconds old and iatFutureSkewSeconds ahead, on the injected clock', async () => {
    const now = Math.floor(clock.now() / 1000);
    expect(await check(await sign(es256, { iat: now - 60 }))).toBeDefined();
    expect((await refused(await sign(es256, { iat: now - 61 }))).description).toMatch(/too old/);
    expect(await check(await sign(es256, { iat: now + 5 }))).toBeDefined();
    expect((await refused(await sign(es256, { iat: now + 6 }))).description).toMatch(/future/);
    expect((await refused(await sign(es256, { iat: 'now' }))).description).toMatch(/iat/);
    const later = await sign(es256);
    clock.advance(61_000);
    expect((await refused(later)).description).toMatch(/too old/);
  });

  it('a jti is used once (per key), and a missing or oversized jti is refused', async () => {
    const proof = await sign(es256);
    expect(await check(proof)).toBeDefined();
    expect((await refused(proof)).description).toMatch(/used before/);
    // The same jti under another key is another proof.
    const other = await signer();
    expect(await check(await sign(other, { jti: 'shared' }))).toBeDefined();
    expect(await check(await sign(es256, { jti: 'shared' }))).toBeDefined();
    expect((await refused(await sign(es256, { jti: undefined }))).description).toMatch(/jti/);
    expect((await refused(await sign(es256, { jti: 'x'.repeat(300) }))).description).toMatch(/jti/);
  });

  it('ath: required with an access token, and must be its SHA-256', async () => {
    const token = 'eyJ.access.token';
    const ath = createHash('sha256').update(token).digest('base64url');
    expect(accessTokenHash(token)).toBe(ath);
    expect(await check(await sign(es256, { ath }), { accessToken: token })).toBeDefined();
    expect((await refused(await sign(es256), { accessToken: token })).description).toMatch(/no ath/);
    const wrong = await refused(await sign(es256, { ath: accessTokenHash('another') }), {
      accessToken: token,
      status: 401,
    });
    expect(wrong.description).toMatch(/ath does not match/);
    expect(wrong.status).toBe(401);
  });

  it('nonces: none or a made-up one is use_dpop_nonce with the current nonce; this and the last window pass', async () => {
    const nonces = new DpopNonces('server-secret', 300, clock);
    const withNonces = { ...policy, nonce: nonces };
    const err = await check(await sign(es256), {}, withNonces).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UseDpopNonce);
    expect((err as UseDpopNonce).headers['dpop-nonce']).toBe(nonces.current());
    expect(
      await check(await sign(es256, { nonce: 'made-up' }), {}, withNonces).catch((e: unknown) => e),
    ).toBeInstanceOf(UseDpopNonce);
    const current = nonces.current();
    expect(await check(await sign(es256, { nonce: current }), {}, withNonces)).toBeDefined();
    clock.advance(300_000);
    expect(nonces.current()).not.toBe(current);
    expect(await check(await sign(es256, { nonce: current }), {}, withNonces)).toBeDefined();
    clock.advance(300_000);
    expect(await check(await sign(es256, { nonce: current }), {}, withNonces).catch((e: unknown) => e)).toBeInstanceOf(
      UseDpopNonce,
    );
    // Another server secret (another deployment) issues other nonces.
    expect(new DpopNonces('other-secret', 300, clock).current()).not.toBe(nonces.current());
  });

  it('property: any change to a good proof string is refused, never a crash', async () => {
    const good = await sign(es256);
    await fc.assert(
      fc.asyncProperty(fc.nat(good.length - 1), fc.string({ minLength: 1, maxLength: 3 }), async (at, insert) => {
        const mutated = good.slice(0, at) + insert + good.slice(at + 1);
        fc.pre(mutated !== good);
        const outcome = await check(mutated).then(
          () => 'accepted',
          (e: unknown) => (e instanceof InvalidDpopProof ? 'refused' : String(e)),
        );
        // A mutation of the signature's last character may decode to the same bytes; then it is the same proof,
        // already used once or not: never anything but accepted-once or refused.
        expect(['refused', 'accepted']).toContain(outcome);
      }),
      { numRuns: 200 },
    );
  });
});

describe('normalizeHtu', () => {
  it('drops query, fragment and default port, lowercases scheme and host; refuses non-http(s)', () => {
    expect(normalizeHtu('HTTPS://Example.COM:443/a/b?x#y')).toBe('https://example.com/a/b');
    expect(normalizeHtu('http://example.com:8080/a')).toBe('http://example.com:8080/a');
    expect(normalizeHtu('ftp://example.com/a')).toBeUndefined();
    expect(normalizeHtu('not a url')).toBeUndefined();
  });
});
