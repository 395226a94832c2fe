/**
 * The `gatehouse` command: serve | hash-password | key rotate / list / retire |
 * client list / show / add / update / remove / rotate-secret |
 * user add / set-password / sign-out / mfa / mfa-reset / list / disable / enable / remove |
 * grant list / revoke | consent list / revoke | tenant list / show / add / update / remove | upstream list / links.
 * The store commands run the shared operations (tenants/operations.ts), here or on a running server's control socket.
 * Argument parsing with node:util parseArgs (no dependency).
 */
import { parseCliArgs } from './args.js';
import { createInterface } from 'node:readline/promises';
import pino from 'pino';
import { ConfigError, loadConfig } from '../config/load.js';
import { systemClock } from '../core/clock.js';
import { sealerFromConfig } from '../core/sealing.js';
import { hashPassword } from '../core/password.js';
import { passwordProblem } from '../core/password-policy.js';
import { createAuditor, createGatehouse, createLogger, passwordPolicyOf, scopesSupportedOf } from '../server.js';
import type { Auditor } from '../core/audit.js';
import { getOrCreateSealedSecret } from '../core/sealing.js';
import { AdminError, StoreAdmin } from '../tenants/store-admin.js';
import { runOperation } from '../tenants/operations.js';
import { ControlError, controlSocketPath, sendControl, startControlSocket } from './control.js';
import type { Storage } from '../model/ports.js';
import { reservedTenantIds } from '../http/app.js';
import { printSetupLink, setupLinkCommand } from './setup-link.js';
import { TenantAdmin, TenantAdminError } from '../tenants/admin.js';
import { tenantConfig } from '../config/tenants.js';
import { createUpstreamProvider } from '../upstream/client.js';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { TRACE_USAGE, traceCommand } from './trace.js';
import { StorageUnavailableError } from '../model/errors.js';
import {
  createStorage,
  describeStorage,
  embeddedDirectory,
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
  key retire <kid>        retire an active key now: a new key of its alg takes over (it stays published until
                          its tokens expire)
  client list [--client-id-prefix P | --name-prefix P]
                          list clients (id, source, auth method, name, redirect URIs)
  client show <client_id> print a client as JSON
  client add [--metadata FILE] [--client-id ID] [--name N] [--redirect-uri U]... [--grant-type G]...
             [--auth-method M] [--scope S]
                          create a client from RFC 7591 metadata (FILE as JSON, - for stdin, or the flags);
                          prints it as JSON with its client_secret, shown this once
  client update <client_id> [--metadata FILE | flags as for add]
                          replace a client's metadata (config-file clients are changed in the file)
  client remove <client_id>
                          delete a client and everything issued to it
  client rotate-secret <client_id>
                          issue a new secret (printed once; the old one stops working at once)
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
  user list [--prefix P]  list users (id, username, email, name, and "disabled" for a disabled user)
  user disable <username> stop the user signing in: every grant of theirs revoked, every session ended
  user enable <username>  let a disabled user sign in again
  user remove <username>  delete the user, their grants (revoked), consents and sessions
  grant list --user <username> | --client <client_id>
                          list grants (id, user, client, scope, created, last used, state)
  grant revoke <grant_id> revoke a grant with its refresh and access tokens
  consent list --user <username> | --client <client_id>
                          list remembered consents (user, client, scope, given, expires)
  consent revoke --user <username> --client <client_id>
                          withdraw a consent and revoke the grants of that user and client
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

With the embedded store, while a server runs on it the commands above (except serve, hash-password, setup-link and
trace) are sent to that server over its control socket (<data directory>/control.sock) and run there.

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

/** The StoreAdmin of a scope (the deployment's, or a tenant's) on a store this process opened, and its config. */
async function localAdmin(
  config: Config,
  storage: Storage,
  audit: Auditor,
  tenant: string | undefined,
): Promise<{ admin: StoreAdmin; scope: Config }> {
  let scope = config;
  if (tenant !== undefined) {
    const record = await storage.getTenant(tenant);
    scope = tenantConfig(config, tenant, record?.settings ?? {});
  }
  const sealer = sealerFromConfig(config);
  const pepper = await getOrCreateSealedSecret(storage, 'client-secret-pepper', sealer);
  const admin = new StoreAdmin({
    storage,
    config: scope,
    clock: systemClock,
    pepper: pepper.value,
    sealer,
    passwordPolicy: passwordPolicyOf(scope),
    scopesSupported: scopesSupportedOf(scope),
    audit: audit.forTenant(tenant),
    actor: 'cli',
  });
  return { admin, scope };
}

/**
 * Runs a store operation (tenants/operations.ts): on a running server's control socket when the embedded store is
 * in use by one, else on the store opened here. It runs in `--tenant`'s scope, or the deployment's with
 * `deployment` (the `tenant` commands). A refusal becomes a one-line ConfigError (exit 1).
 */
async function execute(
  op: string,
  args: Record<string, unknown>,
  { deployment = false }: { deployment?: boolean } = {},
): Promise<Record<string, unknown>> {
  const config = loadConfig();
  const tenant = deployment ? undefined : tenantOption;
  try {
    if (storageKind(config.storage) === 'embedded' && !/^memory:\/\//i.test(config.storage)) {
      const socket = controlSocketPath(embeddedDirectory(config.storage));
      try {
        return (await sendControl(socket, op, tenant, args)) as Record<string, unknown>;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        // No server there (no socket, or one left by a process that died): open the store here.
        if (!(code === 'ENOENT' || code === 'ECONNREFUSED')) throw err;
      }
    }
    const { storage } = deployment ? await openDeploymentStore() : await openStore();
    // The audit events of what the command changes (`audit.destination`; `log` is stderr here, at the config's level).
    const trail = createAuditor(config, systemClock, createLogger(config.logLevel, pino.destination(2)), undefined);
    const pending: Promise<void>[] = [];
    try {
      const { admin, scope } = await localAdmin(config, storage, trail.auditor, tenant);
      const logger = createLogger('silent');
      const result = (await runOperation(
        {
          admin,
          storage,
          config: scope,
          upstream: (entry) => createUpstreamProvider(entry, { clock: systemClock, logger }),
          ...(tenant === undefined && {
            tenants: new TenantAdmin({
              deployment: config,
              storage,
              clock: systemClock,
              reserved: reservedTenantIds(config.issuer),
              // This process ends soon: it waits for the second purge itself.
              later: (purge, delayMs) => {
                process.stdout.write(`waiting ${Math.ceil(delayMs / 1000)}s for every replica to drop the tenant…\n`);
                pending.push(new Promise((resolve) => setTimeout(resolve, delayMs)).then(purge));
              },
            }),
          }),
        },
        op,
        args,
      )) as Record<string, unknown>;
      await Promise.all(pending);
      return result;
    } finally {
      await trail.close();
      await storage.close();
    }
  } catch (err) {
    if (err instanceof AdminError || err instanceof TenantAdminError || err instanceof ControlError) {
      throw new ConfigError(err.message);
    }
    throw err;
  }
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
  // The embedded store is this process's alone: the CLI reaches it through this socket while the server runs.
  let closeControl: (() => Promise<void>) | undefined;
  if (storageKind(config.storage) === 'embedded' && !/^memory:\/\//i.test(config.storage)) {
    closeControl = await startControlSocket(
      embeddedDirectory(config.storage),
      async (tenant) => (tenant === undefined ? deps : gatehouse.tenants.resolve(tenant)),
      deps.logger,
      // The admin API's: a tenant changed here is seen by this server at once.
      gatehouse.tenantAdmin,
    );
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  deps.logger.info(
    { issuer: config.issuer, port, host: config.host, storage: describeStorage(config.storage) },
    'gatehouse listening',
  );
  printSetupLink(gatehouse);
  const stop = async (signal: string) => {
    deps.logger.info({ signal }, 'shutting down');
    await closeControl?.();
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
  const { values, positionals } = parseCliArgs({
    args: rest,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      prefix: { type: 'string' },
      require: { type: 'boolean' },
      'no-require': { type: 'boolean' },
    },
    allowPositionals: true,
  });
  const username = positionals[0];
  if (sub === 'list') {
    const { users } = (await execute('user.list', { username_prefix: values.prefix })) as { users: UserRow[] };
    for (const u of users) {
      process.stdout.write(
        `${u.id}\t${u.username}\t${u.email ?? ''}\t${u.name ?? ''}${u.disabled ? '\tdisabled' : ''}\n`,
      );
    }
    return 0;
  }
  const subs = ['add', 'set-password', 'sign-out', 'mfa', 'mfa-reset', 'disable', 'enable', 'remove'];
  if (!username || !subs.includes(sub ?? '')) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (sub === 'mfa' || sub === 'mfa-reset') return userMfaCommand(sub, username, values);
  if (sub === 'disable' || sub === 'enable' || sub === 'remove') {
    const result = await execute(`user.${sub}`, { username });
    process.stdout.write(
      sub === 'disable'
        ? `user ${username} disabled; ${String(result.grants_revoked)} grant(s) revoked, ${String(result.sessions_ended)} session(s) ended\n`
        : sub === 'enable'
          ? `user ${username} enabled\n`
          : `user ${username} deleted; their grants are revoked, their consents and sessions gone\n`,
    );
    return 0;
  }
  const config = loadConfig();
  const password = sub === 'sign-out' ? undefined : await newPasswordFromStdin(config, username);
  if (sub === 'add') {
    await execute('user.add', { username, password, email: values.email, name: values.name });
    process.stdout.write(`user ${username} saved\n`);
    return 0;
  }
  const result = await execute(`user.${sub}`, { username, password });
  process.stdout.write(
    `${sub === 'set-password' ? `password of ${username} reset; ` : ''}${String(result.sessions_ended)} session(s) of ${username} ended\n`,
  );
  return 0;
}

interface UserRow {
  id: string;
  username: string;
  email?: string;
  name?: string;
  disabled?: boolean;
}

/** `gatehouse client ...`. */
async function clientCommand(sub: string | undefined, rest: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs({
    args: rest,
    options: {
      'client-id-prefix': { type: 'string' },
      'name-prefix': { type: 'string' },
      metadata: { type: 'string' },
      'client-id': { type: 'string' },
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'grant-type': { type: 'string', multiple: true },
      'auth-method': { type: 'string' },
      scope: { type: 'string' },
    },
    allowPositionals: true,
  });
  const id = positionals[0];
  const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  const metadata = async (): Promise<Record<string, unknown>> => {
    const base =
      values.metadata === undefined
        ? {}
        : ((await readSettings(values.metadata, '--metadata')) as Record<string, unknown>);
    if (typeof base !== 'object' || base === null || Array.isArray(base))
      throw new ConfigError('--metadata must hold a JSON object');
    return {
      ...base,
      ...(values.name !== undefined && { client_name: values.name }),
      ...(values['redirect-uri'] !== undefined && { redirect_uris: values['redirect-uri'] }),
      ...(values['grant-type'] !== undefined && { grant_types: values['grant-type'] }),
      ...(values['auth-method'] !== undefined && { token_endpoint_auth_method: values['auth-method'] }),
      ...(values.scope !== undefined && { scope: values.scope }),
    };
  };
  switch (sub) {
    case 'list': {
      const { clients } = (await execute('client.list', {
        client_id_prefix: values['client-id-prefix'],
        name_prefix: values['name-prefix'],
      })) as { clients: Record<string, unknown>[] };
      for (const c of clients) {
        process.stdout.write(
          `${String(c.client_id)}\t${String(c.source)}\t${String(c.token_endpoint_auth_method)}\t${(c.client_name as string | undefined) ?? ''}\t${(c.redirect_uris as string[]).join(' ')}\n`,
        );
      }
      return 0;
    }
    case 'add': {
      const m = await metadata();
      print(
        await execute('client.add', {
          metadata: { ...m, ...(values['client-id'] && { client_id: values['client-id'] }) },
        }),
      );
      return 0;
    }
    case 'show':
    case 'update':
    case 'remove':
    case 'rotate-secret': {
      if (!id) break;
      if (sub === 'show') print(await execute('client.show', { id }));
      else if (sub === 'update') print(await execute('client.update', { id, metadata: await metadata() }));
      else if (sub === 'rotate-secret') print(await execute('client.rotate-secret', { id }));
      else {
        await execute('client.remove', { id });
        process.stdout.write(`client ${id} deleted, with everything issued to it\n`);
      }
      return 0;
    }
  }
  process.stderr.write(USAGE);
  return 2;
}

/** `gatehouse grant ...` and `gatehouse consent ...`. */
async function grantCommand(noun: 'grant' | 'consent', sub: string | undefined, rest: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs({
    args: rest,
    options: { user: { type: 'string' }, client: { type: 'string' } },
    allowPositionals: true,
  });
  if (sub === 'list') {
    const result = await execute(`${noun}.list`, { user: values.user, client: values.client });
    if (noun === 'grant') {
      for (const g of result.grants as Record<string, string | undefined>[]) {
        const state = g.revoked_at ? `revoked ${g.revoked_at}` : 'active';
        process.stdout.write(
          `${g.id}\t${g.user_id}\t${g.client_id}\t${g.scope}\tcreated ${g.created_at}\tlast used ${g.last_used_at}\t${state}\n`,
        );
      }
    } else {
      for (const c of result.consents as Record<string, string>[]) {
        process.stdout.write(`${c.user_id}\t${c.client_id}\t${c.scope}\t${c.created_at}\t${c.expires_at}\n`);
      }
    }
    return 0;
  }
  if (sub === 'revoke' && noun === 'grant' && positionals[0]) {
    await execute('grant.revoke', { id: positionals[0] });
    process.stdout.write(`grant ${positionals[0]} revoked\n`);
    return 0;
  }
  if (sub === 'revoke' && noun === 'consent' && values.user && values.client) {
    const result = await execute('consent.revoke', { user: values.user, client: values.client });
    process.stdout.write(
      `consent of ${values.user} to ${values.client} withdrawn; ${String(result.grants_revoked)} grant(s) revoked\n`,
    );
    return 0;
  }
  process.stderr.write(USAGE);
  return 2;
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
  if (sub === 'mfa') {
    const required = flags.require === true;
    await execute('user.mfa', { username, required });
    process.stdout.write(
      required
        ? `${username} must sign in with a second factor (sessions signed in with a password alone no longer count)\n`
        : `${username} no longer needs a second factor (unless config mfa.required is set; factors they have stay in use)\n`,
    );
    return 0;
  }
  const { sessions_ended: ended } = await execute('user.mfa-reset', { username });
  process.stdout.write(`second factors of ${username} removed; ${String(ended)} session(s) ended\n`);
  return 0;
}

/** `gatehouse upstream list | links`: the configured upstreams (of `--tenant`'s settings) and their users. */
async function upstreamCommand(sub: string | undefined, rest: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: rest, options: { 'no-check': { type: 'boolean' } } });
  if (sub !== 'list' && sub !== 'links') {
    process.stderr.write(USAGE);
    return 2;
  }
  const str = (value: unknown) => (typeof value === 'string' ? value : '');
  if (sub === 'links') {
    const { links } = (await execute('upstream.links', {})) as { links: Record<string, unknown>[] };
    for (const l of links) {
      process.stdout.write(`${str(l.id)}\t${str(l.username)}\t${str(l.upstream)}\t${str(l.email)}\n`);
    }
    return 0;
  }
  const { upstreams } = (await execute('upstream.list', { check: !values['no-check'] })) as {
    upstreams: Record<string, unknown>[];
  };
  for (const u of upstreams) {
    process.stdout.write(`${str(u.id)}\t${str(u.name)}\t${str(u.type)}\t${str(u.issuer)}\t${str(u.discovery)}\n`);
  }
  return 0;
}

