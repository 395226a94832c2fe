/**
 * Fuzz of the interaction pages (sign-in and consent): random interaction ids, paths, methods, fields, CSRF tokens and
 * cookies from strangers; and, on a real interaction with the browser's real CSRF cookie and token, random sign-in and
 * consent forms, so the code behind the CSRF and binding checks runs too. No 5xx, no stack trace, answers within 2 s,
 * and a refused request changes nothing: no session cookie and no user recorded on the interaction after a refused
 * sign-in, the interaction still pending after a refused consent; and a code only for the real browser's approval.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomToken } from '../../src/core/crypto.js';
import { newBrowserNonce, signValue } from '../../src/http/cookies.js';
import {
  APP,
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
  segmentArb,
  startFuzzServer,
  stringArb,
  timeoutFor,
  type FuzzServer,
  type Sent,
  type Val,
} from './harness.js';
import { ALICE, BOB } from '../helpers/server.js';

const PAGE_ERRORS = ['invalid_request', 'not_found'];
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

for (const store of FUZZ_STORES) {
  describe(`fuzz /interaction (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const headers = headersArb('application/x-www-form-urlencoded', [], opts);

    let fz: FuzzServer | undefined;
    /** Signed session cookies of alice and bob. */
    let sessions: { alice: string; bob: string };
    const cookie = (name: string, value: string) => `${name}=${value}`;
    const sessionName = () => fz!.gatehouse.deps.config.session.cookieName;

    /** Starts an interaction in a fresh browser (optionally signed in); returns its id, CSRF cookie and form token. */
    const startInteraction = async (session?: string) => {
      const q = new URLSearchParams({
        response_type: 'code',
        client_id: APP.id,
        redirect_uri: REDIRECT,
        code_challenge: CHALLENGE,
        code_challenge_method: 'S256',
        scope: 'openid mcp:read',
        state: 'st',
        prompt: 'consent',
      });
      const start = await fz!.inject({
        method: 'GET',
        url: `/authorize?${q}`,
        headers: session ? { cookie: session } : {},
      });
      expect(start.status, start.body).toBe(303);
      const location = start.headers.location as string;
      const csrfCookie = String(([] as unknown[]).concat(start.headers['set-cookie'])[0]).split(';')[0]!;
      const id = decodeURIComponent(location.slice('/interaction/'.length));
      const page = await fz!.inject({
        method: 'GET',
        url: location,
        headers: { cookie: [csrfCookie, session].filter(Boolean).join('; ') },
      });
      expect(page.status, page.body).toBe(200);
      const csrf = /name="csrf" value="([^"]*)"/.exec(page.body)![1]!;
      return { id, location, csrfCookie, csrf };
    };

    beforeAll(async () => {
      fz = await startFuzzServer(store);
      if (!fz) return;
      const { storage, clock, cookieKey } = fz.gatehouse.deps;
      const now = clock.now();
      const signed: Record<string, string> = {};
      for (const user of [ALICE, BOB]) {
        const record = (await storage.getUserByUsername(user.username))!;
        const session = {
          id: randomToken(),
          userId: record.id,
          authTime: now,
          createdAt: now,
          expiresAt: now + 3600_000,
        };
        await storage.saveSession(session);
        signed[user.username] = cookie(sessionName(), signValue(session.id, cookieKey));
      }
      sessions = { alice: signed[ALICE.username]!, bob: signed[BOB.username]! };
    }, 60_000);
    afterAll(async () => {
      printStats(`/interaction (${store.kind})`);
      await fz?.close();
    });

    const setCookies = (res: Sent) => ([] as unknown[]).concat(res.headers['set-cookie'] ?? []).join('\n');

    // --- strangers: no real interaction, random everything ---
    const strangerCase = fc.record({
      method: fc.constantFrom('GET', 'POST', 'POST', 'PUT'),
      id: fc.oneof(segmentArb(opts), fc.constant(''), fc.constant(randomToken(24))),
      tail: fc.constantFrom('', '/login', '/consent', '/login', '/consent', '/', '/x', '/login/'),
      form: formArb(
        ['csrf', 'username', 'password', 'decision'],
        () => fc.oneof(str, fc.constantFrom('approve', 'deny', ALICE.username, ALICE.password)) as fc.Arbitrary<Val>,
        opts,
      ),
      raw: rarely(rawBodyArb(opts), 8),
      headers,
      csrfCookie: fc.oneof(
        fc.constant('none'),
        fc.constant('valid-elsewhere'),
        str.map((s) => s.replace(/[^\x21-\x7e]/g, '')),
      ),
    });

    const runs = runsFor(store);
    it(
      `strangers: random ids, paths, fields and cookies get safe answers and no session (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        await fc.assert(
          fc.asyncProperty(strangerCase, async (c) => {
            const h = buildHeaders(c.headers, () => '', opts);
            if (c.csrfCookie === 'valid-elsewhere')
              h.cookie = cookie('gatehouse_csrf', signValue(newBrowserNonce(), server.gatehouse.deps.cookieKey));
            else if (c.csrfCookie !== 'none') h.cookie = cookie('gatehouse_csrf', c.csrfCookie);
            const res = await server.inject({
              method: c.method,
              url: `/interaction/${c.id}${c.tail}`,
              headers: h,
              payload: c.method === 'GET' ? undefined : (c.raw ?? encodeForm(c.form, () => '')),
            });
            expectSafe(res, PAGE_ERRORS);
            expect(res.status, res.request).toBeGreaterThanOrEqual(400);
            expect(setCookies(res), res.request).not.toContain(sessionName());
            expect(res.body, res.request).not.toContain(ALICE.name);
          }),
          { numRuns: runs },
        );
      },
      timeoutFor(runs),
    );

    // --- a real interaction, the real browser's CSRF cookie and token (mostly), random sign-in forms ---
    const real = (refs: string[]) => refArb(refs, opts);
    const loginCase = fc.record({
      form: formArb(
        ['csrf', 'username', 'password'],
        (name) =>
          fc.oneof(
            {
              weight: name === 'csrf' ? 16 : 6,
              arbitrary: real(
                name === 'csrf' ? ['csrf'] : name === 'username' ? ['alice', 'bob'] : ['alicePassword', 'bobPassword'],
              ),
            },
            { weight: 3, arbitrary: str },
          ),
        opts,
        (name) => (name === 'csrf' ? 1 : 2),
      ),
      /** The browser's own CSRF cookie; none; another browser's (valid, signed); bent. */
      csrfCookie: fc.oneof(
        { weight: 8, arbitrary: fc.constant('own') },
        { weight: 1, arbitrary: fc.constantFrom('none', 'other', 'bent') },
      ),
      raw: rarely(rawBodyArb(opts), 10),
      headers,
    });
    const loginRuns = runsFor(store, 0.3);
    it(
      `sign-in on a real interaction: safe answers; a refused sign-in starts no session and records no user (${loginRuns} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const { storage, cookieKey } = server.gatehouse.deps;
        await fc.assert(
          fc.asyncProperty(loginCase, async (c) => {
            const it = await startInteraction();
            const values: Record<string, string> = {
              csrf: it.csrf,
              alice: ALICE.username,
              bob: BOB.username,
              alicePassword: ALICE.password,
              bobPassword: BOB.password,
            };
            const h = buildHeaders(c.headers, () => '', opts);
            const cookies: Record<string, string | undefined> = {
              own: it.csrfCookie,
              none: undefined,
              other: cookie('gatehouse_csrf', signValue(newBrowserNonce(), cookieKey)),
              bent: it.csrfCookie.slice(0, -1),
            };
            if (cookies[c.csrfCookie]) h.cookie = cookies[c.csrfCookie]!;
            else delete h.cookie;
            const res = await server.inject({
              method: 'POST',
              url: `${it.location}/login`,
              headers: h,
              payload: c.raw ?? encodeForm(c.form, (n) => values[n]!),
            });
            expectSafe(res, PAGE_ERRORS);
            const stored = await storage.getInteraction(it.id);
            if (res.status === 303) {
              expect(res.headers.location, res.request).toBe(it.location);
              expect(setCookies(res), res.request).toContain(`${sessionName()}=`);
              expect(stored?.userId, res.request).toBeDefined();
            } else {
              expect(res.status, res.request).toBeGreaterThanOrEqual(400);
              expect(setCookies(res), `a refused sign-in set a session: ${res.request}`).not.toContain(sessionName());
              expect(stored, res.request).toBeDefined();
              expect(stored?.userId, `a refused sign-in recorded a user: ${res.request}`).toBeUndefined();
            }
          }),
          { numRuns: loginRuns },
        );
      },
      timeoutFor(loginRuns),
    );

    // --- a real interaction of signed-in alice, random consent forms and session cookies ---
    const consentCase = fc.record({
      form: formArb(
        ['csrf', 'decision'],
        (name) =>
          fc.oneof(
            {
              weight: name === 'csrf' ? 16 : 6,
              arbitrary: name === 'csrf' ? real(['csrf']) : (fc.constantFrom('approve', 'deny') as fc.Arbitrary<Val>),
            },
            { weight: 1, arbitrary: fc.constantFrom('APPROVE', 'allow', 'yes', 'approve ', '1') },
            { weight: 3, arbitrary: str },
          ),
        opts,
        () => 1,
      ),
      csrfCookie: fc.oneof(
        { weight: 8, arbitrary: fc.constant('own') },
        { weight: 1, arbitrary: fc.constantFrom('none', 'other', 'bent') },
      ),
      session: fc.oneof(
        { weight: 6, arbitrary: fc.constant('alice') },
        { weight: 1, arbitrary: fc.constantFrom('bob', 'none', 'bent') },
      ),
      raw: rarely(rawBodyArb(opts), 10),
      headers,
    });
    const consentRuns = runsFor(store, 0.5);
    it(
      `consent on a real interaction: safe answers; a refused consent leaves it pending, an accepted one answers the client (${consentRuns} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const { storage, cookieKey } = server.gatehouse.deps;
        await fc.assert(
          fc.asyncProperty(consentCase, async (c) => {
            const it = await startInteraction(sessions.alice);
            const h = buildHeaders(c.headers, () => '', opts);
            const csrfCookies: Record<string, string | undefined> = {
              own: it.csrfCookie,
              none: undefined,
              other: cookie('gatehouse_csrf', signValue(newBrowserNonce(), cookieKey)),
              bent: it.csrfCookie.slice(0, -1),
            };
            const sessionCookies: Record<string, string | undefined> = {
              alice: sessions.alice,
              bob: sessions.bob,
              none: undefined,
              bent: sessions.alice.slice(0, -1),
            };
            const jar = [csrfCookies[c.csrfCookie], sessionCookies[c.session]].filter(Boolean).join('; ');
            if (jar) h.cookie = jar;
            else delete h.cookie;
            const res = await server.inject({
              method: 'POST',
              url: `${it.location}/consent`,
              headers: h,
              payload: c.raw ?? encodeForm(c.form, () => it.csrf),
            });
            expectSafe(res, PAGE_ERRORS);
            const stored = await storage.getInteraction(it.id);
            if (res.status === 303) {
              const target = new URL(res.headers.location as string);
              expect(target.origin + target.pathname, res.request).toBe(REDIRECT);
              expect(target.searchParams.get('iss')).toBe(ISSUER);
              expect(target.searchParams.get('state')).toBe('st');
              // Only alice's own browser, with its CSRF token, gets an answer at all.
              expect([c.csrfCookie, c.session], res.request).toEqual(['own', 'alice']);
              if (target.searchParams.has('code')) expect(target.searchParams.has('error')).toBe(false);
              else expect(target.searchParams.get('error')).toBe('access_denied');
              expect(stored, 'an answered interaction is gone').toBeUndefined();
            } else {
              expect(res.status, res.request).toBeGreaterThanOrEqual(400);
              expect(stored, `a refused consent took the interaction: ${res.request}`).toBeDefined();
            }
          }),
          { numRuns: consentRuns },
        );
      },
      timeoutFor(consentRuns),
    );
  });
}
