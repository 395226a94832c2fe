/**
 * Sessions, interactions and pushed requests kept under the SHA-256 of their id: the raw id is a bearer secret (the
 * session cookie, the /interaction/<id> URL, the request_uri), so a reader of the store must not find it there. One
 * wrapper over any backend: the store only ever sees hashToken(id), and records coming back carry the raw id the
 * caller asked with.
 */
import { hashToken } from '../core/crypto.js';
import type { InteractionRecord, PushedRequestRecord, SessionRecord } from '../model/records.js';
import type { Storage } from '../model/ports.js';

const WRAPPED = Symbol('gatehouse.hashedIds');

/**
 * `storage` with session, interaction and pushed-request ids hashed on the way in (idempotent: a wrapped store is
 * returned as is).
 */
export function withHashedIds(storage: Storage): Storage {
  if ((storage as unknown as Record<symbol, unknown>)[WRAPPED]) return storage;
  const withRawId = <T extends { id: string }>(record: T | undefined, id: string): T | undefined =>
    record ? { ...record, id } : undefined;
  const overrides: Partial<Storage> & Record<symbol, unknown> = {
    [WRAPPED]: true,
    saveSession: (session: SessionRecord) => storage.saveSession({ ...session, id: hashToken(session.id) }),
    getSession: async (id: string) => withRawId(await storage.getSession(hashToken(id)), id),
    deleteSession: (id: string) => storage.deleteSession(hashToken(id)),
    saveInteraction: (interaction: InteractionRecord) =>
      storage.saveInteraction({ ...interaction, id: hashToken(interaction.id) }),
    getInteraction: async (id: string) => withRawId(await storage.getInteraction(hashToken(id)), id),
    takeInteraction: async (id: string) => withRawId(await storage.takeInteraction(hashToken(id)), id),
    savePushedRequest: (request: PushedRequestRecord) =>
      storage.savePushedRequest({ ...request, id: hashToken(request.id) }),
    takePushedRequest: async (id: string) => withRawId(await storage.takePushedRequest(hashToken(id)), id),
    // A tenant's view hashes the same way.
    forTenant: (id: string) => withHashedIds(storage.forTenant(id)),
  };
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(storage, {
    get(target, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof typeof overrides];
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      // Methods run on the backend itself (private fields), bound once per name.
      let fn = bound.get(prop);
      if (!fn) bound.set(prop, (fn = (value as (...args: unknown[]) => unknown).bind(target)));
      return fn;
    },
  });
}
