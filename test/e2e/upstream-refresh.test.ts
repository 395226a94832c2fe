/**
 * Refreshing a grant's upstream tokens against a real OpenID provider (oidc-provider), from two Gatehouse replicas
 * over one PostgreSQL or Redis store: racing callers on both spend the upstream refresh token exactly once and all
 * get the winner's tokens; an upstream that does not rotate has its refresh token carried forward; `invalid_grant`
 * marks the grant as needing a new sign-in (typed error, the token never sent again); a holder that crashed after
 * spending the token leaves the grant needing a new sign-in, not a second send; tokens of a previous upstream client
 * generation are refused unrefreshed; /health (and a tenant's /<tenant>/health, with the tenant's upstreams) shows a
 * stopped upstream as degraded while staying 200.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import { hashToken } from '../../src/core/crypto.js';
import { RECORD_KINDS, recordsOf } from '../../src/model/record-kinds.js';
import { upstreamUserId } from '../../src/authorization/upstream-users.js';
import {
  freshUpstreamTokens,
  getUpstreamTokens,
  sealUpstreamTokens,
  UpstreamSignInRequiredError,
} from '../../src/grants/upstream-tokens.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { UpstreamTokens } from '../../src/upstream/provider.js';
import { FormBrowser } from '../helpers/browser.js';
import { signInUpstream, startOidcUpstream, type OidcUpstream } from '../helpers/oidc-upstream.js';
import { reservePort, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { createStorage, type Storage } from '../../src/storage/index.js';
import { E2E_STORES } from '../helpers/stores.js';
import {
  authorizationRequest,
  backFromUpstream,
  redeem,
  registerClient,
  toUpstream,
} from '../helpers/upstream-flow.js';

const refreshes = (upstream: OidcUpstream) => upstream.tokenRequests.filter((r) => r.startsWith('refresh_token:'));

for (const store of E2E_STORES) {
  describe(`upstream refresh across two replicas on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    /**
     * Memory and embedded stores belong to one process: the two replicas share one store object there; PostgreSQL
     * and Redis replicas each have their own connections.
     */
    let sharedStore: Storage | undefined;
    const isolation = `gh_ur_${randomBytes(4).toString('hex')}`;
    // Real time (oidc-provider checks its own tokens against it), moved ahead to make the access token expire soon.
    const clock: Clock & { offset: number } = { offset: 0, now: () => Date.now() + clock.offset };
    let rotate = true;
    let upstream: OidcUpstream;
    let a: TestServer;
    let b: TestServer;
    let entry: NonNullable<ConfigInput['upstreams']>[number];

    beforeAll(async () => {
      if (!(await available)) return;
      // Held until Gatehouse listens (the upstream, started first, needs our redirect URI).
      const { port, release } = await reservePort();
      upstream = await startOidcUpstream({
        redirectUris: [`http://localhost:${port}/upstream/callback`],
        refreshTokens: true,
        rotateRefreshToken: () => rotate,
        // Short, so moving the clock to near expiry stays well within the upstream ID tokens' hour.
        accessTokenTtl: 120,
      });
      entry = {
        id: 'corp',
        name: 'Corp',
        type: 'oidc',
        issuer: upstream.issuer,
        clientId: upstream.clientId,
        clientSecret: upstream.clientSecret,
        scopes: ['openid', 'email', 'profile'],
        timeoutMs: 1500,
      };
      const config: Partial<ConfigInput> = {
        users: [],
        encryptionKey: randomBytes(32).toString('base64'),
        upstreams: [entry],
        // A tenant with an upstream of its own: its /acme/health reports that one.
        tenants: [{ id: 'acme', upstreams: [{ ...entry, id: 'acme-sso', name: 'Acme SSO' }] }],
        ...store.config(isolation),
      };
      if (!store.service) sharedStore = await createStorage(config.storage!, { clock, cleanupIntervalMs: 0 });
      await release();
      a = await startServer(config, { port, clock, storage: sharedStore });
      b = await startServer(config, { clock, storage: sharedStore });
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await a?.close();
      await b?.close();
      await upstream?.close();
      await sharedStore?.close();
      await store.cleanup?.(isolation);
    });

    /** A grant of a new client, signed in upstream as alice on replica A; the clock back at real time first. */
    async function signedInGrant(name: string) {
      clock.offset = 0;
      const client = await registerClient(a, name);
      const browser = new FormBrowser();
      const request = authorizationRequest(a, client);
      const left = await toUpstream(browser, a, request.url, upstream.issuer);
      const callback = await signInUpstream(left.upstream!.href, { browser });
      const back = await backFromUpstream(browser, a, callback.href);
      const code = back.client!.searchParams.get('code')!;
      const found = await a.gatehouse.deps.storage.getAuthorizationCode(hashToken(code));
      const grantId = found.status === 'live' ? found.code.grantId : '';
      expect((await redeem(a, client, code, request.verifier)).status).toBe(200);
      const asked = {
        subject: upstreamUserId(upstream.issuer, 'alice', undefined),
        clientId: client.clientId,
        upstreamId: 'corp',
      };
      const tokens = (await getUpstreamTokens(grantId, asked, a.gatehouse.deps))!;
      expect(tokens.refreshToken).toBeTruthy();
      expect(tokens.expiresAt).toBeGreaterThan(clock.now());
      return { grantId, asked, tokens };
    }

    /** Moves the clock to 30 s before `tokens` expire: inside the 60 s refresh margin. */
    const nearExpiry = (tokens: UpstreamTokens) => (clock.offset += tokens.expiresAt! - 30_000 - clock.now());

    it('ten callers on two replicas refresh once upstream and all get the same new tokens', async (t) => {
      if (!(await available)) return t.skip();
      rotate = true;
      const { grantId, asked, tokens } = await signedInGrant('client-race');
      // Not near expiry: served as stored, nothing sent.
      const before = refreshes(upstream).length;
      expect(await freshUpstreamTokens(grantId, asked, b.gatehouse.deps)).toEqual(tokens);
      expect(refreshes(upstream).length).toBe(before);

      nearExpiry(tokens);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          freshUpstreamTokens(grantId, asked, (i % 2 === 0 ? a : b).gatehouse.deps, { pollMs: 20 }),
        ),
      );
      expect(refreshes(upstream).slice(before)).toEqual(['refresh_token:ok']);
      const fresh = results[0]!;
      expect(fresh.accessToken).not.toBe(tokens.accessToken);
      expect(fresh.refreshToken).not.toBe(tokens.refreshToken);
      expect(fresh.expiresAt).toBeGreaterThan(clock.now() + 60_000);
      for (const r of results) expect(r).toEqual(fresh);
      // Stored for every replica: read back sealed, version 1.
      expect(await getUpstreamTokens(grantId, asked, b.gatehouse.deps)).toEqual(fresh);
      const record = await recordsOf(a.gatehouse.deps.storage, RECORD_KINDS.upstreamTokens).get(grantId);
      expect(record).toMatchObject({ version: 1 });
      expect(record!.refreshSpent).toBeUndefined();
      // The old refresh token is spent upstream; the new one works (a second refresh, later).
      nearExpiry(fresh);
      const again = await freshUpstreamTokens(grantId, asked, a.gatehouse.deps);
      expect(again!.accessToken).not.toBe(fresh.accessToken);
      expect(refreshes(upstream).slice(before)).toEqual(['refresh_token:ok', 'refresh_token:ok']);
    }, 60_000);

    it('an upstream that does not rotate has its refresh token carried forward', async (t) => {
      if (!(await available)) return t.skip();
      rotate = false;
      try {
        const { grantId, asked, tokens } = await signedInGrant('client-no-rotation');
        nearExpiry(tokens);
        const fresh = (await freshUpstreamTokens(grantId, asked, b.gatehouse.deps))!;
        expect(fresh.accessToken).not.toBe(tokens.accessToken);
        expect(fresh.refreshToken).toBe(tokens.refreshToken);
        expect(await getUpstreamTokens(grantId, asked, a.gatehouse.deps)).toEqual(fresh);
      } finally {
        rotate = true;
      }
    }, 60_000);

    it('invalid_grant upstream marks the grant as needing a new sign-in, and the token is not sent again', async (t) => {
      if (!(await available)) return t.skip();
      const { grantId, asked, tokens } = await signedInGrant('client-invalid-grant');
      const { deps } = a.gatehouse;
      const records = recordsOf(deps.storage, RECORD_KINDS.upstreamTokens);
      const record = (await records.get(grantId))!;
      const garbage = { ...tokens, refreshToken: 'not-a-refresh-token-the-upstream-issued' };
      await records.put({ ...record, sealedTokens: sealUpstreamTokens(garbage, record, deps.sealer) });
      nearExpiry(tokens);
      const before = refreshes(upstream).length;
      const failed = await freshUpstreamTokens(grantId, asked, deps).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(UpstreamSignInRequiredError);
      expect(failed).toMatchObject({ reason: 'invalid_grant', grantId, upstreamId: 'corp' });
      expect(refreshes(upstream).slice(before)).toEqual(['refresh_token:invalid_grant']);
      const marked = (await records.get(grantId))!;
      expect(marked).toMatchObject({ needsSignIn: true, sealedTokens: '', version: 1 });
      // Every later read, on either replica: the same typed error, nothing sent.
      for (const server of [a, b]) {
        await expect(freshUpstreamTokens(grantId, asked, server.gatehouse.deps)).rejects.toBeInstanceOf(
          UpstreamSignInRequiredError,
        );
        await expect(getUpstreamTokens(grantId, asked, server.gatehouse.deps)).rejects.toMatchObject({
          reason: 'marked',
        });
      }
      expect(refreshes(upstream).length).toBe(before + 1);
    }, 60_000);

    it('after a holder crashed with the token spent, the lease expires and the grant needs a new sign-in', async (t) => {
      if (!(await available)) return t.skip();
      const { grantId, asked, tokens } = await signedInGrant('client-crash');
      const { deps } = a.gatehouse;
      const records = recordsOf(deps.storage, RECORD_KINDS.upstreamTokens);
      nearExpiry(tokens);
      // What a holder leaves when it crashes after sending: the lease for version 0, the record marked spent.
      const leaseMs = 400;
      expect(await deps.storage.firstUse(`upstream-refresh:${grantId}:0`, clock.now() + leaseMs)).toBe(true);
      await records.put({ ...(await records.get(grantId))!, refreshSpent: true });
      const before = refreshes(upstream).length;
      const started = Date.now();
      const failed = await freshUpstreamTokens(grantId, asked, b.gatehouse.deps, { leaseMs, pollMs: 20 }).catch(
        (e: unknown) => e,
      );
      expect(failed).toMatchObject({ name: 'UpstreamSignInRequiredError', reason: 'spent' });
      // It waited for the crashed holder's lease, then did not send the spent token.
      expect(Date.now() - started).toBeGreaterThanOrEqual(leaseMs - 50);
      expect(refreshes(upstream).length).toBe(before);
      expect(await records.get(grantId)).toMatchObject({ needsSignIn: true, version: 1 });
    }, 60_000);

    it('a holder whose lease is live but has not sent yet: the next one after the lease refreshes', async (t) => {
      if (!(await available)) return t.skip();
      const { grantId, asked, tokens } = await signedInGrant('client-crash-before-send');
      const { deps } = a.gatehouse;
      nearExpiry(tokens);
      // Crashed before marking the token spent: it was never sent, so the next holder may send it.
      expect(await deps.storage.firstUse(`upstream-refresh:${grantId}:0`, clock.now() + 300)).toBe(true);
      const before = refreshes(upstream).length;
      const fresh = await freshUpstreamTokens(grantId, asked, b.gatehouse.deps, { leaseMs: 300, pollMs: 20 });
      expect(fresh!.accessToken).not.toBe(tokens.accessToken);
      expect(refreshes(upstream).slice(before)).toEqual(['refresh_token:ok']);
    }, 60_000);

    it('tokens of a previous upstream client generation are refused, not refreshed', async (t) => {
      if (!(await available)) return t.skip();
      const { grantId, asked, tokens } = await signedInGrant('client-generation');
      nearExpiry(tokens);
      const { deps } = a.gatehouse;
      // Gatehouse registered again at the upstream: another client id under the same upstream id.
      const reRegistered = {
        ...deps,
        config: { ...deps.config, upstreams: deps.config.upstreams.map((u) => ({ ...u, clientId: 'gatehouse-2' })) },
      };
      const before = refreshes(upstream).length;
      for (const read of [freshUpstreamTokens, getUpstreamTokens]) {
        await expect(read(grantId, asked, reRegistered)).rejects.toMatchObject({
          name: 'UpstreamTokenBindingError',
          mismatch: 'client_generation',
        });
      }
      expect(refreshes(upstream).length).toBe(before);
    }, 60_000);

    it('/health reports the upstream, and degraded (still 200) once it is stopped', async (t) => {
      if (!(await available)) return t.skip();
      clock.offset = 0;
      const first = await fetch(`${a.origin}/health`);
      expect(first.status).toBe(200);
      const up = (await first.json()) as { status: string; upstreams: Record<string, Record<string, string>> };
      expect(up.status).toBe('ok');
      expect(up.upstreams.corp).toMatchObject({ status: 'up', discovery: 'ok' });
      expect(Object.keys(up.upstreams)).toEqual(['corp']);
      const tenant = (await (await fetch(`${a.origin}/acme/health`)).json()) as typeof up;
      expect(Object.keys(tenant.upstreams)).toEqual(['acme-sso']);
      expect(tenant.upstreams['acme-sso']).toMatchObject({ status: 'up', discovery: 'ok' });
      await upstream.close();
      clock.offset += 20_000; // past the probe interval
      const second = await fetch(`${a.origin}/health`);
      expect(second.status).toBe(200);
      const down = (await second.json()) as typeof up;
      expect(down.status).toBe('ok');
      expect(down.upstreams.corp).toMatchObject({ status: 'degraded', discovery: 'failed' });
      expect(down.upstreams.corp!.error).toBeTruthy();
      const tenantDown = await fetch(`${a.origin}/acme/health`);
      expect(tenantDown.status).toBe(200);
      expect(((await tenantDown.json()) as typeof up).upstreams['acme-sso']).toMatchObject({ status: 'degraded' });
    }, 60_000);
  });
}
