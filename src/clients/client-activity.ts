/**
 * The "last token issued" mark of dynamically registered clients, which the client garbage collection
 * (clients/client-gc.ts) reads: an expiring record per client (RECORD_KINDS.clientActivity, owned by the client),
 * living `registration.cleanup.idleDays` after the token that wrote it.
 *
 * Hot path: the token endpoint must not write the store on every request, so the mark is written at most once per
 * client per day on each replica: a per-replica cache remembers the clients marked today (bounded; losing it costs one
 * extra write). So a busy client costs one store write a day per replica, and the mark is exact to a day, which is
 * all a collection counted in days needs. Static and metadata-document clients, and everything when the collection
 * is off, cost nothing.
 */
import type { Clock } from '../core/clock.js';
import { ExpiringCache } from '../core/expiring-cache.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { ExpiringRecordStore } from '../model/ports.js';
import type { ClientRecord } from '../model/records.js';

export const DAY_MS = 86_400_000;
/** How long a mark lives when idle clients are never collected (`idleDays` 0): it then only says "had a token". */
const FOREVER_DAYS = 3650;
const MAX_ENTRIES = 50_000;

/** The collection settings the marks depend on (config `registration.cleanup`). */
export interface CleanupSettings {
  unusedDays: number;
  idleDays: number;
}

/** The process's cache of clients marked today, shared by every issuer it serves (each under its own key prefix). */
export function clientActivityCache(clock: Clock, max = MAX_ENTRIES): ExpiringCache<true> {
  return new ExpiringCache(max, clock);
}

/** How long after its token a mark lives. */
export function markLifetimeMs(settings: CleanupSettings): number {
  return (settings.idleDays > 0 ? settings.idleDays : FOREVER_DAYS) * DAY_MS;
}

/** One issuer's marks (the deployment's or a tenant's: `scope` is its tenant id, '' for the deployment). */
export class ClientActivity {
  constructor(
    private readonly storage: ExpiringRecordStore,
    private readonly clock: Clock,
    private readonly settings: CleanupSettings,
    private readonly cache: ExpiringCache<true>,
    private readonly scope: string,
    private readonly logger: { warn(obj: object, msg?: string): void },
  ) {}

  /**
   * After a token was issued to `client`: the first time today on this replica, writes its mark (one store write);
   * otherwise nothing. A failed write is logged and retried with the next token; it never fails the token request.
   */
  async tokenIssued(client: Pick<ClientRecord, 'clientId' | 'source'>): Promise<void> {
    if (client.source !== 'dynamic') return;
    if (this.settings.unusedDays === 0 && this.settings.idleDays === 0) return;
    const key = `${this.scope}\n${client.clientId}`;
    if (this.cache.get(key)) return;
    const now = this.clock.now();
    this.cache.set(key, true, (Math.floor(now / DAY_MS) + 1) * DAY_MS);
    try {
      await recordsOf(this.storage, RECORD_KINDS.clientActivity).put({
        id: client.clientId,
        clientId: client.clientId,
        lastTokenAt: now,
        expiresAt: now + markLifetimeMs(this.settings),
      });
    } catch (err) {
      this.cache.delete(key);
      this.logger.warn({ err, clientId: client.clientId }, 'could not record the client as active');
    }
  }
}
