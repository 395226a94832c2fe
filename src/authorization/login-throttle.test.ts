import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import type { ConfigInput } from '../config/schema.js';
import { ManualClock } from '../core/clock.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { admitLogin, type LoginAdmission } from './login-throttle.js';

/** A memory store that records every rate-limit key it is given, and deps around it. */
function setup(limits: ConfigInput['loginRateLimit'] = { maxFailuresPerUsername: 3, maxFailuresPerIp: 5 }) {
  // 100 s into a 15-minute window, so the window ends in 800 s.
  const clock = new ManualClock(Date.UTC(2030, 0, 1, 0, 1, 40));
  const storage = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  const keys = new Set<string>();
  for (const method of ['hitRateLimit', 'peekRateLimit', 'resetRateLimit'] as const) {
    const original = storage[method].bind(storage) as (key: string, ...rest: number[]) => Promise<unknown>;
    (storage as unknown as Record<string, unknown>)[method] = (key: string, ...rest: number[]) => {
      keys.add(key);
      return original(key, ...rest);
    };
  }
  const deps = { storage, clock, config: parseConfig({ loginRateLimit: limits }), pepper: 'test-pepper' };
  return { clock, keys, admit: (username: string, address = '203.0.113.9') => admitLogin(username, address, deps) };
}

async function fail(admission: Promise<LoginAdmission>): Promise<void> {
  const a = await admission;
  if (!a.allowed) throw new Error(`refused by the ${a.limit} limit`);
  await a.failed();
}

describe('admitLogin', () => {
  it('refuses a username after its limit of failures, case-insensitively, with the time left in the window', async () => {
    const { admit } = setup();
    for (let i = 0; i < 3; i++) await fail(admit('alice'));
    expect(await admit('alice')).toEqual({ allowed: false, limit: 'username', retryAfterSeconds: 800 });
    expect(await admit('ALICE')).toMatchObject({ allowed: false, limit: 'username' });
    expect(await admit('bob')).toMatchObject({ allowed: true });
  });

  it('a success resets the username; the address counts failures only, across usernames and one IPv6 /64', async () => {
    const { admit } = setup();
    await fail(admit('alice', '2001:db8::1'));
    await fail(admit('alice', '2001:db8::2'));
    const ok = await admit('alice', '2001:db8::3');
    if (!ok.allowed) throw new Error('refused');
    await ok.succeeded();
    for (let i = 0; i < 3; i++) await fail(admit(`user${i}`, '2001:db8::4'));
    // Five failures from the /64: every username is refused now, and another network is not.
    expect(await admit('alice', '2001:db8::ffff')).toMatchObject({ allowed: false, limit: 'ip' });
    expect(await admit('alice', '2001:db8:0:1::1')).toMatchObject({ allowed: true });
  });

  it('the window ends at the next multiple of windowSeconds', async () => {
    const { admit, clock } = setup();
    for (let i = 0; i < 3; i++) await fail(admit('alice'));
    clock.advance(800_000 - 1);
    expect(await admit('alice')).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    clock.advance(1);
    expect(await admit('alice')).toMatchObject({ allowed: true });
  });

  it('stores only keyed hashes, never the username or the address', async () => {
    const { admit, keys } = setup();
    await fail(admit('Alice@Example.com', '198.51.100.77'));
    expect(keys.size).toBe(2);
    for (const key of keys) {
      expect(key).toMatch(/^login:(user|ip):[A-Za-z0-9_-]{43}$/);
      expect(key.toLowerCase()).not.toContain('alice');
      expect(key).not.toContain('198.51');
    }
  });

  it('0 turns a limit off', async () => {
    const { admit, keys } = setup({ maxFailuresPerUsername: 0, maxFailuresPerIp: 0 });
    for (let i = 0; i < 20; i++) await fail(admit('alice'));
    expect(await admit('alice')).toMatchObject({ allowed: true });
    expect(keys.size).toBe(0);
  });
});
