/**
 * Wires a Gatehouse instance: config -> logger, store, secrets, keys, static users and clients -> HTTP app.
 * Used by the CLI (`gatehouse serve`) and by anyone embedding Gatehouse as a library.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { getOrCreateSealedSecret, sealerFromConfig, type Sealer } from './core/sealing.js';
import { systemClock, type Clock } from './core/clock.js';
import { Auditor, type AuditSink } from './core/audit.js';
import { AuditWebhook, auditLogSink } from './core/audit-sinks.js';
import { FlowTraceWriter } from './core/flow-trace.js';
import { hashAdminSecret, sealClientSecret, type ClientResolver } from './core/client-auth.js';
import { validateClientMetadata } from './core/client-metadata.js';
import { isLoopback } from './core/redirect-uri.js';
import { KeyManager, type SigningAlg } from './core/keys.js';
import { hashCost, hashPassword } from './core/password.js';
import { passwordPolicyFrom } from './core/password-policy.js';
import { TokenMinter } from './core/tokens.js';
import { ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import type { Deps } from './context.js';
import { clientRulesOf, staticClientDefaultGrants } from './grants/index.js';
import { buildApp, reservedTenantIds, type AppOptions } from './http/app.js';
import { adminTokenDigest, type AdminOptions } from './http/routes/admin.js';
import { tenantConfig } from './config/tenants.js';
import { TenantAdmin } from './tenants/admin.js';
import { TenantRegistry } from './tenants/registry.js';
import { MetadataDocumentResolver, metadataDocumentWarnings } from './clients/metadata-document.js';
import { createAssertionVerifier } from './clients/client-assertion.js';
import { trustedIssuerKeySets } from './clients/remote-jwks.js';
import { tokenDeclaration } from './endpoints/token.js';
import { CachingClientResolver, clientRecordCache } from './clients/client-cache.js';
import { ClientActivity, clientActivityCache } from './clients/client-activity.js';
import { collectClients } from './clients/client-gc.js';
import type { ExpiringCache } from './core/expiring-cache.js';
import { createStorage } from './storage/index.js';
import { GatehouseMetrics, listenMetrics } from './http/metrics.js';
import { sha256 } from './core/crypto.js';
import type { Server } from 'node:http';
import { withHashedIds } from './storage/hashed-ids.js';
import type { ClientRecord } from './model/records.js';
import type { Storage } from './model/ports.js';
import type { UpstreamProvider } from './upstream/provider.js';
import { upstreamCallbackUrl } from './authorization/upstream-sign-in.js';
import { createUpstreamProviders } from './upstream/client.js';
import { awaitingFirstUser, issueSetupLink } from './authorization/setup.js';

/** Scopes every Gatehouse knows. */
export const STANDARD_SCOPES = ['openid', 'profile', 'email', 'offline_access'];

/** The scopes a scope's server knows: the standard ones, the configured ones, and those its clients are allowed. */
export function scopesSupportedOf(config: Config): string[] {
  return [
    ...new Set([
      ...STANDARD_SCOPES,
      ...config.scopes,
      ...config.clients.flatMap((c) => (c.scope ?? '').split(' ').filter(Boolean)),
      ...config.workloadIssuers.flatMap((w) => w.scopes),
    ]),
  ];
}

/** Paths in log objects that may carry secrets: censored by pino before anything is written. */
export const LOG_REDACT_PATHS = [
  'password',
  '*.password',
  'client_secret',
  '*.client_secret',
  'code',
  '*.code',
  'code_verifier',
  '*.code_verifier',
  'refresh_token',
  '*.refresh_token',
  'access_token',
  '*.access_token',
  'id_token',
  '*.id_token',
  'registration_access_token',
  '*.registration_access_token',
  'assertion',
  '*.assertion',
  'client_assertion',
  '*.client_assertion',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  // RFC 9449: a DPoP proof is a credential for its request until it expires.
  'req.headers.dpop',
  'headers.dpop',
];

