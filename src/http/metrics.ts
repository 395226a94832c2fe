/**
 * Prometheus metrics (config `metrics`, prom-client): off unless configured, and then nothing of it runs on a request
 * path beyond a counter increment and a histogram observation per request and per store call.
 *
 * Served on a listener of its own (`metrics.port`, `metrics.host`, default 127.0.0.1) or at `/metrics` on the main
 * port behind a bearer token (`metrics.token` / `metrics.tokenSha256`, compared by SHA-256 in constant time).
 *
 * Labels are bounded: routes are Fastify's route patterns (a tenant's request is routed at the deployment's path, so
 * no tenant id, client id or raw URL becomes a label), status codes, grant types, OAuth error codes, event types, store
 * operation names. A `tenant` label (unbounded: one series per tenant) is opt-in (`metrics.tenantLabel`).
 *
 * Counters of what happened (tokens issued per grant type, refresh-token reuse, rate-limit hits, every audit event by
 * type and outcome) are derived from the audit event stream (core/audit.ts), so a new audit event type is counted
 * without a line here.
 */
import { createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditRecord, Auditor } from '../core/audit.js';
import { safeEqual, sha256 } from '../core/crypto.js';
import { bearerToken } from '../core/params.js';
import type { Storage } from '../model/ports.js';
import type { ClientSource } from '../model/records.js';
import { scopeOf } from './routes/context.js';

/** A cache whose hits and misses are counted (core/expiring-cache.ts, the tenant registry). */
export interface CountedCache {
  readonly hits: number;
  readonly misses: number;
}

export interface MetricsSources {
  /** The deployment's store (unwrapped or wrapped alike): registered clients and active signing keys on scrape. */
  storage: Pick<Storage, 'countClients' | 'listClients' | 'listSigningKeys'>;
  /** Caches by name (`client`, `tenant`): hit and miss counts read on scrape. */
  caches: Record<string, CountedCache>;
  /** The audit webhook's counters, when one is configured. */
  auditWebhook?: { readonly dropped: number; readonly delivered: number; readonly queued: number };
  /** How many tenants are loaded now. */
  tenantsLoaded?: () => number;
}

/** Every ClientRecord source, so each has a series (0 included) from the first scrape. */
const CLIENT_SOURCES: readonly ClientSource[] = ['static', 'dynamic', 'metadata_document', 'admin'];

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The route of a request as a label: its pattern, or `unmatched` (404s never name the path they were sent to). */
function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/** One Gatehouse's metrics: its own registry (several instances in one process do not collide). */
export class GatehouseMetrics {
  readonly registry = new Registry();
  readonly #tenantLabel: boolean;
  readonly #requests: Counter;
  readonly #duration: Histogram;
  readonly #storeDuration: Histogram<'operation'>;
  readonly #storeErrors: Counter<'operation'>;
  readonly #auditEvents: Counter;
  readonly #tokens: Counter;
  readonly #tokenRefusals: Counter<'grant_type' | 'error'>;
  readonly #refreshReuse: Counter;
  readonly #rateLimitHits: Counter<'endpoint' | 'key'>;
  #sources: MetricsSources | undefined;

