import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { Auditor, type AuditRecord } from './audit.js';
import { AuditWebhook, auditLogSink, type AuditWebhookOptions } from './audit-sinks.js';
import { ManualClock } from './clock.js';

const silent = pino({ level: 'silent' });
const clock = new ManualClock(Date.UTC(2030, 0, 1));
const event = (n: number): AuditRecord => ({
  type: 'client.deleted',
  clientId: `c${n}`,
  source: 'dynamic',
  time: new Date(clock.now()).toISOString(),
  outcome: 'success',
});

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A collector on loopback answering `status(n)` for the n-th request (0-based). */
async function collector(status: (n: number) => number = () => 204) {
  const received: Received[] = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = received.length;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(status(n)).end();
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/audit`, received };
}

const options = (url: string, extra: Partial<AuditWebhookOptions> = {}): AuditWebhookOptions => ({
  url,
  batchSize: 3,
  flushIntervalMs: 10,
  queueSize: 5,
  timeoutMs: 2000,
  ...extra,
});

describe('audit webhook', () => {
  it('posts batches of at most batchSize, signed and with the bearer token', async () => {
    const { url, received } = await collector();
    const hook = new AuditWebhook(
      options(url, { bearerToken: 'hook-token', hmacSecret: 'hook-hmac-secret-0123' }),
      silent,
    );
    for (let i = 0; i < 5; i++) hook.sink(event(i));
    await hook.close();
    expect(received.map((r) => (JSON.parse(r.body) as AuditRecord[]).map((e) => e.clientId))).toEqual([
      ['c0', 'c1', 'c2'],
      ['c3', 'c4'],
    ]);
    for (const r of received) {
      expect(r.headers.authorization).toBe('Bearer hook-token');
      expect(r.headers['content-type']).toBe('application/json');
      const mac = createHmac('sha256', 'hook-hmac-secret-0123').update(r.body).digest('hex');
      expect(r.headers['x-gatehouse-signature']).toBe(`sha256=${mac}`);
    }
    expect(hook.delivered).toBe(5);
    expect(hook.dropped).toBe(0);
  });

  it('a full queue drops new events and counts them; the emitter never waits', async () => {
    const { url, received } = await collector();
    const hook = new AuditWebhook(options(url, { batchSize: 100, queueSize: 5, flushIntervalMs: 60_000 }), silent);
    const auditor = new Auditor(clock, [hook.sink]);
    for (let i = 0; i < 8; i++) auditor.emit({ type: 'client.deleted', clientId: `c${i}`, source: 'dynamic' });
    expect(hook.queued).toBe(5);
    expect(hook.dropped).toBe(3);
    await hook.close();
    expect(received).toHaveLength(1);
    expect((JSON.parse(received[0]!.body) as unknown[]).length).toBe(5);
  });

  it('a refused batch is sent once more, then dropped and counted', async () => {
    const { url, received } = await collector(() => 500);
    const hook = new AuditWebhook(options(url, { batchSize: 2, flushIntervalMs: 10 }), silent);
    hook.sink(event(1));
    hook.sink(event(2));
    await expect.poll(() => hook.dropped, { timeout: 5000 }).toBe(2);
    expect(received).toHaveLength(2);
    expect(received[0]!.body).toBe(received[1]!.body);
    await hook.close();
  });

  it('an unreachable collector costs a timeout at most, and drops', async () => {
    const hook = new AuditWebhook(options('http://127.0.0.1:9/audit', { flushIntervalMs: 10 }), silent);
    hook.sink(event(1));
    await hook.close();
    expect(hook.dropped).toBe(1);
    expect(hook.delivered).toBe(0);
  });
});

describe('audit config', () => {
  it('the webhook must be https or loopback http', () => {
    expect(() => parseConfig({ audit: { webhook: { url: 'http://collector.example.com/x' } } })).toThrow(/https/);
    expect(parseConfig({ audit: { webhook: { url: 'https://collector.example.com/x' } } }).audit.webhook).toMatchObject(
      { batchSize: 100, queueSize: 10000, timeoutMs: 5000, flushIntervalMs: 1000 },
    );
    expect(parseConfig({ audit: { webhook: { url: 'http://127.0.0.1:9000/x' } } }).audit.webhook?.url).toBe(
      'http://127.0.0.1:9000/x',
    );
    expect(parseConfig({}).audit.destination).toBe('log');
  });
});

describe('audit log destination', () => {
  it('a file gets one JSON line per event, with the event fields at the top level', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-audit-')), 'sub', 'audit.log');
    const { sink, close } = auditLogSink(file, silent);
    const auditor = new Auditor(clock, [sink!]).forTenant('acme');
    auditor.emit({ type: 'rate_limit.hit', endpoint: 'register', keyKind: 'ip', retryAfterSeconds: 5 });
    auditor.emit({ type: 'client.deleted', clientId: 'x', source: 'cleanup' });
    await new Promise((r) => setTimeout(r, 50));
    close();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toMatchObject([
      {
        stream: 'audit',
        type: 'rate_limit.hit',
        tenant: 'acme',
        outcome: 'denied',
        time: '2030-01-01T00:00:00.000Z',
        retryAfterSeconds: 5,
      },
      { type: 'client.deleted', clientId: 'x', outcome: 'success' },
    ]);
  });

  it('`log` writes to the main logger with audit: true; `off` writes nothing', () => {
    const lines: string[] = [];
    const main = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    new Auditor(clock, [auditLogSink('log', main).sink!]).emit({ type: 'code.replayed', grantId: 'g' });
    expect(JSON.parse(lines[0]!)).toMatchObject({
      audit: true,
      type: 'code.replayed',
      outcome: 'denied',
      grantId: 'g',
    });
    // One `time` key: the main log's own.
    expect(lines[0]!.match(/"time":/g)).toHaveLength(1);
    expect(auditLogSink('off', main).sink).toBeUndefined();
  });
});
