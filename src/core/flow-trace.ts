/**
 * Flow traces (issue 14 item 5): the steps of one authorization, with their timings and the decision at each, kept in
 * the store for a bounded time (config `trace`) under a reference id shown on the error pages.
 *
 * One mechanism: the audit stream. A trace is built by a sink subscribed to the process's Auditor (server.ts), from
 * the events of the authorization-code flow only: an event belongs to a trace by its `reference` (fixed at
 * /authorize, stored on the interaction) or its `grantId` (the code's grant id is that same reference, so token,
 * refresh and revocation events land in it too). A client's dynamic registration is kept as a small trace of its own
 * (`client:<client_id>`), which reading a trace adds when the trace names that client.
 *
 * Cost: at most one store round trip per trace per `coalesceMilliseconds` (config `trace`, one second by default), never
 * on the request's path: the sink queues the steps and a per-trace writer drains the queue in the background, that
 * long after the first queued step (the steps arriving meanwhile — a refresh's refresh.rotated and token.issued, a
 * client rotating in a tight loop — go along), as one ExpiringRecordStore.appendToRecord (an upsert on SQL, a script on Redis) that
 * creates the trace at its first step and appends without reading it, atomically, so replicas adding steps to one
 * trace at once lose none. A failed write is logged at debug and its steps dropped. client_credentials and the other
 * machine grants carry no grant id and no reference, so the hottest path (a token per machine request) writes
 * nothing.
 *
 * Because nothing is read before the append, a step's time since the trace started is computed when the trace is
 * read (readTrace). The trace's client is the one of the write that created it.
 */
import type { Logger } from 'pino';
import type { ExpiringRecordStore } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { FlowTraceRecord, FlowTraceStep, FlowTraceStoredStep } from '../model/records.js';
import type { AuditEventType, AuditRecord, AuditSink } from './audit.js';

/**
 * The events that make up a trace (the authorization-code flow and the device flow, their refreshes and their end).
 * A device's polls are not traced: a pending or slow poll names no reference (a poll every few seconds would fill it).
 */
const TRACED: ReadonlySet<AuditEventType> = new Set<AuditEventType>([
  'authorize.accepted',
  'authorize.refused',
  'signin.succeeded',
  'signin.failed',
  'signin.throttled',
  'upstream.signin',
  'consent.granted',
  'consent.denied',
  'code.issued',
  'code.replayed',
  'token.issued',
  'token.refused',
  'refresh.rotated',
  'refresh.reuse_detected',
  'grant.revoked',
  'rate_limit.hit',
  'upstream.binding_mismatch',
  'device.requested',
  'device.code_accepted',
  'device.authorized',
  'device.denied',
]);

/** The trace id of a client's registration steps. */
export function registrationTraceId(clientId: string): string {
  return `client:${clientId}`;
}

/** The trace an event belongs to, if any. */
export function traceIdOf(record: AuditRecord): string | undefined {
  if (record.type === 'client.registered' || record.type === 'client.deduplicated') {
    return record.type === 'client.deduplicated' || record.source === 'dynamic'
      ? registrationTraceId(record.clientId)
      : undefined;
  }
  if (!TRACED.has(record.type)) return undefined;
  if (record.reference !== undefined) return record.reference;
  return 'grantId' in record && typeof record.grantId === 'string' ? record.grantId : undefined;
}

const list = (values: readonly string[] | undefined) => (values && values.length > 0 ? values.join(' ') : 'none');

