/** Clients on Redis: one JSON string each under `{clients}`, and deleteClient's cascade over the per-client indexes. */
import { clientOwner } from '../../model/record-kinds.js';
import type { ClientRecord } from '../../model/records.js';
import { dropClientCodes } from './codes.js';
import { dropClientConsents } from './consents.js';
import { compare, mgetJson, parseJson, type RedisContext } from './redis-context.js';
import { purgeClientGrants } from './grants.js';
import { deleteOwned } from './records.js';

export async function getClient(ctx: RedisContext, clientId: string): Promise<ClientRecord | undefined> {
  return parseJson<ClientRecord>(await ctx.guard(() => ctx.client.get(ctx.keys.client(clientId))));
}

/** The keys a client's record and listing entries live under (one slot: `{clients}`). */
export function clientKeys(ctx: RedisContext, clientId: string): string[] {
  const k = ctx.keys;
  return [k.client(clientId), k.clients, k.clientsById, k.clientsByName, k.clientNames];
}

/** The client's member of clientsByName: `<lower-cased name>\0<client id>`, '' for an unnamed client. */
export function nameMember(client: ClientRecord): string {
  return client.clientName === undefined ? '' : `${client.clientName.toLowerCase()}\0${client.clientId}`;
}

export async function saveClient(ctx: RedisContext, client: ClientRecord): Promise<void> {
  await ctx.script('saveClient', clientKeys(ctx, client.clientId), [
    ctx.clock.now(),
    client.clientId,
    JSON.stringify(client),
    nameMember(client),
  ]);
}

/**
 * Spans slots (grants, consents, codes, records), so it is a sequence of repeatable steps: the client record goes
 * first, and the cascade runs even when it is already gone, so nothing issued to that id outlives it.
 */
export async function deleteClient(ctx: RedisContext, clientId: string): Promise<boolean> {
  const k = ctx.keys;
  const now = ctx.clock.now();
  const deleted = await ctx.script<number>('deleteClientRecord', clientKeys(ctx, clientId), [now, clientId]);
  const userIds = await purgeClientGrants(ctx, clientId, now);
  await dropClientConsents(ctx, clientId, now);
  // Codes and the client's records (pending interactions) live outside the client's slot.
  await dropClientCodes(ctx, clientId);
  await deleteOwned(ctx, clientOwner(clientId), undefined, now);
  const indexes = [k.clientGrants(clientId), k.clientConsents(clientId), k.clientCodes(clientId)];
  for (const userId of userIds) indexes.push(k.userClientGrants(userId, clientId));
  await ctx.guard(() => ctx.client.del(...indexes));
  return deleted === 1;
}

export async function countClients(ctx: RedisContext): Promise<number> {
  return ctx.guard(() => ctx.client.scard(ctx.keys.clients));
}

export async function listClients(ctx: RedisContext): Promise<ClientRecord[]> {
  const ids = await ctx.guard(() => ctx.client.smembers(ctx.keys.clients));
  const clients = await mgetJson<ClientRecord>(
    ctx,
    ids.map((id) => ctx.keys.client(id)),
  );
  return clients.sort((a, b) => a.createdAt - b.createdAt || compare(a.clientId, b.clientId));
}
