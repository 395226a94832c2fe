/**
 * The CLI's store operations by name, with JSON arguments and JSON results: run in the CLI's own process on a store
 * it opened, or sent to a running server over the embedded store's control socket (cli/control.ts), which runs the
 * same function on its own store. Users are named by username here (the CLI's way); everything else is StoreAdmin.
 */
import { MAX_PAGE_LIMIT } from '../model/ports.js';
import type { Storage } from '../model/ports.js';
import { AdminError, type StoreAdmin } from './store-admin.js';

/** What an operation runs with: the scope's admin operations and store. */
export interface OperationContext {
  admin: StoreAdmin;
  storage: Storage;
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

  'key.list': (ctx) => ctx.admin.listKeys(),
  'key.rotate': (ctx, a) => ctx.admin.rotateKey(opt(a, 'alg') ? { alg: opt(a, 'alg') } : {}),
  'key.retire': (ctx, a) => ctx.admin.retireKey(str(a, 'kid')),
};

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