/** Why, in plain words. Built from the event's fields only, which never hold a secret (core/audit.ts). */
export function describeStep(record: AuditRecord): string {
  switch (record.type) {
    case 'authorize.accepted': {
      const next = { login: 'the sign-in page', consent: 'the consent page', code: 'a code at once' }[record.next];
      return `request accepted for client ${record.clientId}: scopes ${list(record.scopes)}; resources ${list(record.resources)}; next: ${next}`;
    }
    case 'authorize.refused':
      return `${record.reason} (${record.error}, ${record.shown === 'page' ? 'shown on the error page' : 'redirected to the client'})`;
    case 'signin.succeeded':
      return `signed in as ${record.subject} (${record.method}${record.amr?.length ? `, amr ${record.amr.join(' ')}` : ''}${record.upstream ? `, upstream ${record.upstream}` : ''})`;
    case 'signin.failed':
      return `sign-in failed: ${record.reason}${record.username !== undefined ? ` (username ${record.username})` : ''}`;
    case 'signin.throttled':
      return `sign-in throttled (too many failures for this ${record.key === 'ip' ? 'address' : 'account'})`;
    case 'upstream.signin':
      return record.error
        ? `upstream ${record.upstream} sign-in failed: ${record.error}`
        : `back from upstream ${record.upstream}`;
    case 'consent.granted':
      return `consent granted: scopes ${list(record.scopes)}; resources ${list(record.resources)}`;
    case 'consent.denied':
      return 'consent denied by the user: access_denied redirected to the client';
    case 'code.issued':
      return `code issued for ${record.subject}: scopes ${list(record.scopes)}; resources ${list(record.resources)}`;
    case 'code.replayed':
      return 'the code was presented a second time: its grant is revoked';
    case 'token.issued': {
      const tokens = ['access token', record.refreshToken && 'refresh token', record.idToken && 'ID token'];
      return `${record.grantType}: ${tokens.filter(Boolean).join(' + ')} issued; scopes ${list(record.scopes)}; resources ${list(record.resources)}`;
    }
    case 'token.refused':
      return `${record.grantType ?? 'token request'} refused: ${record.error}${record.reason ? ` (${record.reason})` : ''}`;
    case 'refresh.rotated':
      return 'refresh token rotated (the old one is spent)';
    case 'refresh.reuse_detected':
      return 'a spent refresh token came back: the whole grant is revoked';
    case 'grant.revoked':
      return `grant revoked (${record.reason})`;
    case 'rate_limit.hit':
      return `rate limit of ${record.endpoint} per ${record.keyKind} hit${record.retryAfterSeconds !== undefined ? `: retry after ${record.retryAfterSeconds}s` : ''}`;
    case 'upstream.binding_mismatch':
      return `the upstream tokens did not belong to this grant (${record.mismatch})`;
    case 'client.registered':
      return `client ${record.clientId} registered (${record.source}${record.clientName ? `, "${record.clientName}"` : ''}); redirect URIs ${list(record.redirectUris)}`;
    case 'client.deduplicated':
      return `re-registration answered with the existing client ${record.clientId}`;
    case 'device.requested':
      return `device authorization requested by client ${record.clientId}: scopes ${list(record.scopes)}; resources ${list(record.resources)}; waiting for the user code`;
    case 'device.code_refused':
      return `user code refused (${record.reason})`;
    case 'device.code_accepted':
      return 'user code entered: the sign-in and consent for the device follow';
    case 'device.authorized':
      return `device approved by ${record.subject}: scopes ${list(record.scopes)}; resources ${list(record.resources)}; the next poll gets the tokens`;
    case 'device.denied':
      return `device denied by ${record.subject}: its polls get access_denied`;
    default:
      return record.type;
  }
}

export interface FlowTraceOptions {
  ttlSeconds: number;
  maxSteps: number;
  /** How long a trace's first queued step waits for more before they are written together (0: after the turn). */
  coalesceMilliseconds?: number;
}

/** The store of a tenant's traces (`undefined`: the deployment's). */
export type TraceStoreOf = (tenant: string | undefined) => ExpiringRecordStore;

interface Queued {
  tenant: string | undefined;
  id: string;
  clientId?: string;
  steps: FlowTraceStoredStep[];
}

/** Most traces waiting to be written at once; beyond it new steps are dropped (a store that stopped answering). */
const MAX_QUEUED_TRACES = 10_000;

/**
 * A refused /authorize opens a trace of its own (its reference is on the error page), and anyone can send refused
 * requests naming a known client: without a cap each one is a stored record kept `ttlSeconds`. Per process and per
 * minute: this many new traces opened by a refusal per (issuer, client), and this many in all.
 */
export const REFUSED_TRACES_PER_CLIENT_PER_MINUTE = 30;
export const REFUSED_TRACES_PER_MINUTE = 600;

/**
 * The sink that writes traces: subscribe `sink` to the Auditor. Never waits and never throws; `flush()` waits for
 * what is queued (tests, shutdown).
 */
export class FlowTraceWriter {
  readonly #storeOf: TraceStoreOf;
  readonly #options: FlowTraceOptions;
  readonly #logger: Logger;
  readonly #queued = new Map<string, Queued>();
  readonly #writing = new Map<string, Promise<void>>();
  /** Steps dropped: the queue was full, their write failed, or too many refusals opened traces (see above). */
  dropped = 0;
  #refusalMinute = -1;
  #refusalsInMinute = 0;
  readonly #refusalsPerClient = new Map<string, number>();

  constructor(storeOf: TraceStoreOf, options: FlowTraceOptions, logger: Logger) {
    this.#storeOf = storeOf;
    this.#options = options;
    this.#logger = logger;
  }

  readonly sink: AuditSink = (record) => {
    const id = traceIdOf(record);
    if (id === undefined) return;
    const key = `${record.tenant ?? ''}\u0000${id}`;
    let queued = this.#queued.get(key);
    if (!queued) {
      if (this.#queued.size >= MAX_QUEUED_TRACES || (record.type === 'authorize.refused' && !this.#mayOpen(record))) {
        this.dropped++;
        return;
      }
      queued = { tenant: record.tenant, id, steps: [] };
      this.#queued.set(key, queued);
    }
    if (record.clientId !== undefined) queued.clientId ??= record.clientId;
    queued.steps.push({
      time: record.time,
      step: record.type,
      outcome: record.outcome,
      detail: describeStep(record),
      ...(record.requestId !== undefined && { requestId: record.requestId }),
    });
    this.#kick(key);
  };

