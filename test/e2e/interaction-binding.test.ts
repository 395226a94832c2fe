/**
 * An interaction belongs to the browser that started it (RFC 9700 §4.7, OIDC Core §3.1.2.3): its URL is not a
 * credential. An attacker who starts /authorize with their own PKCE pair and gets a victim to open the interaction
 * link (signed in or not, with or without prompt=login), then fetches it themselves, with or without cookies, polling
 * before and after, never sees a code or the victim's name. And a code is only issued to the session of the user who
 * signed in, never to a request that merely knows the id. On every store, since the binding is stored.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfToken, unsignValue } from '../../src/http/cookies.js';
import { challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
const CSRF_COOKIE = 'gatehouse_csrf';
const SESSION_COOKIE = 'gatehouse_session';
const isolation = `gh_bind_${randomBytes(4).toString('hex')}`;

/** A cookie jar that sends back what it was given, follows nothing, and keeps every response's Location. */
class Jar {
  readonly cookies = new Map<string, string>();
  readonly locations: string[] = [];

  constructor(entries: Iterable<[string, string]> = []) {
    for (const [k, v] of entries) this.cookies.set(k, v);
  }

  async request(url: string, init: RequestInit = {}): Promise<{ status: number; location?: string; html: string }> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    const location = res.headers.get('location') ?? undefined;
    if (location) this.locations.push(new URL(location, url).href);
    return { status: res.status, location: location && new URL(location, url).href, html: await res.text() };
  }

  /** Submits the page's form (its hidden fields plus `extra`), without following the redirect. */
  submit(html: string, pageUrl: string, extra: Record<string, string>) {
    const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
    if (!action) throw new Error(`no form on page: ${html.slice(0, 200)}`);
    const fields: Record<string, string> = {};
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = m[2]!;
    return this.request(new URL(action.replace(/&amp;/g, '&'), pageUrl).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, ...extra }).toString(),
    });
  }

  /** The whole flow as a browser: authorize, sign in and approve when asked; returns the callback. */
  async authorize(url: string, origin: string): Promise<URL> {
    let step = await this.request(url);
    for (let i = 0; i < 8; i++) {
      if (step.location && !step.location.startsWith(origin + '/')) return new URL(step.location);
      if (step.location) {
        const next = step.location;
        step = await this.request(next);
        (step as { url?: string }).url = next;
        continue;
      }
      const pageUrl = (step as { url?: string }).url ?? url;
      if (step.html.includes('name="password"'))
        step = await this.submit(step.html, pageUrl, { username: ALICE.username, password: ALICE.password });
      else if (step.html.includes('name="decision"'))
        step = await this.submit(step.html, pageUrl, { decision: 'approve' });
      else throw new Error(`unexpected page (${step.status}): ${step.html.slice(0, 300)}`);
    }
    throw new Error('authorization did not redirect back to the client');
  }
}

const stores = E2E_STORES;

