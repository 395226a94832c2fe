/**
 * Client metadata with an unpaired UTF-16 surrogate (found by the fuzz tests: PostgreSQL's jsonb refuses the `\ud800`
 * escape JSON.stringify writes for it, so registration answered 500 there while the memory store kept the broken
 * string). RFC 8259 §8.2 leaves such strings' meaning undefined; every store now refuses them the same way, with
 * invalid_client_metadata (invalid_redirect_uri for redirect_uris), and well-formed astral characters still round-trip.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUZZ_STORES, REDIRECT, startFuzzServer, type FuzzServer } from './harness.js';

const stores = [
  ...FUZZ_STORES.map((store) => ({ store, config: {} })),
  {
    store: { ...FUZZ_STORES[0]!, kind: 'memory' as const },
    config: { storage: join(mkdtempSync(join(tmpdir(), 'gh-fuzz-')), 'data') },
    label: 'embedded',
  },
];

for (const { store, config, label } of stores as {
  store: (typeof FUZZ_STORES)[number];
  config: Record<string, unknown>;
  label?: string;
}[]) {
  describe(`unpaired surrogates in client metadata (${label ?? store.kind})`, () => {
    let fz: FuzzServer | undefined;
    beforeAll(async () => {
      fz = await startFuzzServer(store, config);
    }, 60_000);
    afterAll(() => fz?.close());

    const base = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] };
    const register = (body: Record<string, unknown>) =>
      fz!.inject({
        method: 'POST',
        url: '/register',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });

    it.each([
      ['software_id', { software_id: '\ud800' }, 'invalid_client_metadata'],
      ['client_name', { client_name: 'a\udc00b' }, 'invalid_client_metadata'],
      ['contacts', { contacts: ['x@example.com', '\udfff'] }, 'invalid_client_metadata'],
      ['redirect_uris', { redirect_uris: ['http://127.0.0.1/cb\ud800'] }, 'invalid_redirect_uri'],
    ])('POST /register refuses one in %s with 400', async (_field, bent, error) => {
      if (!fz) return;
      const before = (await fz.gatehouse.deps.storage.listClients()).length;
      const res = await register({ ...base, ...bent });
      expect(res.status, res.body).toBe(400);
      expect(res.json?.error).toBe(error);
      expect((await fz.gatehouse.deps.storage.listClients()).length).toBe(before);
    });

    it('PUT /register/:id refuses one too, and the client is unchanged', async () => {
      if (!fz) return;
      const created = await register({ ...base, client_name: 'ok' });
      expect(created.status).toBe(201);
      const { client_id, registration_access_token } = created.json as {
        client_id: string;
        registration_access_token: string;
      };
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${registration_access_token}` };
      const res = await fz.inject({
        method: 'PUT',
        url: `/register/${client_id}`,
        headers,
        payload: JSON.stringify({ ...base, client_id, client_name: '\ud83d' }),
      });
      expect(res.status, res.body).toBe(400);
      expect(res.json?.error).toBe('invalid_client_metadata');
      expect((await fz.gatehouse.deps.storage.getClient(client_id))?.clientName).toBe('ok');
    });

    it('well-formed astral characters are kept', async () => {
      if (!fz) return;
      const res = await register({ ...base, client_name: 'Café 😀 𝔸' });
      expect(res.status, res.body).toBe(201);
      expect((await fz.gatehouse.deps.storage.getClient(res.json!.client_id as string))?.clientName).toBe('Café 😀 𝔸');
    });
  });
}