  /** Whether a refusal may open a new trace now (the caps above, counted in the minute of the event's time). */
  #mayOpen(record: AuditRecord): boolean {
    const minute = Math.floor(Date.parse(record.time) / 60_000);
    if (minute !== this.#refusalMinute) {
      this.#refusalMinute = minute;
      this.#refusalsInMinute = 0;
      this.#refusalsPerClient.clear();
    }
    if (this.#refusalsInMinute >= REFUSED_TRACES_PER_MINUTE) return false;
    const client = `${record.tenant ?? ''}\u0000${record.clientId ?? ''}`;
    const opened = this.#refusalsPerClient.get(client) ?? 0;
    if (opened >= REFUSED_TRACES_PER_CLIENT_PER_MINUTE) return false;
    this.#refusalsPerClient.set(client, opened + 1);
    this.#refusalsInMinute++;
    return true;
  }

  /**
   * Starts the writer of one trace unless it runs. One at a time per trace, so a process appends a trace's steps in
   * the order they happened, and the steps queued during a write go together in the next.
   */
  #kick(key: string): void {
    if (this.#writing.has(key) || !this.#queued.has(key)) return;
    const writing = this.#drain(key).finally(() => {
      this.#writing.delete(key);
      this.#kick(key);
    });
    this.#writing.set(key, writing);
  }

  async #drain(key: string): Promise<void> {
    // The events one request emits together (refresh.rotated + token.issued, consent.granted + code.issued) and those
    // of the trace's next requests within the window go in one append: a trace is read by people, a moment later.
    const delay = this.#options.coalesceMilliseconds ?? 0;
    await new Promise((resolve) => (delay > 0 ? setTimeout(resolve, delay) : setImmediate(resolve)));
    const queued = this.#queued.get(key)!;
    this.#queued.delete(key);
    try {
      const startedAt = Date.parse(queued.steps[0]!.time);
      // Bounded from the first step: a grant refreshed for weeks does not keep its trace alive (an append to an
      // existing trace keeps its expiry, and its startedAt and clientId).
      const expiresAt = startedAt + this.#options.ttlSeconds * 1000;
      const created: Omit<FlowTraceRecord, 'steps'> & { steps: [] } = {
        id: queued.id,
        ...(queued.clientId !== undefined && { clientId: queued.clientId }),
        startedAt,
        steps: [],
        expiresAt,
      };
      await this.#storeOf(queued.tenant).appendToRecord(RECORD_KINDS.flowTrace.name, queued.id, {
        field: 'steps',
        items: queued.steps,
        maxItems: this.#options.maxSteps,
        droppedField: 'droppedSteps',
        create: created,
        placement: { expiresAt },
      });
    } catch (err) {
      this.dropped += queued.steps.length;
      this.#logger.debug({ err: (err as Error).message, steps: queued.steps.length }, 'flow trace: write failed');
    }
  }

  /** Waits until every queued step is written (or dropped). */
  async flush(): Promise<void> {
    while (this.#writing.size > 0) await Promise.all([...this.#writing.values()]);
  }
}

/** A trace as read: its steps with their time since the first, and the registration of its client when kept. */
export type FlowTraceView = Omit<FlowTraceRecord, 'steps'> & { steps: FlowTraceStep[]; registration?: FlowTraceStep[] };

/** The stored steps with `elapsedMs` (stored by traces written before appends, else from the step's time). */
function withElapsed(trace: FlowTraceRecord): FlowTraceStep[] {
  return trace.steps.map((step) => ({
    ...step,
    elapsedMs: step.elapsedMs ?? Date.parse(step.time) - trace.startedAt,
  }));
}

/** Reads the trace `id` from one scope's store (a tenant reads its own only: the store is scoped). */
export async function readTrace(store: ExpiringRecordStore, id: string): Promise<FlowTraceView | undefined> {
  const records = recordsOf(store, RECORD_KINDS.flowTrace);
  const trace = await records.get(id);
  if (!trace) return undefined;
  const view: FlowTraceView = { ...trace, steps: withElapsed(trace) };
  if (trace.clientId === undefined || id.startsWith('client:')) return view;
  const registration = await records.get(registrationTraceId(trace.clientId));
  return registration ? { ...view, registration: withElapsed(registration) } : view;
}

/** A trace as text lines (the CLI): time, +elapsed, step, outcome, detail. */
export function formatTrace(trace: FlowTraceView): string {
  const line = (s: FlowTraceStep, elapsed: string) =>
    `${s.time}  ${elapsed.padStart(9)}  ${s.step}  ${s.outcome}  ${s.detail}\n`;
  let out = `trace ${trace.id}${trace.clientId ? ` (client ${trace.clientId})` : ''}, kept until ${new Date(trace.expiresAt).toISOString()}\n`;
  for (const s of trace.registration ?? []) out += line(s, 'earlier');
  for (const s of trace.steps) out += line(s, `+${s.elapsedMs}ms`);
  if (trace.droppedSteps) out += `(${trace.droppedSteps} later step(s) not kept: trace.maxSteps)\n`;
  return out;
}
