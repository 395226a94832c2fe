/**
 * Signing out in real headless Chromium without JavaScript: a signed-in user follows a logout link nobody vouched
 * for, confirms on the page, lands on the client's registered post-logout URI with its state, and is signed out.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { challenge, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);

let server: TestServer;
let browser: Browser;
let app: Server;
let appOrigin: string;

beforeAll(async () => {
  server = await startServer();
  app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p id="app">app</p>'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  appOrigin = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});
afterAll(async () => {
  await browser?.close();
  app?.close();
  await server?.close();
});

describe.skipIf(!existsSync(CHROMIUM))('sign-out in Chromium', () => {
  it('confirms, signs out, returns to the registered URI with state; the next prompt=none is login_required', async () => {
    const reg = await postJson(`${server.issuer}/register`, {
      client_name: 'Logout Test App',
      redirect_uris: [`${appOrigin}/callback`],
      post_logout_redirect_uris: [`${appOrigin}/signed-out`],
      token_endpoint_auth_method: 'none',
    });
    const authorize = (extra: Record<string, string> = {}) => {
      const u = new URL(`${server.issuer}/authorize`);
      u.search = new URLSearchParams({
        client_id: reg.json.client_id,
        redirect_uri: `${appOrigin}/callback`,
        response_type: 'code',
        code_challenge: challenge(verifier()),
        code_challenge_method: 'S256',
        scope: 'openid',
        ...extra,
      }).toString();
      return u.href;
    };
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(authorize());
    await page.fill('input[name=username]', ALICE.username);
    await page.fill('input[name=password]', ALICE.password);
    await page.click('button[type=submit]');
    await Promise.all([page.waitForURL(/\/callback/), page.click('button[name=decision][value=approve]')]);

    const logout = new URL(`${server.issuer}/end_session`);
    logout.search = new URLSearchParams({
      client_id: reg.json.client_id,
      post_logout_redirect_uri: `${appOrigin}/signed-out`,
      state: 'after-logout',
    }).toString();
    const shown = await page.goto(logout.href);
    expect(shown!.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(await page.textContent('main')).toContain('Sign out?');
    expect(await page.textContent('main')).toContain('alice');
    await Promise.all([page.waitForURL(/\/signed-out/), page.click('button[name=decision][value=sign_out]')]);
    expect(new URL(page.url()).searchParams.get('state')).toBe('after-logout');
    expect((await context.cookies()).find((c) => c.name === 'gatehouse_session')).toBeUndefined();

    await page.goto(authorize({ prompt: 'none' }));
    expect(new URL(page.url()).searchParams.get('error')).toBe('login_required');
    await context.close();
  });
});
