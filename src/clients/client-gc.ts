/**
 * Garbage collection of dynamically registered clients (config `registration.cleanup`): a client that obtained no
 * token within `unusedDays` of its registration, or none for `idleDays`, is deleted with everything issued to it
 * (ClientStore.deleteClient, as RFC 7592 DELETE). Static and metadata-document clients are never touched.
 *
 * "Last token" is the mark clients/client-activity.ts writes (at most once a day per client and replica), an expiring
 * record: a client without one had no token since its registration, or none for `idleDays`. Marks only exist from the
 * first version that writes them, so the first collection of a store remembers when it ran (a named value in the
 * store) and a client counts as registered no earlier than that: enabling the collection never deletes a client that
 * was active before marks were written, and such a client without a mark is kept for `idleDays` from then.
 *
 * Every replica schedules it; one per round does the work (a replay-guard lease on the round). Its cost is a listing
 * of the scope's clients and, for each dynamic client old enough to be collected, one record read.
 */
import type { Clock } from '../core/clock.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { ClientStore, ExpiringRecordStore, KeyStore, ReplayGuard } from '../model/ports.js';
import { DAY_MS, type CleanupSettings } from './client-activity.js';

export type ClientGcStore = Pick<ClientStore, 'listClients' | 'deleteClient'> &
  ExpiringRecordStore &
  Pick<ReplayGuard, 'firstUse'> &
  Pick<KeyStore, 'getOrCreateSecret'>;

export interface ClientGcDeps {
  storage: ClientGcStore;
  clock: Clock;
  settings: CleanupSettings & { intervalSeconds: number };
  logger: { info(obj: object, msg?: string): void };
  /** Drops a deleted client from this replica's cache. */
  forget?(clientId: string): void;
}

/** The named value holding when this store's first collection ran (epoch ms, as a decimal string). */
const SINCE = 'client-activity-since';

/**
 * One round over one scope: deletes the clients due and returns their ids. `lease` false runs it whatever other
 * replicas do (tests, the CLI); by default a round already run by another replica is skipped (returns []).
 */
export async function collectClients(deps: ClientGcDeps, lease = true): Promise<string[]> {
  const { unusedDays, idleDays, intervalSeconds } = deps.settings;
  if (unusedDays === 0 && idleDays === 0) return [];
  const now = deps.clock.now();
  const intervalMs = intervalSeconds * 1000;
  if (lease && !(await deps.storage.firstUse(`client-gc:${Math.floor(now / intervalMs)}`, now + intervalMs))) return [];
  const stored = Number(await deps.storage.getOrCreateSecret(SINCE, String(now)));
  const since = Number.isFinite(stored) ? stored : now;
  const marks = recordsOf(deps.storage, RECORD_KINDS.clientActivity);
  const deleted: string[] = [];
  for (const client of await deps.storage.listClients()) {
    if (client.source !== 'dynamic') continue;
    const registered = Math.max(client.createdAt, since);
    // A client without a mark is due once it is this old (idle clients wait for unusedDays too). One registered
    // before marks began may have had tokens nobody marked: it gets idleDays from then, not unusedDays.
    const unmarkedDays = client.createdAt < since && idleDays > 0 ? idleDays : unusedDays > 0 ? unusedDays : idleDays;
    // Younger than either threshold: not due whatever its mark says, so no read.
    if (registered > now - Math.min(unmarkedDays, idleDays > 0 ? idleDays : unmarkedDays) * DAY_MS) continue;
    const mark = await marks.get(client.clientId);
    const due = mark
      ? idleDays > 0 && mark.lastTokenAt <= now - idleDays * DAY_MS
      : registered <= now - unmarkedDays * DAY_MS;
    if (!due) continue;
    if (await deps.storage.deleteClient(client.clientId)) {
      deps.forget?.(client.clientId);
      deleted.push(client.clientId);
    }
  }
  if (deleted.length > 0)
    deps.logger.info({ event: 'client.collected', count: deleted.length }, 'deleted unused dynamic clients');
  return deleted;
}
