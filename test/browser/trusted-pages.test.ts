/**
 * The pages people see, in real Chromium: the first-run setup (hint on the sign-in page, the one-time link, its
 * refusals, then dead), and the sign-in, consent, error and account pages, branded (a light primary colour that needs
 * dark text), used with the keyboard only (Tab and Enter), at 375 px without horizontal scrolling, with a hand-made
 * axe-like check on each (labels, alt, heading order, lang, contrast >= 4.5:1 for every text, visible focus), the
 * consent page naming the client's host, the resource by name and the scopes by description. Screenshots go to
 * test-artifacts/pages/ (gitignored).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { accessibilityProblems, scrollWidth } from '../helpers/page-checks.js';
import { challenge, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'pages');
const RESOURCE = 'https://mcp.example.com/';
const ADMIN = { username: 'first-admin', password: 'an admin password, long enough' };
/** A yellow on which white text fails (1.4:1): the pages must put dark text on it. */
const PRIMARY = '#ffd400';

let server: TestServer;
let localised: TestServer;
let browser: Browser;
let callbackServer: Server;
let callbackUrl: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const pages = {
    scopeDescriptions: { 'mcp:read': 'Read your notes through the MCP server' },
    resourceNames: { [RESOURCE]: 'Example Notes MCP' },
  };
  const branding = { name: 'Acme Sign-in', logoUrl: 'https://logo.invalid/acme.png', primaryColor: PRIMARY };
  server = await startServer({ users: [], scopes: ['mcp:read'], resources: [RESOURCE], branding, pages });
  localised = await startServer({
    pages: { lang: 'de', strings: { 'signIn.title': 'Anmelden', 'Invalid username or password.': 'Falsch.' } },
  });
  callbackServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p id="done">You can close this window.</p>');
  });
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', () => r()));
  callbackUrl = `http://127.0.0.1:${(callbackServer.address() as { port: number }).port}/callback`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  callbackServer?.close();
  await server?.close();
  await localised?.close();
});

/** The checks every page gets: no problems, no sideways scroll at 375 px, the brand, and a screenshot. */
async function checkPage(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  expect(await accessibilityProblems(page), name).toEqual([]);
  expect(await scrollWidth(page), `${name} scrolls sideways`).toBeLessThanOrEqual(375);
  expect(await page.textContent('header.brand'), name).toContain('Acme Sign-in');
}

/** Presses Tab until `selector` has the focus (at most 20 times); returns what the focus passed on the way. */
async function tabTo(page: Page, selector: string): Promise<string[]> {
  const passed: string[] = [];
  for (let i = 0; i < 20; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return passed;
    await page.keyboard.press('Tab');
    passed.push(
      await page.evaluate(() => {
        const el = document.activeElement!;
        return `${el.tagName.toLowerCase()}${el.getAttribute('name') ? `[name=${el.getAttribute('name')}]` : ''}${el.getAttribute('value') ? `[value=${el.getAttribute('value')}]` : ''}`;
      }),
    );
  }
  throw new Error(`Tab never reached ${selector}: ${passed.join(' > ')}`);
}

/** The focused element shows a focus ring (an outline of 2 px or more). */
const focusVisible = (page: Page) =>
  page.evaluate(() => {
    const style = getComputedStyle(document.activeElement!);
    return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  });

