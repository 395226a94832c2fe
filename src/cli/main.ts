/**
 * The `gatehouse` command: serve | hash-password | key rotate | key list | client list |
 * user add / set-password / sign-out / mfa / mfa-reset / list | tenant list / show / add / update / remove |
 * upstream list / links.
 * Argument parsing with node:util parseArgs (no dependency).
 */
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import pino from 'pino';
import { ConfigError, loadConfig } from '../config/load.js';
import { systemClock } from '../core/clock.js';
import { generateSigningKey, openPrivateJwk, sealSigningKey } from '../core/keys.js';
import { sealerFromConfig } from '../core/sealing.js';
import { hashPassword } from '../core/password.js';
import { passwordProblem } from '../core/password-policy.js';
import { randomId } from '../core/crypto.js';
import { createAuditor, createGatehouse, createLogger, passwordPolicyOf } from '../server.js';
import { reservedTenantIds } from '../http/app.js';
import { printSetupLink, setupLinkCommand } from './setup-link.js';
import { TenantAdmin, TenantAdminError } from '../tenants/admin.js';
import { tenantConfig } from '../config/tenants.js';
import { isUpstreamOnly } from '../authorization/upstream-users.js';
import { createUpstreamProvider } from '../upstream/client.js';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { TRACE_USAGE, traceCommand } from './trace.js';
import { StorageUnavailableError } from '../model/errors.js';
import {
  createStorage,
  describeStorage,
  StorageLockedError,
  storageKind,
  UnknownStorageError,
} from '../storage/index.js';

const USAGE = `Usage: gatehouse <command>

Commands:
  serve                   start the authorization server (what \`npm start\` runs; config: GATEHOUSE_CONFIG,
                          PORT, HOST, GATEHOUSE_ISSUER, GATEHOUSE_STORAGE, GATEHOUSE_LOG_LEVEL)
  hash-password           read a password from stdin, print an scrypt hash for the config file
                          (at the config's passwordHashing.log2N, GATEHOUSE_CONFIG)
  key rotate [--alg A]    add a new active signing key; the old one stays published until its tokens expire
  key list                list signing keys
  client list             list registered clients
  user add <username> [--email E] [--name N]
                          add or update a user (password from stdin, held to passwordPolicy)
  user set-password <username>
                          reset a user's password (from stdin) and end all their sessions
  user sign-out <username>
                          end every browser session of the user (sign out everywhere)
  user mfa <username> --require | --no-require
                          require (or stop requiring) a second factor at the user's sign-in; without one they
                          set up TOTP or a passkey at their next sign-in (server-wide: config mfa.required)
  user mfa-reset <username>
                          remove the user's second factors (TOTP, passkeys, recovery codes) and end their
                          sessions: for a user who lost them
  user list               list users
  tenant list             list tenants (id, where declared, issuer)
  tenant show <id>        print a tenant as JSON
  tenant add <id> [--settings FILE]
                          create a tenant, issuer <GATEHOUSE_ISSUER>/<id>; FILE (or - for stdin) holds its settings
                          as JSON (the config keys a tenant may set)
  tenant update <id> --settings FILE
                          replace a tenant's settings; replicas pick them up within tenantRefreshSeconds
  tenant remove <id>      delete a tenant and everything it owns (keys, clients, users, grants, sessions...)
  upstream list [--no-check]
                          list upstream identity providers (id, name, type, issuer, discovery: ok, failed, or
                          static for oauth2; --no-check skips the discovery request)
  upstream links          list users made by upstream sign-ins (id, username, upstream, email)
  setup-link              print a new one-time link for creating the first administrator (no users yet)
${TRACE_USAGE}  help                    print this text (also --help, -h)

Options:
  --tenant <id>           run key, client, user and upstream commands on that tenant instead of the deployment's
                          own issuer

Without a command this text goes to stderr and the exit code is 2. Errors are one line; GATEHOUSE_LOG_LEVEL=debug
adds the stack trace.
`;

