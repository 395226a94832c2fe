import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { AuditRecord } from './audit.js';
import {
  FlowTraceWriter,
  readTrace,
  REFUSED_TRACES_PER_CLIENT_PER_MINUTE,
  REFUSED_TRACES_PER_MINUTE,
} from './flow-trace.js';
import type { ExpiringRecordStore, RecordAppend } from '../model/ports.js';
import { ManualClock } from './clock.js';
import { MemoryRecords } from '../storage/memory/records.js';

const T0 = Date.parse('2026-12-04T10:00:00.000Z');

/**
 * The memory store's records (the real primitive, at the steps' time); each append waits 1 ms first, so steps can
 * queue behind a write; `failing` makes every append throw.
 */
function recordStore() {
  const records = new MemoryRecords(new ManualClock(T0), { max: 100_000, logger: undefined });
  let writes = 0;
  const state = { failing: false };
  const store: ExpiringRecordStore = {
    putRecord: (...args) => records.putRecord(...args),
    getRecord: (...args) => records.getRecord(...args),
    takeRecord: (...args) => records.takeRecord(...args),
    deleteRecord: (...args) => records.deleteRecord(...args),
    deleteRecordsOwnedBy: (...args) => records.deleteRecordsOwnedBy(...args),
    appendToRecord: async (kind: string, id: string, append: RecordAppend) => {
      await new Promise((r) => setTimeout(r, 1));
      if (state.failing) throw new Error('store down');
      writes++;
      return records.appendToRecord(kind, id, append);
    },
  };
  return { store, state, writes: () => writes };
}

const at = (ms: number) => new Date(T0 + ms).toISOString();
const step = (grantId: string, ms: number, tenant?: string): AuditRecord => ({
  type: 'refresh.rotated',
  grantId,
  time: at(ms),
  outcome: 'success',
  ...(tenant && { tenant }),
});

