import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { ManualClock } from '../core/clock.js';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Deps } from '../context.js';
import type { TenantRecord } from '../model/records.js';
import { TenantRegistry } from './registry.js';

/** A registry over a map of tenant records; `build` makes stand-in deps carrying only their config (the real one is tested end to end). */
function setup(options: Partial<{ cacheSize: number; refreshSeconds: number }> = {}) {
  const clock = new ManualClock(1_000_000);
  const records = new Map<string, TenantRecord>();
  let reads = 0;
  const built: string[] = [];
  const closed: string[] = [];
  const deployment = parseConfig({
    issuer: 'https://auth.example.com',
    tenantCacheSize: options.cacheSize ?? 10,
    tenantRefreshSeconds: options.refreshSeconds ?? 5,
    tenants: [{ id: 'declared', branding: { name: 'From the file' } }],
  });
  const registry = new TenantRegistry({
    deployment,
    clock,
    logger: pino({ level: 'silent' }),
    store: {
      async getTenant(id) {
        reads++;
        return records.get(id);
      },
    },
    async build(id: string, config: Config) {
      built.push(id);
      return { deps: { config, tenant: id } as unknown as Deps, close: () => closed.push(id) };
    },
  });
  const put = (id: string, settings: Record<string, unknown> = {}, source: TenantRecord['source'] = 'admin') =>
    records.set(id, { id, settings, source, createdAt: clock.now(), updatedAt: clock.now() });
  return { clock, records, registry, built, closed, put, reads: () => reads };
}

/** Lets background re-reads finish. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('TenantRegistry', () => {
  it('loads a tenant on its first request, once for concurrent requests, with its own issuer and settings', async () => {
    const { registry, built, put, reads } = setup();
    put('acme', { branding: { name: 'Acme' } });
    const [a, b] = await Promise.all([registry.resolve('acme'), registry.resolve('acme')]);
    expect(a).toBe(b);
    expect(built).toEqual(['acme']);
    expect(reads()).toBe(1);
    expect(a!.config.issuer).toBe('https://auth.example.com/acme');
    expect(a!.config.branding).toEqual({ name: 'Acme' });
    // Cached: no further store read within tenantRefreshSeconds.
    await registry.resolve('acme');
    expect(reads()).toBe(1);
  });

  it('remembers an unknown tenant as unknown for tenantRefreshSeconds, then asks again', async () => {
    const { registry, put, reads, clock } = setup();
    expect(await registry.resolve('nope')).toBeUndefined();
    expect(await registry.resolve('nope')).toBeUndefined();
    expect(reads()).toBe(1);
    put('nope');
    expect(await registry.resolve('nope')).toBeUndefined();
    clock.advance(5_000);
    expect((await registry.resolve('nope'))?.config.issuer).toBe('https://auth.example.com/nope');
  });

  it('re-reads a cached tenant in the background after tenantRefreshSeconds: a change rebuilds it, a deletion drops it', async () => {
    const { registry, put, records, built, closed, clock } = setup();
    put('acme', { branding: { name: 'Old' } });
    const first = await registry.resolve('acme');
    clock.advance(5_000);
    records.set('acme', { ...records.get('acme')!, settings: { branding: { name: 'New' } }, updatedAt: clock.now() });
    // The stale entry is served while the re-read runs.
    expect(await registry.resolve('acme')).toBe(first);
    await settle();
    const second = await registry.resolve('acme');
    expect(second!.config.branding).toEqual({ name: 'New' });
    expect(built).toEqual(['acme', 'acme']);
    expect(closed).toEqual(['acme']);
    // Unchanged: kept, not rebuilt.
    clock.advance(5_000);
    await registry.resolve('acme');
    await settle();
    expect(await registry.resolve('acme')).toBe(second);
    // Deleted: dropped after the next re-read.
    clock.advance(5_000);
    records.delete('acme');
    await registry.resolve('acme');
    await settle();
    expect(await registry.resolve('acme')).toBeUndefined();
    expect(closed).toEqual(['acme', 'acme']);
  });

  it('keeps at most tenantCacheSize tenants loaded, closing the least recently used', async () => {
    const { registry, put, closed, built } = setup({ cacheSize: 2 });
    for (const id of ['t1', 't2', 't3']) put(id);
    await registry.resolve('t1');
    await registry.resolve('t2');
    await registry.resolve('t1');
    await registry.resolve('t3');
    expect(closed).toEqual(['t2']);
    expect(registry.size).toBe(2);
    await registry.resolve('t2');
    expect(built).toEqual(['t1', 't2', 't3', 't2']);
  });

  it('takes a config-file tenant’s settings from the file, not from the store', async () => {
    const { registry, put } = setup();
    put('declared', { branding: { name: 'From the store' } }, 'config');
    expect((await registry.resolve('declared'))!.config.branding).toEqual({ name: 'From the file' });
  });

  it('forgets a tenant at once when told (a change made through this process)', async () => {
    const { registry, put, built } = setup();
    put('acme');
    await registry.resolve('acme');
    registry.invalidate('acme');
    await registry.resolve('acme');
    expect(built).toEqual(['acme', 'acme']);
  });
});
