import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { ExpiringCache } from './expiring-cache.js';

describe('ExpiringCache', () => {
  it('serves an entry until its expiresAt on the injected clock, also from epoch 0', async () => {
    const clock = new ManualClock(0);
    const cache = new ExpiringCache<string>(10, clock);
    cache.set('a', 'one', 5000);
    clock.set(4999);
    expect(cache.get('a')).toBe('one');
    clock.set(5000);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('does not keep an entry that has already expired, and drops what it would have replaced', () => {
    const clock = new ManualClock(1_000);
    const cache = new ExpiringCache<string>(10, clock);
    cache.set('a', 'one', 2_000);
    cache.set('a', 'stale', 1_000);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('holds at most max entries and drops the least recently used one', () => {
    const clock = new ManualClock();
    const cache = new ExpiringCache<number>(3, clock);
    const until = clock.now() + 60_000;
    cache.set('a', 1, until);
    cache.set('b', 2, until);
    cache.set('c', 3, until);
    expect(cache.get('a')).toBe(1); // a is now the most recently used
    cache.set('d', 4, until);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
  });
});
