import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { AccessTokenMac, isTaggedJti } from './access-token-mac.js';
import { identifyOwnAccessToken, verifyOwnAccessToken } from './access-token.js';
import { ManualClock } from './clock.js';
import { KeyManager } from './keys.js';
import { TokenMinter } from './tokens.js';

const ISSUER = 'https://as.example';
const SECRET = 'cookie-key-of-the-issuer-0123456789abcdef';
const clock = new ManualClock(Date.UTC(2025, 5, 1));
const store = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
const keys = new KeyManager(store, clock, ['ES256']);
const otherStore = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
const otherKeys = new KeyManager(otherStore, clock, ['ES256']);
const TTLS = { accessTokenTtl: 300, idTokenTtl: 60 };
/** The same key set, loaded by a second manager (as another replica would): it has seen none of the minted tokens. */
const verifierKeys = new KeyManager(store, clock, ['ES256']);
const minter = new TokenMinter(ISSUER, keys, clock, TTLS, SECRET);
const deps = { keys: verifierKeys, clock, config: { issuer: ISSUER }, minter };
const CLAIMS = { sub: 'u1', clientId: 'c1', scope: ['mcp:read'], audience: ['https://rs.example'] };

beforeAll(async () => {
  await keys.init(0);
  await verifierKeys.init(0);
  await otherKeys.init(0);
});
afterAll(async () => {
  keys.close();
  verifierKeys.close();
  otherKeys.close();
  await store.close();
  await otherStore.close();
});

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString('utf8');

