/**
 * The Redis store's connection (standalone, Sentinel or Cluster through StoreOptions): client creation, connect and
 * close, the guard that maps failures to StorageUnavailableError, the scripts as EVALSHA commands, and the upgrade of
 * data written by an older release. It is the RedisContext every feature module works with.
 *
 * Availability: the client never queues or replays commands while disconnected. A call made while Redis is down
 * fails at once with StorageUnavailableError (503 upstream); ioredis keeps reconnecting in the background, and the
 * connection state is logged once per change, not per request.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import type { ClientRecord } from '../../model/records.js';
import { StorageUnavailableError } from '../../model/errors.js';
import type { StoreLogger, StoreOptions } from '../options.js';
import { BATCH, type RedisCall, type RedisClient, type RedisContext, type ScriptArg } from './redis-context.js';
import type { RedisKeys } from './keys.js';
import { SCRIPTS, type ScriptName } from './scripts.js';

/** How long init() waits for the first connection, and one command for its reply, before giving up. */
const CONNECT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 5_000;
/** Data layout this code reads and writes (see upgradeLayout). */
const LAYOUT_VERSION = 2;

/**
 * Replies that mean "Redis is there but cannot serve now" (loading, failover, cluster resharding, out of memory,
 * persistence failing): reported as unavailability, like a lost connection, not as a bug.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|OOM)\b/;

type ScriptCommands = Record<ScriptName, (...args: ScriptArg[]) => Promise<unknown>>;

/** One store's connection to Redis, and the guarded calls feature modules make through it. */
export class RedisConnection implements RedisContext {
  readonly keys: RedisKeys;
  readonly clock: Clock;

  private readonly url: string;
  private readonly options: StoreOptions;
  private readonly logger: StoreLogger | undefined;
  private current: RedisClient;
  /** Connection state as last logged, so each change is logged once. */
  private link: 'unknown' | 'up' | 'down' = 'unknown';
  /** Per-node state on Cluster, logged the same way. */
  private readonly nodeLinks = new Map<string, 'up' | 'down'>();
  private closing = false;
  /** The last socket error, so a failed first connect reports ECONNREFUSED rather than "Connection is closed." */
  private lastError: unknown;

  constructor(url: string, options: StoreOptions, keys: RedisKeys) {
    this.url = url;
    this.options = options;
    this.clock = options.clock;
    this.logger = options.logger;
    this.keys = keys;
    this.current = this.createClient();
  }

  get client(): RedisClient {
    return this.current;
  }

  /** Connects and checks the server answers; throws StorageUnavailableError if it cannot within a few seconds. */
  async init(): Promise<void> {
    this.closing = false;
    this.lastError = undefined;
    try {
      const client = this.current;
      if (client.status === 'wait' || client.status === 'end') {
        await withTimeout(client.connect(), CONNECT_TIMEOUT_MS, 'connect');
      }
      await client.ping();
      await this.upgradeLayout();
    } catch (err) {
      this.linkDown(err);
      // A client whose first connect failed would keep a reconnect timer alive for a store the caller gives up on;
      // drop it, and let a later init() start over with a fresh one.
      const failed = this.current;
      this.current = this.createClient();
      failed.disconnect();
      const reason = this.lastError ?? err;
      this.lastError = undefined;
      throw new StorageUnavailableError(`redis: cannot connect (${errorMessage(reason)})`, { cause: reason });
    }
  }