for (const store of stores) {
  describe(`interactions are bound to their browser (${store.kind})`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    let server: TestServer;
    let clientId: string;
    /** The victim's browser, signed in, having approved the client once. */
    let victim: Jar;

    const authorizeUrl = (codeChallenge: string, extra: Record<string, string> = {}) => {
      const u = new URL(`${server.issuer}/authorize`);
      u.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
        scope: 'openid mcp:read',
        state: 's',
        ...extra,
      }).toString();
      return u.href;
    };

    /** Starts an authorization in `jar` and returns the interaction URL it was sent to. */
    const startInteraction = async (jar: Jar, codeChallenge: string, extra: Record<string, string> = {}) => {
      const start = await jar.request(authorizeUrl(codeChallenge, extra));
      expect(start.status).toBe(303);
      expect(start.location).toMatch(/\/interaction\//);
      return start.location!;
    };

    const redeem = (code: string, codeVerifier: string) =>
      postForm(`${server.issuer}/token`, {
        grant_type: 'authorization_code',
        client_id: clientId,
        code,
        code_verifier: codeVerifier,
        redirect_uri: REDIRECT,
      });

    /** The response is the "expired or opened in another browser" page: no form, no user, no redirect. */
    const expectRefused = (res: { status: number; location?: string; html: string }) => {
      expect(res.status).toBe(400);
      expect(res.location).toBeUndefined();
      expect(res.html).toContain('opened in another browser');
      expect(res.html).not.toContain('<form');
      expect(res.html).not.toContain(ALICE.username);
    };

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer({ scopes: ['mcp:read'], ...store.config(isolation) });
      clientId = (
        await postJson(`${server.issuer}/register`, {
          redirect_uris: [REDIRECT],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
        })
      ).json.client_id;
      victim = new Jar();
      const v = verifier();
      const cb = await victim.authorize(authorizeUrl(challenge(v)), server.origin);
      expect((await redeem(cb.searchParams.get('code')!, v)).status).toBe(200);
    }, 60_000);

    afterAll(async () => {
      if (!server) return;
      await server.close();
      await store.cleanup?.(isolation);
    });

    /**
     * The attack: the attacker starts the request with their own PKCE pair, polls the interaction (without cookies,
     * and with their own), the victim opens the link in their browser and signs in if asked, the attacker polls again.
     */
    async function attack(victimBrowser: Jar, extra: Record<string, string> = {}) {
      const attacker = new Jar();
      const victimMark = victimBrowser.locations.length;
      const attackerVerifier = verifier();
      const interactionUrl = await startInteraction(attacker, challenge(attackerVerifier), extra);
      const cookieless = new Jar();
      const poll = async () => [await cookieless.request(interactionUrl), await attacker.request(interactionUrl)];
      const before = await poll();
      const opened = await victimBrowser.request(interactionUrl);
      if (opened.html.includes('name="password"')) {
        // Do not follow the redirect: the polling attacker gets there first.
        await victimBrowser.submit(opened.html, interactionUrl, { username: ALICE.username, password: ALICE.password });
      }
      const after = [...(await poll()), ...(await poll())];
      const codes = [...attacker.locations, ...cookieless.locations, ...victimBrowser.locations.slice(victimMark)]
        .map((l) => new URL(l).searchParams.get('code'))
        .filter((c): c is string => !!c);
      return { attacker, attackerVerifier, interactionUrl, opened, before, after, codes };
    }

    it("a victim who is not signed in cannot be made to sign in to the attacker's request", async ({ skip }) => {
      if (!(await available)) skip();
      const fresh = new Jar();
      const before = victim.locations.length;
      const { opened, after, codes } = await attack(fresh);
      expectRefused(opened);
      for (const res of after) {
        expect(res.location ?? '').not.toContain('code=');
        expect(res.html).not.toContain(ALICE.username);
      }
      expect(codes).toEqual([]);
      expect(victim.locations.length).toBe(before);
    });

    it("a signed-in victim who already approved the client gets no code for the attacker's request", async ({
      skip,
    }) => {
      if (!(await available)) skip();
      const mark = victim.locations.length;
      const { opened, after, codes } = await attack(victim);
      expectRefused(opened);
      for (const res of after) expect(res.location ?? '').not.toContain('code=');
      expect(victim.locations.slice(mark).filter((l) => l.includes('code='))).toEqual([]);
      expect(codes).toEqual([]);
    });

    it('prompt=login: a signed-in victim is not asked to sign in, and the polling attacker gets nothing', async ({
      skip,
    }) => {
      if (!(await available)) skip();
      const { opened, after, codes } = await attack(victim, { prompt: 'login' });
      expectRefused(opened);
      for (const res of after) {
        expect(res.location ?? '').not.toContain('code=');
        expect(res.html).not.toContain(ALICE.username);
      }
      expect(codes).toEqual([]);
    });

    /** A CSRF token that `jar`'s own nonce cookie makes valid for `interactionUrl` (as if the form were its own). */
    const csrfFor = (jar: Jar, interactionUrl: string) => {
      const key = server.gatehouse.deps.cookieKey;
      const id = decodeURIComponent(new URL(interactionUrl).pathname.split('/').pop()!);
      return csrfToken(key, unsignValue(jar.cookies.get(CSRF_COOKIE), key)!, id);
    };

    it("the login and consent POSTs of another browser's interaction are refused, even with a valid CSRF token", async ({
      skip,
    }) => {
      if (!(await available)) skip();
      const unapproved = (
        await postJson(`${server.issuer}/register`, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
      ).json.client_id;
      const owner = new Jar();
      const u = new URL(authorizeUrl(challenge(verifier())));
      u.searchParams.set('client_id', unapproved);
      const interactionUrl = (await owner.request(u.href)).location!;
      const form = (extra: Record<string, string>) => ({
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: csrfFor(victim, interactionUrl), ...extra }).toString(),
      });
      // The victim's browser (its own nonce, its own session of the same user).
      const sessionBefore = victim.cookies.get(SESSION_COOKIE);
      const login = await victim.request(
        `${interactionUrl}/login`,
        form({ username: ALICE.username, password: ALICE.password }),
      );
      expectRefused(login);
      expect(victim.cookies.get(SESSION_COOKIE)).toBe(sessionBefore);
      // The owner signs in; the victim's browser, signed in as that same user, still cannot approve for it.
      const page = await owner.request(interactionUrl);
      expect(
        (await owner.submit(page.html, interactionUrl, { username: ALICE.username, password: ALICE.password })).status,
      ).toBe(303);
      const consent = await victim.request(`${interactionUrl}/consent`, form({ decision: 'approve' }));
      expectRefused(consent);
      // The owner's consent page is still there.
      expect((await owner.request(interactionUrl)).html).toContain('name="decision"');
    });

    it("after sign-in, the interaction URL without this browser's session issues no code and names no one", async ({
      skip,
    }) => {
      if (!(await available)) skip();
      // A second client the user has not approved: after sign-in the browser sees the consent page.
      const unapproved = (
        await postJson(`${server.issuer}/register`, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
      ).json.client_id;
      for (const approved of [true, false]) {
        const owner = new Jar();
        const v = verifier();
        const u = new URL(authorizeUrl(challenge(v)));
        if (!approved) u.searchParams.set('client_id', unapproved);
        const start = await owner.request(u.href);
        const interactionUrl = start.location!;
        const page = await owner.request(interactionUrl);
        const login = await owner.submit(page.html, interactionUrl, {
          username: ALICE.username,
          password: ALICE.password,
        });
        expect(login.status).toBe(303);
        // No cookies at all: the "expired or another browser" page.
        expectRefused(await new Jar().request(interactionUrl));
        // This browser's nonce cookie but not its session (e.g. the session cookie lost or stolen apart): sign in again.
        const noSession = new Jar([[CSRF_COOKIE, owner.cookies.get(CSRF_COOKIE)!]]);
        const res = await noSession.request(interactionUrl);
        expect(res.status).toBe(200);
        expect(res.location).toBeUndefined();
        expect(res.html).toContain('name="password"');
        expect(res.html).not.toContain('Signed in as');
        // The owner itself still finishes normally.
        const done = await owner.request(interactionUrl);
        if (approved) {
          expect(done.status).toBe(303);
          const code = new URL(done.location!).searchParams.get('code')!;
          expect((await redeem(code, v)).status).toBe(200);
        } else {
          expect(done.html).toContain('name="decision"');
          expect(done.html).toContain('Signed in as');
        }
      }
    });
  });
}
