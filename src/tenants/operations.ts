/**
 * The CLI's store operations by name, with JSON arguments and JSON results: run in the CLI's own process on a store
 * it opened, or sent to a running server over the embedded store's control socket (cli/control.ts), which runs the
 * same function on its own store. Users are named by username here (the CLI's way); everything else is StoreAdmin.
 */
import { isUpstreamOnly } from '../authorization/upstream-users.js';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../model/errors.js';
import { MAX_PAGE_LIMIT } from '../model/ports.js';
import type { Storage } from '../model/ports.js';
import type { UpstreamProvider } from '../upstream/provider.js';
import type { TenantAdmin } from './admin.js';
import { AdminError, type StoreAdmin } from './store-admin.js';

/** What an operation runs with: the scope's admin operations, store and effective config. */
export interface OperationContext {
  admin: StoreAdmin;
  storage: Storage;
  /** The scope's effective config (a tenant's is the deployment's with its settings applied). */
  config: Config;
  /**
   * The scope's provider of a configured upstream: the server's own (deps.upstreams), or one the CLI builds. Throws
   * a ConfigError when its client secret cannot be read here.
   */
  upstream: (entry: Config['upstreams'][number]) => UpstreamProvider | undefined;
  /** The deployment's tenant operations: only in the deployment's scope (`tenant` commands take no --tenant). */
  tenants?: TenantAdmin;
}

type Args = Record<string, unknown>;
type Operation = (ctx: OperationContext, args: Args) => Promise<unknown>;

const str = (args: Args, name: string): string => {
  const value = args[name];
  if (typeof value !== 'string' || value === '') throw new AdminError(400, 'invalid_request', `${name} is required`);
  return value;
};
const opt = (args: Args, name: string): string | undefined => {
  const value = args[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
};

/** Every page of a listing, concatenated (the CLI prints whole lists). */
async function all<K extends string>(
  list: (query: Args) => Promise<Record<K, Record<string, unknown>[]> & { next_cursor?: string }>,
  key: K,
  query: Args,
): Promise<Record<K, Record<string, unknown>[]>> {
  const items: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const page = await list({ ...query, limit: MAX_PAGE_LIMIT, ...(cursor && { cursor }) });
    items.push(...page[key]);
    cursor = page.next_cursor;
  } while (cursor !== undefined);
  return { [key]: items } as Record<K, Record<string, unknown>[]>;
}

const userId = (ctx: OperationContext, args: Args, name = 'username') => ctx.admin.userIdOf(str(args, name));

