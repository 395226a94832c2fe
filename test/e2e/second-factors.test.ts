/**
 * Second factors over HTTP, on every store, driven through the real pages without JavaScript: TOTP after the
 * password (each time step once), recovery codes (each once, also when two sign-ins race with one), the login
 * throttle counting code guesses, `amr`/`acr` in ID tokens after the code and after a refresh (oauth4webapi), a user
 * who must have a second factor enrolling one during sign-in, the password change on the account page, and
 * "Not you?" on the consent page.
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { FormBrowser } from '../helpers/browser.js';
import { postJson } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import {
  accountSignIn,
  codeAt,
  enrolTotpOnAccount,
  formWith,
  nextStep,
  onConsentPage,
  onEnrolPage,
  onLoginPage,
  onSecondFactorPage,
  pageOf,
  recoveryCodesOf,
  submit,
  totpSecretOf,
  type Page,
} from '../helpers/sign-in.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const user = (name: string) => ({
  username: name,
  password: `${name}-has-a-long-password`,
  email: `${name}@example.com`,
});
const CAROL = user('carol');
const DAVE = user('dave');
const ERIN = user('erin');
const FRANK = user('frank');
const GRACE = user('grace');
const HEIDI = user('heidi');
const IVAN = user('ivan');
const KATE = user('kate');
const MAX_FAILURES = 5;
const WINDOW_SECONDS = 900;

for (const store of E2E_STORES) {
  describe(`second factors on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_mfa_${randomBytes(4).toString('hex')}`;
    const clock = new ManualClock(Date.now());
    let server: TestServer;
    let as: oauth.AuthorizationServer;
    let client: oauth.Client;

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer(
        {
          scopes: ['mcp:read'],
          users: [ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE, HEIDI, IVAN, KATE],
          loginRateLimit: { maxFailuresPerUsername: MAX_FAILURES, windowSeconds: WINDOW_SECONDS },
          ...store.config(isolation),
        },
        { clock },
      );
      const issuer = new URL(server.issuer);
      as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
      const reg = await postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      });
      expect(reg.status).toBe(201);
      client = { client_id: reg.json.client_id as string, token_endpoint_auth_method: 'none' };
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await store.cleanup?.(isolation);
    });

    /** oauth4webapi judges token times by the wall clock; the server runs on `clock`. */
    const skewed = () => ({ ...client, [oauth.clockSkew]: Math.round((clock.now() - Date.now()) / 1000) });

    /** A new authorization request in `browser`; the page it shows (login, or further when a session stands in). */
    async function authorize(browser = new FormBrowser()) {
      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = new URL(as.authorization_endpoint!);
      url.search = new URLSearchParams({
        client_id: client.client_id,
        redirect_uri: REDIRECT,
        response_type: 'code',
        scope: 'openid offline_access',
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      }).toString();
      const page = await pageOf(await browser.follow(url.href, server.origin));
      return { browser, page, verifier, state };
    }

    /** Approves consent if asked, and redeems the code with oauth4webapi. */
    async function redeem(flow: { browser: FormBrowser; verifier: string; state: string }, page: Page) {
      let at = page;
      if (onConsentPage(at))
        at = await submit(flow.browser, at, server.origin, 'name="decision"', { decision: 'approve' });
      expect(at.callback, at.html.slice(0, 300)).toBeTruthy();
      const c = skewed();
      const params = oauth.validateAuthResponse(as, c, new URL(at.callback!), flow.state);
      const res = await oauth.authorizationCodeGrantRequest(
        as,
        c,
        oauth.None(),
        params,
        REDIRECT,
        flow.verifier,
        insecure,
      );
      return oauth.processAuthorizationCodeResponse(as, c, res, { requireIdToken: true });
    }

    /** Password, then the second-factor page. */
    async function toSecondFactor(who: { username: string; password: string }) {
      const flow = await authorize();
      expect(onLoginPage(flow.page)).toBe(true);
      const page = await submit(flow.browser, flow.page, server.origin, 'name="password"', who);
      expect(onSecondFactorPage(page), page.html.slice(0, 300)).toBe(true);
      return { ...flow, page };
    }

    it('asks for the TOTP code after the password; amr and acr say so after the code and after a refresh', async (t) => {
      if (!(await available)) return t.skip();
      const { secret } = await enrolTotpOnAccount(server, clock, ALICE);
      const flow = await toSecondFactor(ALICE);
      expect(flow.page.res.status).toBe(200);
      expect(flow.page.html).not.toContain('name="password"');
      // A wrong code keeps the user on the step.
      const wrong = await submit(flow.browser, flow.page, server.origin, 'value="totp"', { code: '000000' });
      expect(wrong.res.status).toBe(401);
      expect(wrong.html).toContain('That code is not valid.');
      const right = await submit(flow.browser, wrong, server.origin, 'value="totp"', { code: codeAt(secret, clock) });
      const tokens = await redeem(flow, right);
      const claims = oauth.getValidatedIdTokenClaims(tokens)!;
      expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
      expect(claims.acr).toBe('urn:gatehouse:acr:mfa');

      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        skewed(),
        await oauth.refreshTokenGrantRequest(as, skewed(), oauth.None(), tokens.refresh_token!, insecure),
      );
      const again = oauth.getValidatedIdTokenClaims(refreshed)!;
      expect(again.amr).toEqual(['pwd', 'otp', 'mfa']);
      expect(again.acr).toBe('urn:gatehouse:acr:mfa');
      expect(again.auth_time).toBe(claims.auth_time);

      // A user without a second factor signs in with the password alone, and the ID token says so.
      const bob = await authorize();
      const consent = await submit(bob.browser, bob.page, server.origin, 'name="password"', BOB);
      const bobClaims = oauth.getValidatedIdTokenClaims(await redeem(bob, consent))!;
      expect(bobClaims.amr).toEqual(['pwd']);
      expect(bobClaims.acr).toBe('urn:gatehouse:acr:pwd');
      // Discovery names the acr values (declared by the interaction module).
      expect(as.acr_values_supported).toEqual(['urn:gatehouse:acr:pwd', 'urn:gatehouse:acr:mfa']);
    });

    it('refuses a TOTP code the second time, in another browser too; the next time step passes', async (t) => {
      if (!(await available)) return t.skip();
      const { secret } = await enrolTotpOnAccount(server, clock, CAROL);
      const code = codeAt(secret, clock);
      const first = await toSecondFactor(CAROL);
      const passed = await submit(first.browser, first.page, server.origin, 'value="totp"', { code });
      expect(onConsentPage(passed)).toBe(true);

      const second = await toSecondFactor(CAROL);
      const replayed = await submit(second.browser, second.page, server.origin, 'value="totp"', { code });
      expect(replayed.res.status).toBe(401);
      expect(onSecondFactorPage(replayed)).toBe(true);
      expect(replayed.res.headers.getSetCookie().some((c) => c.startsWith('gatehouse_session='))).toBe(false);

      nextStep(clock);
      const fresh = await submit(second.browser, replayed, server.origin, 'value="totp"', {
        code: codeAt(secret, clock),
      });
      expect(onConsentPage(fresh)).toBe(true);
    });

    it('lets a recovery code sign in once, even when two sign-ins race with it', async (t) => {
      if (!(await available)) return t.skip();
      const { recoveryCodes } = await enrolTotpOnAccount(server, clock, DAVE);
      const [code, other] = recoveryCodes;
      const racers = await Promise.all([toSecondFactor(DAVE), toSecondFactor(DAVE)]);
      // Typed as a person might: lower case, without the dashes.
      const typed = code!.toLowerCase().replace(/-/g, '');
      const results = await Promise.all(
        racers.map((r) => submit(r.browser, r.page, server.origin, 'value="recovery"', { code: typed })),
      );
      expect(results.filter(onConsentPage)).toHaveLength(1);
      const loser = results.find((r) => !onConsentPage(r))!;
      expect(loser.res.status).toBe(401);
      expect(loser.html).toContain('That code is not valid.');

      const late = await toSecondFactor(DAVE);
      const reused = await submit(late.browser, late.page, server.origin, 'value="recovery"', { code: code! });
      expect(reused.res.status).toBe(401);
      const tokens = await redeem(
        late,
        await submit(late.browser, reused, server.origin, 'value="recovery"', { code: other! }),
      );
      const claims = oauth.getValidatedIdTokenClaims(tokens)!;
      expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
      // The account page counts what is left.
      const account = await pageOf(await late.browser.follow(`${server.issuer}/account`, server.origin));
      expect(account.html).toContain('8 unused recovery codes');
    });

    it('counts second-factor guesses on the login throttle; a right password does not reset it', async (t) => {
      if (!(await available)) return t.skip();
      const { secret } = await enrolTotpOnAccount(server, clock, ERIN);
      // The password counts one attempt, each wrong code one more: MAX_FAILURES in all.
      const flow = await toSecondFactor(ERIN);
      let page = flow.page;
      for (let i = 1; i < MAX_FAILURES; i++) {
        page = await submit(flow.browser, page, server.origin, 'value="totp"', { code: '123456' });
        expect(page.res.status).toBe(401);
      }
      const refused = await submit(flow.browser, page, server.origin, 'value="totp"', { code: codeAt(secret, clock) });
      expect(refused.res.status).toBe(429);
      expect(Number(refused.res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.html).toContain('Too many failed sign-in attempts');
      // Starting over with the right password buys no new guesses.
      const restart = await authorize();
      const throttled = await submit(restart.browser, restart.page, server.origin, 'name="password"', ERIN);
      expect(throttled.res.status).toBe(429);

      // After the window: password and code sign in, and the counter starts again.
      clock.advance(WINDOW_SECONDS * 1000);
      const later = await toSecondFactor(ERIN);
      const ok = await submit(later.browser, later.page, server.origin, 'value="totp"', {
        code: codeAt(secret, clock),
      });
      expect(onConsentPage(ok)).toBe(true);
      nextStep(clock);
    });

    it('makes a user who must have a second factor enrol one during sign-in; a password-only session stops counting', async (t) => {
      if (!(await available)) return t.skip();
      const storage = server.gatehouse.deps.storage;
      // Signed in with the password alone while nothing was required: the session stands in silently.
      const before = await authorize();
      const consent = await submit(before.browser, before.page, server.origin, 'name="password"', HEIDI);
      expect(oauth.getValidatedIdTokenClaims(await redeem(before, consent))!.amr).toEqual(['pwd']);
      const silent = await authorize(before.browser);
      expect(silent.page.callback).toBeTruthy();

      // What `gatehouse user mfa heidi --require` does.
      const heidi = (await storage.getUserByUsername(HEIDI.username))!;
      await storage.saveUser({ ...heidi, mfaRequired: true, updatedAt: clock.now() });
      const flow = await authorize(before.browser);
      expect(onLoginPage(flow.page)).toBe(true);
      const enrol = await submit(flow.browser, flow.page, server.origin, 'name="password"', HEIDI);
      expect(onEnrolPage(enrol), enrol.html.slice(0, 300)).toBe(true);
      expect(enrol.res.headers.get('content-security-policy')).toMatch(/script-src 'sha256-[^']+'/);
      expect(enrol.res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      const secret = totpSecretOf(enrol.html);
      expect(enrol.html).toContain(`otpauth://totp/localhost%3A`);
      // Reloading shows the same secret until it is confirmed.
      const reloaded = await pageOf(await flow.browser.follow(enrol.url, server.origin));
      expect(totpSecretOf(reloaded.html)).toBe(secret);
      const codes = await submit(flow.browser, reloaded, server.origin, 'value="totp"', {
        code: codeAt(secret, clock),
      });
      expect(recoveryCodesOf(codes.html)).toHaveLength(10);
      expect(codes.res.headers.getSetCookie().some((c) => c.startsWith('gatehouse_session='))).toBe(true);
      // Continue: back to the same request, which finishes (consent was given before).
      const onward = formWith(codes.html, codes.url, 'Continue').action;
      expect(onward).toBe(flow.page.url);
      const done = await pageOf(await flow.browser.follow(onward, server.origin));
      const claims = oauth.getValidatedIdTokenClaims(await redeem(flow, done))!;
      expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
      expect(claims.acr).toBe('urn:gatehouse:acr:mfa');

      // From now on the sign-in asks for the factor, not for an enrolment.
      nextStep(clock);
      const next = await toSecondFactor(HEIDI);
      expect(next.page.html).toContain('value="recovery"');
      const user = (await storage.getUserByUsername(HEIDI.username))!;
      // The secret is stored as set up (sealed when encryptionKey is set: test/e2e/secrets-at-rest covers that).
      expect(user.totp?.secret).toBe(secret);
      expect(user.recoveryCodes?.hashes).toHaveLength(10);
      for (const code of recoveryCodesOf(codes.html)) expect(JSON.stringify(user)).not.toContain(code);
    });

    it('changes the password on the account page: current one checked, policy held, other sessions end', async (t) => {
      if (!(await available)) return t.skip();
      const elsewhere = new FormBrowser();
      expect((await accountSignIn(elsewhere, server, FRANK)).html).toContain('id="account-username"');
      const browser = new FormBrowser();
      const account = await accountSignIn(browser, server, FRANK);
      const change = (current: string, next: string, page = account) =>
        submit(browser, page, server.origin, 'name="new_password"', { current_password: current, new_password: next });

      const wrong = await change('not my password', 'a brand new long password');
      expect(wrong.res.status).toBe(401);
      expect(wrong.html).toContain('Your current password is not right.');
      const short = await change(FRANK.password, 'short');
      expect(short.res.status).toBe(400);
      expect(short.html).toContain('use at least 12 characters');
      const same = await change(FRANK.password, FRANK.username);
      expect(same.res.status).toBe(400);
      const changed = await change(FRANK.password, 'a brand new long password');
      expect(changed.res.status).toBe(200);
      expect(changed.url).toContain('notice=password-changed');
      expect(changed.html).toContain('Every other session was signed out.');

      // The other browser is signed out; this one is not.
      const other = await pageOf(await elsewhere.follow(`${server.issuer}/account`, server.origin));
      expect(onLoginPage(other)).toBe(true);
      const still = await pageOf(await browser.follow(`${server.issuer}/account`, server.origin));
      expect(still.html).toContain('id="account-username"');
      // The old password no longer signs in; the new one does.
      const old = await accountSignIn(new FormBrowser(), server, FRANK);
      expect(old.res.status).toBe(401);
      const fresh = await accountSignIn(new FormBrowser(), server, { ...FRANK, password: 'a brand new long password' });
      expect(fresh.html).toContain('id="account-username"');
    });

    it('on the account page: new recovery codes void the old ones, sign out everywhere, removing TOTP', async (t) => {
      if (!(await available)) return t.skip();
      const { secret, recoveryCodes: first, browser } = await enrolTotpOnAccount(server, clock, KATE);
      const account = await pageOf(await browser.follow(`${server.issuer}/account`, server.origin));
      expect(account.html).toContain('10 unused recovery codes');
      const renewed = await submit(browser, account, server.origin, 'Make new recovery codes');
      const second = recoveryCodesOf(renewed.html);
      expect(second).toHaveLength(10);
      expect(second.some((c) => first.includes(c))).toBe(false);

      const old = await toSecondFactor(KATE);
      const refused = await submit(old.browser, old.page, server.origin, 'value="recovery"', { code: first[0]! });
      expect(refused.res.status).toBe(401);
      const other = await submit(old.browser, refused, server.origin, 'value="recovery"', { code: second[0]! });
      expect(onConsentPage(other)).toBe(true);

      // Sign out everywhere: the other browser's session ends too, and so does this one.
      const signedIn = await pageOf(await browser.follow(`${server.issuer}/account`, server.origin));
      const out = await submit(browser, signedIn, server.origin, 'Sign out everywhere');
      expect(onLoginPage(out)).toBe(true);
      const elsewhere = await pageOf(await old.browser.follow(`${server.issuer}/account`, server.origin));
      expect(onLoginPage(elsewhere)).toBe(true);

      // Back in with password and code, the app is removed: the password alone signs in again.
      const login = await submit(browser, out, server.origin, 'name="password"', KATE);
      expect(onSecondFactorPage(login)).toBe(true);
      const back = await submit(browser, login, server.origin, 'value="totp"', { code: codeAt(secret, clock) });
      expect(back.html).toContain('id="account-username"');
      const removed = await submit(browser, back, server.origin, 'Remove authenticator app');
      expect(removed.html).toContain('Your authenticator app was removed.');
      const stored = (await server.gatehouse.deps.storage.getUserByUsername(KATE.username))!;
      expect(stored.totp).toBeUndefined();
      expect(stored.recoveryCodes).toBeUndefined();
      const plain = await authorize();
      const consent = await submit(plain.browser, plain.page, server.origin, 'name="password"', KATE);
      expect(oauth.getValidatedIdTokenClaims(await redeem(plain, consent))!.amr).toEqual(['pwd']);
      // A plain sign-out ends only this browser's session.
      // The session of that sign-in shows the account page.
      const page = await pageOf(await plain.browser.follow(`${server.issuer}/account`, server.origin));
      expect(page.html).toContain('id="account-username"');
      const signedOut = await submit(plain.browser, page, server.origin, '>Sign out<');
      expect(onLoginPage(signedOut)).toBe(true);
      nextStep(clock);
    });

    it('"Not you?" on the consent page ends the session and asks again, in the same request', async (t) => {
      if (!(await available)) return t.skip();
      const flow = await authorize();
      const consent = await submit(flow.browser, flow.page, server.origin, 'name="password"', GRACE);
      expect(consent.html).toContain('Not grace?');
      const login = await submit(flow.browser, consent, server.origin, 'id="sign-out"');
      expect(onLoginPage(login)).toBe(true);
      expect(login.url).toBe(consent.url);
      // Grace's session is gone: the account page asks who is there.
      const account = await pageOf(await flow.browser.follow(`${server.issuer}/account`, server.origin));
      expect(onLoginPage(account)).toBe(true);
      const ivanConsent = await submit(flow.browser, login, server.origin, 'name="password"', IVAN);
      expect(ivanConsent.html).toContain('Signed in as <strong>ivan</strong>');
      const tokens = await redeem(flow, ivanConsent);
      const ivan = await server.gatehouse.deps.storage.getUserByUsername(IVAN.username);
      expect(oauth.getValidatedIdTokenClaims(tokens)!.sub).toBe(ivan!.id);
    });
  });
}

describe('mfa.required for everyone', () => {
  const clock = new ManualClock(Date.now());
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ mfa: { required: true } }, { clock });
  });
  afterAll(() => server.close());

  it('sends every user without a factor to the enrolment, also on the account page', async () => {
    const browser = new FormBrowser();
    const enrol = await accountSignIn(browser, server, BOB);
    expect(onEnrolPage(enrol)).toBe(true);
    // Nothing is reachable before the enrolment is done: the account page asks again.
    const again = await pageOf(await browser.follow(`${server.issuer}/account`, server.origin));
    expect(onEnrolPage(again)).toBe(true);
    const codes = await submit(browser, again, server.origin, 'value="totp"', {
      code: codeAt(totpSecretOf(again.html), clock),
    });
    expect(recoveryCodesOf(codes.html)).toHaveLength(10);
    const account = await pageOf(await browser.follow(`${server.issuer}/account`, server.origin));
    expect(account.html).toContain('id="account-username"');
    // The last factor of a user who must have one cannot be removed.
    const removal = await submit(browser, account, server.origin, 'Remove authenticator app');
    expect(removal.res.status).toBe(400);
    expect(removal.html).toContain('must keep a second factor');
  });
});