/** `gatehouse tenant ...`: the admin API's operations (tenant.* in tenants/operations.ts), in the deployment's scope. */
async function tenantCommand(sub: string | undefined, rest: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs({
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
  const run = (op: string, args: Record<string, unknown>) => execute(op, args, { deployment: true });
  const str = (value: unknown) => (typeof value === 'string' ? value : '');
  switch (sub) {
    case 'list': {
      const { tenants } = (await run('tenant.list', {})) as { tenants: Record<string, unknown>[] };
      for (const view of tenants) {
        process.stdout.write(`${str(view.id)}\t${str(view.source)}\t${str(view.issuer)}\t${str(view.updated_at)}\n`);
      }
      return 0;
    }
    case 'show':
      process.stdout.write(`${JSON.stringify(await run('tenant.show', { id }), null, 2)}\n`);
      return 0;
    case 'add':
      process.stdout.write(`tenant ${id} created: issuer ${str((await run('tenant.add', { id, settings })).issuer)}\n`);
      return 0;
    case 'update':
      await run('tenant.update', { id, settings });
      process.stdout.write(`tenant ${id} updated; replicas pick it up within ${loadConfig().tenantRefreshSeconds}s\n`);
      return 0;
    default: {
      const { removed } = await run('tenant.remove', { id });
      process.stdout.write(`tenant ${id} deleted; ${String(removed)} stored item(s) removed\n`);
      return 0;
    }
  }
}

/** A tenant's settings: a JSON object from FILE, or stdin for `-`. */
async function readSettings(file: string, option = '--settings'): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${option} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${option} ${file} is not valid JSON: ${(err as Error).message}`);
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
        const { values, positionals } = parseCliArgs({
          args: rest,
          options: { alg: { type: 'string' } },
          allowPositionals: true,
        });
        if (sub === 'rotate') {
          const config = loadConfig();
          const alg = values.alg ?? config.signing.alg;
          if (!['ES256', 'RS256', 'EdDSA'].includes(alg)) throw new ConfigError(`unsupported --alg ${alg}`);
          const key = await execute('key.rotate', { alg });
          process.stdout.write(
            `new ${alg} key ${String(key.kid)} is active; replicas pick it up within ${config.signing.keyRefreshSeconds}s\n`,
          );
        } else if (sub === 'list') {
          const { keys } = (await execute('key.list', {})) as { keys: Record<string, string | undefined>[] };
          for (const k of keys) {
            process.stdout.write(
              `${k.kid}\t${k.alg}\t${k.status}\t${k.created_at}${k.unpublished_after ? `\tunpublished after ${k.unpublished_after}` : ''}\n`,
            );
          }
        } else if (sub === 'retire' && positionals[0]) {
          const result = await execute('key.retire', { kid: positionals[0] });
          const active = result.active as Record<string, string>;
          process.stdout.write(`key ${positionals[0]} retired; new ${active.alg} key ${active.kid} is active\n`);
        } else {
          process.stderr.write(USAGE);
          return 2;
        }
        return 0;
      }
      case 'client':
        return await clientCommand(sub, rest);
      case 'grant':
      case 'consent':
        return await grantCommand(command, sub, rest);
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
