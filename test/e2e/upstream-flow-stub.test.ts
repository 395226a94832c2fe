/**
 * The upstream sign-in's HTTP wiring on every store, with a stub provider in place of the relying-party side (the
 * `upstreams` option of createGatehouse): the login page's upstream forms (CSRF-protected), the 303 upstream, the
 * callback (its session cookie, then consent per client, then the code), the mapped `sub`, the sealed and bound token
 * record of the grant, and each revocation path that deletes it. The same flow against a real OpenID provider through
 * the real relying-party side is test/e2e/upstream-sign-in.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, randomToken } from '../../src/core/crypto.js';
import { RECORD_KINDS } from '../../src/model/record-kinds.js';
import { upstreamUserId } from '../../src/authorization/upstream-users.js';
import { getUpstreamTokens } from '../../src/grants/upstream-tokens.js';
import type {
  UpstreamIdentity,
  UpstreamProvider,
  UpstreamStatus,
  UpstreamTokens,
} from '../../src/upstream/provider.js';
import { UpstreamError } from '../../src/upstream/provider.js';
import { FormBrowser } from '../helpers/browser.js';
import { postForm } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';
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

const UPSTREAM_ORIGIN = 'https://login.corp.example.com';

/** Answers the callback with the identity of the user named by the code (`code=<subject>`), or a failure. */
class StubUpstream implements UpstreamProvider {
  readonly id = 'corp';
  readonly name = 'Corp';
  readonly issuer = UPSTREAM_ORIGIN;
  failure?: UpstreamError;
  lastTokens?: UpstreamTokens;

  refresh(): Promise<UpstreamTokens> {
    return Promise.reject(new Error('not used'));
  }

  status(): UpstreamStatus {
    return { status: 'up', discovery: 'static' };
  }

  probe(): Promise<UpstreamStatus> {
    return Promise.resolve(this.status());
  }

  async begin() {
    const state = randomToken();
    return {
      url: `${UPSTREAM_ORIGIN}/authorize?state=${state}`,
      state,
      nonce: randomToken(),
      codeVerifier: randomToken(),
    };
  }

  async complete(callback: URLSearchParams) {
    if (this.failure) throw this.failure;
    const subject = callback.get('code')!;
    const identity: UpstreamIdentity = {
      upstreamId: this.id,
      issuer: this.issuer,
      subject,
      email: `${subject}@corp.example`,
    };
    this.lastTokens = {
      tokenType: 'Bearer',
      accessToken: `upstream-at-${randomToken(12)}`,
      refreshToken: `upstream-rt-${randomToken(12)}`,
      idToken: `eyJ.upstream-id-${randomToken(12)}.sig`,
    };
    return { identity, tokens: this.lastTokens };
  }
}

/** The upstream "answers": Gatehouse's callback URL for the state the browser was sent upstream with. */
function upstreamAnswers(server: TestServer, upstream: URL, answer: Record<string, string>): string {
  const state = upstream.searchParams.get('state')!;
  return `${server.issuer}/upstream/callback?${new URLSearchParams({ ...answer, state, iss: UPSTREAM_ORIGIN })}`;
}