/** Creates the pino logger with redaction. */
export function createLogger(level: Config['logLevel'], destination?: pino.DestinationStream): Logger {
  return pino(
    // ISO times: readable in `journalctl`/`docker logs` and by log shippers without a conversion step.
    {
      level,
      redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'gatehouse' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export interface GatehouseOptions {
  clock?: Clock;
  logger?: Logger;
  /** Use this store instead of the one `config.storage` names (tests, embedding). */
  storage?: Storage;
  /** Wrap client lookup (e.g. Client ID Metadata Documents). */
  clientResolver?: (storage: Storage, deps: Omit<Deps, 'clients'>) => ClientResolver;
  /**
   * Use these upstream identity providers instead of those `config.upstreams` describes (tests, embedding), for the
   * deployment (`tenant` undefined) and each tenant.
   */
  upstreams?: (config: Config, tenant: string | undefined) => ReadonlyMap<string, UpstreamProvider>;
  app?: AppOptions;
  /** Also hand every audit event to this sink (tests, embedding: e.g. collect them in an array). */
  auditSink?: AuditSink;
  /** `false`: make no setup link at a first run (embedding, tests). */
  setupLink?: boolean;
}

/** A running Gatehouse: its app (not yet listening), deps, and a close function. */
export interface Gatehouse {
  app: FastifyInstance;
  deps: Deps;
  /** The tenants it serves under its issuer (loaded lazily). */
  tenants: TenantRegistry;
  /** Tenant create / change / delete, as the admin API does them (a change is seen by this server at once). */
  tenantAdmin: TenantAdmin;
  /** The process's audit emitter (`subscribe` to receive every issuer's events). */
  audit: Auditor;
  /** The audit webhook, when configured (its `dropped` / `delivered` counters). */
  auditWebhook?: AuditWebhook;
  /** The flow trace writer (config `trace.enabled`): `flush()` waits until every queued step is stored. */
  traces?: FlowTraceWriter;
  /** The metrics (config `metrics`), when on; `metricsServer` is their own listener when `metrics.port` is set. */
  metrics?: GatehouseMetrics;
  metricsServer?: Server;
  /**
   * First run (no user, no upstream): the one-time link where the first administrator is made
   * (authorization/setup.ts). A secret: print it for the operator (cli/setup-link.ts), never log it.
   */
  setupLink?: { url: string; expiresAt: number };
  close(): Promise<void>;
}

/** Builds a Gatehouse from a validated config. */
export async function createGatehouse(config: Config, options: GatehouseOptions = {}): Promise<Gatehouse> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  const backend =
    options.storage ??
    (await createStorage(config.storage, {
      clock,
      logger,
      redisKeyPrefix: config.redis.keyPrefix,
      redisSentinel: config.redis.sentinel,
      redisCluster: config.redis.cluster,
      sqlSchema: config.postgres.schema,
      sqlPoolSize: config.postgres.poolSize,
      sqlPreparedStatements: config.postgres.preparedStatements,
      maxEntries: config.memory.maxEntries,
      cleanupIntervalMs: config.cleanupIntervalSeconds * 1000,
    }));
  const metrics = metricsOf(config);
  // Session and interaction ids are bearer secrets: the store only sees their hash. With metrics, every port call
  // is timed (a proxy; none without metrics).
  const storage = metrics ? metrics.measuredStorage(withHashedIds(backend)) : withHashedIds(backend);
  const closers: (() => void)[] = [];
  const audit = createAuditor(config, clock, logger, options.auditSink);
  if (metrics) closers.push(metrics.subscribeTo(audit.auditor));
  // Flow traces (config `trace`): written from the audit stream in the background, into each issuer's own scope.
  const traces = config.trace.enabled
    ? new FlowTraceWriter(
        (tenant) => (tenant === undefined ? storage : storage.forTenant(tenant)),
        config.trace,
        logger,
      )
    : undefined;
  if (traces) closers.push(audit.auditor.subscribe(traces.sink));
  let metricsServer: Server | undefined;
  try {
    // One client cache for the process, bounded once however many tenants it serves.
    const shared: SharedCaches = {
      clients: clientRecordCache(clock),
      activity: clientActivityCache(clock),
      audit: audit.auditor,
    };
    const {
      deps,
      close: closeKeys,
      secretsInClear,
    } = await buildDeps(config, storage, clock, logger, options, undefined, shared);
    closers.push(closeKeys);
    warnSecretsInClear(logger, storage.kind, deps.sealer !== undefined, deps.keys.keysInClear(), secretsInClear);
    const issuerUrl = new URL(config.issuer);
    if (issuerUrl.protocol === 'http:' && !isLoopback(issuerUrl)) {
      logger.warn(
        { issuer: config.issuer },
        'the issuer is not https: RFC 8414 requires https outside local development',
      );
    }
    // First run: no user, no upstream. The link is for the operator's eyes (cli/setup-link.ts prints it), never a log.
    let setupLink: Gatehouse['setupLink'];
    if (options.setupLink !== false && (await awaitingFirstUser(deps))) {
      setupLink = await issueSetupLink(deps);
      logger.warn(
        { expiresAt: new Date(setupLink.expiresAt).toISOString() },
        'no users yet: open the one-time setup link printed on stderr, or run `gatehouse user add <name>`',
      );
    }
    await declareConfigTenants(config, storage, clock);
    const tenants = new TenantRegistry({
      deployment: config,
      store: storage,
      clock,
      logger,
      async build(id, tenantConfig) {
        const built = await buildDeps(
          tenantConfig,
          storage.forTenant(id),
          clock,
          logger.child({ tenant: id }),
          options,
          id,
          shared,
        );
        return { deps: built.deps, close: built.close };
      },
    });
    closers.push(() => tenants.close());
    const metricsToken =
      config.metrics.tokenSha256 ?? (config.metrics.token && sha256(config.metrics.token).toString('hex'));
    if (metrics) {
      metrics.setSources({
        storage,
        caches: { client: shared.clients, tenant: tenants },
        ...(audit.webhook && { auditWebhook: audit.webhook }),
        tenantsLoaded: () => tenants.size,
      });
      if (config.metrics.port !== undefined) {
        metricsServer = await listenMetrics(metrics, {
          host: config.metrics.host,
          port: config.metrics.port,
          ...(metricsToken && { tokenSha256: metricsToken }),
        });
        logger.info(
          { metrics: `http://${config.metrics.host}:${(metricsServer.address() as { port: number }).port}/metrics` },
          'metrics listening',
        );
      }
    }
    closers.push(scheduleClientCollection(config, storage, clock, logger, deps.clients));
    const tenantAdmin = new TenantAdmin({
      deployment: config,
      storage,
      clock,
      reserved: reservedTenantIds(config.issuer),
      changed: (id) => tenants.invalidate(id),
    });
    const app = buildApp(deps, {
      ...(metrics && {
        metrics: {
          observeRequest: metrics.observeRequest,
          scrape: () => metrics.scrape(),
          ...(config.metrics.port === undefined && metricsToken && { tokenSha256: metricsToken }),
        },
      }),
      metadataExtra: config.clientIdMetadataDocuments.enabled ? { client_id_metadata_document_supported: true } : {},
      consentWarnings: metadataDocumentWarnings,
      tenants,
      admin: adminOptions(config, tenantAdmin),
      ...options.app,
    });
    return {
      app,
      deps,
      tenants,
      tenantAdmin,
      audit: audit.auditor,
      ...(audit.webhook && { auditWebhook: audit.webhook }),
      ...(traces && { traces }),
      ...(metrics && { metrics }),
      ...(metricsServer && { metricsServer }),
      ...(setupLink && { setupLink }),
      async close() {
        for (const close of closers) close();
        if (metricsServer) await new Promise((resolve) => metricsServer!.close(resolve));
        await app.close();
        await traces?.flush();
        if (!options.storage) await backend.close();
        await audit.close();
      },
    };
  } catch (err) {
    for (const close of closers) close();
    if (metricsServer) metricsServer.close();
    if (!options.storage) await backend.close().catch(() => undefined);
    await audit.close();
    throw err;
  }
}

/**
 * The metrics of a config: on with `metrics.port` or a metrics token; without a port, the token is required (the
 * main port is public).
 */
function metricsOf(config: Config): GatehouseMetrics | undefined {
  const { port, token, tokenSha256, tenantLabel, defaultMetrics } = config.metrics;
  if (port === undefined && token === undefined && tokenSha256 === undefined) return undefined;
  return new GatehouseMetrics({ tenantLabel, defaultMetrics });
}

/**
 * The garbage collection of dynamic clients (clients/client-gc.ts), every `registration.cleanup.intervalSeconds`,
 * over the deployment's scope and then every tenant's, each with its own settings; one replica per round does the
 * work. Returns the function that stops it.
 */
function scheduleClientCollection(
  config: Config,
  storage: Storage,
  clock: Clock,
  logger: Logger,
  clients: ClientResolver,
): () => void {
  const intervalMs = config.registration.cleanup.intervalSeconds * 1000;
  const declared = new Map(config.tenants.map(({ id, ...settings }) => [id, settings]));
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      await collectClients({
        storage,
        clock,
        settings: config.registration.cleanup,
        logger,
        forget: (id) => clients.forget?.(id),
      });
      for (const tenant of await storage.listTenants()) {
        const tenantLogger = logger.child({ tenant: tenant.id });
        try {
          const settings = (tenant.source === 'config' && declared.get(tenant.id)) || tenant.settings;
          await collectClients({
            storage: storage.forTenant(tenant.id),
            clock,
            settings: tenantConfig(config, tenant.id, settings).registration.cleanup,
            logger: tenantLogger,
          });
        } catch (err) {
          tenantLogger.warn({ err }, 'client collection failed; trying again next round');
        }
      }
    } catch (err) {
      logger.warn({ err }, 'client collection failed; trying again next round');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref(); // never keeps the process alive
  return () => clearInterval(timer);
}

/** Caches every issuer of the process shares (the deployment's and its tenants'), each under keys of its own. */
interface SharedCaches {
  clients: ExpiringCache<ClientRecord>;
  /** The process's audit emitter; each issuer gets `forTenant(its id)`. */
  audit?: Auditor;
  /** The clients marked active today (clients/client-activity.ts). */
  activity: ExpiringCache<true>;
}

/**
 * The audit emitter and its sinks (config `audit`, plus the embedder's); `logger` is the main log (`destination: log`).
 * Also used by the CLI for what it changes itself (a key rotation).
 */
export function createAuditor(config: Config, clock: Clock, logger: Logger, extra: AuditSink | undefined) {
  const sinks: AuditSink[] = [];
  const log = auditLogSink(config.audit.destination, logger);
  if (log.sink) sinks.push(log.sink);
  const webhook = config.audit.webhook && new AuditWebhook(config.audit.webhook, logger);
  if (webhook) sinks.push(webhook.sink);
  if (extra) sinks.push(extra);
  return {
    auditor: new Auditor(clock, sinks),
    webhook,
    async close() {
      await webhook?.close();
      log.close();
    },
  };
}

/**
 * The deps of one issuer over `storage` (the deployment's, or a tenant's scoped view): its secrets, keys, client
 * lookup, and the config file's users and clients written to its scope.
 */
export async function buildDeps(
  config: Config,
  storage: Storage,
  clock: Clock,
  logger: Logger,
  options: Pick<GatehouseOptions, 'clientResolver' | 'upstreams'> = {},
  tenant?: string,
  shared?: SharedCaches,
): Promise<{ deps: Deps; close: () => void; secretsInClear: string[] }> {
  const sealer = sealerFromConfig(config);
  const upstreams = upstreamProviders(config, storage, sealer, { clock, logger }, options, tenant);
  const pepper = await getOrCreateSealedSecret(storage, 'client-secret-pepper', sealer);
  const cookieKey = await getOrCreateSealedSecret(storage, 'cookie-key', sealer);
  const algs = [...new Set<SigningAlg>([config.signing.alg, ...config.signing.additionalAlgs])];
  const keys = new KeyManager(storage, clock, algs, sealer);
  await keys.init(config.signing.keyRefreshSeconds * 1000);
  try {
    const secretsInClear = [pepper.inClear && 'client-secret-pepper', cookieKey.inClear && 'cookie-key'].filter(
      (n): n is string => !!n,
    );
    const scopesSupported = scopesSupportedOf(config);
    // The jti MAC key (core/access-token-mac.ts) is derived from the issuer's own stored cookie key: per tenant, and
    // nothing for the operator to set.
    const minter = new TokenMinter(config.issuer, keys, clock, config.tokens, cookieKey.value);
    const cimd = config.clientIdMetadataDocuments;
    // Object.assign, not a spread then `ca`: one shape for every tenant (see `deps` below).
    const outboundPolicy = Object.assign({}, cimd, {
      ca: cimd.trustedCaFile ? readFileSync(cimd.trustedCaFile, 'utf8') : undefined,
    });
    const verifyAssertion = createAssertionVerifier({
      issuer: config.issuer,
      tokenEndpoint: config.issuer + tokenDeclaration.path,
      clock,
      store: storage,
      policy: outboundPolicy,
      sealer,
    });
    const base = {
      config,
      tenant,
      storage,
      clock,
      keys,
      minter,
      pepper: pepper.value,
      cookieKey: cookieKey.value,
      passwordPolicy: passwordPolicyOf(config),
      logger,
      audit: (shared?.audit ?? new Auditor(clock)).forTenant(tenant),
      scopesSupported,
      verifyAssertion,
      sealer,
      trustedIssuerKeys: trustedIssuerKeySets(config, clock),
      upstreams,
      clientActivity: new ClientActivity(
        storage,
        clock,
        config.registration.cleanup,
        shared?.activity ?? clientActivityCache(clock),
        tenant ?? '',
        logger,
      ),
    };
    const stored =
      config.clientCacheSeconds > 0
        ? new CachingClientResolver(
            storage,
            config.clientCacheSeconds * 1000,
            clock,
            shared && { cache: shared.clients, scope: tenant ?? '' },
          )
        : storage;
    const clients =
      options.clientResolver?.(storage, base) ??
      (cimd.enabled
        ? new MetadataDocumentResolver(stored, outboundPolicy, clock, scopesSupported, clientRulesOf(config))
        : stored);
    // Not `{ ...base, clients }`: V8 (Node 20) gives every object made by a spread followed by a new property a map of
    // its own, so each tenant's Deps would have its own shape and every property read of deps on the request path
    // would go megamorphic (measured: 1,000 tenants served at ~0.85x of one). One literal = one shape for all tenants.
    const deps: Deps = Object.assign(base, { clients });
    await loadStaticUsers(deps);
    await loadStaticClients(deps);
    return { deps, close: () => keys.close(), secretsInClear };
  } catch (err) {
    keys.close();
    throw err;
  }
}

/**
 * The upstream identity providers of one issuer. Their tokens are kept only sealed, so with any upstream an
 * encryptionKey is required, on every store (the memory store included: one rule, and nothing in clear to forget
 * about when the store is changed later).
 */
function upstreamProviders(
  config: Config,
  storage: Storage,
  sealer: Sealer | undefined,
  services: { clock: Clock; logger: Logger },
  options: Pick<GatehouseOptions, 'upstreams'>,
  tenant: string | undefined,
): ReadonlyMap<string, UpstreamProvider> {
  const upstreams =
    options.upstreams?.(config, tenant) ??
    createUpstreamProviders(config.upstreams, {
      ...services,
      ...(sealer ? { registrations: { storage, sealer, redirectUri: upstreamCallbackUrl(config.issuer) } } : {}),
    });
  if (upstreams.size > 0 && !sealer) {
    throw new ConfigError(
      `invalid configuration:\n  encryptionKey: required with upstreams (their tokens are stored sealed; store: ${storage.kind}). Set GATEHOUSE_ENCRYPTION_KEY=$(openssl rand -base64 32)`,
    );
  }
  return upstreams;
}

/**
 * Writes the config file's tenants to the store's tenant list (settings stay in the file: each replica reads its own),
 * after checking every one's settings; an id the deployment's endpoints use is refused.
 */
async function declareConfigTenants(config: Config, storage: Storage, clock: Clock): Promise<void> {
  const reserved = reservedTenantIds(config.issuer);
  const seen = new Set<string>();
  for (const { id, ...settings } of config.tenants) {
    if (seen.has(id)) throw new ConfigError(`invalid configuration:\n  tenants: ${id} is declared twice`);
    seen.add(id);
    if (reserved.has(id)) {
      throw new ConfigError(`invalid configuration:\n  tenants[${id}]: a path of the deployment's own endpoints`);
    }
    tenantConfig(config, id, settings);
    const existing = await storage.getTenant(id);
    if (existing?.source === 'config') continue;
    const now = clock.now();
    await storage.saveTenant({
      id,
      settings: {},
      source: 'config',
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    });
  }
}

/**
 * The admin API's settings. Always built: the API answers (per scope) when an admin token is configured or a
 * config-file client may get the admin scope, and is a 404 otherwise (http/routes/admin.ts).
 */
function adminOptions(config: Config, tenants: TenantAdmin): AdminOptions {
  const tokenSha256 = config.adminTokenSha256 ?? (config.adminToken && adminTokenDigest(config.adminToken));
  return { ...(tokenSha256 && { tokenSha256 }), tenants };
}

/**
 * One warning at start when the store holds secrets in clear: without encryptionKey (not for the in-process memory
 * store), or records written before it was set.
 */
function warnSecretsInClear(logger: Logger, kind: string, encrypted: boolean, kids: string[], secrets: string[]): void {
  if (!encrypted) {
    if (kind === 'memory') return;
    logger.warn(
      { storage: kind },
      'encryptionKey is not set: signing keys, the cookie key and the client-secret pepper are stored in clear, so anyone who can read the store can mint access tokens and forge session cookies. Set encryptionKey (GATEHOUSE_ENCRYPTION_KEY=$(openssl rand -base64 32))',
    );
    return;
  }
  if (kids.length === 0 && secrets.length === 0) return;
  logger.warn(
    { signingKeysInClear: kids, secretsInClear: secrets },
    'the store still holds values written in clear before encryptionKey was set: a reader of the store can use them. `gatehouse key rotate` replaces clear signing keys (they leave once retired); the cookie key and pepper are kept (replacing them would sign everyone out / void client secrets)',
  );
}

/** The policy new passwords are held to; the deny list is read once, at start. */
export function passwordPolicyOf(config: Config) {
  try {
    return passwordPolicyFrom(config.passwordPolicy, (path) => readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`passwordPolicy.denyListFile: cannot read it (${(err as Error).message})`);
  }
}

/** Upserts the config file's users; a plaintext password is hashed and logged as a warning. */
async function loadStaticUsers(deps: Deps): Promise<void> {
  const { config, storage, clock, logger } = deps;
  for (const u of config.users) {
    const existing = await storage.getUserByUsername(u.username);
    let passwordHash = u.password_hash;
    if (passwordHash === undefined) {
      logger.warn(
        { username: u.username },
        'config user has a plaintext password; use password_hash (`gatehouse hash-password`)',
      );
      passwordHash = await hashPassword(u.password!, config.passwordHashing.log2N);
    } else if (hashCost(passwordHash) !== config.passwordHashing.log2N) {
      // Rehashed at the first sign-in, but reset by every start: until then its timing differs from unknown users'.
      logger.warn(
        { username: u.username, log2N: hashCost(passwordHash) },
        'config user password_hash is not at passwordHashing.log2N; make it again with `gatehouse hash-password`',
      );
    }
    const now = clock.now();
    // What the user set up themselves (second factors) and an administrator's mfa requirement survive a restart.
    const { mfaRequired, totp, passkeys, recoveryCodes } = existing ?? {};
    await storage.saveUser({
      ...(mfaRequired !== undefined && { mfaRequired }),
      ...(totp && { totp }),
      ...(passkeys && { passkeys }),
      ...(recoveryCodes && { recoveryCodes }),
      // Deterministic, so replicas starting together upsert the same user instead of racing on the username.
      id: u.sub ?? existing?.id ?? staticUserId(u.username, deps.tenant),
      username: u.username,
      passwordHash,
      email: u.email,
      emailVerified: u.email !== undefined,
      name: u.name,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    });
  }
}

/** A stable `sub` for a config user without one; a tenant's differs from another's with the same username. */
function staticUserId(username: string, tenant: string | undefined): string {
  const name = tenant === undefined ? username : `${tenant}/${username}`;
  return createHash('sha256').update(`gatehouse static user:${name}`).digest('base64url').slice(0, 22);
}

/** Upserts the config file's clients, validated by the same rules as registration. */
async function loadStaticClients(deps: Deps): Promise<void> {
  const { config, storage, clock, logger, pepper, sealer } = deps;
  for (const c of config.clients) {
    const field = `clients[${c.client_id}]`;
    if (c.token_endpoint_auth_method === 'client_secret_jwt') checkSecretJwtClient(c, field, sealer);
    const hasRedirects = (c.redirect_uris ?? []).length > 0;
    const grantTypes = c.grant_types ?? staticClientDefaultGrants(hasRedirects, config);
    const method = c.token_endpoint_auth_method ?? (c.client_secret ? 'client_secret_basic' : 'none');
    let metadata;
    try {
      metadata = validateClientMetadata(
        { ...c, grant_types: grantTypes, token_endpoint_auth_method: method },
        deps.scopesSupported,
        config.strictScopes,
        clientRulesOf(config),
        { clientSecretJwt: sealer !== undefined },
      );
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  ${field}: ${(err as Error).message}`);
    }
    // A private_key_jwt client proves itself with its own key (jwks / jwks_uri): it has no secret, like a public one.
    const secretless = method === 'none' || method === 'private_key_jwt';
    if (!secretless && !c.client_secret)
      throw new ConfigError(`invalid configuration:\n  ${field}.client_secret: required for ${method}`);
    if (secretless && c.client_secret)
      throw new ConfigError(
        `invalid configuration:\n  ${field}.client_secret: a ${method === 'none' ? 'public' : 'private_key_jwt'} client has no secret`,
      );
    if (c.client_secret !== undefined && c.client_secret.length < 16) {
      throw new ConfigError(
        `invalid configuration:\n  ${field}.client_secret: too short (at least 16 characters; 32+ random characters recommended)`,
      );
    }
    if (c.client_secret !== undefined && c.client_secret.length < 32) {
      logger.warn(
        { clientId: c.client_id },
        'config client secret is shorter than 32 characters; stored with scrypt, which slows every token request of this client',
      );
    }
    const existing = await storage.getClient(c.client_id);
    const now = clock.now();
    const record: ClientRecord = {
      ...metadata,
      clientId: c.client_id,
      clientSecretHash: c.client_secret ? await hashAdminSecret(c.client_secret, pepper) : undefined,
      clientSecretSealed:
        method === 'client_secret_jwt' ? sealClientSecret(sealer!, c.client_id, c.client_secret!) : undefined,
      source: 'static',
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      clientSecretExpiresAt: 0,
    };
    await storage.saveClient(record);
  }
}

/**
 * A config-file client_secret_jwt client needs what checking its HS256 assertions takes: the secret kept sealed, so
 * an encryptionKey, and a secret of at least 256 bits (RFC 7518 §3.2).
 */
function checkSecretJwtClient(c: Config['clients'][number], field: string, sealer: Sealer | undefined): void {
  if (!sealer) {
    throw new ConfigError(
      `invalid configuration:\n  ${field}.token_endpoint_auth_method: client_secret_jwt needs encryptionKey (the server keeps the secret sealed to check HS256 assertions)`,
    );
  }
  if (c.client_secret !== undefined && Buffer.byteLength(c.client_secret) < 32) {
    throw new ConfigError(
      `invalid configuration:\n  ${field}.client_secret: client_secret_jwt needs a secret of at least 32 bytes (the HS256 key, RFC 7518 §3.2)`,
    );
  }
}
