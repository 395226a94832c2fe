import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/load.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { systemClock } from './clock.js';
import { Sealer, encryptionKeyId, getOrCreateSealedSecret, isSealed, openStored } from './sealing.js';

const key = () => randomBytes(32).toString('base64');
const oneLineConfigError = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^encryptionKey: [^\n]+$/);
    return (err as Error).message;
  }
  throw new Error('did not throw');
};

describe('Sealer', () => {
  it('seals into an envelope naming the key, opens with the current or a previous key', () => {
    const old = key();
    const current = key();
    const before = new Sealer(old).seal('s3cret', 'secret:x');
    expect(before).toMatch(new RegExp(`^sealed:v1:${encryptionKeyId(old)}:v1\\.`));
    expect(before).not.toContain('s3cret');
    const rotated = new Sealer(current, [old]);
    expect(rotated.open(before, 'secret:x', 'x')).toBe('s3cret');
    expect(rotated.seal('s3cret', 'secret:x').startsWith(`sealed:v1:${encryptionKeyId(current)}:`)).toBe(true);
  });

  it('refuses an unknown key, another record (AAD) and tampering with one line naming encryptionKey', () => {
    const sealer = new Sealer(key());
    const sealed = sealer.seal('s3cret', 'secret:a');
    expect(oneLineConfigError(() => new Sealer(key()).open(sealed, 'secret:a', 'secret a'))).toContain(
      'neither encryptionKey',
    );
    oneLineConfigError(() => sealer.open(sealed, 'secret:b', 'secret b'));
    oneLineConfigError(() => sealer.open(sealed.slice(0, -4) + 'AAAA', 'secret:a', 'secret a'));
    expect(oneLineConfigError(() => openStored(sealed, undefined, 'secret:a', 'secret a'))).toContain(
      'no encryptionKey is set',
    );
  });

  it('passes a value written in clear through, flagged', () => {
    expect(openStored('plain-token', new Sealer(key()), 'secret:a', 'a')).toEqual({
      value: 'plain-token',
      inClear: true,
    });
    expect(isSealed('plain-token')).toBe(false);
  });

  it('getOrCreateSealedSecret: every caller gets the first value; the store holds only the envelope', async () => {
    const store = new MemoryStorage({ clock: systemClock, cleanupIntervalMs: 0 });
    const sealer = new Sealer(key());
    const results = await Promise.all(
      Array.from({ length: 5 }, () => getOrCreateSealedSecret(store, 'cookie-key', sealer)),
    );
    expect(new Set(results.map((r) => r.value)).size).toBe(1);
    const stored = await store.getOrCreateSecret('cookie-key', 'ignored');
    expect(isSealed(stored)).toBe(true);
    expect(stored).not.toContain(results[0]!.value);
    await store.close();
  });
});