for (const store of E2E_STORES) {
  describe(`upstream sign-in wiring (stub upstream) on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_usf_${randomBytes(4).toString('hex')}`;
    const stub = new StubUpstream();
    let server: TestServer;

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer(
        { users: [], encryptionKey: randomBytes(32).toString('base64'), ...store.config(isolation) },
        { upstreams: () => new Map([[stub.id, stub]]) },
      );
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await store.cleanup?.(isolation);
    });

    /** One whole authorization of `client` by upstream user `subject`: the browser, the code and what it redeems to. */
    async function signIn(
      client: { clientId: string; redirectUri: string },
      subject: string,
      browser = new FormBrowser(),
    ) {
      stub.failure = undefined;
      const request = authorizationRequest(server, client);
      const left = await toUpstream(browser, server, request.url, UPSTREAM_ORIGIN, 'Corp');
      expect(left.upstream, left.page?.html.slice(0, 300)).toBeDefined();
      const back = await backFromUpstream(browser, server, upstreamAnswers(server, left.upstream!, { code: subject }));
      expect(back.client, back.page.html.slice(0, 300)).toBeDefined();
      const code = back.client!.searchParams.get('code')!;
      const found = await server.gatehouse.deps.storage.getAuthorizationCode(hashToken(code));
      const grantId = found.status === 'live' ? found.code.grantId : '';
      const tokens = await redeem(server, client, code, request.verifier);
      expect(tokens.status, JSON.stringify(tokens.json)).toBe(200);
      return { browser, back, grantId, tokens: tokens.json as Record<string, string> };
    }

    it('with one upstream and no local users, goes upstream at once; consent per client; the mapped sub', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-a');
      const b = await registerClient(server, 'client-b');
      const first = await signIn(a, 'ann');
      expect(first.back.consentAsked).toBe(true);
      const sub = await subjectOf(server, first.tokens.access_token!);
      expect(sub).toBe(upstreamUserId(UPSTREAM_ORIGIN, 'ann', undefined));

      // The same browser: the upstream session does not stand in, the request goes upstream again; B asks consent.
      const forB = await signIn(b, 'ann', first.browser);
      expect(forB.back.consentAsked).toBe(true);
      expect(await subjectOf(server, forB.tokens.access_token!)).toBe(sub);
      // A again: remembered for A.
      const again = await signIn(a, 'ann', first.browser);
      expect(again.back.consentAsked).toBe(false);
      expect(await subjectOf(server, again.tokens.access_token!)).toBe(sub);
      // Another upstream user is another sub.
      const other = await signIn(a, 'bea');
      expect(await subjectOf(server, other.tokens.access_token!)).not.toBe(sub);
    });

    it('the grant has its upstream tokens, sealed and bound to it; revocation deletes them', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-tokens');
      const { grantId, tokens } = await signIn(a, 'cat');
      const { deps } = server.gatehouse;
      const subject = upstreamUserId(UPSTREAM_ORIGIN, 'cat', undefined);
      const stored = await deps.storage.getRecord(RECORD_KINDS.upstreamTokens.name, grantId);
      expect(stored).toMatchObject({ grantId, subject, clientId: a.clientId, upstreamId: 'corp' });
      const raw = JSON.stringify(stored);
      for (const token of Object.values(stub.lastTokens!)) expect(raw).not.toContain(token);
      const asked = { subject, clientId: a.clientId, upstreamId: 'corp' };
      expect(await getUpstreamTokens(grantId, asked, deps)).toEqual(stub.lastTokens);
      await expect(getUpstreamTokens(grantId, { ...asked, clientId: 'someone-else' }, deps)).rejects.toMatchObject({
        name: 'UpstreamTokenBindingError',
      });

      const revoked = await postForm(`${server.issuer}/revoke`, {
        token: tokens.refresh_token!,
        client_id: a.clientId,
      });
      expect(revoked.status).toBe(200);
      expect(await deps.storage.getRecord(RECORD_KINDS.upstreamTokens.name, grantId)).toBeUndefined();
    });

    it('refresh-token reuse and code replay delete the upstream tokens of their grant', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-reuse');
      const { deps } = server.gatehouse;
      const kind = RECORD_KINDS.upstreamTokens.name;
      const refreshed = await signIn(a, 'dan');
      const refresh = (token: string) =>
        postForm(`${server.issuer}/token`, {
          grant_type: 'refresh_token',
          refresh_token: token,
          client_id: a.clientId,
        });
      expect((await refresh(refreshed.tokens.refresh_token!)).status).toBe(200);
      expect(await deps.storage.getRecord(kind, refreshed.grantId)).toBeDefined();
      // Past the grace window, the rotated token comes back: reuse.
      const graceMs = deps.config.tokens.refreshGraceSeconds * 1000;
      await new Promise((resolve) => setTimeout(resolve, graceMs + 50));
      expect((await refresh(refreshed.tokens.refresh_token!)).status).toBe(400);
      expect(await deps.storage.getRecord(kind, refreshed.grantId)).toBeUndefined();

      // A code redeemed twice.
      stub.failure = undefined;
      const request = authorizationRequest(server, a);
      const browser = new FormBrowser();
      const left = await toUpstream(browser, server, request.url, UPSTREAM_ORIGIN, 'Corp');
      const back = await backFromUpstream(browser, server, upstreamAnswers(server, left.upstream!, { code: 'dan' }));
      const code = back.client!.searchParams.get('code')!;
      const found = await deps.storage.getAuthorizationCode(hashToken(code));
      const grantId = found.status === 'live' ? found.code.grantId : '';
      expect((await redeem(server, a, code, request.verifier)).status).toBe(200);
      expect(await deps.storage.getRecord(kind, grantId)).toBeDefined();
      expect((await redeem(server, a, code, request.verifier)).status).toBe(400);
      expect(await deps.storage.getRecord(kind, grantId)).toBeUndefined();
    }, 30_000);

    it('callback replay, a made-up state and an upstream refusal', async (t) => {
      if (!(await available)) return t.skip();
      const a = await registerClient(server, 'client-errors');
      const browser = new FormBrowser();
      const request = authorizationRequest(server, a);
      const left = await toUpstream(browser, server, request.url, UPSTREAM_ORIGIN, 'Corp');
      const callback = upstreamAnswers(server, left.upstream!, { code: 'eve' });
      expect((await backFromUpstream(browser, server, callback)).client).toBeDefined();
      const replay = await browser.follow(callback, server.origin);
      expect(replay.res.status).toBe(400);
      expect(await replay.res.text()).toContain('invalid_request');
      const madeUp = await browser.follow(`${server.issuer}/upstream/callback?state=nope&code=x`, server.origin);
      expect(madeUp.res.status).toBe(400);
      expect(madeUp.callback).toBeUndefined();

      stub.failure = new UpstreamError('access_denied', 'no');
      const denied = await toUpstream(browser, server, authorizationRequest(server, a).url, UPSTREAM_ORIGIN, 'Corp');
      const ended = await backFromUpstream(
        browser,
        server,
        upstreamAnswers(server, denied.upstream!, { error: 'access_denied' }),
      );
      expect(Object.fromEntries(ended.client!.searchParams)).toMatchObject({
        error: 'access_denied',
        state: 'st',
        iss: server.issuer,
      });
    });
  });
}

