/**
 * Signing in at a real upstream OpenID provider (oidc-provider, test/helpers/oidc-upstream.ts) in real headless
 * Chromium (Debian's /usr/bin/chromium via playwright-core): with one upstream and no local users the client's
 * authorization request goes upstream at once; the user fills oidc-provider's login and consent pages, comes back to
 * Gatehouse's consent page, approves, and lands on the client's callback with `code` and `iss`. The code redeems to
 * an access token of the mapped upstream subject and an ID token with amr `fed`. Every Gatehouse page carries its
 * CSP, and nothing is logged to the console as an error.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { decodeJwt } from 'jose';
import { upstreamUserId } from '../../src/authorization/upstream-users.js';
import { ALICE as UPSTREAM_ALICE, startOidcUpstream, type OidcUpstream } from '../helpers/oidc-upstream.js';
import { challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { freePort, startServer, type TestServer } from '../helpers/server.js';
import { subjectOf } from '../helpers/upstream-flow.js';

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);

let upstream: OidcUpstream;
let server: TestServer;
let browser: Browser;
let callbackServer: Server;
let callbackUrl: string;
const received: URL[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  // The upstream must know Gatehouse's callback before Gatehouse starts: choose its port first.
  const port = await freePort();
  upstream = await startOidcUpstream({
    redirectUris: [`http://localhost:${port}/upstream/callback`],
    accounts: [UPSTREAM_ALICE],
  });
  server = await startServer(
    {
      users: [],
      encryptionKey: randomBytes(32).toString('base64'),
      upstreams: [
        {
          id: 'corp',
          name: 'Corp',
          type: 'oidc',
          issuer: upstream.issuer,
          clientId: upstream.clientId,
          clientSecret: upstream.clientSecret,
          scopes: ['openid', 'email', 'profile'],
          timeoutMs: 5000,
        },
      ],
    },
    { port },
  );
  callbackServer = createServer((req, res) => {
    const url = new URL(req.url!, callbackUrl);
    if (url.pathname === '/callback') received.push(url);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p id="done">You can close this window.</p>');
  });
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', () => r()));
  callbackUrl = `http://127.0.0.1:${(callbackServer.address() as { port: number }).port}/callback`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  callbackServer?.close();
  await server?.close();
  await upstream?.close();
});

describe.skipIf(!existsSync(CHROMIUM))('upstream sign-in in Chromium', () => {
  it('goes upstream at once, signs in and consents there, approves here, and the code redeems as the upstream user', async () => {
    const reg = await postJson(`${server.issuer}/register`, {
      client_name: 'Upstream Browser App',
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'none',
    });
    expect(reg.status, JSON.stringify(reg.json)).toBe(201);
    const clientId = reg.json.client_id as string;
    const v = verifier();
    const u = new URL(`${server.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: callbackUrl,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      scope: 'openid email',
      state: 'upstream-state',
    }).toString();

    // Scripts on, so a CSP violation on a Gatehouse page would be reported to the console.
    const context = await browser.newContext();
    // Loopback only: oidc-provider's pages ask for a web font, which must neither slow nor break the test.
    await context.route('**/*', (route) => {
      const { hostname } = new URL(route.request().url());
      return hostname === '127.0.0.1' || hostname === 'localhost' ? route.continue() : route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    // Errors on Gatehouse's pages only (the upstream's own pages miss a favicon and that font).
    const onGatehouse = () => page.url().startsWith(server.origin + '/');
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && onGatehouse()) errors.push(`${m.location().url}: ${m.text()}`);
    });
    page.on('pageerror', (e) => {
      if (onGatehouse()) errors.push(`pageerror: ${e.message}`);
    });
    // Every HTML page Gatehouse served on the way, with its CSP.
    const gatehousePages: { url: string; csp: string | undefined }[] = [];
    page.on('response', (res) => {
      const type = res.headers()['content-type'] ?? '';
      if (res.url().startsWith(server.origin + '/') && type.startsWith('text/html')) {
        gatehousePages.push({ url: res.url(), csp: res.headers()['content-security-policy'] });
      }
    });

    // One upstream, no local users: straight to oidc-provider's login form.
    await page.goto(u.href);
    expect(new URL(page.url()).origin).toBe(upstream.issuer);
    await page.fill('input[name=login]', 'alice');
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
    // oidc-provider's consent page, then back to Gatehouse's own consent page.
    await page.waitForSelector('button:has-text("Continue")');
    await Promise.all([page.waitForURL(`${server.origin}/**`), page.click('button:has-text("Continue")')]);
    const approve = page.locator('button[name=decision][value=approve]');
    await approve.waitFor();
    const text = await page.textContent('main');
    expect(text).toContain('Upstream Browser App');
    await Promise.all([page.waitForURL(/\/callback/), approve.click()]);
    expect(await page.textContent('#done')).toContain('close this window');

    const cb = received.at(-1)!;
    expect(cb.searchParams.get('state')).toBe('upstream-state');
    expect(cb.searchParams.get('iss')).toBe(server.issuer);
    const code = cb.searchParams.get('code')!;
    expect(code).toBeTruthy();
    const token = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      code_verifier: v,
      redirect_uri: callbackUrl,
    });
    expect(token.status, JSON.stringify(token.json)).toBe(200);
    expect(await subjectOf(server, token.json.access_token as string)).toBe(
      upstreamUserId(upstream.issuer, 'alice', undefined),
    );
    const idToken = decodeJwt(token.json.id_token as string);
    expect(idToken.amr).toContain('fed');

    expect(gatehousePages.length).toBeGreaterThan(0);
    for (const p of gatehousePages) expect(p.csp, p.url).toContain("frame-ancestors 'none'");
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);
});
