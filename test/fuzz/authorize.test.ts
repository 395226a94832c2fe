/**
 * Fuzz of GET and POST /authorize: every parameter of RFC 6749 §4.1.1, RFC 7636, RFC 8707 and OIDC Core §3.1.2.1 with
 * hostile values, real and foreign client ids and redirect URIs, with and without a signed-in session that already
 * consented. No 5xx, no stack trace, answers within 2 s, and: a redirect goes only to a registered redirect URI (with
 * `iss` and an RFC error code, or a code only for the signed-in browser) or to an interaction that now exists and is
 * bound to the browser cookie set with it; a refused request sets no cookie and starts no interaction.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomToken } from '../../src/core/crypto.js';
import { signValue } from '../../src/http/cookies.js';
import {
  APP,
  bentArb,
  buildHeaders,
  encodeForm,
  expectSafe,
  formArb,
  FUZZ_STORES,
  headersArb,
  ISSUER,
  printStats,
  rarely,
  rawBodyArb,
  REDIRECT,
  refArb,
  runsFor,
  startFuzzServer,
  stringArb,
  SVC,
  template,
  timeoutFor,
  WEB,
  type FuzzServer,
  type Val,
} from './harness.js';
import { ALICE } from '../helpers/server.js';

const AUTHORIZE_ERRORS = [
  'invalid_request',
  'unauthorized_client',
  'access_denied',
  'unsupported_response_type',
  'invalid_scope',
  'invalid_target',
  'login_required',
  'consent_required',
  'interaction_required',
  'account_selection_required',
  'request_not_supported',
  'request_uri_not_supported',
  'invalid_request_uri',
  'registration_not_supported',
];
const NAMES = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'resource',
  'prompt',
  'max_age',
  'nonce',
  'login_hint',
  'response_mode',
  'request',
  'request_uri',
  'id_token_hint',
  'ui_locales',
  'display',
  'claims',
  'acr_values',
];
const OPTIONAL: Record<string, number> = {
  resource: 30,
  prompt: 20,
  max_age: 30,
  nonce: 10,
  login_hint: 60,
  response_mode: 40,
  request: 200,
  request_uri: 200,
  id_token_hint: 100,
  ui_locales: 100,
  display: 100,
  claims: 100,
  acr_values: 100,
};
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const REGISTERED = [REDIRECT, 'http://127.0.0.1/other'];

for (const store of FUZZ_STORES) {
  describe(`fuzz /authorize (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const ref = refArb(['svc.id', 'web.id', 'app.id'], opts);
    const specific: Record<string, string[]> = {
      response_type: ['code', 'token', 'code id_token', 'id_token', 'CODE'],
      redirect_uri: [
        ...REGISTERED,
        REDIRECT + '/',
        'http://127.0.0.1:1234/callback',
        'http://localhost/callback',
        'https://evil.example/cb',
        REDIRECT + '?x=1',
        REDIRECT + '#f',
      ],
      scope: ['openid', 'mcp:read', 'openid mcp:read offline_access', 'mcp:write', 'admin', 'openid profile email'],
      code_challenge: [CHALLENGE, 'short', CHALLENGE + '=', 'A'.repeat(129)],
      code_challenge_method: ['S256', 'plain', 's256', 'none'],
      resource: ['https://api.example/', 'http://localhost:9999', 'relative', 'https://api.example/#frag'],
      prompt: ['none', 'login', 'consent', 'select_account', 'none login', 'login consent'],
      max_age: ['0', '60', '-1', '1.5', '1e3', '99999999999999999999'],
      response_mode: ['query', 'fragment', 'form_post'],
      // A pushed request's URN this server never issued (an error page), and a request object by reference.
      request_uri: ['urn:ietf:params:oauth:request_uri:x', 'https://client.example/request.jwt'],
    };
    const valueFor = (name: string): fc.Arbitrary<Val> =>
      fc.oneof(
        { weight: name === 'client_id' ? 8 : 1, arbitrary: ref },
        {
          weight: specific[name] ? 6 : 1,
          arbitrary: specific[name] ? (fc.constantFrom(...specific[name]) as fc.Arbitrary<Val>) : ref,
        },
        { weight: 3, arbitrary: str },
      );
    const valid = (client: string, extra: Record<string, string> = {}) =>
      template({
        response_type: 'code',
        client_id: `=${client}`,
        redirect_uri: REDIRECT,
        code_challenge: CHALLENGE,
        code_challenge_method: 'S256',
        scope: 'openid mcp:read',
        state: 'xyz',
        ...extra,
      });
    const templates = fc.constantFrom(
      valid('app.id'),
      valid('web.id', { scope: 'openid profile' }),
      valid('svc.id', { resource: 'https://api.example/' }),
      valid('app.id', { prompt: 'none' }),
      valid('web.id', { max_age: '60', nonce: 'n' }),
    );
    const query = fc.oneof(
      { weight: 3, arbitrary: formArb(NAMES, valueFor, opts, (n) => OPTIONAL[n] ?? 3) },
      {
        weight: 4,
        arbitrary: bentArb(templates, NAMES, fc.oneof(ref, str, valueFor('scope'), valueFor('redirect_uri')), opts),
      },
    );
    const authorizeCase = fc.record({
      method: fc.constantFrom('GET', 'GET', 'POST'),
      query,
      raw: rarely(rawBodyArb(opts), 8),
      /** With alice's signed-in session cookie (she already consented to every client), or random cookies. */
      signedIn: fc.boolean(),
      headers: headersArb('application/x-www-form-urlencoded', [], opts),
    });

    let fz: FuzzServer | undefined;
    let sessionCookie: string;
    beforeAll(async () => {
      fz = await startFuzzServer(store);
      if (!fz) return;
      const { storage, clock, cookieKey, config } = fz.gatehouse.deps;
      const alice = (await storage.getUserByUsername(ALICE.username))!;
      const now = clock.now();
      const session = { id: randomToken(), userId: alice.id, authTime: now, createdAt: now, expiresAt: now + 3600_000 };
      await storage.saveSession(session);
      for (const clientId of [APP.id, WEB.id, SVC.id]) {
        await storage.saveConsent({
          userId: alice.id,
          clientId,
          scope: ['openid', 'profile', 'mcp:read', 'offline_access'],
          resource: ['https://api.example/'],
          createdAt: now,
          expiresAt: now + 3600_000,
        });
      }
      sessionCookie = `${config.session.cookieName}=${signValue(session.id, cookieKey)}`;
    }, 60_000);
    afterAll(async () => {
      printStats(`/authorize (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `safe answers; redirects only to registered URIs or a bound interaction; refusals set no cookie (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const values: Record<string, string> = { 'svc.id': SVC.id, 'web.id': WEB.id, 'app.id': APP.id };
        const r = (name: string) => values[name]!;
        await fc.assert(
          fc.asyncProperty(authorizeCase, async (c) => {
            const form = encodeForm(c.query, r);
            const h = buildHeaders(c.headers, r, opts);
            if (c.signedIn) h.cookie = sessionCookie;
            const res = await server.inject(
              c.method === 'GET'
                ? { method: 'GET', url: `/authorize?${form}`, headers: h }
                : { method: 'POST', url: '/authorize', headers: h, payload: c.raw ?? form },
            );
            expectSafe(res, AUTHORIZE_ERRORS);
            const setCookie = ([] as unknown[]).concat(res.headers['set-cookie'] ?? []).join('\n');
            const location = res.headers.location as string | undefined;
            if (location?.startsWith('/interaction/')) {
              expect(res.status).toBe(303);
              const id = decodeURIComponent(location.slice('/interaction/'.length));
              const interaction = await server.gatehouse.deps.storage.getInteraction(id);
              expect(interaction?.browserBinding, res.request).toBeTruthy();
              expect(setCookie, res.request).toMatch(/^gatehouse_csrf=/);
              return;
            }
            expect(setCookie, `a refused or finished request set a cookie: ${res.request}`).toBe('');
            if (!location) {
              expect(res.status, res.request).toBeGreaterThanOrEqual(400);
              return;
            }
            expect(res.status).toBe(303);
            const target = new URL(location);
            // RFC 8252 §7.3: a loopback IP redirect URI matches on any port.
            const registered = REGISTERED.map((u) => new URL(u)).some(
              (u) =>
                u.protocol === target.protocol &&
                u.hostname === target.hostname &&
                u.pathname === target.pathname &&
                (u.port === target.port || u.hostname === '127.0.0.1'),
            );
            expect(registered, `redirected to an unregistered URI: ${res.request} -> ${location}`).toBe(true);
            expect(target.searchParams.get('iss'), location).toBe(ISSUER);
            const error = target.searchParams.get('error');
            if (error !== null) {
              expect(AUTHORIZE_ERRORS, location).toContain(error);
              expect(target.searchParams.has('code'), location).toBe(false);
            } else {
              // A code goes only to the signed-in browser.
              expect(c.signedIn, `a code without a session: ${res.request}`).toBe(true);
              expect(target.searchParams.get('code'), location).toBeTruthy();
            }
          }),
          { numRuns: runs },
        );
      },
      timeoutFor(runs),
    );
  });
}
