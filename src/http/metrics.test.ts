import { describe, expect, it } from 'vitest';
import type { Storage } from '../model/ports.js';
import { GatehouseMetrics } from './metrics.js';

/** A store whose getClient fails (asynchronously) and whose countClients answers; tenant views alike. */
function fakeStore(): Storage {
  const store = {
    kind: 'fake',
    async getClient() {
      throw new Error('store down');
    },
    async countClients() {
      return 3;
    },
    async listSigningKeys() {
      return [];
    },
    forTenant() {
      return store;
    },
  };
  return store as unknown as Storage;
}

const sample = (text: string, line: string) =>
  Number(
    text
      .split('\n')
      .find((l) => l.startsWith(line + ' '))
      ?.slice(line.length + 1) ?? 'NaN',
  );

describe('the measuring store proxy', () => {
  it("times every call and counts failures by operation, for tenants' views too; other properties pass through", async () => {
    const metrics = new GatehouseMetrics({ tenantLabel: false, defaultMetrics: false });
    const store = metrics.measuredStorage(fakeStore());
    expect(store.kind).toBe('fake');
    await expect(store.getClient('x')).rejects.toThrow('store down');
    await expect(store.forTenant('acme').getClient('x')).rejects.toThrow('store down');
    expect(await store.countClients()).toBe(3);
    // One wrapper per method: the same function each time (no allocation per call).
    expect(store.countClients).toBe(store.countClients);
    const { body } = await metrics.scrape();
    expect(sample(body, 'gatehouse_store_errors_total{operation="getClient"}')).toBe(2);
    expect(sample(body, 'gatehouse_store_operation_duration_seconds_count{operation="getClient"}')).toBe(2);
    expect(sample(body, 'gatehouse_store_operation_duration_seconds_count{operation="countClients"}')).toBe(1);
    expect(body).not.toContain('gatehouse_store_errors_total{operation="countClients"}');
  });

  it('a gauge whose store read fails does not fail the scrape', async () => {
    const metrics = new GatehouseMetrics({ tenantLabel: false, defaultMetrics: false });
    const failing = { ...fakeStore(), countClients: () => Promise.reject(new Error('down')) } as unknown as Storage;
    metrics.setSources({ storage: failing, caches: { client: { hits: 2, misses: 1 } } });
    const { body } = await metrics.scrape();
    expect(body).toContain('gatehouse_cache_requests_total{cache="client",result="hit"} 2');
    expect(body).toContain('gatehouse_cache_requests_total{cache="client",result="miss"} 1');
  });
});
