/**
 * Contract tests for values a backend may not be able to hold: U+0000 in keys, text and JSON fields.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { InvalidRequest } from '../../model/errors.js';
import { clientFixture, userFixture } from './fixtures.js';
import type { CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeNulValuesContract(current: CurrentStore): void {
  describe('values containing U+0000', () => {
    // PostgreSQL cannot hold a NUL byte in text or jsonb; such a value is the request's fault, so a backend either
    // handles it or refuses it as invalid_request (HTTP 400), never with an error that would become a 500.
    const NUL = 'a\u0000b';
    const handledOrInvalidRequest = async (what: string, op: () => Promise<unknown>) => {
      const outcome = await op().then(
        () => 'ok',
        (err: unknown) => (err instanceof InvalidRequest ? 'invalid_request' : `${what}: ${String(err)}`),
      );
      expect(['ok', 'invalid_request']).toContain(outcome);
    };

    it('reads by a key with a NUL byte find nothing or are refused as invalid_request', async () => {
      const { store } = current();
      await handledOrInvalidRequest('getClient', async () => expect(await store.getClient(NUL)).toBeUndefined());
      await handledOrInvalidRequest('getUserByUsername', async () =>
        expect(await store.getUserByUsername(NUL)).toBeUndefined(),
      );
      await handledOrInvalidRequest('getInteraction', async () =>
        expect(await store.getInteraction(NUL)).toBeUndefined(),
      );
      await handledOrInvalidRequest('getSession', async () => expect(await store.getSession(NUL)).toBeUndefined());
      await handledOrInvalidRequest('consumeAuthorizationCode', async () =>
        expect(await store.consumeAuthorizationCode(NUL)).toEqual({ status: 'not_found' }),
      );
    });

    it('writes of a NUL byte (text and JSON fields) are stored intact or refused as invalid_request', async () => {
      const { store, clock } = current();
      const client = { ...clientFixture(clock), clientName: NUL, contacts: [NUL] };
      await handledOrInvalidRequest('saveClient', async () => {
        await store.saveClient(client);
        expect(await store.getClient(client.clientId)).toEqual(client);
      });
      const user = { ...userFixture(clock), name: NUL };
      await handledOrInvalidRequest('saveUser', async () => {
        await store.saveUser(user);
        expect(await store.getUser(user.id)).toEqual(user);
      });
    });
  });
}