  /**
   * Brings data written by an older release to this layout, once per prefix (idempotent, so replicas starting
   * together may both run it). Layout 2: b1715a8 stored a client without a scope allow-list as `scope: []`; since
   * then that is an absent `scope`, and [] means "nothing". And b1715a8 kept no per-user grant index: deleteUser
   * would miss that release's grants, so each client's grant index is copied into its users' (grant expiry as score).
   */
  private async upgradeLayout(): Promise<void> {
    const k = this.keys;
    if (Number(await this.client.get(k.layoutVersion)) >= LAYOUT_VERSION) return;
    const ids = await this.client.smembers(k.clients);
    for (let i = 0; i < ids.length; i += BATCH) {
      const keys = ids.slice(i, i + BATCH).map((id) => k.client(id));
      const values = await this.client.mget(keys);
      for (const [j, value] of values.entries()) {
        if (value === null) continue;
        const record = JSON.parse(value) as ClientRecord;
        if (!Array.isArray(record.scope) || record.scope.length > 0) continue;
        delete record.scope;
        await this.script('replaceIfUnchanged', [keys[j]!], [this.clock.now(), value, JSON.stringify(record)]);
      }
    }
    for (const clientId of ids) {
      const entries = await this.client.zrange(k.clientGrants(clientId), 0, -1, 'WITHSCORES');
      for (let i = 0; i < entries.length; i += 2) {
        const grantId = entries[i]!;
        const data = await this.client.hget(k.grant(grantId), 'd');
        if (data === null) continue;
        const { userId } = JSON.parse(data) as { userId: string };
        await this.script('indexAdd', [k.userGrants(userId)], [this.clock.now(), grantId, entries[i + 1]!]);
      }
    }
    await this.client.set(k.layoutVersion, String(LAYOUT_VERSION));
  }

  async close(): Promise<void> {
    this.closing = true;
    const client = this.current;
    if (client.status === 'ready') {
      try {
        await client.quit();
        return;
      } catch {
        // Fall through: the connection is going anyway.
      }
    }
    client.disconnect();
  }

  async ping(): Promise<void> {
    await this.guard(() => this.client.ping());
  }

  async batch(calls: readonly RedisCall[], sameSlot = false): Promise<unknown[]> {
    const client = this.client;
    type Method = (...args: ScriptArg[]) => Promise<unknown>;
    if (calls.length === 1 || (client instanceof Cluster && !sameSlot)) {
      const methods = client as unknown as Record<string, Method>;
      return Promise.all(calls.map(([method, ...args]) => this.guard(() => methods[method]!.call(client, ...args))));
    }
    const pipeline = client.pipeline();
    // Queuing returns the pipeline itself; the replies come from exec().
    const queued = pipeline as unknown as Record<string, (...args: ScriptArg[]) => unknown>;
    for (const [method, ...args] of calls) queued[method]!.call(pipeline, ...args);
    const results = await this.guard(() => pipeline.exec());
    if (results === null) throw new StorageUnavailableError('redis: pipeline not sent');
    return results.map(([err, value]) => {
      if (err) throw this.translate(err);
      return value;
    });
  }

  async exec(multi: ReturnType<RedisClient['multi']>): Promise<unknown[]> {
    const results = await this.guard(() => multi.exec());
    if (results === null) throw new StorageUnavailableError('redis: transaction aborted');
    return results.map(([err, value]) => {
      if (err) throw this.translate(err);
      return value;
    });
  }

