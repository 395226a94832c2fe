import {
  calculateJwkThumbprint,
  compactVerify,
  createLocalJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JWK,
} from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { ManualClock } from './clock.js';
import { KeyManager, generateSigningKey } from './keys.js';
import { TokenMinter } from './tokens.js';

const T0 = Date.UTC(2025, 5, 1, 0, 0, 0);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const managers: KeyManager[] = [];
function manager(store: MemoryStorage, clock: ManualClock, algs: ('ES256' | 'RS256' | 'EdDSA')[] = ['ES256', 'RS256']) {
  const km = new KeyManager(store, clock, algs);
  managers.push(km);
  return km;
}
afterEach(() => {
  for (const km of managers.splice(0)) km.close();
});

describe('generateSigningKey', () => {
  it.each([
    ['ES256', 'EC', 'P-256'],
    ['RS256', 'RSA', undefined],
    ['EdDSA', 'OKP', 'Ed25519'],
  ] as const)('%s: kid is the RFC 7638 thumbprint; public JWK has no private members', async (alg, kty, crv) => {
    const clock = new ManualClock(T0);
    const record = await generateSigningKey(alg, clock);
    expect(record.alg).toBe(alg);
    expect(record.status).toBe('active');
    expect(record.createdAt).toBe(T0);
    expect(record.expiresAt).toBeUndefined();
    expect(record.publicJwk).toMatchObject({ kty, kid: record.kid, alg, use: 'sig' });
    if (crv) expect(record.publicJwk.crv).toBe(crv);
    else expect(Buffer.from(record.publicJwk.n as string, 'base64url')).toHaveLength(256); // RSA 2048-bit
    expect(record.privateJwk).toMatchObject({ kty, kid: record.kid, alg });
    expect(record.privateJwk.d).toEqual(expect.any(String));
    for (const m of PRIVATE_MEMBERS) expect(record.publicJwk).not.toHaveProperty(m);
    const { kid: _k, alg: _a, use: _u, ...bare } = record.publicJwk;
    expect(record.kid).toBe(await calculateJwkThumbprint(bare as JWK));
  });
});

describe('KeyManager', () => {
  let store: MemoryStorage;
  let clock: ManualClock;
  let first: KeyManager;

  beforeAll(async () => {
    clock = new ManualClock(T0);
    store = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
    first = new KeyManager(store, clock, ['ES256', 'RS256']);
    await first.init(0);
  });

  it('init creates one active ES256 and one active RS256 key in the store', async () => {
    const keys = await store.listSigningKeys();
    expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    expect(keys.every((k) => k.status === 'active')).toBe(true);
    expect(first.algorithms().sort()).toEqual(['ES256', 'RS256']);
  });

  it('signer() defaults to the first configured alg and can pick another', () => {
    expect(first.signer().alg).toBe('ES256');
    expect(first.signer('RS256').alg).toBe('RS256');
    expect(first.signer('ES256').kid).not.toBe(first.signer('RS256').kid);
  });

  it('signer() for an alg without a key falls back to the first configured alg', () => {
    expect(first.signer('EdDSA').alg).toBe('ES256');
  });

  it('publishes both public keys, without private members, and the JSON form matches', async () => {
    const jwks = first.publicJwks();
    const stored = await store.listSigningKeys();
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual(stored.map((k) => k.kid).sort());
    for (const key of jwks.keys) for (const m of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(m);
    expect(JSON.parse(first.publicJwksJson())).toEqual(jwks);
  });

  it('a second KeyManager on the same store reuses the keys (same kids, nothing new stored)', async () => {
    const second = manager(store, clock);
    await second.init(0);
    expect(second.signer('ES256').kid).toBe(first.signer('ES256').kid);
    expect(second.signer('RS256').kid).toBe(first.signer('RS256').kid);
    expect(await store.listSigningKeys()).toHaveLength(2);
    expect(second.publicJwksJson()).toBe(first.publicJwksJson());
  });

  it("a JWT signed by one manager verifies with the other manager's verificationKeys()", async () => {
    const second = manager(store, clock);
    await second.init(0);
    const minter = new TokenMinter('https://as.example', first, clock, { accessTokenTtl: 60, idTokenTtl: 60 });
    const { token } = await minter.accessToken({ sub: 'u', clientId: 'c', scope: [], audience: ['c'] }, 'RS256');
    const { protectedHeader } = await jwtVerify(token, second.verificationKeys(), { currentDate: new Date(T0) });
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: first.signer('RS256').kid });
  });

  it('signer() throws before init', () => {
    const km = manager(new MemoryStorage({ clock, cleanupIntervalMs: 0 }), clock);
    expect(() => km.signer()).toThrow('no signing key loaded');
    expect(km.publicJwks()).toEqual({ keys: [] });
    expect(km.publicJwksJson()).toBe('{"keys":[]}');
  });
});