/** A failure with a known cause and fix, reported as one line (the cause's stack only at debug level). */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** The errors along `err`'s cause chain (and an AggregateError's parts), outermost first. */
function causes(err: unknown): Error[] {
  const out: Error[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 20) {
    const e = queue.shift();
    if (!(e instanceof Error) || out.includes(e)) continue;
    out.push(e);
    if (e instanceof AggregateError) queue.push(...(e.errors as unknown[]));
    queue.push(e.cause);
  }
  return out;
}

function codeOf(e: Error): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Where a storage URL points, for messages: host:port (credentials never appear). */
function storageAddress(url: string, defaultPort: number): { host: string; port: string; db: string } {
  try {
    const parsed = new URL(url);
    return {
      host: parsed.hostname || parsed.searchParams.get('host') || 'localhost',
      port: parsed.port || String(defaultPort),
      db: decodeURIComponent(parsed.pathname.slice(1)),
    };
  } catch {
    return { host: 'localhost', port: String(defaultPort), db: '' };
  }
}

const FIX_STORAGE = 'GATEHOUSE_STORAGE (config: storage)';

/**
 * Turns a start-up failure with a known cause (store unreachable, missing database, refused login, port in use,
 * embedded store locked) into one line that names the setting and the fix; undefined for anything else.
 */
export function describeStartupFailure(err: unknown, config: Config): string | undefined {
  const chain = causes(err);
  const codes = chain.map(codeOf).filter((c): c is string => c !== undefined);
  const innermost = chain[chain.length - 1];
  const reason = innermost?.message || chain[0]?.message || String(err);
  const locked = chain.find((e): e is StorageLockedError => e instanceof StorageLockedError);
  if (locked) {
    return `the embedded store in ${locked.directory} is in use by process ${locked.owner}: stop that process first, or set ${FIX_STORAGE} to another directory, or to PostgreSQL or Redis to share one store between processes`;
  }
  const listen = chain.find((e) => (e as { syscall?: unknown }).syscall === 'listen');
  if (listen) {
    const where = `${config.host}:${config.port}`;
    switch (codeOf(listen)) {
      case 'EADDRINUSE':
        return `port ${config.port} on ${config.host} is already in use: stop the other process or set PORT (config: port) to a free port`;
      case 'EACCES':
        return `not allowed to listen on ${where}: set PORT (config: port) to a port above 1023, or let the process bind low ports`;
      case 'EADDRNOTAVAIL':
        return `cannot listen on ${where}: ${config.host} is not an address of this machine; set HOST (config: host), e.g. 0.0.0.0 for every interface`;
      default:
        return `cannot listen on ${where} (${listen.message}): check PORT and HOST (config: port, host)`;
    }
  }
  let kind: ReturnType<typeof storageKind>;
  try {
    kind = storageKind(config.storage);
  } catch {
    return undefined;
  }
  if (kind === 'postgres') {
    const { host, port, db } = storageAddress(config.storage, 5432);
    if (codes.includes('3D000')) {
      return `PostgreSQL database "${db}" does not exist on ${host}:${port}: create it (createdb -h ${host} -p ${port} ${db}) or name an existing database in ${FIX_STORAGE}`;
    }
    if (codes.includes('28P01') || codes.includes('28000')) {
      return `PostgreSQL on ${host}:${port} refused the login (${reason}): fix the user or password in ${FIX_STORAGE}`;
    }
    if (codes.includes('42501')) {
      return `the PostgreSQL user may not create Gatehouse's tables (${reason}): grant it CREATE on database "${db}", or set postgres.schema to a schema it owns`;
    }
    if (chain.some((e) => e instanceof StorageUnavailableError)) {
      return `cannot connect to PostgreSQL at ${host}:${port} (${reason}): start PostgreSQL there or fix the address in ${FIX_STORAGE}`;
    }
  }
  if (kind === 'redis') {
    const { host, port } = storageAddress(config.storage, 6379);
    const where = config.redis.cluster
      ? `Redis Cluster ${config.redis.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`
      : config.redis.sentinel
        ? `Redis via Sentinel "${config.redis.sentinel.name}" at ${config.redis.sentinel.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`
        : `Redis at ${host}:${port}`;
    if (/WRONGPASS|NOAUTH|NOPERM/.test(reason)) {
      return `${where} refused the login (${reason}): fix the user or password in ${FIX_STORAGE}`;
    }
    if (chain.some((e) => e instanceof StorageUnavailableError)) {
      const setting = config.redis.cluster ? 'redis.cluster' : config.redis.sentinel ? 'redis.sentinel' : FIX_STORAGE;
      return `cannot connect to ${where} (${reason}): start Redis there or fix the address in ${setting}`;
    }
  }
  return undefined;
}

