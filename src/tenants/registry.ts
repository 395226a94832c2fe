/**
 * The tenants a deployment serves, as the HTTP app asks for them: tenant id -> that tenant's deps. Tenants are
 * loaded lazily, on their first request, and kept in a bounded LRU (config `tenantCacheSize`), so 1,000 tenants cost
 * neither start time nor memory until used. A cached tenant is re-read from the store at most every
 * `tenantRefreshSeconds`, in the background (requests keep being served meanwhile): that is the bound on how long a
 * replica serves a tenant after another replica updated or deleted it. Unknown ids are remembered for as long, in
 * a map of their own, so a flood of made-up tenant names neither reaches the store on every request nor evicts real
 * tenants.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/schema.js';
import { tenantConfig } from '../config/tenants.js';
import type { Deps } from '../context.js';
import type { TenantStore } from '../model/ports.js';
import type { TenantRecord } from '../model/records.js';
import type { Logger } from 'pino';

/** A tenant's running deps and how to stop them (its key refresh timer). */
export interface TenantInstance {
  deps: Deps;
  close: () => void;
}

export interface TenantRegistryOptions {
  deployment: Config;
  store: Pick<TenantStore, 'getTenant'>;
  clock: Clock;
  logger: Logger;
  /** Builds a tenant's deps from its config (server.ts: keys, secrets, static users and clients in its scope). */
  build(id: string, config: Config): Promise<TenantInstance>;
}

interface Loaded {
  /** The record the instance was built from (its updatedAt tells whether it changed). */
  record: TenantRecord;
  instance: TenantInstance;
  checkedAt: number;
  refreshing: boolean;
}

/** Most unknown ids remembered as unknown. */
const MAX_UNKNOWN = 10_000;

export class TenantRegistry {
  private readonly loaded: LRUCache<string, Loaded>;
  private readonly unknown: LRUCache<string, number>;
  private readonly loading = new Map<string, Promise<Loaded | undefined>>();
  private readonly refreshMs: number;
  /** The config file's tenants: their settings are read from the file (every replica has it), never from the store. */
  private readonly declared: Map<string, Record<string, unknown>>;
  /** Resolutions served from memory (a loaded tenant, or one known not to exist), and those that read the store. */
  hits = 0;
  misses = 0;

  constructor(private readonly options: TenantRegistryOptions) {
    this.declared = new Map(options.deployment.tenants.map(({ id, ...settings }) => [id, settings]));
    this.refreshMs = options.deployment.tenantRefreshSeconds * 1000;
    this.loaded = new LRUCache<string, Loaded>({
      max: options.deployment.tenantCacheSize,
      dispose: (entry) => entry.instance.close(),
    });
    this.unknown = new LRUCache<string, number>({ max: MAX_UNKNOWN });
  }

  /** The tenant's deps, or undefined when the store has no such tenant (as of at most tenantRefreshSeconds ago). */
  async resolve(id: string): Promise<Deps | undefined> {
    const now = this.options.clock.now();
    const entry = this.loaded.get(id);
    if (entry) {
      this.hits++;
      if (now - entry.checkedAt >= this.refreshMs && !entry.refreshing) this.refreshInBackground(id, entry);
      return entry.instance.deps;
    }
    const missedAt = this.unknown.get(id);
    if (missedAt !== undefined && now - missedAt < this.refreshMs) {
      this.hits++;
      return undefined;
    }
    this.misses++;
    return (await this.load(id))?.instance.deps;
  }

  /** Forgets a tenant now (this replica): after an update or delete through this process. */
  invalidate(id: string): void {
    this.loaded.delete(id);
    this.unknown.delete(id);
  }

  /** Unloads every tenant (stops their timers). */
  close(): void {
    this.loaded.clear();
    this.unknown.clear();
  }

  /** How many tenants are loaded now (diagnostics, tests). */
  get size(): number {
    return this.loaded.size;
  }

  /** One load per id at a time: concurrent first requests share it. */
  private load(id: string): Promise<Loaded | undefined> {
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.read(id).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    return pending;
  }

  private async read(id: string): Promise<Loaded | undefined> {
    const record = await this.options.store.getTenant(id);
    const now = this.options.clock.now();
    if (!record) {
      this.loaded.delete(id);
      this.unknown.set(id, now);
      return undefined;
    }
    const current = this.loaded.get(id);
    if (current && current.record.updatedAt === record.updatedAt) {
      current.checkedAt = now;
      return current;
    }
    const settings = (record.source === 'config' && this.declared.get(id)) || record.settings;
    const config = tenantConfig(this.options.deployment, id, settings);
    const instance = await this.options.build(id, config);
    const entry: Loaded = { record, instance, checkedAt: now, refreshing: false };
    // Replacing an entry disposes the old one (its key timer); requests holding its deps finish with them.
    this.loaded.set(id, entry);
    this.unknown.delete(id);
    return entry;
  }

  private refreshInBackground(id: string, entry: Loaded): void {
    entry.refreshing = true;
    this.load(id)
      .catch((err: unknown) => {
        // The store is down or the new settings do not build: keep serving what we have, try again later.
        entry.checkedAt = this.options.clock.now();
        this.options.logger.warn({ err, tenant: id }, 'tenant: re-reading its settings failed; serving the last ones');
      })
      .finally(() => {
        entry.refreshing = false;
      });
  }
}
