/**
 * Signing in at a real OpenID provider (oidc-provider, test/helpers/oidc-upstream.ts) through the real relying-party
 * side (upstream/client.ts), on every store, through the pages as a browser without JavaScript walks them: one
 * upstream and no local users goes upstream at once; consent is asked per downstream client (one client's consent
 * never skips another's); the Gatehouse access token's `sub` is the mapped subject, the same for the same upstream
 * user every time; the grant's upstream tokens are stored sealed and bound; a replayed callback, an expired pending
 * sign-in, a refusal upstream and an upstream that is down or hangs each end where they should (a page, or the
 * client's redirect_uri with an OAuth error), in time. Then a tenant with its own upstream and callback URL, and a
 * login page with two upstreams and local users.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import { hashToken } from '../../src/core/crypto.js';
import { RECORD_KINDS } from '../../src/model/record-kinds.js';
import { upstreamUserId } from '../../src/authorization/upstream-users.js';
import { getUpstreamTokens } from '../../src/grants/upstream-tokens.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { FormBrowser } from '../helpers/browser.js';
import {
  ALICE as UPSTREAM_ALICE,
  signInUpstream,
  startOidcUpstream,
  type OidcUpstream,
} from '../helpers/oidc-upstream.js';
import { ALICE, freePort, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';
import { onLoginPage } from '../helpers/sign-in.js';
import {
  authorizationRequest,
  backFromUpstream,
  redeem,
  registerClient,
  subjectOf,
  toUpstream,
  upstreamsOffered,
} from '../helpers/upstream-flow.js';

const BOB_UPSTREAM = { sub: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob Example' };
const TIMEOUT_MS = 1500;

/** The `upstreams` entry for `upstream` under `id`. */
function upstreamEntry(
  upstream: OidcUpstream,
  id = 'corp',
  name = 'Corp',
): NonNullable<ConfigInput['upstreams']>[number] {
  return {
    id,
    name,
    type: 'oidc',
    issuer: upstream.issuer,
    clientId: upstream.clientId,
    clientSecret: upstream.clientSecret,
    scopes: ['openid', 'email', 'profile'],
    timeoutMs: TIMEOUT_MS,
  };
}

/** A TCP server that accepts connections and never answers: an upstream that hangs. */
async function blackHole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