describe('FlowTraceWriter', () => {
  it('keeps every step of one trace emitted at once, in order, bounded by maxSteps', async () => {
    const { store, writes } = recordStore();
    const writer = new FlowTraceWriter(() => store, { ttlSeconds: 60, maxSteps: 5 }, pino({ level: 'silent' }));
    for (let i = 0; i < 8; i++) writer.sink(step('g1', i * 10));
    await writer.flush();
    const trace = await readTrace(store, 'g1');
    expect(trace!.steps.map((s) => s.elapsedMs)).toEqual([0, 10, 20, 30, 40]);
    expect(trace!.droppedSteps).toBe(3);
    expect(trace!.expiresAt).toBe(Date.parse(at(0)) + 60_000);
    // Emitted in one turn: one write.
    expect(writes()).toBe(1);
    // One emitted while a write is under way goes in the next.
    writer.sink(step('g1', 100));
    await new Promise((r) => setImmediate(r));
    writer.sink(step('g1', 110));
    await writer.flush();
    expect(writes()).toBe(3);
    expect((await readTrace(store, 'g1'))!.droppedSteps).toBe(5);
  });

  it('computes elapsedMs when read, from the trace start; a trace stored with elapsedMs reads as stored', async () => {
    const { store } = recordStore();
    const writer = new FlowTraceWriter(() => store, { ttlSeconds: 60, maxSteps: 50 }, pino({ level: 'silent' }));
    writer.sink(step('g-late', 250));
    await writer.flush();
    writer.sink(step('g-late', 1_500));
    writer.sink(step('g-late', 1_700));
    await writer.flush();
    const trace = (await readTrace(store, 'g-late'))!;
    expect(trace.startedAt).toBe(T0 + 250);
    expect(trace.expiresAt).toBe(T0 + 250 + 60_000);
    expect(trace.steps.map((s) => [s.time, s.elapsedMs])).toEqual([
      [at(250), 0],
      [at(1_500), 1_250],
      [at(1_700), 1_450],
    ]);
    // Stored steps carry no elapsedMs (nothing is read before an append).
    const stored = (await store.getRecord('flow_trace', 'g-late'))!;
    expect((stored.steps as object[]).every((s) => !('elapsedMs' in s))).toBe(true);

    // A trace written before appends (elapsedMs stored) and its registration trace read unchanged.
    const old = (ms: number, elapsedMs: number) => ({
      time: at(ms),
      elapsedMs,
      step: 'x',
      outcome: 'success',
      detail: 'd',
    });
    const until = { expiresAt: T0 + 60_000 };
    await store.putRecord(
      'flow_trace',
      'client:c-old',
      { id: 'client:c-old', startedAt: T0, steps: [old(0, 0)], ...until },
      until,
    );
    await store.putRecord(
      'flow_trace',
      'g-old',
      { id: 'g-old', clientId: 'c-old', startedAt: T0 + 5, steps: [old(5, 0), old(30, 25)], ...until },
      until,
    );
    const read = (await readTrace(store, 'g-old'))!;
    expect(read.steps.map((s) => s.elapsedMs)).toEqual([0, 25]);
    expect(read.registration!.map((s) => s.elapsedMs)).toEqual([0]);
  });

  it('coalesces the steps of a trace arriving within coalesceMilliseconds into one write, other traces apart', async () => {
    const { store, writes } = recordStore();
    const writer = new FlowTraceWriter(
      () => store,
      { ttlSeconds: 60, maxSteps: 50, coalesceMilliseconds: 40 },
      pino({ level: 'silent' }),
    );
    // Five requests of one grant, each in its own turn, 5 ms apart, plus one of another grant.
    for (let i = 0; i < 5; i++) {
      writer.sink(step('g1', i * 10));
      writer.sink(step('g1', i * 10 + 1));
      await new Promise((r) => setTimeout(r, 5));
    }
    writer.sink(step('g2', 0));
    expect(writes()).toBe(0);
    await writer.flush();
    expect(writes()).toBe(2);
    expect((await readTrace(store, 'g1'))!.steps).toHaveLength(10);
    expect((await readTrace(store, 'g2'))!.steps).toHaveLength(1);
    // Once written, a later step opens a new window (a write of its own).
    writer.sink(step('g1', 100));
    await writer.flush();
    expect(writes()).toBe(3);
    expect((await readTrace(store, 'g1'))!.steps.map((s) => s.elapsedMs).at(-1)).toBe(100);
  });

  it('two replicas adding steps to one trace at once lose none (one append each, no read)', async () => {
    const { store, writes } = recordStore();
    const replicas = [0, 1].map(
      () => new FlowTraceWriter(() => store, { ttlSeconds: 60, maxSteps: 50 }, pino({ level: 'silent' })),
    );
    for (let i = 0; i < 6; i++) replicas[i % 2]!.sink(step('g-shared', i * 10));
    await Promise.all(replicas.map((writer) => writer.flush()));
    const trace = (await readTrace(store, 'g-shared'))!;
    expect(trace.steps.map((s) => s.time).sort()).toEqual([0, 10, 20, 30, 40, 50].map(at));
    expect(writes()).toBe(2);
  });

  it('writes each tenant into its own store; a failed write is dropped, counted, and never thrown', async () => {
    const a = recordStore();
    const b = recordStore();
    const writer = new FlowTraceWriter(
      (tenant) => (tenant === 'b' ? b.store : a.store),
      { ttlSeconds: 60, maxSteps: 50 },
      pino({ level: 'silent' }),
    );
    writer.sink(step('g2', 0, 'b'));
    await writer.flush();
    expect(await readTrace(b.store, 'g2')).toBeDefined();
    expect(await readTrace(a.store, 'g2')).toBeUndefined();
    b.state.failing = true;
    writer.sink(step('g3', 0, 'b'));
    await writer.flush();
    expect(writer.dropped).toBe(1);
    expect(await readTrace(b.store, 'g3')).toBeUndefined();
  });

  it('caps the traces refusals open, per client and in all, per minute; steps of open traces still go in', async () => {
    const { store } = recordStore();
    const writer = new FlowTraceWriter(() => store, { ttlSeconds: 60, maxSteps: 50 }, pino({ level: 'silent' }));
    const refused = (reference: string, clientId: string, ms: number): AuditRecord => ({
      type: 'authorize.refused',
      error: 'invalid_scope',
      reason: 'unknown scope',
      shown: 'redirect',
      reference,
      clientId,
      time: at(ms),
      outcome: 'denied',
    });
    for (let i = 0; i < REFUSED_TRACES_PER_CLIENT_PER_MINUTE + 5; i++) writer.sink(refused(`r${i}`, 'spray', i));
    // An open trace takes more steps whatever the cap.
    writer.sink(step('g-open', 0));
    writer.sink(step('g-open', 1));
    await writer.flush();
    expect(writer.dropped).toBe(5);
    expect(await readTrace(store, `r${REFUSED_TRACES_PER_CLIENT_PER_MINUTE - 1}`)).toBeDefined();
    expect(await readTrace(store, `r${REFUSED_TRACES_PER_CLIENT_PER_MINUTE}`)).toBeUndefined();
    expect((await readTrace(store, 'g-open'))!.steps).toHaveLength(2);
    // Another client is not held back by the first one's cap; the next minute opens again.
    writer.sink(refused('other-0', 'other', 100));
    writer.sink(refused('later-0', 'spray', 60_000));
    await writer.flush();
    expect(await readTrace(store, 'other-0')).toBeDefined();
    expect(await readTrace(store, 'later-0')).toBeDefined();
    // In all: many clients together stop at the deployment-wide cap.
    for (let i = 0; i < REFUSED_TRACES_PER_MINUTE + 3; i++) writer.sink(refused(`m${i}`, `c${i}`, 120_000 + i));
    await writer.flush();
    expect(writer.dropped).toBe(5 + 3);
  });
});
