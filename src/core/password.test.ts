import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { hashCost, hashPassword, needsRehash, verifyPassword, verifyPasswordDummy } from './password.js';

// A pass-through spy on the real scrypt, to see the cost each check spends (not wall-clock timing).
const scryptCalls = vi.hoisted(() => [] as { N: number; keylen: number }[]);
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  const scrypt = (...args: Parameters<typeof real.scrypt>) => {
    const options = args[3] as { N: number };
    scryptCalls.push({ N: options.N, keylen: args[2] });
    return (real.scrypt as (...a: unknown[]) => void)(...args);
  };
  return { ...real, default: { ...real, scrypt }, scrypt };
});

// log2N 14 keeps each scrypt call in the tens of milliseconds.
const FAST = 14;

describe('hashPassword / verifyPassword (scrypt)', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('correct horse battery staple', FAST);
  });

  it('produces scrypt$<log2N>$8$1$<salt>$<hash> with a 16-byte salt and 32-byte key', () => {
    const parts = hash.split('$');
    expect(parts).toHaveLength(6);
    expect(parts.slice(0, 4)).toEqual(['scrypt', '14', '8', '1']);
    expect(Buffer.from(parts[4]!, 'base64url')).toHaveLength(16);
    expect(Buffer.from(parts[5]!, 'base64url')).toHaveLength(32);
  });

  it('verifies the right password and refuses a wrong one', async () => {
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('Correct horse battery staple', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('salts: the same password hashes differently each time, and both verify', async () => {
    const again = await hashPassword('correct horse battery staple', FAST);
    expect(again).not.toBe(hash);
    expect(again.split('$')[4]).not.toBe(hash.split('$')[4]);
    expect(await verifyPassword('correct horse battery staple', again)).toBe(true);
  });

  it('normalises to NFC, so composed and decomposed forms of the same text match', async () => {
    const hash = await hashPassword('caf\u00e9', FAST);
    expect(await verifyPassword('cafe\u0301', hash)).toBe(true);
  });

  it('honours the parameters recorded in the hash (a hash made at another cost still verifies)', async () => {
    const hash = await hashPassword('pw', 10);
    expect(hash.startsWith('scrypt$10$8$1$')).toBe(true);
    expect(await verifyPassword('pw', hash)).toBe(true);
  });

  describe('malformed hashes are false, never an exception', () => {
    const salt = Buffer.alloc(16, 1).toString('base64url');
    const key = Buffer.alloc(32, 2).toString('base64url');
    it.each([
      ['empty', ''],
      ['not scrypt', `bcrypt$14$8$1$${salt}$${key}`],
      ['too few parts', `scrypt$14$8$1$${salt}`],
      ['too many parts', `scrypt$14$8$1$${salt}$${key}$x`],
      ['non-numeric log2N', `scrypt$abc$8$1$${salt}$${key}`],
      ['fractional log2N', `scrypt$14.5$8$1$${salt}$${key}`],
      ['log2N too small', `scrypt$9$8$1$${salt}$${key}`],
      ['log2N too large', `scrypt$23$8$1$${salt}$${key}`],
      ['r = 0', `scrypt$14$0$1$${salt}$${key}`],
      ['r too large', `scrypt$14$33$1$${salt}$${key}`],
      ['p = 0', `scrypt$14$8$0$${salt}$${key}`],
      ['p too large', `scrypt$14$8$17$${salt}$${key}`],
      ['key shorter than 16 bytes', `scrypt$14$8$1$${salt}$${Buffer.alloc(8).toString('base64url')}`],
      ['empty key', `scrypt$14$8$1$${salt}$`],
      ['colon-separated (wrong format)', `scrypt:14:8:1:${salt}:${key}`],
    ])('%s', async (_label, encoded) => {
      await expect(verifyPassword('pw', encoded)).resolves.toBe(false);
    });

    it('a well-formed hash of another password is false', async () => {
      await expect(verifyPassword('pw', `scrypt$14$8$1$${salt}$${key}`)).resolves.toBe(false);
    });
  });
});

describe('verifyPasswordDummy (unknown usernames)', () => {
  beforeEach(() => {
    scryptCalls.length = 0;
  });

  it.each([14, 16, 15, 14])(
    'spends exactly one scrypt at the given cost 2^%i, as a real check would',
    async (log2N) => {
      await verifyPasswordDummy('some guess', log2N);
      expect(scryptCalls).toEqual([{ N: 2 ** log2N, keylen: 32 }]);
    },
  );

  it('does the same scrypt work as verifying a real hash at that cost', async () => {
    const real = await hashPassword('pw', FAST);
    scryptCalls.length = 0;
    await verifyPassword('guess', real);
    const realWork = scryptCalls.splice(0);
    await verifyPasswordDummy('guess', FAST);
    expect(scryptCalls).toEqual(realWork);
  });
});

describe('hashCost / needsRehash', () => {
  it('reads the cost recorded in a hash', async () => {
    expect(hashCost(await hashPassword('pw', 10))).toBe(10);
    expect(hashCost('not a hash')).toBeUndefined();
  });

  it('a hash at the configured cost is current; another cost (either way) or other parameters are not', async () => {
    const at14 = await hashPassword('pw', 14);
    expect(needsRehash(at14, 14)).toBe(false);
    expect(needsRehash(at14, 15)).toBe(true);
    expect(needsRehash(await hashPassword('pw', 15), 14)).toBe(true);
    const salt = Buffer.alloc(16, 1).toString('base64url');
    expect(needsRehash(`scrypt$14$16$1$${salt}$${Buffer.alloc(32).toString('base64url')}`, 14)).toBe(true);
    expect(needsRehash(`scrypt$14$8$2$${salt}$${Buffer.alloc(32).toString('base64url')}`, 14)).toBe(true);
    expect(needsRehash(`scrypt$14$8$1$${salt}$${Buffer.alloc(64).toString('base64url')}`, 14)).toBe(true);
  });
});
