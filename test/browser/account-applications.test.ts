/**
 * The account page's applications, in Chromium on every store: a user authorizes two clients through the real code
 * flow, sees both listed (host, name, scopes by description, resource by name, when), revokes one with the keyboard,
 * and then that client's refresh token is refused at /token (invalid_grant) and its access token is inactive at
 * introspection, while the other client keeps working. Screenshots in test-artifacts/account/.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import type { ConfigInput } from '../../src/config/schema.js';
import { challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { accessibilityProblems, scrollWidth } from '../helpers/page-checks.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'account');
const RESOURCE = 'https://notes.example.com/mcp';
const RS = { id: 'notes-rs', secret: 'notes-resource-server-secret-0123456789' };
const rsAuth = `Basic ${Buffer.from(`${RS.id}:${RS.secret}`).toString('base64')}`;

let browser: Browser;
let callbackServer: Server;
let callbackUrl: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  callbackServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', () => r()));
  callbackUrl = `http://127.0.0.1:${(callbackServer.address() as { port: number }).port}/callback`;
  if (existsSync(CHROMIUM)) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  }
});
afterAll(async () => {
  await browser?.close();
  callbackServer?.close();
});

for (const store of E2E_STORES) {
  describe.skipIf(!existsSync(CHROMIUM))(`account page applications on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_apps_${randomBytes(4).toString('hex')}`;
    let server: TestServer;

    beforeAll(async () => {
      if (!(await available)) return;
      const config: Partial<ConfigInput> = {
        scopes: ['notes:read'],
        resources: [RESOURCE],
        pages: {
          scopeDescriptions: { 'notes:read': 'Read your notes' },
          resourceNames: { [RESOURCE]: 'Notes MCP server' },
        },
        clients: [
          {
            client_id: RS.id,
            client_secret: RS.secret,
            grant_types: ['client_credentials'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        introspection: { allowedClients: [RS.id] },
        ...store.config(isolation),
      };
      server = await startServer(config);
    }, 60_000);
    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await store.cleanup?.(isolation);
    });

    /** Registers a public client and runs the code flow in `context` (signing in if asked): its tokens. */
    async function authorize(context: BrowserContext, name: string) {
      const reg = await postJson(`${server.issuer}/register`, {
        client_name: name,
        redirect_uris: [callbackUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
      });
      expect(reg.status).toBe(201);
      const clientId = reg.json.client_id as string;
      const v = verifier();
      const u = new URL(`${server.issuer}/authorize`);
      u.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: callbackUrl,
        response_type: 'code',
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        scope: 'openid notes:read offline_access',
        resource: RESOURCE,
      }).toString();
      const page = await context.newPage();
      await page.goto(u.href, { waitUntil: 'domcontentloaded' });
      if (await page.locator('input[name=password]').count()) {
        await page.fill('#username', ALICE.username);
        await page.fill('#password', ALICE.password);
        await Promise.all([page.waitForSelector('button[value=approve]'), page.press('#password', 'Enter')]);
      }
      await Promise.all([page.waitForURL(/\/callback/), page.click('button[value=approve]')]);
      const code = new URL(page.url()).searchParams.get('code')!;
      await page.close();
      const token = await postForm(`${server.issuer}/token`, {
        grant_type: 'authorization_code',
        client_id: clientId,
        code,
        code_verifier: v,
        redirect_uri: callbackUrl,
        resource: RESOURCE,
      });
      expect(token.status, JSON.stringify(token.json)).toBe(200);
      expect(token.json.refresh_token).toBeTruthy();
      return {
        clientId,
        accessToken: token.json.access_token as string,
        refreshToken: token.json.refresh_token as string,
      };
    }

    const refresh = (clientId: string, refreshToken: string) =>
      postForm(`${server.issuer}/token`, {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: refreshToken,
      });
    const introspect = (token: string) => postForm(`${server.issuer}/introspect`, { token }, { authorization: rsAuth });

    it('lists the applications, revokes one at once (refresh refused, access token inactive), keeps the other', async (t) => {
      if (!(await available)) return t.skip();
      const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
      const kept = await authorize(context, 'Notes Reader');
      const gone = await authorize(context, 'Notes Writer');
      // One refresh of the one to revoke: its tokens now, and a "last used".
      const refreshed = await refresh(gone.clientId, gone.refreshToken);
      expect(refreshed.status).toBe(200);
      gone.refreshToken = refreshed.json.refresh_token as string;
      gone.accessToken = refreshed.json.access_token as string;
      expect((await introspect(gone.accessToken)).json.active).toBe(true);

      const page = await context.newPage();
      await page.goto(`${server.issuer}/account`, { waitUntil: 'domcontentloaded' });
      const item = page.locator(`#applications li[data-client-id="${gone.clientId}"]`);
      const text = (await item.textContent())!.replace(/\s+/g, ' ');
      expect(text).toContain('127.0.0.1');
      expect(text).toContain('(calls itself “Notes Writer”)');
      expect(text).toContain('Read your notes');
      expect(text).toContain('Notes MCP server');
      expect(text).toMatch(/Allowed on \d{4}-\d{2}-\d{2}, last used \d{4}-\d{2}-\d{2}/);
      expect(await page.locator('#applications > li').count()).toBe(2);
      expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
      expect(await accessibilityProblems(page)).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `${store.kind}-1-listed.png`), fullPage: true });

      // Keyboard: focus the revoke button of "Notes Writer", Enter.
      await item.locator('button.revoke').focus();
      await Promise.all([page.waitForURL(/notice=app-revoked/), page.keyboard.press('Enter')]);
      expect(await page.textContent('[role=status]')).toContain('access was removed');
      expect(await page.locator(`#applications li[data-client-id="${gone.clientId}"]`).count()).toBe(0);
      expect(await page.locator(`#applications li[data-client-id="${kept.clientId}"]`).count()).toBe(1);
      expect(await accessibilityProblems(page)).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `${store.kind}-2-revoked.png`), fullPage: true });

      const refused = await refresh(gone.clientId, gone.refreshToken);
      expect(refused.status).toBe(400);
      expect(refused.json.error).toBe('invalid_grant');
      expect((await introspect(gone.accessToken)).json).toEqual({ active: false });
      // The consent went too: that client's next authorization asks again.
      const consent = await server.gatehouse.deps.storage.getConsent(
        (await server.gatehouse.deps.storage.getUserByUsername(ALICE.username))!.id,
        gone.clientId,
      );
      expect(consent).toBeUndefined();
      // The other application is untouched.
      expect((await introspect(kept.accessToken)).json.active).toBe(true);
      expect((await refresh(kept.clientId, kept.refreshToken)).status).toBe(200);
      await context.close();
    });

    it("another user's account page lists none of them; revoking a client that is not theirs changes nothing", async (t) => {
      if (!(await available)) return t.skip();
      const context = await browser.newContext();
      const aliceApp = await authorize(context, 'Alice Only');
      await context.close();
      const bob = await browser.newContext();
      const page = await bob.newPage();
      await page.goto(`${server.issuer}/account`, { waitUntil: 'domcontentloaded' });
      await page.fill('#username', BOB.username);
      await page.fill('#password', BOB.password);
      await Promise.all([page.waitForSelector('#account-username'), page.press('#password', 'Enter')]);
      expect(await page.locator('#no-apps').count()).toBe(1);
      // Bob posts a revoke of Alice's client with his own valid form: only his grants are looked at.
      const csrf = await page.getAttribute('form[action$="/sign-out"] input[name=csrf]', 'value');
      const res = await page.request.post(`${server.issuer}/account/applications/revoke`, {
        form: { csrf: csrf!, client_id: aliceApp.clientId },
        maxRedirects: 0,
      });
      expect(res.status()).toBe(303);
      expect((await introspect(aliceApp.accessToken)).json.active).toBe(true);
      expect((await refresh(aliceApp.clientId, aliceApp.refreshToken)).status).toBe(200);
      await bob.close();
    });
  });
}
