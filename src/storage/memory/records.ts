/**
 * The memory store's expiring records (model/ports.ts ExpiringRecordStore): every kind in one bounded map keyed by
 * (kind, id), with an owner index so a client's or user's records go with them.
 */
import type { Clock } from '../../core/clock.js';
import type { ExpiringRecordStore, JsonObject, RecordAppend, RecordPlacement } from '../../model/ports.js';
import { appendedValue } from '../record-append.js';
import { BoundedMap, SetIndex, copy, type MapLimits } from './bounded-map.js';

/** An expiring record as kept: its kind (for deleteRecordsOwnedBy's filter), body, expiry and owner. */
interface StoredRecord {
  kind: string;
  value: JsonObject;
  expiresAt: number;
  owner: string | undefined;
}

/** Unambiguous composite key for (kind, id). */
const recordKey = (kind: string, id: string): string => `${kind}\u0000${id}`;

/** The expiring-record primitive, for MemoryStorage. */
export class MemoryRecords implements ExpiringRecordStore {
  /** Expiring records of every kind, keyed by recordKey(kind, id). */
  readonly map: BoundedMap<StoredRecord>;
  /** owner -> record keys. */
  private readonly recordsByOwner = new SetIndex();

  constructor(
    private readonly clock: Clock,
    limits: MapLimits,
  ) {
    this.map = new BoundedMap<StoredRecord>(
      'records',
      limits,
      (record) => record.expiresAt,
      (key, record) => {
        if (record.owner !== undefined) this.recordsByOwner.remove(record.owner, key);
      },
    );
  }

  async putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void> {
    const key = recordKey(kind, id);
    const now = this.clock.now();
    const previous = this.map.raw(key);
    if (previous?.owner !== undefined && previous.owner !== placement.owner)
      this.recordsByOwner.remove(previous.owner, key);
    this.map.set(key, { kind, value: copy(value), expiresAt: placement.expiresAt, owner: placement.owner }, now);
    if (placement.owner !== undefined) this.recordsByOwner.add(placement.owner, key);
  }

  async getRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    return copy(this.map.get(recordKey(kind, id), this.clock.now())?.value);
  }

  async takeRecord(kind: string, id: string): Promise<JsonObject | undefined> {
    const key = recordKey(kind, id);
    const record = this.map.get(key, this.clock.now());
    this.map.delete(key);
    return record?.value;
  }

  async appendToRecord(kind: string, id: string, append: RecordAppend): Promise<void> {
    const key = recordKey(kind, id);
    const now = this.clock.now();
    const live = this.map.get(key, now);
    if (!live) {
      // Absent or expired: start it (putRecord also moves the owner index off a previous owner).
      await this.putRecord(kind, id, appendedValue(append.create, append), append.placement);
      return;
    }
    // In place, so the expiry and the owner stay; items are copied in, like putRecord's value.
    live.value = appendedValue(live.value, { ...append, items: copy(append.items) });
  }

  async deleteRecord(kind: string, id: string): Promise<void> {
    this.map.delete(recordKey(kind, id));
  }

  async deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number> {
    return this.deleteOwned(owner, kind, this.clock.now());
  }

  /** deleteRecordsOwnedBy without an await, so deleteClient and deleteUser stay one step. */
  deleteOwned(owner: string, kind: string | undefined, now: number): number {
    let removed = 0;
    for (const key of this.recordsByOwner.members(owner)) {
      const record = this.map.raw(key);
      if (!record || (kind !== undefined && record.kind !== kind)) continue;
      const live = record.expiresAt > now;
      if (this.map.delete(key) && live) removed++;
    }
    return removed;
  }
}
