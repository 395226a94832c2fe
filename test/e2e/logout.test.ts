/**
 * Signing out (OpenID Connect RP-Initiated Logout 1.0) on every store, driven by a certified RP library
 * (openid-client's buildEndSessionUrl) and a cookie-keeping form browser: the session ends, the browser goes back only
 * to a registered post_logout_redirect_uri (with state), a logout nobody vouches for needs a click, and nothing here is
 * an open redirector.
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormBrowser } from '../helpers/browser.js';
import { postJson } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
const SIGNED_OUT = 'https://app.example.com/signed-out';

for (const store of E2E_STORES) {
  describe(`RP-Initiated Logout on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_lo_${randomBytes(4).toString('hex')}`;
    let server: TestServer;
    let config: oidc.Configuration;
    let clientId: string;

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer({ ...store.config(isolation) });
      const reg = await postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        post_logout_redirect_uris: [SIGNED_OUT],
        token_endpoint_auth_method: 'none',
        client_name: 'Notes',
      });
      expect(reg.status).toBe(201);
      expect(reg.json.post_logout_redirect_uris).toEqual([SIGNED_OUT]);
      clientId = reg.json.client_id as string;
      config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.None(), {
        execute: [oidc.allowInsecureRequests],
      });
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await store.cleanup?.(isolation);
    });

    /** Signs `user` in on `browser` through the code flow; returns the ID token. */
    async function signIn(browser: FormBrowser, user = ALICE): Promise<string> {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      const callback = await browser.authorize(url.href, server.origin, user);
      const tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
      return tokens.id_token!;
    }

    /** Whether the browser's session still signs it in: prompt=none answers with a code, or login_required. */
    async function signedIn(browser: FormBrowser): Promise<boolean> {
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
        prompt: 'none',
      });
      const step = await browser.follow(url.href, server.origin);
      const params = new URL(step.callback!).searchParams;
      if (params.get('code')) return true;
      expect(params.get('error')).toBe('login_required');
      return false;
    }

    it('discovery names the end_session_endpoint', async (t) => {
      if (!(await available)) return t.skip();
      expect(config.serverMetadata().end_session_endpoint).toBe(`${server.issuer}/end_session`);
      const oauthMeta = await (await fetch(`${server.origin}/.well-known/oauth-authorization-server`)).json();
      expect(oauthMeta.end_session_endpoint).toBe(`${server.issuer}/end_session`);
    });

    it('with the signed-in user’s id_token_hint: ends the session at once and returns with state', async (t) => {
      if (!(await available)) return t.skip();
      const browser = new FormBrowser();
      const idToken = await signIn(browser);
      expect(await signedIn(browser)).toBe(true);
      const url = oidc.buildEndSessionUrl(config, {
        id_token_hint: idToken,
        post_logout_redirect_uri: SIGNED_OUT,
        state: 'bye-1',
      });
      const res = await browser.request(url.href);
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(`${SIGNED_OUT}?state=bye-1`);
      expect(res.headers.getSetCookie().some((c) => /^gatehouse_session=;.*Max-Age=0/.test(c))).toBe(true);
      expect(await signedIn(browser)).toBe(false);
    });

    it('POST works as GET (RP-Initiated Logout §2), and a hint long past exp is still accepted', async (t) => {
      if (!(await available)) return t.skip();
      const browser = new FormBrowser();
      const idToken = await signIn(browser);
      const res = await browser.request(`${server.issuer}/end_session`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT }).toString(),
      });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(SIGNED_OUT);
      expect(await signedIn(browser)).toBe(false);
    });

    it('without a hint (a link anyone could plant) the user confirms; "stay" changes nothing', async (t) => {
      if (!(await available)) return t.skip();
      const browser = new FormBrowser();
      await signIn(browser);
      const ask = await browser.request(
        oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: SIGNED_OUT, state: 's2' }).href,
      );
      expect(ask.status).toBe(200);
      const page = await ask.text();
      expect(page).toContain('Sign out?');
      expect(page).toContain('alice');
      expect(page).toContain('Notes');
      expect(await signedIn(browser)).toBe(true);

      const stay = await browser.submit(page, `${server.issuer}/end_session`, server.origin, { decision: 'stay' });
      expect(stay.callback).toBeUndefined();
      expect(await stay.res.text()).toContain('still signed in');
      expect(await signedIn(browser)).toBe(true);

      const out = await browser.submit(page, `${server.issuer}/end_session`, server.origin, { decision: 'sign_out' });
      expect(out.callback).toBe(`${SIGNED_OUT}?state=s2`);
      expect(await signedIn(browser)).toBe(false);
    });

    it('another user’s hint does not sign this browser out without a click', async (t) => {
      if (!(await available)) return t.skip();
      const bobsToken = await signIn(new FormBrowser(), BOB);
      const browser = new FormBrowser();
      await signIn(browser);
      const res = await browser.request(oidc.buildEndSessionUrl(config, { id_token_hint: bobsToken }).href);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('Sign out?');
      expect(await signedIn(browser)).toBe(true);
    });

    it('the confirmation form needs its CSRF token from this browser', async (t) => {
      if (!(await available)) return t.skip();
      const browser = new FormBrowser();
      await signIn(browser);
      const page = await (await browser.request(`${server.issuer}/end_session`)).text();
      const forged = await browser.submit(page, `${server.issuer}/end_session`, server.origin, {
        decision: 'sign_out',
        csrf: 'forged',
      });
      expect(forged.res.status).toBe(400);
      // Another browser replaying this browser's form (its token is bound to the nonce cookie) gets nowhere either.
      const other = new FormBrowser();
      const replay = await other.submit(page, `${server.issuer}/end_session`, server.origin, { decision: 'sign_out' });
      expect(replay.res.status).toBe(400);
      expect(await signedIn(browser)).toBe(true);
    });

    it('refuses, on a page and without redirecting: an unregistered URI, a URI with no client, a forged hint, a mismatched client_id', async (t) => {
      if (!(await available)) return t.skip();
      const browser = new FormBrowser();
      const idToken = await signIn(browser);
      const refused = async (params: Record<string, string>, message: RegExp) => {
        const res = await browser.request(`${server.issuer}/end_session?${new URLSearchParams(params)}`);
        expect(res.status).toBe(400);
        expect(res.headers.get('location')).toBeNull();
        const html = await res.text();
        expect(html).toContain('invalid_request');
        expect(html).toMatch(message);
      };
      await refused(
        { id_token_hint: idToken, post_logout_redirect_uri: 'https://evil.example/steal' },
        /not registered/,
      );
      await refused({ id_token_hint: idToken, post_logout_redirect_uri: `${SIGNED_OUT}/x` }, /not registered/);
      await refused({ post_logout_redirect_uri: SIGNED_OUT }, /needs id_token_hint or client_id/);
      const [h, p] = idToken.split('.');
      await refused({ id_token_hint: `${h}.${p}.AAAA` }, /not an ID token/);
      await refused({ id_token_hint: idToken, client_id: 'someone-else' }, /does not match/);
      await refused({ client_id: 'no-such-client', post_logout_redirect_uri: SIGNED_OUT }, /unknown client_id/);
      expect(await signedIn(browser)).toBe(true);
    });

    it('with no session: goes straight back to a registered URI, or says so on a page', async (t) => {
      if (!(await available)) return t.skip();
      const idToken = await signIn(new FormBrowser());
      const fresh = new FormBrowser();
      const back = await fresh.request(
        oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT, state: 'x' })
          .href,
      );
      expect(back.status).toBe(303);
      expect(back.headers.get('location')).toBe(`${SIGNED_OUT}?state=x`);
      const page = await fresh.request(`${server.issuer}/end_session`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('You are signed out');
    });
  });
}