/** The operations, by the CLI's `<noun>.<verb>`. */
export const OPERATIONS: Record<string, Operation> = {
  'client.list': (ctx, a) =>
    all((q) => ctx.admin.listClients(q), 'clients', {
      ...(opt(a, 'client_id_prefix') && { client_id_prefix: opt(a, 'client_id_prefix') }),
      ...(opt(a, 'name_prefix') && { name_prefix: opt(a, 'name_prefix') }),
    }),
  'client.show': (ctx, a) => ctx.admin.getClient(str(a, 'id')),
  'client.add': (ctx, a) => ctx.admin.createClient(a.metadata),
  'client.update': (ctx, a) => ctx.admin.updateClient(str(a, 'id'), a.metadata),
  'client.remove': (ctx, a) => ctx.admin.deleteClient(str(a, 'id')),
  'client.rotate-secret': (ctx, a) => ctx.admin.rotateClientSecret(str(a, 'id')),

  'user.list': (ctx, a) =>
    all((q) => ctx.admin.listUsers(q), 'users', {
      ...(opt(a, 'username_prefix') && { username_prefix: opt(a, 'username_prefix') }),
    }),
  /** Adds the user, or (as `gatehouse user add` always did) updates an existing one's password, email and name. */
  'user.add': async (ctx, a) => {
    const username = str(a, 'username');
    const existing = await ctx.storage.getUserByUsername(username);
    if (!existing) {
      return ctx.admin.createUser({
        username,
        password: str(a, 'password'),
        ...(opt(a, 'email') && { email: opt(a, 'email') }),
        ...(opt(a, 'name') && { name: opt(a, 'name') }),
      });
    }
    const updated = await ctx.admin.setPassword(existing.id, { password: str(a, 'password') });
    const user = (await ctx.storage.getUser(existing.id))!;
    const email = opt(a, 'email');
    const name = opt(a, 'name');
    if (email === undefined && name === undefined) return updated;
    await ctx.storage.saveUser({
      ...user,
      ...(email !== undefined && { email, emailVerified: false }),
      ...(name !== undefined && { name }),
    });
    return ctx.admin.getUser(existing.id);
  },
  'user.set-password': async (ctx, a) => ctx.admin.setPassword(await userId(ctx, a), { password: str(a, 'password') }),
  'user.sign-out': async (ctx, a) => ({ sessions_ended: await ctx.storage.deleteSessionsOf(await userId(ctx, a)) }),
  'user.disable': async (ctx, a) => ctx.admin.disableUser(await userId(ctx, a)),
  'user.enable': async (ctx, a) => ctx.admin.enableUser(await userId(ctx, a)),
  'user.remove': async (ctx, a) => ctx.admin.deleteUser(await userId(ctx, a)),

  'grant.list': async (ctx, a) => all((q) => ctx.admin.listGrants(q), 'grants', await owner(ctx, a)),
  'grant.revoke': (ctx, a) => ctx.admin.revokeGrant(str(a, 'id')),
  'consent.list': async (ctx, a) => all((q) => ctx.admin.listConsents(q), 'consents', await owner(ctx, a)),
  'consent.revoke': async (ctx, a) => ctx.admin.revokeConsent(await userId(ctx, a, 'user'), str(a, 'client')),

  /** The per-user second-factor requirement (`--require` / `--no-require`); the user's sessions stay. */
  'user.mfa': async (ctx, a) => {
    if (typeof a.required !== 'boolean') throw new AdminError(400, 'invalid_request', 'required is required');
    const user = await ctx.storage.getUser(await userId(ctx, a));
    await ctx.storage.saveUser({ ...user!, mfaRequired: a.required, updatedAt: Date.now() });
    return { username: user!.username, mfa_required: a.required };
  },
  /** An administrator's recovery of a user's factors: TOTP, passkeys and recovery codes go, so do their sessions. */
  'user.mfa-reset': async (ctx, a) => {
    const user = (await ctx.storage.getUser(await userId(ctx, a)))!;
    const { totp: _totp, passkeys: _passkeys, recoveryCodes: _codes, ...rest } = user;
    await ctx.storage.saveUser({ ...rest, updatedAt: Date.now() });
    // Whoever holds the lost factor may be signed in with it.
    return { username: user.username, sessions_ended: await ctx.storage.deleteSessionsOf(user.id) };
  },

  'upstream.list': async (ctx, a) => ({
    upstreams: await Promise.all(
      ctx.config.upstreams.map(async (entry) => {
        let discovery: string;
        let issuer = entry.issuer ?? '';
        try {
          const provider = ctx.upstream(entry);
          if (!provider) throw new Error(`no upstream provider ${entry.id}`);
          issuer = provider.issuer; // a preset's issuer filled in
          discovery = a.check === false ? '-' : (await provider.probe(0)).discovery;
        } catch (err) {
          // A client secret that cannot be read here (another environment) says nothing of the upstream.
          discovery = err instanceof ConfigError ? 'unchecked (client secret not readable)' : 'failed';
        }
        return { id: entry.id, name: entry.name, type: entry.type, issuer, discovery };
      }),
    ),
  }),
  /** The users made by upstream sign-ins, with the configured upstream their username names ('?' for none). */
  'upstream.links': async (ctx) => {
    const ids = new Set(ctx.config.upstreams.map((u) => u.id));
    const links: Record<string, unknown>[] = [];
    for (const user of await ctx.storage.listUsers()) {
      if (!isUpstreamOnly(user)) continue;
      // Their username is `<upstream id>:<upstream subject>` (authorization/upstream-users.ts).
      const prefix = user.username.split(':')[0]!;
      links.push({ id: user.id, username: user.username, upstream: ids.has(prefix) ? prefix : '?', email: user.email });
    }
    return { links };
  },

  'tenant.list': async (ctx) => {
    const admin = tenantsOf(ctx);
    return { tenants: (await admin.list()).map((t) => admin.view(t)) };
  },
  'tenant.show': async (ctx, a) => tenantsOf(ctx).view(await tenantsOf(ctx).get(str(a, 'id'))),
  'tenant.add': async (ctx, a) => tenantsOf(ctx).view(await tenantsOf(ctx).create(a.id, a.settings)),
  'tenant.update': async (ctx, a) => tenantsOf(ctx).view(await tenantsOf(ctx).update(str(a, 'id'), a.settings)),
  'tenant.remove': async (ctx, a) => ({ id: str(a, 'id'), removed: await tenantsOf(ctx).remove(str(a, 'id')) }),

  'key.list': (ctx) => ctx.admin.listKeys(),
  'key.rotate': (ctx, a) => ctx.admin.rotateKey(opt(a, 'alg') ? { alg: opt(a, 'alg') } : {}),
  'key.retire': (ctx, a) => ctx.admin.retireKey(str(a, 'kid')),
};

/** The deployment's tenant operations; a tenant's scope has none. */
function tenantsOf(ctx: OperationContext): TenantAdmin {
  if (!ctx.tenants) throw new AdminError(400, 'invalid_request', 'tenants are managed in the deployment scope');
  return ctx.tenants;
}

/** `--user <username>` or `--client <id>` as the listing's query. */
async function owner(ctx: OperationContext, a: Args): Promise<Args> {
  const user = opt(a, 'user');
  const client = opt(a, 'client');
  if ((user === undefined) === (client === undefined)) {
    throw new AdminError(400, 'invalid_request', 'exactly one of --user or --client is required');
  }
  return user !== undefined ? { user_id: await ctx.admin.userIdOf(user) } : { client_id: client };
}

/** Runs the named operation; an unknown name is a 400. */
export async function runOperation(ctx: OperationContext, name: string, args: Args): Promise<unknown> {
  const operation = Object.prototype.hasOwnProperty.call(OPERATIONS, name) ? OPERATIONS[name] : undefined;
  if (!operation) throw new AdminError(400, 'invalid_request', `unknown operation ${name}`);
  return operation(ctx, args);
}
