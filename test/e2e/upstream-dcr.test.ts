/**
 * Gatehouse as a dynamically registered client (RFC 7591) of a real OpenID provider (oidc-provider with registration
 * and an initial access token), over one Redis store: the first sign-in registers, the next reuses it; two replicas
 * racing the first registration register once; the record is sealed; a secret answered as already expired is not
 * kept (registered again at the next sign-in); an upstream that forgot the client answers invalid_client, the
 * registration is dropped (at a refresh or at the code exchange), the next sign-in registers again and the old
 * grant's tokens are refused (generation).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { hashToken } from '../../src/core/crypto.js';
import { upstreamUserId } from '../../src/authorization/upstream-users.js';
import { getUpstreamTokens } from '../../src/grants/upstream-tokens.js';
import { RECORD_KINDS, recordsOf } from '../../src/model/record-kinds.js';
import { resolveUpstream } from '../../src/upstream/presets.js';
import { registrationId } from '../../src/upstream/registration.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { FormBrowser } from '../helpers/browser.js';
import { signInUpstream, startOidcUpstream, type OidcUpstream } from '../helpers/oidc-upstream.js';
import { reservePort, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { createStorage, type Storage } from '../../src/storage/index.js';
import { systemClock } from '../../src/core/clock.js';
import { E2E_STORES } from '../helpers/stores.js';
import {
  authorizationRequest,
  backFromUpstream,
  redeem,
  registerClient,
  toUpstream,
} from '../helpers/upstream-flow.js';

const IAT = `iat-${randomBytes(16).toString('hex')}`;
const IAT_ENV = 'GH_TEST_UPSTREAM_DCR_IAT';

for (const store of E2E_STORES) {
  describe(`Gatehouse registered dynamically at an upstream, ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    /** Memory and embedded stores belong to one process: both replicas share one store object there. */
    let sharedStore: Storage | undefined;
    const isolation = `gh_dcr_${randomBytes(4).toString('hex')}`;
    let secretExpiresAt: number | undefined;
    let upstream: OidcUpstream;
    let a: TestServer;
    /** Replica B: the same issuer and store, not listening (the race goes through its provider). */
    let b: Gatehouse;
    let config: Partial<ConfigInput>;

    beforeAll(async () => {
      if (!(await available)) return;
      process.env[IAT_ENV] = IAT;
      // Held until Gatehouse listens: the upstream starts first (it needs our redirect URI), and another test's
      // server must not take the port meanwhile (CI once failed here with EADDRINUSE).
      const { port, release } = await reservePort();
      upstream = await startOidcUpstream({
        redirectUris: [`http://localhost:${port}/upstream/callback`],
        refreshTokens: true,
        registration: { initialAccessToken: IAT, secretExpiresAt: () => secretExpiresAt },
      });
      config = {
        users: [],
        encryptionKey: randomBytes(32).toString('base64'),
        upstreams: [
          {
            id: 'corp',
            name: 'Corp',
            type: 'oidc',
            issuer: upstream.issuer,
            registration: { mode: 'dynamic', initialAccessTokenEnv: IAT_ENV, softwareId: 'gatehouse-tests' },
            scopes: ['openid', 'email', 'profile'],
            timeoutMs: 1500,
          },
        ],
        ...store.config(isolation),
      };
      if (!store.service) {
        sharedStore = await createStorage(config.storage!, { clock: systemClock, cleanupIntervalMs: 0 });
      }
      await release();
      a = await startServer(config, { port, storage: sharedStore });
      b = await createGatehouse(
        parseConfig({
          logLevel: 'silent',
          ...config,
          port,
          host: '127.0.0.1',
          issuer: a.issuer,
        }),
        { logger: createLogger('silent'), storage: sharedStore },
      );
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await a?.close();
      await b?.close();
      await upstream?.close();
      await sharedStore?.close();
      await store.cleanup?.(isolation);
      delete process.env[IAT_ENV];
    });

    const registrations = () => upstream.registrations.filter((r) => r.status === 201).length;
    const record = async () => {
      const records = recordsOf(a.gatehouse.deps.storage, RECORD_KINDS.upstreamRegistration);
      const provider = a.gatehouse.deps.upstreams.get('corp')!;
      const generation = await provider.registrationGeneration!();
      return { generation, records };
    };

    const recordId = () =>
      registrationId(resolveUpstream(a.gatehouse.deps.config.upstreams[0]!), `${a.issuer}/upstream/callback`);

    /** A full sign-in of a new client through the upstream on replica A; its grant id. */
    async function signIn(name: string): Promise<string> {
      const client = await registerClient(a, name);
      const browser = new FormBrowser();
      const request = authorizationRequest(a, client);
      const left = await toUpstream(browser, a, request.url, upstream.issuer);
      expect(left.upstream, 'sent to the upstream').toBeDefined();
      const callback = await signInUpstream(left.upstream!.href, { browser });
      const back = await backFromUpstream(browser, a, callback.href);
      const code = back.client?.searchParams.get('code');
      expect(code, `back at the client: ${back.page.html?.slice(0, 300)}`).toBeTruthy();
      const found = await a.gatehouse.deps.storage.getAuthorizationCode(hashToken(code!));
      expect((await redeem(a, client, code!, request.verifier)).status).toBe(200);
      return found.status === 'live' ? found.code.grantId : '';
    }

    it('two replicas racing the first use register once, with the initial access token; the record is sealed', async (t) => {
      if (!(await available)) return t.skip();
      // The upstream refuses a registration without the initial access token, or with another.
      for (const authorization of [undefined, 'Bearer not-the-initial-access-token']) {
        const refused = await fetch(`${upstream.issuer}/reg`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          body: JSON.stringify({ redirect_uris: [`${a.issuer}/upstream/callback`] }),
        });
        expect(refused.status).toBe(authorization ? 401 : 400);
      }

      const redirectUri = `${a.issuer}/upstream/callback`;
      const providers = [a.gatehouse.deps.upstreams.get('corp')!, b.deps.upstreams.get('corp')!];
      const begun = await Promise.all([0, 1, 2, 3].map((i) => providers[i % 2]!.begin(redirectUri)));
      expect(registrations()).toBe(1);
      const sent = upstream.registrations.find((r) => r.status === 201)!;
      expect(sent.authorization).toBe(`Bearer ${IAT}`);
      expect(sent.body).toMatchObject({
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        application_type: 'web',
        software_id: 'gatehouse-tests',
        scope: 'openid email profile',
      });
      const clientIds = begun.map((r) => new URL(r.url).searchParams.get('client_id'));
      expect(new Set(clientIds).size).toBe(1);

      const { generation, records } = await record();
      expect(generation).toBeTruthy();
      const client = await upstream.provider.Client.find(clientIds[0]!);
      const secret = client!.clientSecret!;
      expect(secret).toBeTruthy();
      const stored = (await records.get(recordId()))!;
      expect(stored.clientId).toBe(clientIds[0]);
      expect(stored.sealedClientSecret).toMatch(/^sealed:/);
      expect(JSON.stringify(stored)).not.toContain(secret);
      expect(stored.registrationClientUri).toContain('/reg/');
      expect(stored.sealedRegistrationAccessToken).toMatch(/^sealed:/);
    }, 60_000);

    it('sign-ins reuse the registration', async (t) => {
      if (!(await available)) return t.skip();
      const before = registrations();
      await signIn('dcr-reuse-1');
      await signIn('dcr-reuse-2');
      expect(registrations()).toBe(before);
    }, 60_000);

    it('the upstream callback completes on the other replica, once', async (t) => {
      if (!(await available)) return t.skip();
      // Replica B takes the callback (as a load balancer may send it there): the pending record is in the store.
      await b.app.listen({ port: 0, host: '127.0.0.1' });
      const address = b.app.server.address();
      const bOrigin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const client = await registerClient(a, 'dcr-other-replica');
      const browser = new FormBrowser();
      const request = authorizationRequest(a, client);
      const left = await toUpstream(browser, a, request.url, upstream.issuer);
      const callback = await signInUpstream(left.upstream!.href, { browser });
      const atB = new URL(callback.pathname + callback.search, bOrigin).href;
      const first = await browser.request(atB);
      // B redirects on to the interaction (a path: the sign-in continues at whichever replica serves it, A here).
      expect(first.status).toBe(303);
      const next = new URL(first.headers.get('location')!, a.origin).href;
      expect(next).toMatch(new RegExp(`^${a.issuer}/interaction/`));
      // The same callback again, at either replica, is refused: the pending record was taken.
      expect((await browser.request(atB)).status).toBe(400);
      expect((await browser.request(callback.href)).status).toBe(400);
      const back = await backFromUpstream(browser, a, next);
      const code = back.client?.searchParams.get('code');
      expect(code).toBeTruthy();
      expect((await redeem(a, client, code!, request.verifier)).status).toBe(200);
    }, 60_000);

    it('a client the upstream forgot (invalid_client) is registered again; the old tokens are refused', async (t) => {
      if (!(await available)) return t.skip();
      const grantId = await signIn('dcr-forgotten');
      const asked = {
        subject: upstreamUserId(upstream.issuer, 'alice', undefined),
        clientId: (await a.gatehouse.deps.storage.getGrant(grantId))!.clientId,
        upstreamId: 'corp',
      };
      const tokens = (await getUpstreamTokens(grantId, asked, a.gatehouse.deps))!;
      expect(tokens.refreshToken).toBeTruthy();
      const { generation: old } = await record();
      const provider = a.gatehouse.deps.upstreams.get('corp')!;
      // Deleted at the upstream through the kept RFC 7592 management URI and access token.
      const { records } = await record();
      const stored = (await records.get(recordId()))!;
      const managementToken = a.gatehouse.deps.sealer!.open(
        stored.sealedRegistrationAccessToken!,
        `upstream-registration:${recordId()}:registration_access_token`,
        'test',
      );
      const deleted = await fetch(stored.registrationClientUri!, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${managementToken}` },
      });
      expect(deleted.status).toBe(204);

      await expect(provider.refresh(tokens.refreshToken!)).rejects.toMatchObject({ failure: 'invalid_grant' });
      expect((await record()).generation).toBeUndefined();
      const before = registrations();
      await signIn('dcr-after-forgotten');
      expect(registrations()).toBe(before + 1);
      const { generation } = await record();
      expect(generation).toBeTruthy();
      expect(generation).not.toBe(old);
      await expect(getUpstreamTokens(grantId, asked, a.gatehouse.deps)).rejects.toMatchObject({
        name: 'UpstreamTokenBindingError',
      });
    }, 60_000);

    it('invalid_client at the code exchange fails that sign-in; the next one registers again', async (t) => {
      if (!(await available)) return t.skip();
      const { records, generation: old } = await record();
      const stored = (await records.get(recordId()))!;
      const client = await registerClient(a, 'dcr-exchange');
      const browser = new FormBrowser();
      const request = authorizationRequest(a, client);
      const left = await toUpstream(browser, a, request.url, upstream.issuer);
      const callback = await signInUpstream(left.upstream!.href, { browser });
      // Forgotten between the upstream's sign-in and the code exchange.
      const managementToken = a.gatehouse.deps.sealer!.open(
        stored.sealedRegistrationAccessToken!,
        `upstream-registration:${recordId()}:registration_access_token`,
        'test',
      );
      const deleted = await fetch(stored.registrationClientUri!, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${managementToken}` },
      });
      expect(deleted.status).toBe(204);
      const back = await backFromUpstream(browser, a, callback.href);
      expect(back.client?.searchParams.get('code') ?? null).toBeNull();
      expect(upstream.tokenRequests.at(-1)).toBe('authorization_code:invalid_client');
      expect((await record()).generation).toBeUndefined();
      const before = registrations();
      await signIn('dcr-after-exchange');
      expect(registrations()).toBe(before + 1);
      expect((await record()).generation).not.toBe(old);
    }, 60_000);

    it('a secret answered as already expired is not kept: registered again at the next use', async (t) => {
      if (!(await available)) return t.skip();
      // Start from no registration: dropped, as invalid_client leaves it.
      const { generation, records } = await record();
      expect(generation).toBeTruthy();
      await records.put({ ...(await records.get(recordId()))!, dropped: true });
      secretExpiresAt = Math.floor(Date.now() / 1000) - 60;
      try {
        const provider = a.gatehouse.deps.upstreams.get('corp')!;
        const before = registrations();
        await provider.begin(`${a.issuer}/upstream/callback`);
        expect(registrations()).toBe(before + 1);
        expect((await record()).generation).toBeUndefined();
        await provider.begin(`${a.issuer}/upstream/callback`);
        expect(registrations()).toBe(before + 2);
      } finally {
        secretExpiresAt = undefined;
      }
      // A secret that does not expire is kept again, and sign-ins work.
      const before = registrations();
      await signIn('dcr-after-expired');
      await signIn('dcr-after-expired-2');
      expect(registrations()).toBe(before + 1);
    }, 60_000);
  });
}