describe.skipIf(!existsSync(CHROMIUM))('pages people can trust, in Chromium at 375 px', () => {
  it('first run: the hint, then the setup link makes the administrator once, with the keyboard only', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${server.issuer}/account`, { waitUntil: 'domcontentloaded' });
    expect(await page.textContent('#first-run')).toContain('No users yet: open the setup link');
    await checkPage(page, '01-sign-in-first-run');

    const link = server.gatehouse.setupLink!.url;
    await page.goto(link, { waitUntil: 'domcontentloaded' });
    await checkPage(page, '02-setup');
    // The username field has the focus: type, Tab, type, Enter.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('username');
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('password');
    expect(await focusVisible(page)).toBe(true);
    await page.keyboard.type('too short');
    await Promise.all([page.waitForLoadState('domcontentloaded'), page.keyboard.press('Enter')]);
    await page.waitForSelector('[role=alert]');
    expect(await page.textContent('[role=alert]')).toContain('The password was not accepted');
    expect(await page.getAttribute('#password', 'aria-describedby')).toContain('form-error');
    await checkPage(page, '03-setup-refused');
    // The username is kept; the focus goes back to it (autofocus): Tab to the password, type, Enter.
    expect(await page.inputValue('#username')).toBe(ADMIN.username);
    await tabTo(page, '#password');
    await page.keyboard.type(ADMIN.password);
    await Promise.all([page.waitForURL(/\/setup$/), page.keyboard.press('Enter')]);
    await page.waitForSelector('#to-account');
    expect(await page.textContent('main')).toContain(`The administrator ${ADMIN.username} was created`);
    await checkPage(page, '04-setup-done');

    await page.goto(link, { waitUntil: 'domcontentloaded' });
    expect(await page.textContent('[role=alert]')).toContain('expired or was already used');
    await checkPage(page, '05-setup-dead');
    const admin = await server.gatehouse.deps.storage.getUserByUsername(ADMIN.username);
    expect(admin?.admin).toBe(true);

    // The hint is gone; the administrator signs in with the keyboard only.
    await page.goto(`${server.issuer}/account`, { waitUntil: 'domcontentloaded' });
    expect(await page.locator('#first-run').count()).toBe(0);
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN.password);
    await Promise.all([page.waitForSelector('#account-username'), page.keyboard.press('Enter')]);
    await checkPage(page, '06-account');
    await context.close();
  });

  it('sign-in and consent with Tab and Enter only; the consent page names host, resource and scopes', async () => {
    const reg = await postJson(`${server.issuer}/register`, {
      client_name: 'Notes Helper',
      client_uri: 'https://notes-helper.example',
      redirect_uris: [callbackUrl],
      token_endpoint_auth_method: 'none',
    });
    expect(reg.status).toBe(201);
    const u = new URL(`${server.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: reg.json.client_id,
      redirect_uri: callbackUrl,
      response_type: 'code',
      code_challenge: challenge(verifier()),
      code_challenge_method: 'S256',
      scope: 'openid mcp:read',
      resource: RESOURCE,
      state: 's',
    }).toString();
    const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
    const page = await context.newPage();
    await page.goto(u.href, { waitUntil: 'domcontentloaded' });
    await checkPage(page, '10-sign-in');
    // A wrong password first: the error is announced.
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type('not the password');
    await Promise.all([page.waitForLoadState('domcontentloaded'), page.keyboard.press('Enter')]);
    await page.waitForSelector('[role=alert]');
    expect(await page.textContent('[role=alert]')).toContain('Invalid username or password');
    await checkPage(page, '11-sign-in-refused');
    // Focus order: username, password, Sign in (the document's order).
    const order = await tabTo(page, 'button[type=submit]');
    expect(order.at(-1)).toBe('button');
    await page.focus('#password');
    await page.keyboard.type(ADMIN.password);
    await Promise.all([page.waitForSelector('button[value=approve]'), page.keyboard.press('Enter')]);

    const text = (await page.textContent('main'))!.replace(/\s+/g, ' ');
    expect(await page.textContent('#consent-client')).toContain('127.0.0.1');
    expect(text).toContain('(calls itself “Notes Helper”)');
    expect(await page.textContent('#host-source')).toContain('sent back to this host');
    expect(await page.textContent('#host-mismatch')).toContain(
      'says its website is notes-helper.example, but you will be sent back to 127.0.0.1',
    );
    expect(text).toContain('Read your notes through the MCP server');
    expect(text).toContain('Confirm your identity');
    expect(text).toContain('Example Notes MCP');
    await checkPage(page, '12-consent');
    // Tab from the top of the page: the links and buttons in document order, Allow before Deny.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    const passed = await tabTo(page, 'button[value=approve]');
    expect(passed).not.toContain('button[name=decision][value=deny]');
    expect(await focusVisible(page)).toBe(true);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLButtonElement).value)).toBe('deny');
    await page.keyboard.press('Shift+Tab');
    await Promise.all([page.waitForURL(/\/callback/), page.keyboard.press('Enter')]);
    expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    await context.close();
  });

  it('the error page: announced, branded, readable at 375 px', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
    const page = await context.newPage();
    const res = await page.goto(`${server.issuer}/authorize?client_id=nobody&response_type=code`, {
      waitUntil: 'domcontentloaded',
    });
    expect(res!.status()).toBe(400);
    expect(await page.textContent('[role=alert]')).toContain('invalid_request');
    await checkPage(page, '20-error');
    // The CSP stays hash-based: the branding's stylesheet has a hash of its own, no 'unsafe-inline'.
    const csp = res!.headers()['content-security-policy']!;
    expect(csp).not.toContain('unsafe-inline');
    expect(csp.match(/'sha256-/g)!.length).toBe(2);
    // An error the app's error handler answers (a body it cannot parse) is branded and localised too.
    const framework = await fetch(`${server.issuer}/account/login`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(framework.status).toBeGreaterThanOrEqual(400);
    expect(framework.status).toBeLessThan(500);
    const frameworkHtml = await framework.text();
    expect(frameworkHtml).toContain('<header class="brand">');
    expect(framework.headers.get('content-security-policy')!.match(/'sha256-/g)!.length).toBe(2);
    const german = await fetch(`${localised.issuer}/account/login`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(await german.text()).toContain('<html lang="de">');
    await context.close();
  });

  it('a configured language and strings reach the page (lang, heading, a translated flow message)', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${localised.issuer}/account`, { waitUntil: 'domcontentloaded' });
    expect(await page.getAttribute('html', 'lang')).toBe('de');
    expect(await page.textContent('h1')).toBe('Anmelden');
    await page.fill('#username', ALICE.username);
    await page.fill('#password', 'wrong password here');
    await Promise.all([page.waitForLoadState('domcontentloaded'), page.press('#password', 'Enter')]);
    await page.waitForSelector('[role=alert]');
    expect(await page.textContent('[role=alert]')).toBe('Falsch.');
    await context.close();
  });
});
