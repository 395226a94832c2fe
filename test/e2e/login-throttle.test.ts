/**
 * The login throttle over HTTP (config `loginRateLimit`): failures per username and per client address, 429 with
 * Retry-After and no session when over a limit, the same page whether or not the username exists, the window
 * driven by a ManualClock, and a successful sign-in resetting the username's counter.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { rateLimitWindowEnd } from '../../src/model/ports.js';
import { FormBrowser } from '../helpers/browser.js';
import { challenge, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
const WINDOW_SECONDS = 900;
const servers: TestServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(
  limits: ConfigInput['loginRateLimit'],
): Promise<{ server: TestServer; clock: ManualClock; login: () => Promise<LoginForm> }> {
  const clock = new ManualClock(Date.now());
  const server = await startServer({ loginRateLimit: { windowSeconds: WINDOW_SECONDS, ...limits } }, { clock });
  servers.push(server);
  const reg = await postJson(`${server.issuer}/register`, {
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
  });
  expect(reg.status).toBe(201);
  const clientId = reg.json.client_id as string;
  /** A fresh browser on the login page of a fresh authorization request. */
  const login = async (): Promise<LoginForm> => {
    const url = new URL(`${server.issuer}/authorize`);
    url.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(verifier()),
      code_challenge_method: 'S256',
      state: 'st',
      scope: 'openid',
    }).toString();
    const browser = new FormBrowser();
    const step = await browser.follow(url.href, server.origin);
    const html = await step.res.text();
    expect(html).toContain('name="password"');
    return new LoginForm(browser, html, step.url, server);
  };
  return { server, clock, login };
}

/** One login page, submitted as often as a test likes (the CSRF token stays valid for the interaction). */
class LoginForm {
  constructor(
    readonly browser: FormBrowser,
    private readonly html: string,
    readonly url: string,
    private readonly server: TestServer,
  ) {}

  async submit(username: string, password: string) {
    const { res } = await this.browser.submit(this.html, this.url, this.server.origin, { username, password });
    const html = await res.text();
    return {
      status: res.status,
      html,
      retryAfter: res.headers.get('retry-after'),
      setsSession: res.headers.getSetCookie().some((c) => c.startsWith('gatehouse_session=')),
      error: /<p[^>]* class="error" role="alert">([^<]*)<\/p>/.exec(html)?.[1],
      /** Signed in: redirected on to the consent page. */
      signedIn: res.status === 200 && html.includes('name="decision"'),
    };
  }
}

const secondsLeft = (clock: ManualClock) =>
  Math.ceil((rateLimitWindowEnd(clock.now(), WINDOW_SECONDS * 1000) - clock.now()) / 1000);

