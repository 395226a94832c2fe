/**
 * Second factors in real headless Chromium (Debian's /usr/bin/chromium via playwright-core): a user sets up TOTP on
 * the account page and signs in to a client with a code (computed with core/totp.ts), and registers a passkey
 * through a CDP virtual authenticator (CTAP2, internal, resident key, user verification) and signs in with it.
 * The ID tokens say how: amr pwd+otp+mfa, and pwd+hwk+user+mfa for the device-bound passkey.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { decodeJwt } from 'jose';
import { ManualClock } from '../../src/core/clock.js';
import { totp } from '../../src/core/totp.js';
import { challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);

const CAROL = { username: 'carol', password: 'carol-has-a-long-password' };
const clock = new ManualClock(Date.now());
let server: TestServer;
let browser: Browser;
let callbackServer: Server;
let callbackUrl: string;
let clientId: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  server = await startServer({ users: [ALICE, BOB, CAROL] }, { clock });
  callbackServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p id="done">You can close this window.</p>');
  });
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', () => r()));
  callbackUrl = `http://127.0.0.1:${(callbackServer.address() as { port: number }).port}/callback`;
  const reg = await postJson(`${server.issuer}/register`, {
    client_name: 'Second Factor App',
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'none',
  });
  clientId = reg.json.client_id as string;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  callbackServer?.close();
  await server?.close();
});

/** Opens an authorization request; the ID token it ends in comes from `finish`. */
async function startAuthorization(page: Page) {
  const v = verifier();
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: callbackUrl,
    response_type: 'code',
    code_challenge: challenge(v),
    code_challenge_method: 'S256',
    scope: 'openid',
    state: 'st',
  }).toString();
  await page.goto(u.href);
  return {
    /** Approves if asked, waits for the callback, redeems the code; the ID token's claims. */
    async finish() {
      // The last step may still be under way (a passkey ceremony): wait for the consent page or the callback.
      const approve = page.locator('button[name=decision][value=approve]');
      await Promise.race([approve.waitFor(), page.waitForURL(/\/callback/)]);
      if (!page.url().startsWith(callbackUrl)) {
        await Promise.all([page.waitForURL(/\/callback/), approve.click()]);
      }
      const code = new URL(page.url()).searchParams.get('code')!;
      const token = await postForm(`${server.issuer}/token`, {
        grant_type: 'authorization_code',
        client_id: clientId,
        code,
        code_verifier: v,
        redirect_uri: callbackUrl,
      });
      expect(token.status, JSON.stringify(token.json)).toBe(200);
      return decodeJwt(token.json.id_token as string);
    },
  };
}

async function signInWithPassword(page: Page, user: { username: string; password: string }) {
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  await page.click('button[type=submit]');
}

describe.skipIf(!existsSync(CHROMIUM))('second factors in Chromium', () => {
  it('sets up TOTP on the account page, then signs in to a client with a code (no JavaScript)', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${server.issuer}/account`);
    await signInWithPassword(page, ALICE);
    await page.click('text=Set up an authenticator app');
    const secret = (await page.textContent('#totp-secret'))!.replace(/\s/g, '');
    expect(await page.textContent('#totp-uri')).toContain(`secret=${secret}`);
    await page.fill('input[name=code]', totp(secret, clock.now()));
    await page.click('button:has-text("Confirm")');
    await expect(page.locator('#recovery-codes li').count()).resolves.toBe(10);
    clock.advance(30_000);

    // A fresh browser: the client's request asks for the password, then the code.
    const fresh = await browser.newContext({ javaScriptEnabled: false });
    const signIn = await fresh.newPage();
    const flow = await startAuthorization(signIn);
    await signInWithPassword(signIn, ALICE);
    await expect(signIn.textContent('h1')).resolves.toBe('Verify it is you');
    await signIn.fill('input[name=code]', totp(secret, clock.now()));
    await signIn.click('button:has-text("Verify")');
    const claims = await flow.finish();
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe('urn:gatehouse:acr:mfa');
    await context.close();
    await fresh.close();
  });

  /** A context whose pages talk to a CDP virtual authenticator: CTAP2, internal, resident keys, user verification. */
  async function withAuthenticator(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { context, page };
  }

  it('registers a passkey with a virtual authenticator and signs in with it, under a CSP that allows one script', async () => {
    const { context, page } = await withAuthenticator();
    await page.goto(`${server.issuer}/account`);
    await signInWithPassword(page, BOB);
    await page.click('text=Add a passkey');
    await page.fill('#passkey-name', 'Virtual authenticator');
    await page.click('#passkey-button');
    await page.waitForSelector('#recovery-codes', { timeout: 10_000 }).catch(async () => {
      throw new Error(`no recovery codes after registering: ${await page.textContent('main')}`);
    });
    await expect(page.locator('#recovery-codes li').count()).resolves.toBe(10);
    await page.click('button:has-text("Back to your account")');
    await expect(page.textContent('main')).resolves.toContain('Virtual authenticator');

    // The client's request in the same browser (the authenticator holds the key): password, then the passkey.
    await context.clearCookies();
    const flow = await startAuthorization(page);
    const secondStep = page.waitForResponse((r) => r.request().method() === 'GET' && r.url().includes('/interaction/'));
    await signInWithPassword(page, BOB);
    const response = await secondStep;
    await expect(page.textContent('h1')).resolves.toBe('Verify it is you');
    const csp = response.headers()['content-security-policy']!;
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    await page.click('#passkey-button');
    const claims = await flow.finish();
    expect(claims.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('urn:gatehouse:acr:mfa');

    // Again, with the consent remembered: the passkey form's submission ends at the client's callback (no CSP
    // form-action may stand in the way of that redirect chain).
    await context.clearCookies();
    const again = await startAuthorization(page);
    await signInWithPassword(page, BOB);
    await page.click('#passkey-button');
    await page.waitForURL((url) => url.href.startsWith(callbackUrl) && url.searchParams.has('code'));
    expect((await again.finish()).amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    await context.close();
  });

  it('a user who must have a second factor creates a passkey during sign-in and continues with it', async () => {
    const storage = server.gatehouse.deps.storage;
    const carol = (await storage.getUserByUsername(CAROL.username))!;
    await storage.saveUser({ ...carol, mfaRequired: true, updatedAt: clock.now() });
    const { context, page } = await withAuthenticator();
    const flow = await startAuthorization(page);
    await signInWithPassword(page, CAROL);
    await expect(page.textContent('h1')).resolves.toBe('Set up two-step verification');
    await page.click('#passkey-button');
    await page.waitForSelector('#recovery-codes');
    await expect(page.locator('#recovery-codes li').count()).resolves.toBe(10);
    await page.click('button:has-text("Continue")');
    await page.waitForSelector('button[name=decision][value=approve]');
    const claims = await flow.finish();
    expect(claims.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    const passkeys = (await storage.getUserByUsername(CAROL.username))!.passkeys!;
    expect(passkeys).toHaveLength(1);
    expect(passkeys[0]).toMatchObject({ deviceType: 'singleDevice', backedUp: false });
    await context.close();
  });
});
