/**
 * The memory store's building blocks: a Map with per-entry expiry and a size cap, a one-to-many index, and the deep
 * copy that keeps callers from holding references into stored state.
 */
import type { StoreLogger } from '../options.js';
import { StorageUnavailableError } from '../../model/errors.js';

/** What every map of one store shares: the per-map size cap and where eviction warnings go. */
export interface MapLimits {
  /** Most records the map may hold. */
  max: number;
  logger: StoreLogger | undefined;
}

/**
 * A Map with per-entry expiry and a size cap. When a new key would exceed the cap, expired entries are swept first,
 * then the live entries closest to expiry are evicted; entries that never expire (clients, users, secrets) are never
 * evicted, so a map full of them rejects new keys with StorageUnavailableError (503) instead of silently dropping
 * a client or user. `onRemove` runs on every removal so secondary indexes stay in step.
 */
export class BoundedMap<V> {
  private readonly entries = new Map<string, V>();
  private readonly max: number;
  private readonly logger: StoreLogger | undefined;

  constructor(
    readonly name: string,
    limits: MapLimits,
    private readonly expiryOf: (value: V) => number | undefined,
    private readonly onRemove?: (key: string, value: V) => void,
  ) {
    this.max = limits.max;
    this.logger = limits.logger;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The stored value even if expired (for internal bookkeeping only). */
  raw(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** The value, or undefined when absent or expired (`expiresAt <= now`). */
  get(key: string, now: number): V | undefined {
    const value = this.entries.get(key);
    return value === undefined || this.isExpired(value, now) ? undefined : value;
  }

  set(key: string, value: V, now: number): void {
    if (!this.entries.has(key) && this.entries.size >= this.max) this.makeRoom(now);
    this.entries.set(key, value);
  }

  delete(key: string): boolean {
    const value = this.entries.get(key);
    if (value === undefined) return false;
    this.entries.delete(key);
    this.onRemove?.(key, value);
    return true;
  }

  /** Live entries as a snapshot, so callers may delete while iterating. */
  live(now: number): [string, V][] {
    return [...this.entries].filter(([, value]) => !this.isExpired(value, now));
  }

  /** Removes expired entries; returns how many. */
  sweep(now: number): number {
    let removed = 0;
    // No snapshot: a Map's iteration skips entries deleted meanwhile (here or by a cascade), and copying a map of
    // hundreds of thousands of entries cost more than the sweep (and its garbage).
    for (const [key, value] of this.entries) {
      // An entry may already be gone via another entry's onRemove cascade; count only what this call removed.
      if (this.isExpired(value, now) && this.delete(key)) removed++;
    }
    return removed;
  }

  private isExpired(value: V, now: number): boolean {
    const expiresAt = this.expiryOf(value);
    return expiresAt !== undefined && expiresAt <= now;
  }

  private makeRoom(now: number): void {
    // Free 1% of the capacity at once: a full map then costs one pass per hundred inserts, not a scan per insert.
    const target = this.max - Math.max(1, Math.ceil(this.max / 100));
    // One pass: expired entries are removed on the way (as sweep does), the live expiring ones noted in insertion
    // order. The victims are the expiring entries closest to expiry, ties in insertion order (what a stable sort by
    // expiry gives), found with a linear selection over the noted expiries instead of a sort (at the default cap a
    // sort took ~150 ms on the event loop) and without a second walk of the map.
    const keys: string[] = [];
    const expiries = new Float64Array(this.entries.size);
    for (const [key, value] of this.entries) {
      const expiresAt = this.expiryOf(value);
      if (expiresAt === undefined) continue;
      if (expiresAt <= now) this.delete(key);
      else {
        expiries[keys.length] = expiresAt;
        keys.push(key);
      }
    }
    const n = keys.length;
    const count = Math.min(this.entries.size - target, n);
    if (count > 0) {
      const noted = expiries.slice(0, n);
      const threshold = kthSmallest(expiries.subarray(0, n), count - 1);
      let ties = count;
      for (let i = 0; i < n; i++) if (noted[i]! < threshold) ties--;
      let evicted = 0;
      for (let i = 0; i < n; i++) {
        const expiresAt = noted[i]!;
        if (expiresAt > threshold) continue;
        if (expiresAt === threshold && ties-- <= 0) continue;
        // A cascade of an earlier victim may have removed this one already.
        if (this.delete(keys[i]!)) evicted++;
      }
      if (evicted > 0) {
        this.logger?.warn(
          { map: this.name, evicted, maxEntries: this.max },
          'memory store full: evicted the live records closest to expiry',
        );
      }
    }
    if (this.entries.size >= this.max) {
      throw new StorageUnavailableError(`memory store is full: ${this.name} holds ${this.max} records`);
    }
  }
}

/** The k-th smallest (0-based) of `values` by quickselect, in linear time on average; reorders `values`. */
function kthSmallest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[lo + ((hi - lo) >> 1)]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k]!;
  }
  return values[k]!;
}

/** One-to-many index (grant id -> refresh token hashes or access token ids, owner -> record keys). */
export class SetIndex {
  private readonly sets = new Map<string, Set<string>>();

  add(key: string, member: string): void {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Set()));
    set.add(member);
  }

  remove(key: string, member: string): void {
    const set = this.sets.get(key);
    if (!set) return;
    set.delete(member);
    if (set.size === 0) this.sets.delete(key);
  }

  /** Members as a snapshot, so callers may remove while iterating. */
  members(key: string): string[] {
    return [...(this.sets.get(key) ?? [])];
  }
}

/**
 * Deep copy, so no caller ever holds a reference into stored state. Records are plain JSON-like data (strings,
 * numbers, booleans, arrays, plain objects, undefined), so a plain walk does what structuredClone did at about a
 * fifth of the cost; it runs on every read and write.
 */
export function copy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(copy) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = copy((value as Record<string, unknown>)[key]);
  return out as T;
}