for (const store of E2E_STORES) {
  describe(`upstream sign-in against oidc-provider on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_us_${randomBytes(4).toString('hex')}`;
    // Real time (the upstream's tokens are checked against it), moved ahead only where a test says.
    const clock: Clock & { offset: number } = { offset: 0, now: () => Date.now() + clock.offset };
    let upstream: OidcUpstream;
    let server: TestServer;

    beforeAll(async () => {
      if (!(await available)) return;
      const port = await freePort();
      upstream = await startOidcUpstream({
        redirectUris: [`http://localhost:${port}/upstream/callback`],
        accounts: [UPSTREAM_ALICE, BOB_UPSTREAM],
      });
      server = await startServer(
        {
          users: [],
          encryptionKey: randomBytes(32).toString('base64'),
          upstreams: [upstreamEntry(upstream)],
          ...store.config(isolation),
        },
        { port, clock },
      );
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await upstream?.close();
      await store.cleanup?.(isolation);
    });

    /**
     * The whole authorization of `client` by upstream account `login` in `browser`: to the upstream at once, its
     * pages, back, consent if asked, the code, the tokens.
     */
    async function signIn(client: { clientId: string; redirectUri: string }, login: string, browser: FormBrowser) {
      const request = authorizationRequest(server, client);
      const left = await toUpstream(browser, server, request.url, upstream.issuer);
      expect(left.upstream, left.page?.html.slice(0, 300)).toBeDefined();
      const callback = await signInUpstream(left.upstream!.href, { login, browser });
      expect(callback.href.startsWith(`${server.issuer}/upstream/callback?`)).toBe(true);
      const back = await backFromUpstream(browser, server, callback.href);
      expect(back.client, back.page.html.slice(0, 300)).toBeDefined();
      const code = back.client!.searchParams.get('code')!;
      expect(code, back.client!.href).toBeTruthy();
      const found = await server.gatehouse.deps.storage.getAuthorizationCode(hashToken(code));
      const grantId = found.status === 'live' ? found.code.grantId : '';
      const tokens = await redeem(server, client, code, request.verifier);
      expect(tokens.status, JSON.stringify(tokens.json)).toBe(200);
      return { consentAsked: back.consentAsked, grantId, tokens: tokens.json as Record<string, string> };
    }

    it('signs in upstream, asks consent per client, and maps the upstream user to one stable sub', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-a');
      const b = await registerClient(server, 'client-b');
      const browser = new FormBrowser();
      const first = await signIn(a, 'alice', browser);
      expect(first.consentAsked).toBe(true);
      const sub = await subjectOf(server, first.tokens.access_token!);
      expect(sub).toBe(upstreamUserId(upstream.issuer, 'alice', undefined));

      // Client B, same browser (signed in upstream already): consent for A does not cover B.
      const forB = await signIn(b, 'alice', browser);
      expect(forB.consentAsked).toBe(true);
      expect(await subjectOf(server, forB.tokens.access_token!)).toBe(sub);
      // A again, in a fresh browser: the same sub, consent remembered for A.
      const again = await signIn(a, 'alice', new FormBrowser());
      expect(again.consentAsked).toBe(false);
      expect(await subjectOf(server, again.tokens.access_token!)).toBe(sub);
      // Another upstream user is another sub.
      const bob = await signIn(a, 'bob', new FormBrowser());
      expect(await subjectOf(server, bob.tokens.access_token!)).toBe(upstreamUserId(upstream.issuer, 'bob', undefined));

      const user = await server.gatehouse.deps.storage.getUser(sub);
      expect(user).toMatchObject({ username: 'corp:alice', email: UPSTREAM_ALICE.email, passwordHash: '' });
    }, 60_000);

    it("stores the grant's upstream tokens sealed and bound to it", async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-sealed');
      const { grantId } = await signIn(a, 'alice', new FormBrowser());
      const { deps } = server.gatehouse;
      const subject = upstreamUserId(upstream.issuer, 'alice', undefined);
      const asked = { subject, clientId: a.clientId, upstreamId: 'corp' };
      const tokens = (await getUpstreamTokens(grantId, asked, deps))!;
      expect(tokens.accessToken).toBeTruthy();
      expect(tokens.idToken).toBeTruthy();
      const stored = await deps.storage.getRecord(RECORD_KINDS.upstreamTokens.name, grantId);
      expect(stored).toMatchObject({ grantId, subject, clientId: a.clientId, upstreamId: 'corp' });
      const raw = JSON.stringify(stored);
      for (const token of [tokens.accessToken, tokens.refreshToken, tokens.idToken].filter(Boolean)) {
        expect(raw).not.toContain(token);
      }
      for (const other of [{ subject: 'someone' }, { clientId: 'another-client' }]) {
        await expect(getUpstreamTokens(grantId, { ...asked, ...other }, deps)).rejects.toMatchObject({
          name: 'UpstreamTokenBindingError',
        });
      }
    }, 30_000);

    it('a replayed callback is refused', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-replay');
      const browser = new FormBrowser();
      const left = await toUpstream(browser, server, authorizationRequest(server, a).url, upstream.issuer);
      const callback = await signInUpstream(left.upstream!.href, { browser });
      expect((await backFromUpstream(browser, server, callback.href)).client).toBeDefined();
      const replay = await browser.follow(callback.href, server.origin);
      expect(replay.callback).toBeUndefined();
      expect(replay.res.status).toBe(400);
      expect(await replay.res.text()).toContain('this sign-in has expired, was already completed');
    }, 30_000);

    it('access_denied upstream lands on the client redirect_uri with error, state and iss', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-denied');
      const browser = new FormBrowser();
      const left = await toUpstream(browser, server, authorizationRequest(server, a).url, upstream.issuer);
      const callback = await signInUpstream(left.upstream!.href, { browser, login: 'bob', decision: 'deny' });
      const back = await backFromUpstream(browser, server, callback.href);
      expect(back.client?.origin + back.client!.pathname).toBe(a.redirectUri);
      expect(Object.fromEntries(back.client!.searchParams)).toMatchObject({
        error: 'access_denied',
        state: 'st',
        iss: server.issuer,
      });
    }, 30_000);

    it('a pending sign-in expires after 10 minutes: the callback is an error page', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-expired');
      const browser = new FormBrowser();
      const left = await toUpstream(browser, server, authorizationRequest(server, a).url, upstream.issuer);
      const callback = await signInUpstream(left.upstream!.href, { browser });
      clock.offset = 10 * 60_000 + 1000;
      try {
        const late = await browser.follow(callback.href, server.origin);
        expect(late.callback).toBeUndefined();
        expect(late.res.status).toBe(400);
      } finally {
        clock.offset = 0;
      }
    }, 30_000);

    it('an upstream that is down by the callback: temporarily_unavailable on the redirect_uri, in time', async (t) => {
      if (!(await available)) return t.skip();
      // A Gatehouse of its own, whose upstream goes away while the user is there.
      const port = await freePort();
      const doomed = await startOidcUpstream({ redirectUris: [`http://localhost:${port}/upstream/callback`] });
      const isolated = `${isolation}_down`;
      const down = await startServer(
        {
          users: [],
          encryptionKey: randomBytes(32).toString('base64'),
          upstreams: [upstreamEntry(doomed)],
          ...store.config(isolated),
        },
        { port },
      );
      try {
        const a = await registerClient(down, 'client-down');
        const browser = new FormBrowser();
        const left = await toUpstream(browser, down, authorizationRequest(down, a).url, doomed.issuer);
        const callback = await signInUpstream(left.upstream!.href, { browser });
        await doomed.close();
        const started = Date.now();
        const back = await backFromUpstream(browser, down, callback.href);
        expect(Date.now() - started).toBeLessThan(TIMEOUT_MS * 3);
        expect(Object.fromEntries(back.client!.searchParams)).toMatchObject({
          error: 'temporarily_unavailable',
          state: 'st',
          iss: down.issuer,
        });
      } finally {
        await down.close();
        await store.cleanup?.(isolated);
      }
    }, 30_000);
  });
}