describe('the login page with upstreams and local users', () => {
  const stub = new StubUpstream();
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(
      { encryptionKey: randomBytes(32).toString('base64') },
      { upstreams: () => new Map([[stub.id, stub]]) },
    );
  });
  afterAll(() => server?.close());

  it('offers the upstream beside the password form; its form is CSRF-protected', async () => {
    const a = await registerClient(server, 'client-login');
    const browser = new FormBrowser();
    const page = await toUpstream(browser, server, authorizationRequest(server, a).url, UPSTREAM_ORIGIN);
    expect(page.page && onLoginPage(page.page)).toBe(true);
    expect(upstreamsOffered(page.page!.html)).toEqual(['corp']);
    expect(page.page!.html).toContain('Sign in with Corp');
    const action = /action="([^"]*\/upstream)"/.exec(page.page!.html)![1]!;
    const forged = await browser.request(new URL(action, page.page!.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ upstream: 'corp', csrf: 'forged' }).toString(),
    });
    expect(forged.status).toBe(400);
    expect(forged.headers.get('location')).toBeNull();
  });

  it('a local user still signs in with a password', async () => {
    const a = await registerClient(server, 'client-local');
    const callback = await new FormBrowser().authorize(authorizationRequest(server, a).url, server.origin, ALICE);
    expect(callback.searchParams.get('code')).toBeTruthy();
  });

  it('without an encryption key, a server with upstreams does not start', async () => {
    await expect(startServer({}, { upstreams: () => new Map([[stub.id, stub]]) })).rejects.toThrow(/encryptionKey/);
  });
});
