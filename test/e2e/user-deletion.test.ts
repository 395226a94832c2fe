/**
 * Deleting a user over HTTP, on every store: afterwards nothing the user held works. Their refresh token is refused,
 * their access token introspects as inactive, a code issued before the deletion cannot be redeemed (even without
 * `openid`, where no user lookup was needed for the ID token), and their browser session no longer signs anyone in:
 * the next authorization request shows the login page instead of issuing a code.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
const CAROL = { username: 'carol', password: 'carol-has-a-long-password', email: 'carol@example.com', name: 'Carol' };

const stores = E2E_STORES;

for (const store of stores) {
  describe(`deleting a user on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_ud_${randomBytes(4).toString('hex')}`;
    let server: TestServer;
    const url = (path: string) => server.issuer + path;

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer({ scopes: ['mcp:read'], users: [ALICE, BOB, CAROL], ...store.config(isolation) });
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await store.cleanup?.(isolation);
    });

    it('revokes their tokens, kills their outstanding codes and signs their browser out', async (t) => {
      if (!(await available)) return t.skip();
      const reg = await postJson(url('/register'), {
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
      });
      expect(reg.status).toBe(201);
      const auth = basic(reg.json.client_id as string, reg.json.client_secret as string);
      const browser = new FormBrowser();
      const authorizeUrl = (v: string) => {
        const u = new URL(url('/authorize'));
        const params = {
          client_id: reg.json.client_id as string,
          redirect_uri: REDIRECT,
          response_type: 'code',
          code_challenge: challenge(v),
          code_challenge_method: 'S256',
          scope: 'mcp:read',
          state: 's',
        };
        for (const [k, value] of Object.entries(params)) u.searchParams.set(k, value);
        return u.href;
      };
      const codeFor = async (v: string) =>
        (await browser.authorize(authorizeUrl(v), server.origin, CAROL)).searchParams.get('code')!;
      const redeem = (code: string, v: string) =>
        postForm(
          url('/token'),
          { grant_type: 'authorization_code', code, code_verifier: v, redirect_uri: REDIRECT },
          { authorization: auth },
        );
      const introspect = async (token: string) =>
        (await postForm(url('/introspect'), { token }, { authorization: auth })).json;

      const v1 = verifier();
      const tokens = await redeem(await codeFor(v1), v1);
      expect(tokens.status).toBe(200);
      const access = tokens.json.access_token as string;
      const refresh = tokens.json.refresh_token as string;
      expect((await introspect(access)).active).toBe(true);
      // A second code, issued silently from the session and the remembered consent, left unredeemed.
      const v2 = verifier();
      const pending = await codeFor(v2);
      expect(pending).toBeTruthy();

      const storage = server.gatehouse.deps.storage;
      const carol = await storage.getUserByUsername(CAROL.username);
      expect(await storage.deleteUser(carol!.id)).toBe(true);

      const refreshed = await postForm(
        url('/token'),
        { grant_type: 'refresh_token', refresh_token: refresh },
        { authorization: auth },
      );
      expect(refreshed.status).toBe(400);
      expect(refreshed.json.error).toBe('invalid_grant');
      expect(await introspect(access)).toEqual({ active: false });
      const late = await redeem(pending, v2);
      expect(late.status).toBe(400);
      expect(late.json.error).toBe('invalid_grant');
      // The session cookie is still in the browser, but it signs nobody in: the login page, not a code.
      const step = await browser.follow(authorizeUrl(verifier()), server.origin);
      expect(step.callback).toBeUndefined();
      expect(await step.res.text()).toContain('name="password"');
      // Another user is untouched.
      expect(await storage.getUserByUsername(ALICE.username)).toBeDefined();
    });
  });
}
