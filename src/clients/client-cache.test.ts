import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { ClientRecord } from '../model/records.js';
import { CachingClientResolver } from './client-cache.js';

function store(records: Record<string, Partial<ClientRecord>>) {
  const reads: string[] = [];
  return {
    reads,
    records,
    async getClient(id: string) {
      reads.push(id);
      return records[id] as ClientRecord | undefined;
    },
  };
}

describe('CachingClientResolver', () => {
  it('reuses a client for ttl, then reads again', async () => {
    const clock = new ManualClock(0);
    const inner = store({ a: { clientId: 'a', clientName: 'one' } });
    const cache = new CachingClientResolver(inner, 5000, clock);
    expect((await cache.getClient('a'))?.clientName).toBe('one');
    inner.records.a = { clientId: 'a', clientName: 'two' };
    clock.advance(4999);
    expect((await cache.getClient('a'))?.clientName).toBe('one');
    clock.advance(1);
    expect((await cache.getClient('a'))?.clientName).toBe('two');
    expect(inner.reads).toEqual(['a', 'a']);
  });

  it('when full, drops the least recently used client, not the first one cached', async () => {
    const clock = new ManualClock(0);
    const records: Record<string, Partial<ClientRecord>> = {};
    for (let i = 0; i <= 10_000; i++) records[`c${i}`] = { clientId: `c${i}` };
    const inner = store(records);
    const cache = new CachingClientResolver(inner, 60_000, clock);
    for (let i = 0; i < 10_000; i++) await cache.getClient(`c${i}`);
    await cache.getClient('c0'); // a hit: c0 is now the most recently used
    await cache.getClient('c10000'); // full: makes room
    inner.reads.length = 0;
    await cache.getClient('c0');
    await cache.getClient('c1');
    expect(inner.reads).toEqual(['c1']);
  });

  it('never caches an unknown client (a registration elsewhere works at once), and forgets on request', async () => {
    const clock = new ManualClock(0);
    const inner = store({});
    const cache = new CachingClientResolver(inner, 5000, clock);
    expect(await cache.getClient('b')).toBeUndefined();
    inner.records.b = { clientId: 'b' };
    expect(await cache.getClient('b')).toBeDefined();
    delete inner.records.b;
    cache.forget('b');
    expect(await cache.getClient('b')).toBeUndefined();
  });
});