describe('login throttle', () => {
  it('after N wrong passwords the username gets 429 with Retry-After and no session, even with the right password', async () => {
    const { clock, login } = await start({ maxFailuresPerUsername: 3, maxFailuresPerIp: 100 });
    const form = await login();
    for (let i = 0; i < 3; i++) {
      const wrong = await form.submit(ALICE.username, `wrong-${i}`);
      expect(wrong.status).toBe(401);
      expect(wrong.error).toBe('Invalid username or password.');
    }

    const refused = await form.submit(ALICE.username, ALICE.password);
    expect(refused.status).toBe(429);
    expect(refused.retryAfter).toBe(String(secondsLeft(clock)));
    expect(refused.setsSession).toBe(false);
    expect(refused.error).toMatch(/^Too many failed sign-in attempts\. Wait \d+ minutes? and try again\.$/);
    expect(refused.html).toContain('name="password"');
    // Any spelling of the name shares the counter.
    expect((await form.submit('ALICE', ALICE.password)).status).toBe(429);
    // Still not signed in: the interaction shows the login form again.
    const again = await form.browser.request(form.url);
    expect(await again.text()).toContain('name="password"');

    // An unknown username is throttled the same way, with the same page: nothing tells whether a user exists.
    for (let i = 0; i < 3; i++) expect((await form.submit('mallory', `wrong-${i}`)).status).toBe(401);
    const unknown = await form.submit('mallory', 'anything');
    expect(unknown.status).toBe(429);
    expect(unknown.retryAfter).toBe(refused.retryAfter);
    expect(unknown.error).toBe(refused.error);
    expect(unknown.html.replace('value="mallory"', 'value="alice"')).toBe(refused.html);

    // Past the window the right password works again.
    clock.set(rateLimitWindowEnd(clock.now(), WINDOW_SECONDS * 1000));
    const later = await (await login()).submit(ALICE.username, ALICE.password);
    expect(later.signedIn).toBe(true);
    expect(later.status).toBe(200);
  });

  it('another username from the same address is unaffected until the address limit, which then refuses everyone', async () => {
    const { clock, login } = await start({ maxFailuresPerUsername: 3, maxFailuresPerIp: 5 });
    const form = await login();
    for (let i = 0; i < 3; i++) expect((await form.submit(ALICE.username, `wrong-${i}`)).status).toBe(401);
    expect((await form.submit(ALICE.username, ALICE.password)).status).toBe(429);

    // Three failures so far from this address: Bob signs in as usual (his own success is not a failure).
    expect((await (await login()).submit(BOB.username, BOB.password)).signedIn).toBe(true);

    const bobForm = await login();
    expect((await bobForm.submit(BOB.username, 'wrong-1')).status).toBe(401);
    expect((await bobForm.submit(BOB.username, 'wrong-2')).status).toBe(401);
    // Five failures from this address: every username is refused, without its password being checked.
    const refused = await bobForm.submit(BOB.username, BOB.password);
    expect(refused.status).toBe(429);
    expect(refused.retryAfter).toBe(String(secondsLeft(clock)));
    expect(refused.setsSession).toBe(false);
    expect((await bobForm.submit('carol', 'whatever')).status).toBe(429);

    clock.set(rateLimitWindowEnd(clock.now(), WINDOW_SECONDS * 1000));
    expect((await (await login()).submit(BOB.username, BOB.password)).signedIn).toBe(true);
  });

  it('a successful sign-in resets the username counter', async () => {
    const { login } = await start({ maxFailuresPerUsername: 3, maxFailuresPerIp: 100 });
    const form = await login();
    expect((await form.submit(ALICE.username, 'wrong-1')).status).toBe(401);
    expect((await form.submit(ALICE.username, 'wrong-2')).status).toBe(401);
    expect((await form.submit(ALICE.username, ALICE.password)).signedIn).toBe(true);

    // Counted from zero again: three more failures are allowed before the fourth attempt is refused.
    const next = await login();
    for (let i = 0; i < 3; i++) expect((await next.submit(ALICE.username, `wrong-again-${i}`)).status).toBe(401);
    expect((await next.submit(ALICE.username, ALICE.password)).status).toBe(429);
  });

  it('behind a trusted proxy, addresses come from X-Forwarded-For', async () => {
    const clock = new ManualClock(Date.now());
    const server = await startServer(
      { trustProxy: true, loginRateLimit: { maxFailuresPerUsername: 100, maxFailuresPerIp: 2 } },
      { clock },
    );
    servers.push(server);
    const reg = await postJson(`${server.issuer}/register`, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
    });
    const browser = new FormBrowser();
    const url = new URL(`${server.issuer}/authorize`);
    url.search = new URLSearchParams({
      client_id: reg.json.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(verifier()),
      code_challenge_method: 'S256',
    }).toString();
    const step = await browser.follow(url.href, server.origin);
    const { action, fields } = FormBrowser.form(await step.res.text(), step.url);
    const post = (from: string, password: string) =>
      browser.request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
        body: new URLSearchParams({ ...fields, username: ALICE.username, password }).toString(),
      });
    expect((await post('203.0.113.7', 'wrong-1')).status).toBe(401);
    expect((await post('203.0.113.7', 'wrong-2')).status).toBe(401);
    expect((await post('203.0.113.7', ALICE.password)).status).toBe(429);
    // Another client behind the same proxy is not affected.
    expect((await post('198.51.100.9', ALICE.password)).status).toBe(303);
  });
});
