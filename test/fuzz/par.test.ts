/**
 * Fuzz of POST /par (RFC 9126): every authorization request parameter and client authentication parameter with
 * hostile values, real and bent credentials (body and Basic), random headers and raw bodies. No 5xx, no stack trace,
 * answers within 2 s, only RFC 9126 §2.3 error codes (RFC 6749 §5.2 and §4.1.2.1, RFC 8707, OIDC), and: a push that
 * is accepted (201) is one /authorize accepts, exactly once, for the client that pushed it — the checks at push time
 * are /authorize's own, so a request that passed them never turns into an error page later.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBasicAuth } from '../../src/core/client-auth.js';
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

const PAR_ERRORS = [
  'invalid_request',
  'invalid_client',
  'unauthorized_client',
  'unsupported_response_type',
  'invalid_scope',
  'invalid_target',
  'request_not_supported',
];
const NAMES = [
  'response_type',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'resource',
  'prompt',
  'max_age',
  'nonce',
  'response_mode',
  'request',
  'request_uri',
  'login_hint',
];
/** Parameters most pushes leave out: absent with this weight (against 20 for present). */
const OPTIONAL: Record<string, number> = {
  client_secret: 10,
  client_assertion: 200,
  client_assertion_type: 200,
  resource: 30,
  prompt: 20,
  max_age: 30,
  nonce: 10,
  response_mode: 40,
  request: 200,
  request_uri: 100,
  login_hint: 60,
};
const OWN_REFS: Record<string, string[]> = {
  client_id: ['svc.id', 'web.id', 'app.id'],
  client_secret: ['svc.secret', 'web.secret'],
};
const BASIC: [string, string][] = [
  ['svc.id', 'svc.secret'],
  ['web.id', 'web.secret'],
  ['app.id', 'svc.secret'],
];
const REFS = ['svc.id', 'svc.secret', 'web.id', 'web.secret', 'app.id'];
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const REGISTERED = [REDIRECT, 'http://127.0.0.1/other'];
const REQUEST_URI = /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/;

/** The client a successful push authenticated: the Basic user, else the form's client_id. */
function pusherOf(headers: Record<string, string>, payload: string | Buffer): string {
  if (headers.authorization && /^basic /i.test(headers.authorization)) {
    return parseBasicAuth(headers.authorization).clientId;
  }
  return new URLSearchParams(payload.toString()).get('client_id')!;
}

