/**
 * First run over HTTP on every store, two replicas each: the setup link a start prints makes the first administrator
 * once (a race of two submissions on two replicas: one wins), a refused password leaves it usable, it expires after
 * 15 minutes (injected clock), every other link dies with it, the sign-in pages say how to begin until then, and a
 * tenant has no setup page.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Clock } from '../../src/core/clock.js';
import { verifyPassword } from '../../src/core/password.js';
import { issueSetupLink, SETUP_LINK_TTL_MS } from '../../src/authorization/setup.js';
import type { Storage } from '../../src/model/ports.js';
import { createStorage } from '../../src/storage/index.js';
import { FormBrowser } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const ADMIN = { username: 'root-admin', password: 'a long enough admin password' };
const FIRST_RUN = 'No users yet: open the setup link printed in the server log';

for (const store of E2E_STORES) {
  describe(`first-run setup on two replicas over the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_setup_${randomBytes(4).toString('hex')}`;
    const clock: Clock & { offset: number } = { offset: 0, now: () => Date.now() + clock.offset };
    let sharedStore: Storage | undefined;
    let a: TestServer;
    let b: TestServer;

    beforeAll(async () => {
      if (!(await available)) return;
      const config: Partial<ConfigInput> = { users: [], ...store.config(isolation) };
      if (!store.service) sharedStore = await createStorage(config.storage!, { clock, cleanupIntervalMs: 0 });
      a = await startServer(config, { clock, storage: sharedStore });
      b = await startServer(config, { clock, storage: sharedStore });
    }, 60_000);
    afterAll(async () => {
      if (!(await available)) return;
      await a?.close();
      await b?.close();
      await sharedStore?.close();
      await store.cleanup?.(isolation);
    });

    /** Opens a setup link in a new browser: the status and page. */
    async function open(url: string, browser = new FormBrowser()) {
      const res = await browser.request(url);
      return { browser, status: res.status, html: await res.text() };
    }

    it('each start printed a link; the sign-in pages say how to begin; a tenant has no setup page', async (t) => {
      if (!(await available)) return t.skip();
      expect(a.gatehouse.setupLink?.url).toMatch(new RegExp(`^${a.issuer}/setup\\?token=[A-Za-z0-9_-]{43}$`));
      expect(b.gatehouse.setupLink?.url).toMatch(/\/setup\?token=/);
      expect(a.gatehouse.setupLink!.expiresAt - clock.now()).toBeLessThanOrEqual(SETUP_LINK_TTL_MS);
      const account = await open(`${b.issuer}/account`);
      expect(account.html).toContain(FIRST_RUN);
      // Made up, or on a tenant's path: the same "not valid" page, nothing else.
      expect((await open(`${a.issuer}/setup?token=${'x'.repeat(43)}`)).status).toBe(404);
      expect((await open(`${a.issuer}/setup`)).status).toBe(404);
      const token = new URL(a.gatehouse.setupLink!.url).searchParams.get('token')!;
      expect((await open(`${a.issuer}/nosuchtenant/setup?token=${token}`)).status).toBe(404);
      // A tenant (made at run time, with no users) has no setup page and no hint: its administrator adds its users.
      const now = clock.now();
      const tenant = `t${randomBytes(3).toString('hex')}`;
      await a.gatehouse.deps.storage.saveTenant({
        id: tenant,
        settings: {},
        source: 'admin',
        createdAt: now,
        updatedAt: now,
      });
      const tenantSetup = await open(`${a.issuer}/${tenant}/setup?token=${token}`);
      expect(tenantSetup.status).toBe(404);
      expect(tenantSetup.html).toContain('expired or was already used');
      const tenantLogin = await open(`${b.issuer}/${tenant}/account`);
      expect(tenantLogin.status).toBe(200);
      expect(tenantLogin.html).toContain('name="password"');
      expect(tenantLogin.html).not.toContain(FIRST_RUN);
      // Still live for the deployment.
      expect((await open(a.gatehouse.setupLink!.url)).status).toBe(200);
    });

    it('expires after 15 minutes (injected clock)', async (t) => {
      if (!(await available)) return t.skip();
      const link = await issueSetupLink(a.gatehouse.deps);
      const page = await open(link.url);
      expect(page.status).toBe(200);
      clock.offset = SETUP_LINK_TTL_MS + 1000;
      try {
        expect((await open(link.url)).status).toBe(404);
        // The form loaded before expiry cannot be submitted after it either.
        const late = await page.browser.submit(page.html, link.url, a.origin, ADMIN);
        expect(late.res.status).toBe(404);
        expect(await late.res.text()).toContain('expired or was already used');
      } finally {
        clock.offset = 0;
      }
      expect((await b.gatehouse.deps.storage.listUsers()).length).toBe(0);
    });

    it('a refused password keeps the link; of two submissions on two replicas one makes the administrator', async (t) => {
      if (!(await available)) return t.skip();
      const url = a.gatehouse.setupLink!.url;
      const onB = url.replace(a.origin, b.origin);
      // Refused by passwordPolicy (12 characters at least): nothing used up.
      const first = await open(onB);
      expect(first.status).toBe(200);
      expect(first.html).toContain('name="username"');
      const weak = await first.browser.submit(first.html, onB, b.origin, { username: 'x', password: 'short' });
      expect(weak.res.status).toBe(400);
      const weakHtml = await weak.res.text();
      expect(weakHtml).toContain('role="alert"');
      expect(weakHtml).toContain('The password was not accepted');
      // A form without its CSRF token is refused (a page error) and uses nothing up.
      const forged = await new FormBrowser().request(`${a.issuer}/setup`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: new URL(url).searchParams.get('token')!, ...ADMIN }).toString(),
      });
      expect(forged.status).toBe(400);

      // Each replica printed its own link: both used at the same moment make one administrator, not two.
      const linkOfB = b.gatehouse.setupLink!.url;
      expect(linkOfB).not.toBe(onB);
      const pageA = await open(url);
      const pageB = await open(linkOfB);
      const [ra, rb] = await Promise.all([
        pageA.browser.submit(pageA.html, url, a.origin, ADMIN),
        pageB.browser.submit(pageB.html, linkOfB, b.origin, { username: 'other-admin', password: ADMIN.password }),
      ]);
      expect([ra.res.status, rb.res.status].sort()).toEqual([200, 404]);
      const users = await b.gatehouse.deps.storage.listUsers();
      expect(users).toHaveLength(1);
      expect(users[0]!.admin).toBe(true);
      expect(users[0]!.username).toBe(ra.res.status === 200 ? ADMIN.username : 'other-admin');
      expect(await verifyPassword(ADMIN.password, users[0]!.passwordHash)).toBe(true);

      // Used: dead on both replicas, and so is the link the other replica printed.
      expect((await open(url)).status).toBe(404);
      expect((await open(onB)).status).toBe(404);
      expect((await open(b.gatehouse.setupLink!.url)).status).toBe(404);
      // And a link made now (e.g. an old `gatehouse setup-link`) creates nobody while a user exists.
      const late = await issueSetupLink(a.gatehouse.deps);
      const latePage = await open(late.url);
      const lateSubmit = await latePage.browser.submit(latePage.html, late.url, a.origin, {
        username: 'third',
        password: ADMIN.password,
      });
      expect(lateSubmit.res.status).toBe(404);
      expect(await b.gatehouse.deps.storage.listUsers()).toHaveLength(1);
    });

    it('after setup the hint is gone and the administrator signs in on the account page', async (t) => {
      if (!(await available)) return t.skip();
      const username = (await a.gatehouse.deps.storage.listUsers())[0]!.username;
      const browser = new FormBrowser();
      const login = await open(`${a.issuer}/account`, browser);
      expect(login.html).not.toContain(FIRST_RUN);
      const signedIn = await browser.submit(login.html, `${a.issuer}/account`, a.origin, {
        username,
        password: ADMIN.password,
      });
      const html = await signedIn.res.text();
      expect(html).toContain('id="account-username"');
      expect(html).toContain(username);
    });
  });
}
