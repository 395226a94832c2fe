import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { verifyOwnAccessToken } from './access-token.js';
import { ManualClock } from './clock.js';
import { KeyManager } from './keys.js';
import { TokenMinter, atHash } from './tokens.js';

const ISSUER = 'https://as.example.com';
const T0 = Date.UTC(2025, 5, 1, 12, 0, 0) + 789; // not on a whole second, to check flooring
const ACCESS_TTL = 900;
const ID_TTL = 300;

let clock: ManualClock;
let keys: KeyManager;
let minter: TokenMinter;

beforeAll(async () => {
  clock = new ManualClock(T0);
  const store = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  keys = new KeyManager(store, clock, ['ES256', 'RS256']);
  await keys.init(0);
  minter = new TokenMinter(ISSUER, keys, clock, { accessTokenTtl: ACCESS_TTL, idTokenTtl: ID_TTL });
});

const claims = {
  sub: 'user-42',
  clientId: 'client-7',
  scope: ['openid', 'mcp:tools'],
  audience: ['https://mcp.example.com/'],
};

/** The OIDC Core §3.1.3.6 computation, written independently of tokens.ts. */
function referenceAtHash(token: string, hash: 'sha256' | 'sha512'): string {
  const digest = createHash(hash).update(token, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

describe('TokenMinter.accessToken (RFC 9068)', () => {
  it('header: alg ES256 by default, typ at+jwt, kid of the active key', async () => {
    clock.set(T0);
    const { token } = await minter.accessToken(claims);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: keys.signer('ES256').kid, typ: 'at+jwt' });
  });

  it('claims: iss, sub, aud, client_id, scope, jti, iat, exp with exp - iat = ttl', async () => {
    clock.set(T0);
    const minted = await minter.accessToken(claims);
    const payload = decodeJwt(minted.token);
    const iat = Math.floor(T0 / 1000);
    expect(payload).toEqual({
      iss: ISSUER,
      sub: 'user-42',
      aud: 'https://mcp.example.com/',
      client_id: 'client-7',
      scope: 'openid mcp:tools',
      jti: minted.jti,
      iat,
      exp: iat + ACCESS_TTL,
    });
    expect(payload.exp! - payload.iat!).toBe(ACCESS_TTL);
    expect(minted.expiresIn).toBe(ACCESS_TTL);
    expect(minted.expiresAt).toBe((iat + ACCESS_TTL) * 1000);
    expect(minted.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('verifies with jose against publicJwks() (issuer, typ, audience, time)', async () => {
    clock.set(T0);
    const { token } = await minter.accessToken(claims);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(keys.publicJwks()), {
      issuer: ISSUER,
      audience: 'https://mcp.example.com/',
      typ: 'at+jwt',
      currentDate: new Date(T0),
      requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
    });
    expect(payload.sub).toBe('user-42');
    expect(protectedHeader.typ).toBe('at+jwt');
  });

  it('RS256 on request, with the RS256 kid', async () => {
    const { token } = await minter.accessToken(claims, 'RS256');
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', kid: keys.signer('RS256').kid, typ: 'at+jwt' });
    await expect(
      jwtVerify(token, createLocalJWKSet(keys.publicJwks()), { currentDate: new Date(clock.now()) }),
    ).resolves.toBeDefined();
  });

  it('several audiences → aud array; no scope → no scope claim; auth_time in seconds', async () => {
    const { token } = await minter.accessToken({
      sub: 'client-7',
      clientId: 'client-7',
      scope: [],
      audience: ['https://a.example/', 'https://b.example/'],
      authTime: T0 - 5_500,
    });
    const payload = decodeJwt(token);
    expect(payload.aud).toEqual(['https://a.example/', 'https://b.example/']);
    expect(payload).not.toHaveProperty('scope');
    expect(payload.auth_time).toBe(Math.floor((T0 - 5_500) / 1000));
  });

  it('every token gets a fresh jti', async () => {
    const a = await minter.accessToken(claims);
    const b = await minter.accessToken(claims);
    expect(a.jti).not.toBe(b.jti);
    expect(decodeJwt(a.token).jti).toBe(a.jti);
  });

  it('iat/exp follow the ManualClock', async () => {
    clock.set(T0);
    const first = decodeJwt((await minter.accessToken(claims)).token);
    clock.advance(3_600_000);
    const second = decodeJwt((await minter.accessToken(claims)).token);
    expect(second.iat! - first.iat!).toBe(3600);
    expect(second.exp! - first.exp!).toBe(3600);
    clock.set(Date.UTC(2030, 0, 1));
    expect(decodeJwt((await minter.accessToken(claims)).token).iat).toBe(Date.UTC(2030, 0, 1) / 1000);
    clock.set(T0);
  });

  it('the token is rejected by jose once the clock passes exp', async () => {
    clock.set(T0);
    const { token } = await minter.accessToken(claims);
    const jwks = createLocalJWKSet(keys.publicJwks());
    await expect(
      jwtVerify(token, jwks, { currentDate: new Date(T0 + (ACCESS_TTL - 1) * 1000) }),
    ).resolves.toBeDefined();
    await expect(jwtVerify(token, jwks, { currentDate: new Date(T0 + (ACCESS_TTL + 1) * 1000) })).rejects.toThrow(
      /exp/,
    );
  });
});

describe('atHash (OIDC Core §3.1.3.6)', () => {
  it('is the base64url left half of SHA-256 for ES256 and RS256', () => {
    const token = 'eyJhbGciOiJFUzI1NiJ9.payload.signature';
    expect(atHash(token, 'ES256')).toBe(referenceAtHash(token, 'sha256'));
    expect(atHash(token, 'RS256')).toBe(referenceAtHash(token, 'sha256'));
    expect(Buffer.from(atHash(token, 'ES256'), 'base64url')).toHaveLength(16);
  });

  it('matches a known value (left 128 bits of SHA-256("abc"))', () => {
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a3...
    expect(atHash('abc', 'ES256')).toBe(Buffer.from('ba7816bf8f01cfea414140de5dae2223', 'hex').toString('base64url'));
  });

  it('uses SHA-512 for EdDSA (Ed25519)', () => {
    expect(atHash('abc', 'EdDSA')).toBe(referenceAtHash('abc', 'sha512'));
    expect(Buffer.from(atHash('abc', 'EdDSA'), 'base64url')).toHaveLength(32);
  });
});

describe('TokenMinter.idToken (OIDC Core §2)', () => {
  it('carries iss, sub, aud=client_id, iat, exp = iat + idTokenTtl, auth_time, nonce and at_hash', async () => {
    clock.set(T0);
    const access = await minter.accessToken(claims);
    const idToken = await minter.idToken({
      sub: 'user-42',
      clientId: 'client-7',
      nonce: 'n-0S6_WzA2Mj',
      authTime: T0 - 60_000,
      accessToken: access.token,
      claims: { email: 'u@example.com', email_verified: true },
    });
    expect(decodeProtectedHeader(idToken)).toEqual({ alg: 'ES256', kid: keys.signer('ES256').kid, typ: 'JWT' });
    const { payload } = await jwtVerify(idToken, createLocalJWKSet(keys.publicJwks()), {
      issuer: ISSUER,
      audience: 'client-7',
      currentDate: new Date(T0),
    });
    const iat = Math.floor(T0 / 1000);
    expect(payload).toEqual({
      email: 'u@example.com',
      email_verified: true,
      iss: ISSUER,
      sub: 'user-42',
      aud: 'client-7',
      iat,
      exp: iat + ID_TTL,
      auth_time: Math.floor((T0 - 60_000) / 1000),
      nonce: 'n-0S6_WzA2Mj',
      at_hash: referenceAtHash(access.token, 'sha256'),
    });
  });

  it('at_hash follows the signing alg (RS256 → SHA-256)', async () => {
    const access = await minter.accessToken(claims, 'RS256');
    const idToken = await minter.idToken({
      sub: 's',
      clientId: 'c',
      authTime: T0,
      accessToken: access.token,
      alg: 'RS256',
    });
    expect(decodeProtectedHeader(idToken).alg).toBe('RS256');
    expect(decodeJwt(idToken).at_hash).toBe(referenceAtHash(access.token, 'sha256'));
  });

  it('omits nonce when none was sent', async () => {
    const idToken = await minter.idToken({ sub: 's', clientId: 'c', authTime: T0, accessToken: 'x' });
    expect(decodeJwt(idToken)).not.toHaveProperty('nonce');
  });

  it('extra claims cannot override the protocol claims', async () => {
    clock.set(T0);
    const idToken = await minter.idToken({
      sub: 'real-sub',
      clientId: 'real-client',
      authTime: T0,
      accessToken: 'x',
      claims: { iss: 'https://evil.example', sub: 'evil', aud: 'evil', exp: 9_999_999_999, at_hash: 'forged' },
    });
    expect(decodeJwt(idToken)).toMatchObject({
      iss: ISSUER,
      sub: 'real-sub',
      aud: 'real-client',
      exp: Math.floor(T0 / 1000) + ID_TTL,
      at_hash: referenceAtHash('x', 'sha256'),
    });
  });
});

describe('verifyOwnAccessToken', () => {
  const deps = () => ({ keys, clock, config: parseConfig({ issuer: ISSUER }) });

  it('returns the claims of a token this issuer minted', async () => {
    clock.set(T0);
    const minted = await minter.accessToken(claims);
    const payload = await verifyOwnAccessToken(minted.token, deps());
    expect(payload).toMatchObject({
      sub: 'user-42',
      client_id: 'client-7',
      jti: minted.jti,
      scope: 'openid mcp:tools',
    });
  });

  it('undefined once expired by the injected clock', async () => {
    clock.set(T0);
    const minted = await minter.accessToken(claims);
    clock.advance((ACCESS_TTL + 1) * 1000);
    expect(await verifyOwnAccessToken(minted.token, deps())).toBeUndefined();
    clock.set(T0);
  });

  it('undefined for another issuer, an ID token (wrong typ), a tampered token or garbage', async () => {
    clock.set(T0);
    const minted = await minter.accessToken(claims);
    const foreign = new TokenMinter('https://other.example', keys, clock, { accessTokenTtl: 60, idTokenTtl: 60 });
    expect(await verifyOwnAccessToken((await foreign.accessToken(claims)).token, deps())).toBeUndefined();

    const idToken = await minter.idToken({
      sub: 's',
      clientId: 'c',
      authTime: T0,
      accessToken: minted.token,
      claims: { client_id: 'c', jti: 'j' },
    });
    expect(await verifyOwnAccessToken(idToken, deps())).toBeUndefined();

    const [h, p, s] = minted.token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(minted.token), sub: 'admin' })).toString('base64url');
    expect(await verifyOwnAccessToken(`${h}.${forged}.${s}`, deps())).toBeUndefined();
    expect(await verifyOwnAccessToken(`${h}.${p}.`, deps())).toBeUndefined();
    expect(await verifyOwnAccessToken('not-a-jwt', deps())).toBeUndefined();
    expect(await verifyOwnAccessToken('', deps())).toBeUndefined();
  });
});
