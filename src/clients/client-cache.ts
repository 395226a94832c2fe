/**
 * A short-lived, per-process cache of client records in front of the store: token, introspection and revocation
 * requests would otherwise read the client on every call. Safe to lose. A change made through this replica (RFC 7592
 * update or delete) is forgotten at once; other replicas see it within `ttlMs`.
 */
import type { ClientResolver } from '../core/client-auth.js';
import type { Clock } from '../core/clock.js';
import { ExpiringCache } from '../core/expiring-cache.js';
import type { ClientRecord } from '../model/records.js';

const MAX_ENTRIES = 10_000;

/**
 * The process's client records, shared by every issuer it serves (the deployment's and its tenants'), each issuer's
 * under a key of its own: one bound for the process, and one structure a request touches, however many tenants.
 */
export function clientRecordCache(clock: Clock, max = MAX_ENTRIES): ExpiringCache<ClientRecord> {
  return new ExpiringCache(max, clock);
}

export class CachingClientResolver implements ClientResolver {
  private readonly entries: ExpiringCache<ClientRecord>;
  private readonly prefix: string;

  /**
   * `shared`: the process-wide cache (clientRecordCache) with `scope` naming this issuer in it (a tenant id; '' for
   * the deployment's own); without it, a cache of its own.
   */
  constructor(
    private readonly inner: ClientResolver,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    shared?: { cache: ExpiringCache<ClientRecord>; scope: string },
  ) {
    this.entries = shared?.cache ?? new ExpiringCache(MAX_ENTRIES, clock);
    // A tenant id has no newline (nor has '' for the deployment), so `<scope>\n<client id>` never equals another
    // scope's key whatever the client id.
    this.prefix = shared ? `${shared.scope}\n` : '';
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const key = this.prefix + clientId;
    const hit = this.entries.get(key);
    if (hit) return hit;
    const now = this.clock.now();
    const client = await this.inner.getClient(clientId);
    // Unknown ids are not cached: a registration on another replica must work at once.
    if (client) this.entries.set(key, client, now + this.ttlMs);
    else this.entries.delete(key);
    return client;
  }

  /** Drops a client after this replica changed or deleted it. */
  forget(clientId: string): void {
    this.entries.delete(this.prefix + clientId);
  }
}
