/**
 * The device authorization grant (RFC 8628) in real headless Chromium: a CLI (oauth4webapi) asks for a device code;
 * the user opens the plain verification_uri, types the code as people do (lower case, no dash), signs in, reads on the
 * consent page that this authorizes a device, approves, and lands on the "return to your device" page; the CLI's poll
 * then gets the tokens. The user-code page passes the hand-made accessibility checks and does not scroll sideways at
 * 375 px.
 */
import { existsSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { accessibilityProblems, scrollWidth } from '../helpers/page-checks.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const cli: oauth.Client = { client_id: 'chromium-cli' };

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startServer({
    scopes: ['mcp:read'],
    clients: [
      {
        client_id: cli.client_id,
        client_name: 'Terminal Agent',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_GRANT, 'refresh_token'],
      },
    ],
  });
  if (existsSync(CHROMIUM))
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe.skipIf(!existsSync(CHROMIUM))('the device page in Chromium', () => {
  it('types the code, signs in, approves the device; the CLI polls and gets its tokens', async () => {
    const issuer = new URL(server.issuer);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    const device = await oauth.processDeviceAuthorizationResponse(
      as,
      cli,
      await oauth.deviceAuthorizationRequest(as, cli, oauth.None(), { scope: 'openid mcp:read' }, insecure),
    );

    const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
    const page = await context.newPage();
    await page.goto(device.verification_uri);
    expect(await page.locator('h1').textContent()).toBe('Connect a device');
    expect(await accessibilityProblems(page)).toEqual([]);
    expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
    await expect(page.locator('#device-phishing').isVisible()).resolves.toBe(true);

    // As typed by a person: lower case, no dash.
    await page.fill('input[name=user_code]', device.user_code.replace('-', '').toLowerCase());
    await page.click('button[type=submit]');
    await page.fill('input[name=username]', ALICE.username);
    await page.fill('input[name=password]', ALICE.password);
    await page.click('button[type=submit]');

    expect(await page.locator('h1').textContent()).toBe('Allow a device?');
    expect(await page.locator('#consent-client').textContent()).toContain('Terminal Agent');
    expect(await page.locator('#device-notice').textContent()).toContain('This authorizes a device');
    expect(await page.locator('main').textContent()).toContain('mcp:read');
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.click('button[value=approve]');

    expect(new URL(page.url()).pathname).toBe('/device/done');
    expect(await page.locator('#device-result').getAttribute('data-result')).toBe('approved');
    expect(await page.locator('h1').textContent()).toBe('Device connected');
    await context.close();

    const tokens = await oauth.processDeviceCodeResponse(
      as,
      cli,
      await oauth.deviceCodeGrantRequest(as, cli, oauth.None(), device.device_code, insecure),
    );
    expect(tokens.scope).toBe('openid mcp:read');
    expect(oauth.getValidatedIdTokenClaims(tokens)?.sub).toBeTruthy();
  });

  it('verification_uri_complete prefills the code; denying ends on the page that says the device gets nothing', async () => {
    const r = await fetch(`${server.issuer}/device_authorization`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: cli.client_id, scope: 'mcp:read' }),
    });
    const device = (await r.json()) as { user_code: string; verification_uri_complete: string; device_code: string };
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(device.verification_uri_complete);
    expect(await page.inputValue('input[name=user_code]')).toBe(device.user_code);
    await page.click('button[type=submit]');
    await page.fill('input[name=username]', ALICE.username);
    await page.fill('input[name=password]', ALICE.password);
    await page.click('button[type=submit]');
    await page.click('button[value=deny]');
    expect(await page.locator('#device-result').getAttribute('data-result')).toBe('denied');
    await context.close();
    const poll = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: DEVICE_GRANT,
        client_id: cli.client_id,
        device_code: device.device_code,
      }),
    });
    expect(poll.status).toBe(400);
    expect(((await poll.json()) as { error: string }).error).toBe('access_denied');
  });
});
