import { SignJWT, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { ManualClock } from './clock.js';
import { readIdTokenHint } from './id-token-hint.js';
import { KeyManager } from './keys.js';
import { TokenMinter } from './tokens.js';

const ISSUER = 'https://as.example.com';
let clock: ManualClock;
let keys: KeyManager;
let minter: TokenMinter;

beforeAll(async () => {
  clock = new ManualClock(Date.UTC(2026, 0, 1));
  keys = new KeyManager(new MemoryStorage({ clock, cleanupIntervalMs: 0 }), clock, ['ES256', 'RS256']);
  await keys.init(0);
  minter = new TokenMinter(ISSUER, keys, clock, { accessTokenTtl: 900, idTokenTtl: 300 });
});

const deps = () => ({ keys, config: { issuer: ISSUER } });
const idToken = (alg?: 'ES256' | 'RS256') =>
  minter.idToken({ sub: 'user-1', clientId: 'client-1', authTime: clock.now(), accessToken: 'at', alg });

describe('readIdTokenHint (RP-Initiated Logout §2)', () => {
  it('names the user and the client of an ID token this server issued, with either key', async () => {
    expect(await readIdTokenHint(await idToken(), deps())).toEqual({ sub: 'user-1', clientId: 'client-1' });
    expect(await readIdTokenHint(await idToken('RS256'), deps())).toEqual({ sub: 'user-1', clientId: 'client-1' });
  });

  it('accepts an ID token long past its exp', async () => {
    const token = await idToken();
    clock.advance(30 * 24 * 3600_000);
    expect(await readIdTokenHint(token, deps())).toEqual({ sub: 'user-1', clientId: 'client-1' });
  });

  it('refuses an access token, another issuer, a foreign signature, a tampered payload and garbage', async () => {
    const { token: access } = await minter.accessToken({
      sub: 'user-1',
      clientId: 'client-1',
      scope: [],
      audience: ['https://api.example.com/'],
    });
    expect(await readIdTokenHint(access, deps())).toBeUndefined();
    expect(await readIdTokenHint(await idToken(), { keys, config: { issuer: 'https://other.example.com' } })).toBe(
      undefined,
    );
    const { privateKey } = await generateKeyPair('ES256');
    const foreign = await new SignJWT({ sub: 'user-1', aud: 'client-1' })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: keys.signer('ES256').kid })
      .setIssuer(ISSUER)
      .setIssuedAt()
      .sign(privateKey);
    expect(await readIdTokenHint(foreign, deps())).toBeUndefined();
    const [h, , s] = (await idToken()).split('.');
    const forged = Buffer.from(JSON.stringify({ iss: ISSUER, sub: 'admin', aud: 'client-1' })).toString('base64url');
    expect(await readIdTokenHint(`${h}.${forged}.${s}`, deps())).toBeUndefined();
    for (const junk of ['', 'x', 'a.b.c', '..', 'eyJhbGciOiJub25lIn0.e30.']) {
      expect(await readIdTokenHint(junk, deps())).toBeUndefined();
    }
  });
});
