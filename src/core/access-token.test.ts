import { importJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import type { Config } from '../config/schema.js';
import { audienceOf, verifyOwnAccessToken } from './access-token.js';
import { ManualClock } from './clock.js';
import { KeyManager } from './keys.js';
import { TokenMinter } from './tokens.js';

const ISSUER = 'https://as.example';
const clock = new ManualClock(Date.UTC(2025, 5, 1));
const store = new MemoryStorage({ clock });
const keys = new KeyManager(store, clock, ['ES256']);
const deps = { keys, clock, config: { issuer: ISSUER } as Config };

beforeAll(() => keys.init(0));
afterAll(async () => {
  keys.close();
  await store.close();
});

/** Signs arbitrary claims with the server's own active key, as only a bug or a stolen key could. */
async function signWithServerKey(claims: Record<string, unknown>): Promise<string> {
  const [record] = await store.listSigningKeys();
  const key = await importJWK(record!.privateJwk, record!.alg);
  const now = Math.floor(clock.now() / 1000);
  return new SignJWT({
    iss: ISSUER,
    sub: 'u1',
    client_id: 'c1',
    jti: `j-${Math.random()}`,
    iat: now,
    exp: now + 60,
    ...claims,
  })
    .setProtectedHeader({ alg: record!.alg, kid: record!.kid, typ: 'at+jwt' })
    .sign(key);
}

describe('verifyOwnAccessToken', () => {
  it('accepts a token the minter issued, with its claims', async () => {
    const minter = new TokenMinter(ISSUER, keys, clock, { accessTokenTtl: 60, idTokenTtl: 60 });
    const { token } = await minter.accessToken({
      sub: 'u1',
      clientId: 'c1',
      scope: ['openid', 'mcp:read'],
      audience: ['c1'],
    });
    const claims = await verifyOwnAccessToken(token, deps);
    expect(claims).toMatchObject({ sub: 'u1', client_id: 'c1', scope: 'openid mcp:read' });
    expect(audienceOf(claims!)).toEqual(['c1']);
  });

  it.each([
    ['an array scope', { scope: ['openid', 'profile'] }],
    ['a numeric scope', { scope: 42 }],
    ['a numeric sub', { sub: 7 }],
    ['an object client_id', { client_id: { id: 'c1' } }],
    ['an aud array with a non-string', { aud: ['c1', 3] }],
    ['a string auth_time', { auth_time: 'yesterday' }],
  ])('a correctly signed token with %s is not well formed: undefined, never a throw', async (_label, claims) => {
    const token = await signWithServerKey(claims);
    await expect(verifyOwnAccessToken(token, deps)).resolves.toBeUndefined();
  });

  it('the same claims with the right types verify (the check is on types, not on the signer)', async () => {
    const token = await signWithServerKey({ scope: 'openid profile', aud: ['c1', 'https://rs.example'], auth_time: 5 });
    const claims = await verifyOwnAccessToken(token, deps);
    expect(claims?.scope).toBe('openid profile');
    expect(audienceOf(claims!)).toEqual(['c1', 'https://rs.example']);
  });
});
