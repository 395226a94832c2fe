/**
 * The one bounded, expiring in-process cache (lru-cache underneath) for the server's caches: verified access
 * tokens, client records, Client ID Metadata Documents, private_key_jwt JWKS. Each entry expires at an absolute time
 * on the injected clock, so a ManualClock drives expiry in tests; lru-cache's own TTL runs on performance.now(),
 * which such a clock cannot move, so it is used here for bounding and recency only.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from './clock.js';

/** `V` is non-nullish: LRUCache stores no undefined or null. */
export class ExpiringCache<V extends NonNullable<unknown>> {
  private readonly lru: LRUCache<string, { value: V; expiresAt: number }>;
  /** Lookups that found a live entry, and those that did not (metrics read them on scrape). */
  hits = 0;
  misses = 0;

  /** `max`: most entries kept; when full, the least recently used entry makes room. */
  constructor(
    max: number,
    private readonly clock: Clock,
  ) {
    // Bounded by size (one per entry) rather than `max`: lru-cache allocates `max` slots up front, and a server with a
    // thousand tenants has a thousand of each cache, mostly near empty (bench: ~250 KB of empty slots per tenant).
    this.lru = new LRUCache({ maxSize: max, sizeCalculation: () => 1 });
  }

  /** The value while `now < expiresAt`; an expired entry is dropped on the way. Counts as a use. */
  get(key: string): V | undefined {
    const hit = this.lru.get(key);
    if (hit !== undefined && hit.expiresAt > this.clock.now()) {
      this.hits++;
      return hit.value;
    }
    this.misses++;
    if (hit !== undefined) this.lru.delete(key);
    return undefined;
  }

  /** Keeps `value` until `expiresAt` (epoch ms); one already past is not kept (and replaces nothing stale). */
  set(key: string, value: V, expiresAt: number): void {
    if (expiresAt <= this.clock.now()) this.lru.delete(key);
    else this.lru.set(key, { value, expiresAt });
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  get size(): number {
    return this.lru.size;
  }
}