describe('an upstream that hangs, two upstreams beside local users, and a tenant', () => {
  let upstream: OidcUpstream;
  let hole: { url: string; close(): Promise<void> };
  let server: TestServer;

  beforeAll(async () => {
    const port = await freePort();
    upstream = await startOidcUpstream({
      redirectUris: [`http://localhost:${port}/upstream/callback`, `http://localhost:${port}/acme/upstream/callback`],
    });
    hole = await blackHole();
    const hanging = { ...upstreamEntry(upstream, 'hangs', 'Slow IdP'), issuer: hole.url };
    server = await startServer(
      {
        encryptionKey: randomBytes(32).toString('base64'),
        upstreams: [upstreamEntry(upstream), hanging],
        tenants: [{ id: 'acme', upstreams: [upstreamEntry(upstream, 'corp', 'Corp for Acme')] }],
      },
      { port },
    );
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await upstream?.close();
    await hole?.close();
  });

  it('the login page offers both upstreams (in config order) and the password form', async () => {
    const a = await registerClient(server, 'client-login');
    const left = await toUpstream(new FormBrowser(), server, authorizationRequest(server, a).url, upstream.issuer);
    expect(left.page && onLoginPage(left.page)).toBe(true);
    expect(upstreamsOffered(left.page!.html)).toEqual(['corp', 'hangs']);
    expect(left.page!.html).toContain('Sign in with Slow IdP');
    // A local user still signs in with a password.
    const callback = await new FormBrowser().authorize(authorizationRequest(server, a).url, server.origin, ALICE);
    expect(callback.searchParams.get('code')).toBeTruthy();
  });

  it('an upstream that never answers: temporarily_unavailable on the redirect_uri within its timeout', async () => {
    const a = await registerClient(server, 'client-hang');
    const started = Date.now();
    const left = await toUpstream(
      new FormBrowser(),
      server,
      authorizationRequest(server, a).url,
      upstream.issuer,
      'Slow IdP',
    );
    const elapsed = Date.now() - started;
    expect(left.client, left.page?.html.slice(0, 300)).toBeDefined();
    expect(Object.fromEntries(left.client!.searchParams)).toMatchObject({
      error: 'temporarily_unavailable',
      state: 'st',
    });
    expect(elapsed).toBeLessThan(TIMEOUT_MS * 3);
  }, 20_000);

  it("a tenant's upstream sign-in uses the tenant's callback URL and gives a sub of the tenant", async () => {
    const tenant = { ...server, issuer: `${server.issuer}/acme` };
    const a = await registerClient(tenant, 'client-tenant');
    const browser = new FormBrowser();
    const request = authorizationRequest(tenant, a);
    const left = await toUpstream(browser, tenant, request.url, upstream.issuer);
    // The tenant has no local users and one upstream: straight there, with its own redirect_uri.
    expect(left.upstream?.searchParams.get('redirect_uri')).toBe(`${tenant.issuer}/upstream/callback`);
    const callback = await signInUpstream(left.upstream!.href, { browser });
    const back = await backFromUpstream(browser, tenant, callback.href);
    const tokens = await redeem(tenant, a, back.client!.searchParams.get('code')!, request.verifier);
    expect(tokens.status).toBe(200);
    const sub = await subjectOf(tenant, tokens.json.access_token as string);
    expect(sub).toBe(upstreamUserId(upstream.issuer, 'alice', 'acme'));
    expect(sub).not.toBe(upstreamUserId(upstream.issuer, 'alice', undefined));
  }, 30_000);
});
