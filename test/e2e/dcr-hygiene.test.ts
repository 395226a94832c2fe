/**
 * DCR hygiene on every store, with an injected clock: identical re-registrations from the same software get the
 * client they registered before (public clients shared without a registration access token; confidential ones only
 * when configured, then replaced with new credentials, the old secret refused); the collection of dynamic clients
 * that never obtained a token within `unusedDays` or none for `idleDays` (static clients never), with the last-token
 * mark written once a day per client and replica; two replicas dedupe against each other.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { collectClients } from '../../src/clients/client-gc.js';
import { RECORD_KINDS, recordsOf } from '../../src/model/record-kinds.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Storage } from '../../src/model/ports.js';
import { createStorage } from '../../src/storage/index.js';
import { basic, postForm, postJson } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const DAY = 86_400_000;
const STATIC = { id: 'static-svc', secret: 'static-service-secret-0123456789abcdef' };
const PUBLIC_APP = {
  client_name: 'Claude Code (test)',
  redirect_uris: ['http://localhost:33418/callback', 'http://127.0.0.1:33418/callback'],
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
};

for (const store of E2E_STORES) {
  describe(`DCR hygiene on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_dcr_${randomBytes(4).toString('hex')}`;
    const clock = new ManualClock(Date.UTC(2026, 2, 1, 12));
    let sharedStore: Storage | undefined;
    let a: TestServer;
    let b: TestServer;
    let replaced: TestServer;

    beforeAll(async () => {
      if (!(await available)) return;
      const config: Partial<ConfigInput> = {
        ...store.config(isolation),
        registration: { allowClientCredentials: true, dedupe: { windowSeconds: 3600 } },
        clients: [{ client_id: STATIC.id, client_secret: STATIC.secret, grant_types: ['client_credentials'] }],
        tenants: [{ id: 'acme' }],
      };
      // Memory and embedded stores belong to one process: the two replicas share one store object there.
      if (!store.service) sharedStore = await createStorage(config.storage!, { clock, cleanupIntervalMs: 0 });
      a = await startServer(config, { clock, storage: sharedStore });
      b = await startServer(config, { clock, storage: sharedStore });
      // A third server on a store of its own, deduplicating confidential clients too.
      replaced = await startServer({
        registration: { allowClientCredentials: true, dedupe: { confidentialClients: true } },
      });
    }, 60_000);
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await replaced?.close();
      await sharedStore?.close();
      await store.cleanup?.(isolation);
    });

    const reg = (server: TestServer, body: unknown) => postJson(`${server.issuer}/register`, body);
    const storage = () => a.gatehouse.deps.storage;

    it('an identical public re-registration, on either replica, gets the same client without management', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const first = await reg(a, PUBLIC_APP);
      expect(first.status).toBe(201);
      expect(first.json.registration_access_token).toBeTruthy();
      clock.advance(5 * 60_000);
      // The same metadata in another order, with a repeated grant type: normalized to the same fingerprint.
      const again = await reg(b, {
        ...PUBLIC_APP,
        redirect_uris: [...PUBLIC_APP.redirect_uris].reverse(),
        grant_types: ['refresh_token', 'authorization_code', 'refresh_token'],
      });
      expect(again.status).toBe(201);
      expect(again.json.client_id).toBe(first.json.client_id);
      expect(again.json.client_id_issued_at).toBe(first.json.client_id_issued_at);
      // A shared client is managed by nobody: no token in the response, and the first registrant's no longer works.
      expect(again.json.registration_access_token).toBeUndefined();
      expect(again.json.registration_client_uri).toBeUndefined();
      const read = await fetch(first.json.registration_client_uri, {
        headers: { authorization: `Bearer ${first.json.registration_access_token}` },
      });
      expect(read.status).toBe(401);
      const dynamic = (await storage().listClients()).filter((c) => c.clientName === PUBLIC_APP.client_name);
      expect(dynamic).toHaveLength(1);
    });

    it("a tenant's registrations are deduplicated among themselves only", async (ctx) => {
      if (!(await available)) return ctx.skip();
      const body = { ...PUBLIC_APP, client_name: 'Tenant app' };
      const deployment = await reg(a, body);
      const tenant = await postJson(`${a.issuer}/acme/register`, body);
      expect(tenant.status).toBe(201);
      expect(tenant.json.client_id).not.toBe(deployment.json.client_id);
      expect(tenant.json.registration_access_token).toBeTruthy(); // a first registration in its tenant
      const again = await postJson(`${b.issuer}/acme/register`, body);
      expect(again.json.client_id).toBe(tenant.json.client_id);
      expect((await reg(b, body)).json.client_id).toBe(deployment.json.client_id);
      expect(await storage().getClient(tenant.json.client_id)).toBeUndefined();
    });

    it('different metadata, no software identity, or an expired window: a new client', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const base = await reg(a, { ...PUBLIC_APP, client_name: 'Window test' });
      const otherUri = await reg(a, {
        ...PUBLIC_APP,
        client_name: 'Window test',
        redirect_uris: ['http://localhost:1/cb'],
      });
      expect(otherUri.json.client_id).not.toBe(base.json.client_id);
      const otherVersion = await reg(a, { ...PUBLIC_APP, client_name: 'Window test', software_version: '2' });
      expect(otherVersion.json.client_id).not.toBe(base.json.client_id);
      const anonymous = { redirect_uris: ['http://localhost:2/cb'], token_endpoint_auth_method: 'none' };
      expect((await reg(a, anonymous)).json.client_id).not.toBe((await reg(a, anonymous)).json.client_id);
      // Each hand-out renews the window: 50 minutes later it is still the same client.
      clock.advance(50 * 60_000);
      expect((await reg(b, { ...PUBLIC_APP, client_name: 'Window test' })).json.client_id).toBe(base.json.client_id);
      clock.advance(61 * 60_000);
      expect((await reg(b, { ...PUBLIC_APP, client_name: 'Window test' })).json.client_id).not.toBe(
        base.json.client_id,
      );
    });

    it('a client changed through RFC 7592, or deleted, is not handed out again', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const body = { ...PUBLIC_APP, client_name: 'Managed app' };
      const first = await reg(a, body);
      const put = await fetch(first.json.registration_client_uri, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${first.json.registration_access_token}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ ...body, client_id: first.json.client_id, logo_uri: 'https://app.example/logo.png' }),
      });
      expect(put.status).toBe(200);
      const second = await reg(a, body);
      expect(second.json.client_id).not.toBe(first.json.client_id);
      const del = await fetch(second.json.registration_client_uri, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${second.json.registration_access_token}` },
      });
      expect(del.status).toBe(204);
      const third = await reg(a, body);
      expect(third.json.client_id).not.toBe(second.json.client_id);
      expect(await storage().getClient(third.json.client_id)).toBeDefined();
    });

    it('identical registrations racing on two replicas leave only complete clients', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const body = { ...PUBLIC_APP, client_name: 'Racing app' };
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => reg(i % 2 ? a : b, body)));
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
      for (const r of results) {
        const client = await storage().getClient(r.json.client_id);
        expect(client?.clientName).toBe('Racing app');
        expect(client?.redirectUris).toEqual(PUBLIC_APP.redirect_uris);
      }
      // Once settled, the next one is a hand-out of one of them.
      const later = await reg(a, body);
      expect(results.map((r) => r.json.client_id)).toContain(later.json.client_id);
    });

    it('confidential clients are not deduplicated by default: every registrant keeps its own secret', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const body = { client_name: 'Machine', grant_types: ['client_credentials'] };
      const one = await reg(a, body);
      const two = await reg(a, body);
      expect(two.json.client_id).not.toBe(one.json.client_id);
      for (const r of [one, two]) {
        const t = await postForm(
          `${a.issuer}/token`,
          { grant_type: 'client_credentials' },
          { authorization: basic(r.json.client_id, r.json.client_secret) },
        );
        expect(t.status).toBe(200);
      }
    });

    it('with confidentialClients: the same id with new credentials; the old secret and token stop working', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const body = { client_name: 'Machine', grant_types: ['client_credentials'] };
      const one = await reg(replaced, body);
      const tokenWith = (secret: string) =>
        postForm(
          `${replaced.issuer}/token`,
          { grant_type: 'client_credentials' },
          { authorization: basic(one.json.client_id, secret) },
        );
      // Used once, so this replica's client cache holds the old record.
      expect((await tokenWith(one.json.client_secret)).status).toBe(200);
      const two = await reg(replaced, body);
      expect(two.json.client_id).toBe(one.json.client_id);
      expect(two.json.client_secret).toBeTruthy();
      expect(two.json.client_secret).not.toBe(one.json.client_secret);
      expect(two.json.registration_access_token).not.toBe(one.json.registration_access_token);
      expect((await tokenWith(one.json.client_secret)).status).toBe(401);
      expect((await tokenWith(two.json.client_secret)).status).toBe(200);
      const manage = (token: string) =>
        fetch(two.json.registration_client_uri, { headers: { authorization: `Bearer ${token}` } });
      expect((await manage(one.json.registration_access_token)).status).toBe(401);
      expect((await manage(two.json.registration_access_token)).status).toBe(200);
    });

    it('collects dynamic clients unused for unusedDays or idle for idleDays; never static ones', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const deps = a.gatehouse.deps;
      const gc = (lease = false) =>
        collectClients(
          {
            storage: deps.storage,
            clock,
            settings: { unusedDays: 7, idleDays: 90, intervalSeconds: 3600 },
            logger: deps.logger,
          },
          lease,
        );
      // The first collection remembers when marks began: every client registered before counts from then.
      clock.advance(60_000);
      await gc();
      clock.advance(60_000);
      const older = (await deps.storage.listClients()).filter((c) => c.source === 'dynamic').map((c) => c.clientId);
      expect(older.length).toBeGreaterThan(0);
      const marks = recordsOf(deps.storage, RECORD_KINDS.clientActivity);
      const machine = (name: string) => reg(a, { client_name: name, grant_types: ['client_credentials'] });
      const unused = (await machine('Unused')).json;
      const once = (await machine('Used once')).json;
      const daily = (await machine('Used daily')).json;
      const tokenFor = (c: Record<string, string>, server = a) =>
        postForm(
          `${server.issuer}/token`,
          { grant_type: 'client_credentials' },
          { authorization: basic(c.client_id!, c.client_secret!) },
        );
      // Marks are written once a day per client and replica: the first token writes it, later ones today do not.
      for (let i = 0; i < 5; i++) {
        expect((await tokenFor(once)).status).toBe(200);
        expect((await tokenFor(once, b)).status).toBe(200);
      }
      const firstMark = await marks.get(once.client_id);
      expect(firstMark?.lastTokenAt).toBe(clock.now());
      clock.advance(60_000);
      expect((await tokenFor(once)).status).toBe(200);
      expect((await marks.get(once.client_id))?.lastTokenAt).toBe(firstMark?.lastTokenAt); // not written again today
      expect((await tokenFor(daily)).status).toBe(200);
      expect((await tokenFor({ client_id: STATIC.id, client_secret: STATIC.secret })).status).toBe(200);
      expect(await marks.get(STATIC.id)).toBeUndefined(); // static clients are never marked

      clock.advance(6 * DAY);
      expect(await gc()).toEqual([]); // six days: nothing is due yet
      clock.advance(DAY + 60_000);
      // Seven days: the unused client goes, and so do the older clients that never had a token.
      const week = await gc();
      expect(week).toContain(unused.client_id);
      expect(week).not.toContain(once.client_id);
      expect(week).not.toContain(daily.client_id);
      // Clients registered before the first collection may have had tokens before marks existed: idleDays for them.
      for (const id of older) expect(week, id).not.toContain(id);
      const unmarkedOlder: string[] = [];
      for (const id of older) if (!(await marks.get(id))) unmarkedOlder.push(id);
      expect(unmarkedOlder.length).toBeGreaterThan(0);
      expect(await deps.storage.getClient(unused.client_id)).toBeUndefined();
      expect((await tokenFor(unused)).status).toBe(401);
      // The daily client keeps getting tokens; a new day, a new mark.
      for (let day = 0; day < 90; day += 10) {
        clock.advance(10 * DAY);
        expect((await tokenFor(daily)).status).toBe(200);
        expect((await marks.get(daily.client_id))?.lastTokenAt).toBe(clock.now());
      }
      // 97 days after its only token day, the once-used client is idle past 90 days; the daily one stays.
      const idle = await gc();
      expect(idle).toContain(once.client_id);
      expect(idle).not.toContain(daily.client_id);
      // ...and the older clients without a mark, 90 days after the first collection.
      expect(idle).toEqual(expect.arrayContaining(unmarkedOlder));
      expect(await marks.get(once.client_id)).toBeUndefined(); // its records went with it
      expect(await deps.storage.getClient(daily.client_id)).toBeDefined();
      expect(await deps.storage.getClient(STATIC.id)).toBeDefined();
      // One replica per round: of two collections in one round, the second does nothing.
      clock.advance(200 * DAY);
      const rounds = await Promise.all([gc(true), gc(true)]);
      expect(rounds.filter((r) => r.includes(daily.client_id))).toHaveLength(1);
    });
  });
}
