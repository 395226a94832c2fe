/**
 * Second factors against a store, with the races made explicit: both uses hold the same (stale) user, as two replicas
 * would, so only the store's single-use primitives can tell them apart. Passkey assertions come from a small software
 * authenticator (ES256), so the challenge's single use is shown with real signatures.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { ManualClock } from '../core/clock.js';
import { Sealer } from '../core/sealing.js';
import { totp } from '../core/totp.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import type { PasskeyCredential, UserRecord } from '../model/records.js';
import {
  checkPasskey,
  checkTotp,
  confirmTotpEnrolment,
  newRecoveryCodes,
  passkeySignInOptions,
  removeFactor,
  startTotpEnrolment,
  useRecoveryCode,
  type SecondFactorDeps,
} from './second-factor.js';

const ISSUER = 'https://auth.example.com';

async function setup(options: { sealed?: boolean } = {}) {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const storage = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  const deps: SecondFactorDeps = {
    clock,
    storage,
    config: parseConfig({ issuer: ISSUER }),
    pepper: 'test-pepper',
    sealer: options.sealed ? new Sealer(Buffer.alloc(32, 7).toString('base64')) : undefined,
  };
  const user: UserRecord = {
    id: 'u1',
    username: 'alice',
    passwordHash: 'scrypt$x',
    createdAt: clock.now(),
    updatedAt: clock.now(),
  };
  await storage.saveUser(user);
  const reload = async () => (await storage.getUser(user.id))!;
  return { clock, storage, deps, user, reload };
}

/** A COSE_Key (RFC 9053 §7.1.1, EC2 P-256, ES256) in CBOR, written out by hand. */
function coseKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const coord = (v: string | undefined) => Buffer.concat([Buffer.from([0x58, 0x20]), Buffer.from(v!, 'base64url')]);
  return Buffer.concat([
    Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]),
    coord(jwk.x),
    Buffer.from([0x22]),
    coord(jwk.y),
  ]);
}

/** A software authenticator holding one ES256 credential for the issuer's RP ID. */
function softwareAuthenticator() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let counter = 0;
  const credential: PasskeyCredential = {
    id: Buffer.from('credential-1').toString('base64url'),
    publicKey: coseKey(publicKey).toString('base64url'),
    counter: 0,
    deviceType: 'singleDevice',
    backedUp: false,
    name: 'Test key',
    createdAt: 0,
  };
  return {
    credential,
    /** What navigator.credentials.get would answer for `challenge`, as its JSON form. */
    assert(challenge: string, origin = ISSUER): Record<string, unknown> {
      counter++;
      const rpIdHash = createHash('sha256').update(new URL(ISSUER).hostname).digest();
      const count = Buffer.alloc(4);
      count.writeUInt32BE(counter);
      const authenticatorData = Buffer.concat([rpIdHash, Buffer.from([0x05]), count]); // UP | UV
      const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin }));
      const signed = Buffer.concat([authenticatorData, createHash('sha256').update(clientDataJSON).digest()]);
      return {
        id: credential.id,
        rawId: credential.id,
        type: 'public-key',
        clientExtensionResults: {},
        response: {
          clientDataJSON: clientDataJSON.toString('base64url'),
          authenticatorData: authenticatorData.toString('base64url'),
          signature: sign('sha256', signed, privateKey).toString('base64url'),
        },
      };
    },
  };
}

describe('TOTP', () => {
  it('a code passes once per time step; the steps either side are accepted, further ones not', async () => {
    const { clock, deps, user, reload } = await setup();
    const enrolment = await startTotpEnrolment(user, 'ctx', deps);
    expect(await startTotpEnrolment(user, 'ctx', deps)).toEqual(enrolment);
    expect(await confirmTotpEnrolment(user, 'ctx', '000000', deps)).toBeUndefined();
    expect(await confirmTotpEnrolment(user, 'ctx', totp(enrolment.secret, clock.now()), deps)).toBeDefined();
    const enrolled = await reload();
    expect(enrolled.totp?.secret).toBe(enrolment.secret);
    // The step the enrolment spent is spent for sign-in too.
    expect(await checkTotp(enrolled, totp(enrolment.secret, clock.now()), deps)).toBe(false);
    clock.advance(30_000);
    const code = totp(enrolment.secret, clock.now());
    const racing = await Promise.all(Array.from({ length: 10 }, () => checkTotp(enrolled, code, deps)));
    expect(racing.filter(Boolean)).toHaveLength(1);
    const next = totp(enrolment.secret, clock.now() + 30_000);
    expect(await checkTotp(enrolled, next, deps)).toBe(true); // one step ahead: drift
    expect(await checkTotp(enrolled, totp(enrolment.secret, clock.now() + 60_000), deps)).toBe(false);
  });

  it('with encryptionKey the secret is stored sealed and still checks', async () => {
    const { clock, deps, user, reload } = await setup({ sealed: true });
    const { secret } = await startTotpEnrolment(user, 'ctx', deps);
    await confirmTotpEnrolment(user, 'ctx', totp(secret, clock.now()), deps);
    const stored = await reload();
    expect(stored.totp?.secret).toMatch(/^sealed:v1:/);
    expect(JSON.stringify(stored)).not.toContain(secret);
    clock.advance(30_000);
    expect(await checkTotp(stored, totp(secret, clock.now()), deps)).toBe(true);
  });
});