/** True when GATEHOUSE_LOG_LEVEL (or the config) asks for debug output: stack traces are shown then. */
export function debugOutput(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GATEHOUSE_LOG_LEVEL === 'debug' || env.GATEHOUSE_LOG_LEVEL === 'trace';
}

/** Runs `fn`; a failure with a known cause becomes a {@link StartupError} naming the setting and the fix. */
async function explained<T>(config: Config, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const message = describeStartupFailure(err, config);
    if (message === undefined) throw err;
    throw new StartupError(message, { cause: err });
  }
}

/** The tenant `--tenant` names: key, client and user commands then work in its scope. */
let tenantOption: string | undefined;

/** Takes `--tenant <id>` / `--tenant=<id>` out of argv (it may stand anywhere). */
function takeTenantOption(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--tenant') {
      tenantOption = argv[++i];
      if (!tenantOption) throw new ConfigError('--tenant needs a tenant id');
    } else if (arg.startsWith('--tenant=')) tenantOption = arg.slice('--tenant='.length);
    else out.push(arg);
  }
  return out;
}

/** The store, scoped to `--tenant` when given (which must exist); closing it closes the deployment's store. */
async function openStore() {
  const { config, storage: root } = await openDeploymentStore();
  if (tenantOption === undefined) return { config, storage: root };
  try {
    if (!(await root.getTenant(tenantOption)))
      throw new ConfigError(`no tenant ${tenantOption} (gatehouse tenant list)`);
  } catch (err) {
    await root.close();
    throw err;
  }
  const view = root.forTenant(tenantOption);
  const storage = new Proxy(view, {
    get(target, prop) {
      if (prop === 'close') return () => root.close();
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { config, storage };
}

/** The deployment's store (default scope). */
async function openDeploymentStore() {
  const config = loadConfig();
  const logger = createLogger('warn');
  const storage = await explained(config, () =>
    createStorage(config.storage, {
      clock: systemClock,
      logger,
      redisKeyPrefix: config.redis.keyPrefix,
      redisSentinel: config.redis.sentinel,
      redisCluster: config.redis.cluster,
      sqlSchema: config.postgres.schema,
      cleanupIntervalMs: 0,
    }),
  );
  return { config, storage };
}

async function readSecretFromStdin(prompt: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  if (process.stdin.isTTY) process.stderr.write(prompt);
  const line = await new Promise<string>((resolve) => rl.once('line', resolve).once('close', () => resolve('')));
  rl.close();
  return line.replace(/\r?\n$/, '');
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const gatehouse = await explained(config, () => createGatehouse(config));
  const { app, deps } = gatehouse;
  await explained(config, async () => {
    try {
      await app.listen({ port: config.port, host: config.host });
    } catch (err) {
      await gatehouse.close().catch(() => undefined); // releases the store (and the embedded store's lock)
      throw err;
    }
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  deps.logger.info(
    { issuer: config.issuer, port, host: config.host, storage: describeStorage(config.storage) },
    'gatehouse listening',
  );
  printSetupLink(gatehouse);
  const stop = async (signal: string) => {
    deps.logger.info({ signal }, 'shutting down');
    await gatehouse.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

/** A new password from stdin, refused (one line, exit 1) when the policy says no. */
async function newPasswordFromStdin(config: Config, username: string): Promise<string> {
  const password = await readSecretFromStdin('Password: ');
  if (!password) throw new ConfigError('no password given on stdin');
  const problem = passwordProblem(password, passwordPolicyOf(config), username);
  if (problem) throw new ConfigError(`password refused: ${problem} (passwordPolicy)`);
  return password;
}

async function userCommand(sub: string | undefined, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      require: { type: 'boolean' },
      'no-require': { type: 'boolean' },
    },
    allowPositionals: true,
  });
  const username = positionals[0];
  if (sub === 'list') {
    const { storage } = await openStore();
    try {
      for (const u of await storage.listUsers()) {
        process.stdout.write(`${u.id}\t${u.username}\t${u.email ?? ''}\t${u.name ?? ''}\n`);
      }
    } finally {
      await storage.close();
    }
    return 0;
  }
  if (!username || !['add', 'set-password', 'sign-out', 'mfa', 'mfa-reset'].includes(sub ?? '')) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (sub === 'mfa' || sub === 'mfa-reset') return userMfaCommand(sub, username, values);
  const config = loadConfig();
  const password = sub === 'sign-out' ? undefined : await newPasswordFromStdin(config, username);
  const { storage } = await openStore();
  try {
    const existing = await storage.getUserByUsername(username);
    if (sub !== 'add' && !existing) throw new ConfigError(`no user named ${username}`);
    const now = Date.now();
    if (sub === 'add') {
      await storage.saveUser({
        ...(existing ?? { id: randomId(), username, createdAt: now }),
        ...(values.email !== undefined && { email: values.email, emailVerified: false }),
        ...(values.name !== undefined && { name: values.name }),
        passwordHash: await hashPassword(password!, config.passwordHashing.log2N),
        updatedAt: now,
      });
      process.stdout.write(`user ${username} saved\n`);
      return 0;
    }
    if (sub === 'set-password') {
      await storage.saveUser({
        ...existing!,
        passwordHash: await hashPassword(password!, config.passwordHashing.log2N),
        updatedAt: now,
      });
    }
    // A reset password ends every session signed in with the old one.
    const ended = await storage.deleteSessionsOf(existing!.id);
    process.stdout.write(
      `${sub === 'set-password' ? `password of ${username} reset; ` : ''}${ended} session(s) of ${username} ended\n`,
    );
    return 0;
  } finally {
    await storage.close();
  }
}

/** `user mfa` (the per-user requirement) and `user mfa-reset` (an administrator's recovery of a user's factors). */
async function userMfaCommand(
  sub: 'mfa' | 'mfa-reset',
  username: string,
  flags: { require?: boolean; 'no-require'?: boolean },
): Promise<number> {
  if (sub === 'mfa' && flags.require === flags['no-require']) {
    process.stderr.write(`gatehouse: user mfa needs exactly one of --require or --no-require\n${USAGE}`);
    return 2;
  }
  const { storage } = await openStore();
  try {
    const user = await storage.getUserByUsername(username);
    if (!user) throw new ConfigError(`no user named ${username}`);
    if (sub === 'mfa') {
      const required = flags.require === true;
      await storage.saveUser({ ...user, mfaRequired: required, updatedAt: Date.now() });
      process.stdout.write(
        required
          ? `${username} must sign in with a second factor (sessions signed in with a password alone no longer count)\n`
          : `${username} no longer needs a second factor (unless config mfa.required is set; factors they have stay in use)\n`,
      );
      return 0;
    }
    const { totp: _totp, passkeys: _passkeys, recoveryCodes: _codes, ...rest } = user;
    await storage.saveUser({ ...rest, updatedAt: Date.now() });
    // Whoever holds the lost factor may be signed in with it.
    const ended = await storage.deleteSessionsOf(user.id);
    process.stdout.write(`second factors of ${username} removed; ${ended} session(s) ended\n`);
    return 0;
  } finally {
    await storage.close();
  }
}

/** `gatehouse upstream list | links`: the configured upstreams (of `--tenant`'s settings) and their users. */
async function upstreamCommand(sub: string | undefined, rest: string[]): Promise<number> {
  const { values } = parseArgs({ args: rest, options: { 'no-check': { type: 'boolean' } } });
  if (sub !== 'list' && sub !== 'links') {
    process.stderr.write(USAGE);
    return 2;
  }
  const { config: deployment, storage } = await openStore();
  try {
    let config = deployment;
    if (tenantOption !== undefined) {
      const tenant = await storage.getTenant(tenantOption);
      config = tenantConfig(deployment, tenantOption, tenant?.settings ?? {});
    }
    if (sub === 'links') {
      const ids = new Set(config.upstreams.map((u) => u.id));
      for (const user of await storage.listUsers()) {
        if (!isUpstreamOnly(user)) continue;
        // Their username is `<upstream id>:<upstream subject>` (authorization/upstream-users.ts).
        const prefix = user.username.split(':')[0]!;
        const upstream = ids.has(prefix) ? prefix : '?';
        process.stdout.write(`${user.id}\t${user.username}\t${upstream}\t${user.email ?? ''}\n`);
      }
      return 0;
    }
    const logger = createLogger('silent');
    const rows = await Promise.all(
      config.upstreams.map(async (entry) => {
        let discovery: string;
        let issuer = entry.issuer ?? '';
        try {
          const provider = createUpstreamProvider(entry, { clock: systemClock, logger });
          issuer = provider.issuer; // a preset's issuer filled in
          discovery = values['no-check'] ? '-' : (await provider.probe(0)).discovery;
        } catch (err) {
          // A client secret that cannot be read here (another environment) says nothing of the upstream.
          discovery = err instanceof ConfigError ? 'unchecked (client secret not readable)' : 'failed';
        }
        return `${entry.id}\t${entry.name}\t${entry.type}\t${issuer}\t${discovery}\n`;
      }),
    );
    for (const row of rows) process.stdout.write(row);
    return 0;
  } finally {
    await storage.close();
  }
}

/** `gatehouse tenant ...`: the admin API's operations, on the store directly. */
async function tenantCommand(sub: string | undefined, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: { settings: { type: 'string' } },
    allowPositionals: true,
  });
  const id = positionals[0];
  if (!['list', 'show', 'add', 'update', 'remove'].includes(sub ?? '') || (sub !== 'list' && !id)) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (sub === 'update' && values.settings === undefined) throw new ConfigError('tenant update needs --settings FILE');
  const settings = values.settings === undefined ? undefined : await readSettings(values.settings);
  const { config, storage } = await openDeploymentStore();
  const pending: Promise<void>[] = [];
  const admin = new TenantAdmin({
    deployment: config,
    storage,
    clock: systemClock,
    reserved: reservedTenantIds(config.issuer),
    // This process ends soon: it waits for the second purge itself.
    later: (purge, delayMs) => {
      process.stdout.write(`waiting ${Math.ceil(delayMs / 1000)}s for every replica to drop the tenant…\n`);
      pending.push(new Promise((resolve) => setTimeout(resolve, delayMs)).then(purge));
    },
  });
  try {
    switch (sub) {
      case 'list':
        for (const t of await admin.list()) {
          const view = admin.view(t);
          process.stdout.write(`${view.id}\t${view.source}\t${view.issuer}\t${view.updated_at}\n`);
        }
        return 0;
      case 'show':
        process.stdout.write(`${JSON.stringify(admin.view(await admin.get(id!)), null, 2)}\n`);
        return 0;
      case 'add':
        process.stdout.write(`tenant ${id} created: issuer ${admin.view(await admin.create(id, settings)).issuer}\n`);
        return 0;
      case 'update':
        await admin.update(id!, settings);
        process.stdout.write(`tenant ${id} updated; replicas pick it up within ${config.tenantRefreshSeconds}s\n`);
        return 0;
      default: {
        const removed = await admin.remove(id!);
        await Promise.all(pending);
        process.stdout.write(`tenant ${id} deleted; ${removed} stored item(s) removed\n`);
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof TenantAdminError) throw new ConfigError(err.message);
    throw err;
  } finally {
    await storage.close();
  }
}

/** A tenant's settings: a JSON object from FILE, or stdin for `-`. */
async function readSettings(file: string): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read --settings ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--settings ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs the CLI. */
export async function main(args: string[]): Promise<number> {
  let argv: string[];
  try {
    argv = takeTenantOption(args);
  } catch (err) {
    process.stderr.write(`gatehouse: ${(err as Error).message}\n`);
    return 2;
  }
  const [command, sub, ...rest] = argv;
  // `gatehouse <command> --help` asks for help too, and must not run the command.
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    switch (command) {
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      case 'serve':
        await serve();
        return -1; // keep running
      case 'setup-link': {
        const { config, storage } = await openDeploymentStore();
        try {
          return await setupLinkCommand(config, storage);
        } finally {
          await storage.close();
        }
      }
      case 'hash-password': {
        // The configured cost: a hash at another cost is told apart from an unknown username by its timing.
        const { log2N } = loadConfig().passwordHashing;
        const password = await readSecretFromStdin('Password: ');
        if (!password) throw new ConfigError('no password given on stdin');
        process.stdout.write(`${await hashPassword(password, log2N)}\n`);
        return 0;
      }
      case 'key': {
        const { values } = parseArgs({ args: rest, options: { alg: { type: 'string' } } });
        const { config, storage } = await openStore();
        try {
          if (sub === 'rotate') {
            const alg = (values.alg ?? config.signing.alg) as 'ES256' | 'RS256' | 'EdDSA';
            if (!['ES256', 'RS256', 'EdDSA'].includes(alg)) throw new ConfigError(`unsupported --alg ${alg}`);
            const sealer = sealerFromConfig(config);
            // Refuse to add a key the servers could not open (or a clear one beside sealed ones): same encryptionKey.
            const existing = await storage.listSigningKeys();
            for (const record of existing) openPrivateJwk(record, sealer);
            const previous = existing.find((k) => k.alg === alg && k.status === 'active');
            const key = sealSigningKey(await generateSigningKey(alg, systemClock), sealer);
            // Old keys stay in the JWKS until the longest-lived token they signed has expired, plus a margin.
            const overlap = Math.max(config.tokens.accessTokenTtl, config.tokens.idTokenTtl) * 1000 + 5 * 60_000;
            await storage.rotateSigningKey(key, Date.now() + overlap);
            // The audit event (`audit.destination`; `log` is stderr here, at the config's logLevel).
            const log = createLogger(config.logLevel, pino.destination(2));
            const trail = createAuditor(config, systemClock, log, undefined);
            trail.auditor.forTenant(tenantOption).emit({
              type: 'key.rotated',
              kid: key.kid,
              alg,
              source: 'cli',
              ...(previous && { previousKid: previous.kid }),
            });
            await trail.close();
            process.stdout.write(
              `new ${alg} key ${key.kid} is active; replicas pick it up within ${config.signing.keyRefreshSeconds}s\n`,
            );
          } else if (sub === 'list') {
            for (const k of await storage.listSigningKeys()) {
              process.stdout.write(
                `${k.kid}\t${k.alg}\t${k.status}\t${new Date(k.createdAt).toISOString()}${k.expiresAt ? `\tunpublished after ${new Date(k.expiresAt).toISOString()}` : ''}\n`,
              );
            }
          } else {
            process.stderr.write(USAGE);
            return 2;
          }
        } finally {
          await storage.close();
        }
        return 0;
      }
      case 'client': {
        if (sub !== 'list') {
          process.stderr.write(USAGE);
          return 2;
        }
        const { storage } = await openStore();
        try {
          for (const c of await storage.listClients()) {
            process.stdout.write(
              `${c.clientId}\t${c.source}\t${c.tokenEndpointAuthMethod}\t${c.clientName ?? ''}\t${c.redirectUris.join(' ')}\n`,
            );
          }
        } finally {
          await storage.close();
        }
        return 0;
      }
      case 'user':
        return await userCommand(sub, rest);
      case 'tenant':
        return await tenantCommand(sub, rest);
      case 'upstream':
        return await upstreamCommand(sub, rest);
      case 'trace':
        return await traceCommand(sub, rest, openStore);
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default:
        process.stderr.write(`unknown command ${command}\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartupError || err instanceof UnknownStorageError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      if (debugOutput() && err.cause instanceof Error) process.stderr.write(`${err.cause.stack ?? ''}\n`);
      return 1;
    }
    throw err;
  }
}
