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

export class CachingClientResolver implements ClientResolver {
  private readonly entries: ExpiringCache<ClientRecord>;

  constructor(
    private readonly inner: ClientResolver,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {
    this.entries = new ExpiringCache(MAX_ENTRIES, clock);
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const hit = this.entries.get(clientId);
    if (hit) return hit;
    const now = this.clock.now();
    const client = await this.inner.getClient(clientId);
    // Unknown ids are not cached: a registration on another replica must work at once.
    if (client) this.entries.set(clientId, client, now + this.ttlMs);
    else this.entries.delete(clientId);
    return client;
  }

  /** Drops a client after this replica changed or deleted it. */
  forget(clientId: string): void {
    this.entries.delete(clientId);
  }
}
