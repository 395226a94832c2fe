/**
 * The login and consent pages in real headless Chromium (Debian's /usr/bin/chromium via playwright-core):
 * a user fills the form, approves, and the browser lands on the client's callback with a code.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);

let server: TestServer;
let browser: Browser;
let callbackServer: Server;
let callbackUrl: string;
const received: URL[] = [];

beforeAll(async () => {
  server = await startServer({ scopes: ['mcp:read'] });
  callbackServer = createServer((req, res) => {
    const url = new URL(req.url!, callbackUrl);
    if (url.pathname === '/callback') received.push(url);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p id="done">You can close this window.</p>');
  });
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', () => r()));
  callbackUrl = `http://127.0.0.1:${(callbackServer.address() as { port: number }).port}/callback`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  callbackServer?.close();
  await server?.close();
});

describe.skipIf(!existsSync(CHROMIUM))('login and consent in Chromium', () => {
  it('signs in, approves, and lands on the callback with a code that redeems', async () => {
    const reg = await postJson(`${server.issuer}/register`, {
      client_name: 'Browser Test App',
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'none',
    });
    const v = verifier();
    const u = new URL(`${server.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: reg.json.client_id,
      redirect_uri: callbackUrl,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      scope: 'openid mcp:read',
      state: 'chromium-state',
    }).toString();

    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const first = await page.goto(u.href);
    expect(first!.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    // RFC 9700 §4.16 clickjacking, §4.2 leakage through Referer, §4.3 browser history and caches.
    expect(first!.headers()['x-frame-options']).toBe('DENY');
    expect(first!.headers()['referrer-policy']).toBe('no-referrer');
    expect(first!.headers()['cache-control']).toBe('no-store');
    await page.fill('input[name=username]', ALICE.username);
    await page.fill('input[name=password]', 'wrong password');
    await page.click('button[type=submit]');
    await expect(page.locator('.error').textContent()).resolves.toContain('Invalid username or password');
    await page.fill('input[name=password]', ALICE.password);
    await page.click('button[type=submit]');
    // Consent page: client name, scopes.
    await page.waitForSelector('button[name=decision][value=approve]');
    const text = await page.textContent('main');
    expect(text).toContain('Browser Test App');
    expect(text).toContain('mcp:read');
    await Promise.all([page.waitForURL(/\/callback/), page.click('button[name=decision][value=approve]')]);
    expect(await page.textContent('#done')).toContain('close this window');
    const cb = received.at(-1)!;
    expect(cb.searchParams.get('state')).toBe('chromium-state');
    expect(cb.searchParams.get('iss')).toBe(server.issuer);
    const token = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: reg.json.client_id,
      code: cb.searchParams.get('code')!,
      code_verifier: v,
      redirect_uri: callbackUrl,
    });
    expect(token.status).toBe(200);
    expect(token.json.id_token).toBeTruthy();

    // The session cookie is HttpOnly and SameSite=Lax.
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'gatehouse_session')!;
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe('Lax');
    await context.close();
  });
});
