/**
 * What every feature module of the Redis store works with: the connection's live client and its guarded calls, the
 * key layout and the clock (RedisContext, implemented by ./connection.ts), and the few helpers they share.
 *
 * Expiry: each expiring record is written with a PX computed from `expiresAt - clock.now()` (so Redis drops it on its
 * own), and every read checks `expiresAt` against the injected clock too (so a ManualClock drives expiry in tests).
 */
import type { Cluster, Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import type { RedisKeys } from './keys.js';
import type { ScriptName } from './scripts.js';

/** A standalone or Sentinel client, or a Cluster. */
export type RedisClient = Redis | Cluster;
/** One ARGV value of a script. */
export type ScriptArg = string | number;

/** One command of a {@link RedisContext.batch}: its ioredis method name (a command, or a script's name) and arguments. */
export type RedisCall = readonly [method: string, ...args: ScriptArg[]];

/** A script call for {@link RedisContext.batch} (as RedisContext.script runs it: key count, keys, then ARGV). */
export function scriptCall(name: ScriptName, keys: string[], args: ScriptArg[]): RedisCall {
  return [name, keys.length, ...keys, ...args];
}

/** The shared state and calls of one store; each feature module's functions take it first. */
export interface RedisContext {
  /** The current client: a failed init() replaces it, so read it at each call rather than keeping it. */
  readonly client: RedisClient;
  readonly keys: RedisKeys;
  readonly clock: Clock;
  /** Runs one Redis call, turning "Redis cannot be reached" into StorageUnavailableError. */
  guard<T>(call: () => Promise<T>): Promise<T>;
  /** Runs a registered script (./scripts.ts) by name, guarded. */
  script<T = unknown>(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<T>;
  /**
   * Sends independent calls in one round trip (a pipeline), guarded, and returns their replies in order; a failed
   * command throws. On a Cluster a pipeline must stay in one slot, so calls with keys in several slots (`sameSlot`
   * false) are sent concurrently there instead (one round trip of latency, several writes). Not atomic: use a
   * script or `exec` for that.
   */
  batch(calls: readonly RedisCall[], sameSlot?: boolean): Promise<unknown[]>;
  /** Runs a MULTI, guarded; an aborted transaction or a failed command throws. */
  exec(multi: ReturnType<RedisClient['multi']>): Promise<unknown[]>;
}

/**
 * `base`'s connection and calls under another key layout: a tenant's view. It reads `base.client` at each call (init()
 * may replace it) and has nothing of its own to open or close.
 */
export function withKeys(base: RedisContext, keys: RedisKeys): RedisContext {
  return {
    get client() {
      return base.client;
    },
    keys,
    clock: base.clock,
    guard: (call) => base.guard(call),
    script: (name, scriptKeys, args) => base.script(name, scriptKeys, args),
    batch: (calls, sameSlot) => base.batch(calls, sameSlot),
    exec: (multi) => base.exec(multi),
  };
}

/** Fan-out of cascades (deleteClient, deleteUser, revokeGrantsFor) and the size of MGET batches. */
export const BATCH = 100;

/** Milliseconds until `expiresAt`, or undefined when it has passed (the record is already absent). */
export function ttlMs(expiresAt: number, now: number): number | undefined {
  const ttl = Math.ceil(expiresAt - now);
  return ttl > 0 ? ttl : undefined;
}

/** A stored JSON value, or undefined for a missing key. */
export function parseJson<T>(json: string | null): T | undefined {
  return json === null ? undefined : (JSON.parse(json) as T);
}

/** MGET in batches (keys of one slot), skipping missing records. */
export async function mgetJson<T>(ctx: RedisContext, keys: string[]): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < keys.length; i += BATCH) {
    const values = await ctx.guard(() => ctx.client.mget(keys.slice(i, i + BATCH)));
    for (const value of values) if (value !== null) out.push(JSON.parse(value) as T);
  }
  return out;
}

/** Runs `fn` over `items`, at most BATCH at a time. */
export async function inBatches<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += BATCH) await Promise.all(items.slice(i, i + BATCH).map(fn));
}

/** Code-unit order of two ids: the tie-break of listClients and listUsers among records of one createdAt. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