  constructor(options: { tenantLabel: boolean; defaultMetrics: boolean }) {
    this.#tenantLabel = options.tenantLabel;
    const tenant = options.tenantLabel ? (['tenant'] as const) : [];
    const registers = [this.registry];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.#requests = new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status', ...tenant],
      registers,
    });
    this.#duration = new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method and route pattern',
      labelNames: ['method', 'route', ...tenant],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.#storeDuration = new Histogram({
      name: 'gatehouse_store_operation_duration_seconds',
      help: 'Time of a store call, by operation (errors included)',
      labelNames: ['operation'],
      buckets: STORE_BUCKETS,
      registers,
    });
    this.#storeErrors = new Counter({
      name: 'gatehouse_store_errors_total',
      help: 'Store calls that failed, by operation',
      labelNames: ['operation'],
      registers,
    });
    this.#auditEvents = new Counter({
      name: 'gatehouse_audit_events_total',
      help: 'Audit events, by type and outcome (core/audit.ts lists the types)',
      labelNames: ['type', 'outcome', ...tenant],
      registers,
    });
    this.#tokens = new Counter({
      name: 'gatehouse_tokens_issued_total',
      help: 'Token responses issued, by grant type',
      labelNames: ['grant_type', ...tenant],
      registers,
    });
    this.#tokenRefusals = new Counter({
      name: 'gatehouse_token_refusals_total',
      help: 'Token requests refused, by grant type and OAuth error code',
      labelNames: ['grant_type', 'error'],
      registers,
    });
    this.#refreshReuse = new Counter({
      name: 'gatehouse_refresh_token_reuse_total',
      help: 'Spent refresh tokens presented again (their grant was revoked)',
      labelNames: [...tenant],
      registers,
    });
    this.#rateLimitHits = new Counter({
      name: 'gatehouse_rate_limit_hits_total',
      help: 'Requests refused by a rate limit or the login throttle, by endpoint and what the limit counts',
      labelNames: ['endpoint', 'key'],
      registers,
    });
    const sources = () => this.#sources;
    const caches = new Map<string, { hits: number; misses: number }>();
    new Counter({
      name: 'gatehouse_cache_requests_total',
      help: 'Cache lookups, by cache and result (hit or miss)',
      labelNames: ['cache', 'result'],
      registers,
      collect() {
        for (const [name, cache] of Object.entries(sources()?.caches ?? {})) {
          // Counters only go up: add what happened since the last scrape.
          const last = caches.get(name) ?? { hits: 0, misses: 0 };
          this.inc({ cache: name, result: 'hit' }, cache.hits - last.hits);
          this.inc({ cache: name, result: 'miss' }, cache.misses - last.misses);
          caches.set(name, { hits: cache.hits, misses: cache.misses });
        }
      },
    });
    // By source: the store counts only the total, so the breakdown comes from listing the clients, done again only
    // when the total changed or a minute passed (a scrape every few seconds must not read 50,000 rows each time).
    let bySource: { total: number; at: number; counts: Map<string, number> } | undefined;
    new Gauge({
      name: 'gatehouse_registered_clients',
      help: "Clients in the deployment's store, by source (static, dynamic, metadata_document, admin)",
      labelNames: ['source'],
      registers,
      async collect() {
        const s = sources();
        if (!s) return;
        // A store that is down leaves the last value (and the store error counter says why): the scrape still answers.
        const total = await s.storage.countClients().catch(() => undefined);
        if (total === undefined) return;
        const now = Date.now();
        if (!bySource || bySource.total !== total || now - bySource.at > 60_000) {
          const clients = await s.storage.listClients().catch(() => undefined);
          if (!clients) return;
          const counts = new Map<string, number>(CLIENT_SOURCES.map((source) => [source, 0]));
          for (const c of clients) counts.set(c.source, (counts.get(c.source) ?? 0) + 1);
          bySource = { total, at: now, counts };
        }
        this.reset();
        for (const [source, n] of bySource.counts) this.set({ source }, n);
      },
    });
    new Gauge({
      name: 'gatehouse_signing_keys',
      help: "The deployment's signing keys, by algorithm and status (active sign; retired are still published)",
      labelNames: ['alg', 'status'],
      registers,
      async collect() {
        const s = sources();
        if (!s) return;
        const keys = await s.storage.listSigningKeys().catch(() => undefined);
        if (!keys) return;
        this.reset();
        for (const key of keys) this.inc({ alg: key.alg, status: key.status });
      },
    });
    new Gauge({
      name: 'gatehouse_tenants_loaded',
      help: 'Tenants whose deps are loaded in this process',
      registers,
      collect() {
        const loaded = sources()?.tenantsLoaded;
        if (loaded) this.set(loaded());
      },
    });
    const webhookState = { dropped: 0, delivered: 0 };
    new Counter({
      name: 'gatehouse_audit_webhook_events_total',
      help: 'Audit events sent to the webhook (delivered) or given up (dropped: queue full or sending failed)',
      labelNames: ['result'],
      registers,
      collect() {
        const hook = sources()?.auditWebhook;
        if (!hook) return;
        this.inc({ result: 'delivered' }, hook.delivered - webhookState.delivered);
        this.inc({ result: 'dropped' }, hook.dropped - webhookState.dropped);
        webhookState.dropped = hook.dropped;
        webhookState.delivered = hook.delivered;
      },
    });
  }

  /** What the scrape-time gauges read. */
  setSources(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** Counts every audit event of `auditor` (and of every tenant's emitter: they share its sinks). */
  subscribeTo(auditor: Auditor): () => void {
    return auditor.subscribe((record) => this.#onAudit(record));
  }

  #tenant(tenant: string | undefined): Record<string, string> {
    return this.#tenantLabel ? { tenant: tenant ?? '' } : {};
  }

  #onAudit(record: AuditRecord): void {
    const tenant = this.#tenant(record.tenant);
    this.#auditEvents.inc({ type: record.type, outcome: record.outcome, ...tenant });
    switch (record.type) {
      case 'token.issued':
        this.#tokens.inc({ grant_type: record.grantType, ...tenant });
        break;
      case 'token.refused':
        this.#tokenRefusals.inc({ grant_type: record.grantType ?? 'unknown', error: record.error });
        break;
      case 'refresh.reuse_detected':
        this.#refreshReuse.inc(tenant);
        break;
      case 'rate_limit.hit':
        this.#rateLimitHits.inc({ endpoint: record.endpoint, key: record.keyKind });
        break;
      case 'signin.throttled':
        this.#rateLimitHits.inc({ endpoint: 'login', key: record.key });
        break;
      default:
        break;
    }
  }

  /** The `onResponse` hook counting and timing every request. */
  observeRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const route = routeOf(request);
    const tenant = this.#tenantLabel ? { tenant: scopeOf(request)?.deps.tenant ?? '' } : {};
    this.#requests.inc({ method: request.method, route, status: String(reply.statusCode), ...tenant });
    this.#duration.observe({ method: request.method, route, ...tenant }, reply.elapsedTime / 1000);
  };

  /**
   * `storage` measured: every port call's time and failures by operation name, for the views of tenants too
   * (`forTenant`). Only built when metrics are on; without, the store is used as it is.
   */
  measuredStorage<S extends Storage>(storage: S): S {
    return measure(storage, this.#storeDuration, this.#storeErrors);
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Methods of a store that are not calls to measure. */
const UNMEASURED = new Set<PropertyKey>(['constructor', 'close', 'then']);

function measure<S extends Storage>(storage: S, duration: Histogram<'operation'>, errors: Counter<'operation'>): S {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(storage, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || UNMEASURED.has(prop) || typeof prop === 'symbol') return value;
      let fn = wrapped.get(prop);
      if (fn) return fn;
      const operation = prop;
      const original = value as (...args: unknown[]) => unknown;
      if (prop === 'forTenant') {
        fn = (id: string) => measure(original.call(target, id) as Storage, duration, errors);
      } else {
        fn = (...args: unknown[]) => {
          const start = performance.now();
          const done = (failed: boolean) => {
            duration.observe({ operation }, (performance.now() - start) / 1000);
            if (failed) errors.inc({ operation });
          };
          let result: unknown;
          try {
            result = original.apply(target, args);
          } catch (err) {
            done(true);
            throw err;
          }
          if (result instanceof Promise) {
            return result.then(
              (v: unknown) => {
                done(false);
                return v;
              },
              (err: unknown) => {
                done(true);
                throw err;
              },
            );
          }
          done(false);
          return result;
        };
      }
      wrapped.set(prop, fn);
      return fn;
    },
  });
}