describe('KeyManager rotation', () => {
  let sharedRsa: Awaited<ReturnType<typeof generateSigningKey>>;
  beforeAll(async () => {
    sharedRsa = await generateSigningKey('RS256', new ManualClock(T0));
  });

  it('a rotated key is published at once but signs only after one refresh interval (every replica publishes it)', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
    await store.initSigningKeys([await generateSigningKey('ES256', clock), sharedRsa]);
    const km = manager(store, clock);
    await km.init(60_000);
    try {
      // A first key set signs at once.
      const oldKid = km.signer('ES256').kid;
      clock.advance(120_000);
      const fresh = await generateSigningKey('ES256', clock);
      await store.rotateSigningKey(fresh, clock.now() + 3600_000);
      await km.refresh();
      expect(km.publicJwks().keys.map((k) => k.kid)).toContain(fresh.kid);
      expect(km.signer('ES256').kid).toBe(oldKid);
      clock.advance(59_999);
      expect(km.signer('ES256').kid).toBe(oldKid);
      clock.advance(1);
      expect(km.signer('ES256').kid).toBe(fresh.kid);
    } finally {
      km.close();
    }
  });

  it('rotateSigningKey + refresh(): new kid signs, old key stays in the JWKS until its retirement', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
    // Seed the store with the shared RSA key (RSA generation is slow); init then only loads.
    await store.initSigningKeys([await generateSigningKey('ES256', clock), sharedRsa]);
    const km = manager(store, clock);
    await km.init(0);
    expect(await store.listSigningKeys()).toHaveLength(2);
    const minter = new TokenMinter('https://as.example', km, clock, { accessTokenTtl: 300, idTokenTtl: 300 });

    const oldKid = km.signer('ES256').kid;
    const rsaKid = km.signer('RS256').kid;
    const before = await minter.accessToken({ sub: 'u', clientId: 'c', scope: [], audience: ['c'] });
    expect(decodeProtectedHeader(before.token).kid).toBe(oldKid);

    clock.advance(1000);
    const fresh = await generateSigningKey('ES256', clock);
    await store.rotateSigningKey(fresh, clock.now() + 3600_000);

    // Until refresh() the manager still signs with its cached key.
    expect(km.signer('ES256').kid).toBe(oldKid);
    await km.refresh();
    expect(km.signer('ES256').kid).toBe(fresh.kid);
    expect(km.signer('RS256').kid).toBe(rsaKid);

    const after = await minter.accessToken({ sub: 'u', clientId: 'c', scope: [], audience: ['c'] });
    expect(decodeProtectedHeader(after.token).kid).toBe(fresh.kid);

    const kids = km.publicJwks().keys.map((k) => k.kid);
    expect(kids).toHaveLength(3);
    expect(kids).toEqual(expect.arrayContaining([oldKid, fresh.kid, rsaKid]));

    // Both the pre-rotation token and the post-rotation token verify against the published set.
    const jwks = createLocalJWKSet(km.publicJwks());
    const opts = { issuer: 'https://as.example', currentDate: new Date(clock.now()) };
    await expect(jwtVerify(before.token, jwks, opts)).resolves.toBeDefined();
    await expect(jwtVerify(after.token, jwks, opts)).resolves.toBeDefined();
    await expect(jwtVerify(before.token, km.verificationKeys(), opts)).resolves.toBeDefined();

    // Once the retirement time passes, the old key leaves the JWKS and its tokens stop verifying.
    clock.set(T0 + 1000 + 3600_000);
    await km.refresh();
    expect(
      km
        .publicJwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([fresh.kid, rsaKid].sort());
    await expect(
      jwtVerify(before.token, km.verificationKeys(), { issuer: 'https://as.example', currentDate: new Date(T0) }),
    ).rejects.toThrow();
  });

  it('init adds a key for a newly configured alg without retiring existing keys', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
    const es = manager(store, clock, ['ES256']);
    await es.init(0);
    const esKid = es.signer().kid;
    expect(await store.listSigningKeys()).toHaveLength(1);

    clock.advance(1000);
    const both = manager(store, clock, ['ES256', 'EdDSA']);
    await both.init(0);
    const keys = await store.listSigningKeys();
    expect(keys).toHaveLength(2);
    expect(keys.every((k) => k.status === 'active')).toBe(true);
    expect(both.signer('ES256').kid).toBe(esKid);
    expect(both.signer('EdDSA').alg).toBe('EdDSA');
  });

  it('a token signed with a key that is not in the JWKS does not verify', async () => {
    const clock = new ManualClock(T0);
    const km = manager(new MemoryStorage({ clock, cleanupIntervalMs: 0 }), clock, ['ES256']);
    await km.init(0);
    const other = manager(new MemoryStorage({ clock, cleanupIntervalMs: 0 }), clock, ['ES256']);
    await other.init(0);
    const minter = new TokenMinter('https://as.example', other, clock, { accessTokenTtl: 60, idTokenTtl: 60 });
    const { token } = await minter.accessToken({ sub: 'u', clientId: 'c', scope: [], audience: ['c'] });
    await expect(jwtVerify(token, km.verificationKeys(), { currentDate: new Date(T0) })).rejects.toThrow();
    // and verifying the raw JWS against the right key works, proving the token itself is fine
    const jwk = other.publicJwks().keys[0]!;
    await expect(compactVerify(token, createLocalJWKSet({ keys: [jwk] }))).resolves.toBeDefined();
  });
});