describe('AccessTokenMac', () => {
  it('tags and verifies the exact bytes; any change to the header or payload, or another key, fails', () => {
    fc.assert(
      fc.property(
        fc.record({
          sub: fc.string({ unit: 'binary' }),
          scope: fc.string(),
          aud: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 })),
          iat: fc.integer({ min: 0, max: 2 ** 40 }),
        }),
        fc.string({ minLength: 1 }),
        fc.nat(),
        (claims, secret, at) => {
          const mac = new AccessTokenMac(secret, ISSUER);
          const header = b64(JSON.stringify({ alg: 'ES256', kid: 'k', typ: 'at+jwt' }));
          const r = 'A'.repeat(21) + 'Q';
          // Claims may hold anything a user or client can put there, quotes and `"jti":"` included.
          const payload: Record<string, unknown> = { ...claims, sub: `${claims.sub}"jti":"${r}"`, jti: r };
          const jti = `${r}.${mac.tag(header, JSON.stringify(payload))}`;
          expect(isTaggedJti(jti)).toBe(true);
          payload.jti = jti;
          const json = JSON.stringify(payload);
          expect(mac.verify(header, json, jti)).toBe(true);
          expect(new AccessTokenMac(`${secret}x`, ISSUER).verify(header, json, jti)).toBe(false);
          expect(new AccessTokenMac(secret, 'https://other.example').verify(header, json, jti)).toBe(false);
          // One character changed anywhere in the payload text (other than inside the tag itself).
          const i = at % json.length;
          const changed = json.slice(0, i) + (json[i] === 'a' ? 'b' : 'a') + json.slice(i + 1);
          if (changed !== json) expect(mac.verify(header, changed, jti)).toBe(false);
          expect(mac.verify(b64(JSON.stringify({ alg: 'ES256', kid: 'k2', typ: 'at+jwt' })), json, jti)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a jti of another form, a tag differing only in its spare bits, and a duplicated jti member', () => {
    const mac = new AccessTokenMac(SECRET, ISSUER);
    const header = b64('{"alg":"ES256"}');
    const r = 'B'.repeat(22);
    const tag = mac.tag(header, `{"jti":"${r}"}`);
    const jti = `${r}.${tag}`;
    expect(mac.verify(header, `{"jti":"${jti}"}`, jti)).toBe(true);
    const last = tag.at(-1)!;
    const sibling = `${r}.${tag.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`;
    expect(Buffer.from(sibling.split('.')[1]!, 'base64url').length).toBe(16);
    expect(mac.verify(header, `{"jti":"${sibling}"}`, sibling)).toBe(false);
    expect(mac.verify(header, `{"jti":"${jti}","x":{"jti":"${jti}"}}`, jti)).toBe(false);
    expect(mac.verify(header, `{"jti":"${r}"}`, r)).toBe(false);
  });
});

describe('access tokens with tagged jtis', () => {
  it('the minter tags the jti; verification and identification both return the claims', async () => {
    const { token, jti } = await minter.accessToken(CLAIMS);
    expect(isTaggedJti(jti)).toBe(true);
    // The minting process knows its own token without verifying it.
    expect((await verifyOwnAccessToken(token, { ...deps, keys }))?.jti).toBe(jti);
    expect((await verifyOwnAccessToken(token, deps))?.jti).toBe(jti);
    expect((await identifyOwnAccessToken(token, deps))?.jti).toBe(jti);
  });

  it('a payload carrying another token’s valid jti (tag included) is refused by both', async () => {
    const a = await minter.accessToken(CLAIMS);
    const b = await minter.accessToken({ ...CLAIMS, sub: 'u2' });
    const [h, pb, sb] = b.token.split('.') as [string, string, string];
    const swapped = b64(unb64(pb).replace(b.jti, a.jti));
    expect(await identifyOwnAccessToken(`${h}.${swapped}.${sb}`, deps)).toBeUndefined();
    expect(await verifyOwnAccessToken(`${h}.${swapped}.${sb}`, deps)).toBeUndefined();
    // Claims edited under a copied tag: the MAC covers them.
    const [, pa, sa] = a.token.split('.') as [string, string, string];
    const edited = b64(unb64(pa).replace('"sub":"u1"', '"sub":"admin"'));
    expect(await identifyOwnAccessToken(`${h}.${edited}.${sa}`, deps)).toBeUndefined();
    expect(await verifyOwnAccessToken(`${h}.${edited}.${sa}`, deps)).toBeUndefined();
  });

  it('flipped signature bytes: introspection refuses; revocation still knows the genuine jti (documented)', async () => {
    const { token, jti } = await minter.accessToken(CLAIMS);
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[10] = sig[10]! ^ 0x01;
    const flipped = `${h}.${p}.${sig.toString('base64url')}`;
    expect(await verifyOwnAccessToken(flipped, deps)).toBeUndefined();
    // core/access-token-mac.ts: the tag cannot cover the signature; revoking this client's own genuine jti is safe.
    expect((await identifyOwnAccessToken(flipped, deps))?.jti).toBe(jti);
  });

  it('another tenant’s token (its own keys and secret) and another issuer’s are refused', async () => {
    const tenantMinter = new TokenMinter(`${ISSUER}/t/acme`, otherKeys, clock, TTLS, 'the tenant cookie key');
    const { token } = await tenantMinter.accessToken(CLAIMS);
    expect(await identifyOwnAccessToken(token, deps)).toBeUndefined();
    expect(await verifyOwnAccessToken(token, deps)).toBeUndefined();
    // Same keys, other secret and issuer (a tenant view sharing nothing but the key manager would still differ).
    const sameKeys = new TokenMinter(`${ISSUER}/t/acme`, keys, clock, TTLS, 'the tenant cookie key');
    const other = await sameKeys.accessToken(CLAIMS);
    expect(await identifyOwnAccessToken(other.token, deps)).toBeUndefined();
    expect(await verifyOwnAccessToken(other.token, deps)).toBeUndefined();
  });

  it('a token whose key left the key set is refused, even with a valid tag', async () => {
    const { token } = await minter.accessToken(CLAIMS);
    const jwks = { keys: [...otherKeys.publicJwks().keys] };
    const without = { ...deps, keys: { publicJwks: () => jwks } };
    expect(await identifyOwnAccessToken(token, without)).toBeUndefined();
    expect(await verifyOwnAccessToken(token, without)).toBeUndefined();
  });

  it('expired tokens are refused by both', async () => {
    const { token } = await minter.accessToken(CLAIMS);
    clock.advance(301_000);
    try {
      expect(await identifyOwnAccessToken(token, deps)).toBeUndefined();
      expect(await verifyOwnAccessToken(token, deps)).toBeUndefined();
      expect(await verifyOwnAccessToken(token, deps)).toBeUndefined();
    } finally {
      clock.advance(-301_000);
    }
  });

  it('a token minted before the scheme (plain jti) falls back to the signature check', async () => {
    const plain = new TokenMinter(ISSUER, keys, clock, TTLS);
    const { token, jti } = await plain.accessToken(CLAIMS);
    expect(isTaggedJti(jti)).toBe(false);
    expect((await identifyOwnAccessToken(token, deps))?.jti).toBe(jti);
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[3] = sig[3]! ^ 0x80;
    expect(await identifyOwnAccessToken(`${h}.${p}.${sig.toString('base64url')}`, deps)).toBeUndefined();
  });
});