describe('recovery codes', () => {
  it('of ten racing uses of one code with the same stale user, exactly one passes; the code then leaves the set', async () => {
    const { deps, user, reload } = await setup();
    const codes = await newRecoveryCodes(user.id, deps);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/);
    const stale = await reload();
    const results = await Promise.all(Array.from({ length: 10 }, () => useRecoveryCode(stale, codes[0]!, deps)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await reload()).recoveryCodes?.hashes).toHaveLength(9);
    // Still refused when the record is stale (the replay guard remembers it).
    expect(await useRecoveryCode(stale, codes[0]!, deps)).toBe(false);
    expect(await useRecoveryCode(stale, ` ${codes[1]!.toLowerCase().replace(/-/g, ' ')} `, deps)).toBe(true);
    expect(await useRecoveryCode(stale, 'AAAA-AAAA-AAAA-AAAA', deps)).toBe(false);
    expect(await useRecoveryCode(stale, '', deps)).toBe(false);
  });

  it('a new set voids the old one; removing the last factor removes the codes', async () => {
    const { deps, user, reload, storage, clock } = await setup();
    const old = await newRecoveryCodes(user.id, deps);
    const fresh = await newRecoveryCodes(user.id, deps);
    const current = await reload();
    expect(await useRecoveryCode(current, old[2]!, deps)).toBe(false);
    expect(await useRecoveryCode(current, fresh[2]!, deps)).toBe(true);
    await storage.saveUser({ ...(await reload()), totp: { secret: 'JBSWY3DPEHPK3PXP', createdAt: clock.now() } });
    const after = await removeFactor(user.id, { kind: 'totp' }, deps);
    expect(after?.totp).toBeUndefined();
    expect(after?.recoveryCodes).toBeUndefined();
  });
});

describe('passkeys', () => {
  it('an assertion passes once: the same answer again is refused, its challenge having been taken', async () => {
    const { deps, user, storage, reload } = await setup();
    const authenticator = softwareAuthenticator();
    await storage.saveUser({ ...user, passkeys: [authenticator.credential] });
    const withKey = await reload();
    const options = await passkeySignInOptions(withKey, 'browser-1', deps);
    expect(options.rpId).toBe('auth.example.com');
    expect(options.allowCredentials?.map((c) => c.id)).toEqual([authenticator.credential.id]);
    const answer = authenticator.assert(options.challenge);
    const results = await Promise.all([
      checkPasskey(withKey, answer, 'browser-1', deps),
      checkPasskey(withKey, answer, 'browser-1', deps),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(results.find(Boolean)).toMatchObject({ amr: ['hwk', 'user'], newCounter: 1 });
    expect((await reload()).passkeys?.[0]?.counter).toBe(1);
    expect(await checkPasskey(withKey, answer, 'browser-1', deps)).toBeUndefined();
  });

  it('refuses an answer for another browser, another origin, or a challenge it was never given', async () => {
    const { deps, user, storage, reload } = await setup();
    const authenticator = softwareAuthenticator();
    await storage.saveUser({ ...user, passkeys: [authenticator.credential] });
    const withKey = await reload();
    const forOther = await passkeySignInOptions(withKey, 'browser-1', deps);
    expect(await checkPasskey(withKey, authenticator.assert(forOther.challenge), 'browser-2', deps)).toBeUndefined();
    const elsewhere = await passkeySignInOptions(withKey, 'browser-1', deps);
    const phished = authenticator.assert(elsewhere.challenge, 'https://auth.example.com.evil.test');
    expect(await checkPasskey(withKey, phished, 'browser-1', deps)).toBeUndefined();
    expect(await checkPasskey(withKey, authenticator.assert('bm90LWlzc3VlZA'), 'browser-1', deps)).toBeUndefined();
    const good = await passkeySignInOptions(withKey, 'browser-1', deps);
    expect(await checkPasskey(withKey, authenticator.assert(good.challenge), 'browser-1', deps)).toBeDefined();
  });
});
