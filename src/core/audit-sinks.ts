/**
 * Where audit events go (config `audit`): a pino stream of their own (or the main log), and an optional webhook that
 * receives them in batches. Both take an event synchronously and never make a request wait.
 */
import { createHmac } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { AuditRecord, AuditSink } from './audit.js';

/** The audit log: `log` (the main logger), `stdout`, `stderr`, `off`, or a file path (appended). */
export function auditLogSink(
  destination: string,
  mainLogger: Logger,
): { sink: AuditSink | undefined; close: () => void } {
  if (destination === 'off') return { sink: undefined, close: () => undefined };
  if (destination === 'log') {
    const log = mainLogger.child({ audit: true });
    // The main log's line has its own `time` (a second one would be a duplicate JSON key).
    return {
      sink: ({ time: _time, ...record }) => log.info(record, record.type),
      close: () => undefined,
    };
  }
  const stream =
    destination === 'stdout'
      ? pino.destination({ dest: 1, sync: false })
      : destination === 'stderr'
        ? pino.destination({ dest: 2, sync: false })
        : pino.destination({ dest: destination, append: true, mkdir: true, sync: false });
  // Its own instance: no level filtering (every event is written), no `msg`, the event's own `time`.
  const log = pino({ base: { service: 'gatehouse', stream: 'audit' }, timestamp: false, level: 'info' }, stream);
  return {
    sink: (record) => log.info(record),
    close: () => {
      try {
        stream.flushSync();
      } catch {
        // Not yet open or already closed: nothing buffered to lose.
      }
    },
  };
}

export interface AuditWebhookOptions {
  url: string;
  bearerToken?: string;
  hmacSecret?: string;
  batchSize: number;
  flushIntervalMs: number;
  queueSize: number;
  timeoutMs: number;
}

/**
 * Batches events to a webhook: a bounded queue (full = the new event is dropped and counted), one POST at a time of
 * at most `batchSize` events, every `flushIntervalMs` or as soon as a batch is full, each with a timeout. A failed
 * batch goes back to the front of the queue once (if there is room), then is dropped and counted.
 */
export class AuditWebhook {
  readonly #options: AuditWebhookOptions;
  readonly #logger: Logger;
  readonly #fetch: typeof fetch;
  #queue: AuditRecord[] = [];
  #retried = new WeakSet<AuditRecord>();
  #sending: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Events dropped: queue full, or a batch that failed twice. */
  dropped = 0;
  /** Events delivered (2xx). */
  delivered = 0;

  constructor(options: AuditWebhookOptions, logger: Logger, fetchImpl: typeof fetch = fetch) {
    this.#options = options;
    this.#logger = logger;
    this.#fetch = fetchImpl;
  }

  readonly sink: AuditSink = (record) => {
    if (this.#closed) return;
    if (this.#queue.length >= this.#options.queueSize) {
      this.dropped++;
      return;
    }
    this.#queue.push(record);
    if (this.#queue.length >= this.#options.batchSize) this.#kick();
    else this.#schedule();
  };

  /** Events waiting. */
  get queued(): number {
    return this.#queue.length;
  }

  #schedule(): void {
    if (this.#timer || this.#sending) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#kick();
    }, this.#options.flushIntervalMs);
    this.#timer.unref();
  }

  #kick(): void {
    if (this.#sending || this.#queue.length === 0) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#sending = this.#sendAll().finally(() => {
      this.#sending = undefined;
      if (this.#queue.length > 0 && !this.#closed) this.#schedule();
    });
  }

  async #sendAll(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#options.batchSize);
      const ok = await this.#post(batch);
      if (ok) {
        this.delivered += batch.length;
        continue;
      }
      const again = batch.filter((r) => !this.#retried.has(r));
      const room = Math.max(0, this.#options.queueSize - this.#queue.length);
      const kept = this.#closed ? [] : again.slice(0, room);
      for (const r of kept) this.#retried.add(r);
      this.#queue.unshift(...kept);
      const lost = batch.length - kept.length;
      if (lost > 0) {
        this.dropped += lost;
        this.#logger.warn({ dropped: lost, droppedTotal: this.dropped }, 'audit webhook: events dropped');
      }
      // Wait for the next interval rather than retrying in a tight loop.
      return;
    }
  }

  async #post(batch: AuditRecord[]): Promise<boolean> {
    const body = JSON.stringify(batch);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#options.bearerToken) headers.authorization = `Bearer ${this.#options.bearerToken}`;
    if (this.#options.hmacSecret) {
      headers['x-gatehouse-signature'] =
        'sha256=' + createHmac('sha256', this.#options.hmacSecret).update(body).digest('hex');
    }
    try {
      const res = await this.#fetch(this.#options.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return true;
      this.#logger.warn({ status: res.status, events: batch.length }, 'audit webhook refused a batch');
      return false;
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message, events: batch.length }, 'audit webhook unreachable');
      return false;
    }
  }

  /** Sends what is queued (one attempt, bounded by the timeout), then stops. */
  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#sending;
    this.#closed = true;
    if (this.#queue.length > 0) {
      this.#sending = this.#sendAll();
      await this.#sending;
    }
    this.dropped += this.#queue.length;
    this.#queue = [];
  }
}