  script<T = unknown>(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<T> {
    const commands = this.client as unknown as ScriptCommands;
    return this.guard(() => commands[name].call(this.client, keys.length, ...keys, ...args) as Promise<T>);
  }

  async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): unknown {
    if (!(err instanceof Error) || err instanceof StorageUnavailableError) return err;
    // A reply error is Redis answering: a bug (WRONGTYPE, script error) unless it is one of the transient states.
    if (err.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message)) return err;
    if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return err;
    // Anything else is ioredis failing to talk to Redis: closed or unwritable stream, timeout, retries exhausted.
    return new StorageUnavailableError(`redis: ${err.message}`, { cause: err });
  }

  private createClient(): RedisClient {
    const client = connectRedis(this.url, this.options, this.keys.prefix);
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { lua });
    if (this.options.onRoundTrip) countRoundTrips(client, this.options.onRoundTrip);
    client.on('ready', () => this.linkUp());
    client.on('error', (err: unknown) => {
      this.lastError = err;
      this.linkDown(err);
    });
    client.on('close', () => this.linkDown(undefined));
    if (client instanceof Cluster) {
      // One node can fail while the cluster as a whole stays up: track and log each node on its own.
      client.on('+node', (node: Redis) => {
        node.on('ready', () => this.nodeUp(`${node.options.host ?? ''}:${node.options.port ?? ''}`));
      });
      client.on('node error', (err: unknown, key: string) => this.nodeDown(key, err));
    }
    return client;
  }

  private nodeUp(node: string): void {
    if (this.nodeLinks.get(node) === 'down')
      this.logger?.info({ store: 'redis', node }, 'redis: cluster node restored');
    this.nodeLinks.set(node, 'up');
  }

  private nodeDown(node: string, err: unknown): void {
    if (this.closing || this.nodeLinks.get(node) === 'down') return;
    this.nodeLinks.set(node, 'down');
    this.logger?.error(
      { store: 'redis', node, err: errorMessage(err) },
      'redis: cluster node unreachable; calls for its slots fail with StorageUnavailableError until it returns',
    );
  }

  private linkUp(): void {
    if (this.link === 'down') this.logger?.info({ store: 'redis' }, 'redis: connection restored');
    else if (this.link === 'unknown') this.logger?.info({ store: 'redis' }, 'redis: connected');
    this.link = 'up';
  }

  private linkDown(err: unknown): void {
    if (this.closing || this.link === 'down') return;
    this.link = 'down';
    this.logger?.error(
      { store: 'redis', err: err === undefined ? undefined : errorMessage(err) },
      'redis: connection lost; storage calls fail with StorageUnavailableError until it returns',
    );
  }
}

/** Builds the ioredis client: fail fast while disconnected, never replay a command, reconnect forever. */
function connectRedis(url: string, options: StoreOptions, prefix: string): RedisClient {
  const common: RedisOptions = {
    lazyConnect: true,
    // Fail fast: no queue while disconnected, and in-flight commands fail on a drop instead of being resent
    // after reconnect (a resent consume or rotate could run twice and report reuse to the caller that won).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Shows in CLIENT LIST which deployment a connection belongs to.
    connectionName: `gatehouse:${prefix}`.replace(/[^\x21-\x7e]/g, '_'),
    // After a failover the old master answers READONLY: reconnect so Sentinel or the cluster map leads to the new one.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
  const retry = (times: number): number => Math.min(100 * 2 ** Math.min(times - 1, 5), 2_000);
  const parsed = new URL(url);
  const tls = parsed.protocol.toLowerCase() === 'rediss:' ? {} : undefined;
  const auth: RedisOptions = {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(tls ? { tls } : {}),
  };

  if (options.redisCluster) {
    const { retryStrategy: _retry, ...nodeOptions } = { ...common, ...auth };
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retry,
      redisOptions: nodeOptions,
    };
    return new Cluster(options.redisCluster.nodes, clusterOptions);
  }
  if (options.redisSentinel) {
    const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
    return new Redis({
      ...common,
      ...auth,
      db,
      sentinels: options.redisSentinel.sentinels,
      name: options.redisSentinel.name,
      retryStrategy: retry,
      sentinelRetryStrategy: retry,
      enableTLSForSentinelMode: tls !== undefined,
    });
  }
  return new Redis(url, { ...common, retryStrategy: retry });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reports each round trip of `client` to `onRoundTrip` (StoreOptions.onRoundTrip). Every command goes through
 * sendCommand; the commands of one pipeline or MULTI share the `stream` object ioredis writes them to in one go, so
 * they count once. A script is one EVALSHA (plus an EVAL when Redis had not cached it: also a round trip).
 */
function countRoundTrips(client: RedisClient, onRoundTrip: (what: string) => void): void {
  const target = client as unknown as { sendCommand: (command: { name: string }, stream?: object) => unknown };
  const send = target.sendCommand.bind(client);
  const pipelines = new WeakSet<object>();
  target.sendCommand = (command, stream) => {
    if (stream === undefined || !(stream as { isPipeline?: boolean }).isPipeline) onRoundTrip(command.name);
    else if (!pipelines.has(stream)) {
      pipelines.add(stream);
      onRoundTrip(`pipeline(${command.name}…)`);
    }
    return send(command, stream);
  };
}