/** The bearer check of `/metrics` on the main port: the token's SHA-256 (hex) compared in constant time. */
export function metricsAuthorized(authorization: string | undefined, tokenSha256: string): boolean {
  const token = bearerToken(authorization);
  return token !== undefined && safeEqual(sha256(token).toString('hex'), tokenSha256);
}

/** `GET <issuer path>/metrics` on the main app (`metrics` is a reserved first segment: never a tenant's path). */
export function metricsRoute(
  app: FastifyInstance,
  path: string,
  metrics: Pick<GatehouseMetrics, 'scrape'>,
  tokenSha256: string,
): void {
  app.get(path, async (request, reply) => {
    // A tenant's path (`/<tenant>/metrics`) has none: the metrics are the deployment's.
    if (scopeOf(request).deps.tenant !== undefined) {
      return reply
        .code(404)
        .type('application/json')
        .send('{"error":"not_found","error_description":"no such endpoint"}');
    }
    if (!metricsAuthorized(request.headers.authorization, tokenSha256)) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="gatehouse-metrics"')
        .header('cache-control', 'no-store')
        .type('application/json')
        .send('{"error":"invalid_token","error_description":"the metrics token is missing or wrong"}');
    }
    const { contentType, body } = await metrics.scrape();
    return reply.header('cache-control', 'no-store').type(contentType).send(body);
  });
}

/**
 * The metrics listener of its own (`metrics.port`): `GET /metrics` only, with the token when one is configured. Plain
 * node:http: nothing of the main app (hooks, tenants) runs for a scrape.
 */
export async function listenMetrics(
  metrics: GatehouseMetrics,
  options: { host: string; port: number; tokenSha256?: string },
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    if (options.tokenSha256 && !metricsAuthorized(req.headers.authorization, options.tokenSha256)) {
      res
        .writeHead(401, { 'www-authenticate': 'Bearer realm="gatehouse-metrics"', 'content-type': 'application/json' })
        .end('{"error":"invalid_token"}');
      return;
    }
    metrics.scrape().then(
      ({ contentType, body }) =>
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body),
      () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