for (const store of FUZZ_STORES) {
  describe(`fuzz POST /par (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const ref = refArb(REFS, opts);
    const specific: Record<string, string[]> = {
      response_type: ['code', 'token', 'code id_token', 'CODE'],
      redirect_uri: [...REGISTERED, REDIRECT + '/', 'http://127.0.0.1:1234/callback', 'https://evil.example/cb'],
      scope: ['openid', 'mcp:read', 'openid mcp:read offline_access', 'mcp:write', 'admin', 'openid profile'],
      code_challenge: [CHALLENGE, 'short', CHALLENGE + '=', 'A'.repeat(129)],
      code_challenge_method: ['S256', 'plain', 's256'],
      resource: ['https://api.example/', 'relative', 'https://api.example/#frag'],
      prompt: ['none', 'login', 'consent', 'select_account', 'none login'],
      max_age: ['0', '60', '-1', '1.5'],
      response_mode: ['query', 'fragment'],
      request_uri: ['urn:ietf:params:oauth:request_uri:x', 'https://client.example/r'],
      client_assertion_type: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
    };
    const valueFor = (name: string): fc.Arbitrary<Val> => {
      const own = OWN_REFS[name];
      return fc.oneof(
        { weight: own ? 8 : 1, arbitrary: own ? refArb(own, opts) : ref },
        {
          weight: specific[name] ? 6 : 1,
          arbitrary: specific[name] ? (fc.constantFrom(...specific[name]) as fc.Arbitrary<Val>) : ref,
        },
        { weight: 3, arbitrary: str },
      );
    };
    const valid = (fields: Record<string, string>) =>
      template({
        response_type: 'code',
        redirect_uri: REDIRECT,
        code_challenge: CHALLENGE,
        code_challenge_method: 'S256',
        scope: 'openid mcp:read',
        state: 'xyz',
        ...fields,
      });
    const templates = fc.constantFrom(
      valid({ client_id: '=app.id' }),
      valid({ client_id: '=app.id', prompt: 'none' }),
      valid({ client_id: '=web.id', client_secret: '=web.secret', scope: 'openid profile' }),
      valid({ client_id: '=svc.id', client_secret: '=svc.secret', resource: 'https://api.example/' }),
      valid({ client_id: '=web.id', client_secret: '=web.secret', max_age: '60', nonce: 'n' }),
    );
    const headers = headersArb('application/x-www-form-urlencoded', BASIC, opts);
    const parCase = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('form' as const),
          pairs: formArb(NAMES, valueFor, opts, (n) => OPTIONAL[n] ?? 3),
          headers,
        }),
      },
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('form' as const),
          pairs: bentArb(templates, NAMES, fc.oneof(ref, str, valueFor('scope'), valueFor('redirect_uri')), opts),
          headers,
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), body: rawBodyArb(opts), headers }) },
    );

    let fz: FuzzServer | undefined;
    beforeAll(async () => {
      fz = await startFuzzServer(store);
    }, 60_000);
    afterAll(async () => {
      printStats(`/par (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `safe answers, RFC 9126 codes; an accepted push is accepted by /authorize once, for its client (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const values: Record<string, string> = {
          'svc.id': SVC.id,
          'svc.secret': SVC.secret,
          'web.id': WEB.id,
          'web.secret': WEB.secret,
          'app.id': APP.id,
        };
        const r = (name: string) => values[name]!;
        let accepted = 0;
        await fc.assert(
          fc.asyncProperty(parCase, async (c) => {
            const payload = c.kind === 'form' ? encodeForm(c.pairs, r) : c.body;
            const h = buildHeaders(c.headers, r, opts);
            const res = await server.inject({ method: 'POST', url: '/par', headers: h, payload });
            expectSafe(res, PAR_ERRORS);
            if (res.status === 401 && /^Basic /i.test(h.authorization ?? '')) {
              expect(res.headers['www-authenticate'], res.request).toMatch(/^Basic/);
            }
            if (res.status !== 201) return;
            accepted++;
            expect(res.headers['cache-control'], res.request).toBe('no-store');
            expect(res.json?.expires_in, res.request).toBe(60);
            const requestUri = res.json?.request_uri as string;
            expect(requestUri, res.request).toMatch(REQUEST_URI);

            const use = () =>
              server.inject({
                method: 'GET',
                url: `/authorize?${new URLSearchParams({ client_id: pusherOf(h, payload), request_uri: requestUri })}`,
              });
            const first = await use();
            const where = `${res.request}\n-> /authorize ${first.status} ${String(first.headers.location)} ${first.body.slice(0, 300)}`;
            expect(first.status, where).toBe(303);
            const location = first.headers.location as string;
            if (!location.startsWith('/interaction/')) {
              // prompt=none without a session: login_required, sent to the registered redirect URI with iss.
              const target = new URL(location);
              // RFC 8252 §7.3: a loopback redirect URI matches whatever its port.
              if (target.hostname === '127.0.0.1') target.port = '';
              expect(REGISTERED, where).toContain(target.origin + target.pathname);
              expect(target.searchParams.get('iss'), where).toBe(ISSUER);
              expect(target.searchParams.get('error'), where).toBe('login_required');
            }
            const replay = await use();
            expect(replay.status, where).toBe(400);
            expect(replay.body, where).toContain('invalid_request_uri');
          }),
          {
            numRuns: runs,
            // One plain valid push first, so the 201 branch runs whatever the random cases draw.
            examples: [
              [
                {
                  kind: 'form' as const,
                  pairs: valid({ client_id: '=app.id' }),
                  headers: { contentType: 'application/x-www-form-urlencoded' },
                },
              ],
            ],
          },
        );
        // The property means little if no case got through: the templates must reach a 201 now and then.
        expect(accepted).toBeGreaterThan(0);
      },
      timeoutFor(runs),
    );
  });
}
