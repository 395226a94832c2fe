/**
 * Fuzz of POST /device_authorization (RFC 8628 §3.1): client authentication parameters (body and Basic), scope and
 * resource with hostile values, random extra parameters, headers and raw bodies. No 5xx, no stack trace, answers
 * within 2 s, only §3.2's error codes (RFC 6749 §5.2, RFC 8707), and: an accepted request (200) answers the §3.2
 * fields in their shape, and its device code names a stored authorization of the client that authenticated, for
 * scopes it asked for, which the token endpoint answers with authorization_pending.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBasicAuth } from '../../src/core/client-auth.js';
import { hashDeviceCode } from '../../src/core/device-codes.js';
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

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const DEVICE_ERRORS = ['invalid_request', 'invalid_client', 'unauthorized_client', 'invalid_scope', 'invalid_target'];
const NAMES = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type', 'scope', 'resource'];
const OPTIONAL: Record<string, number> = {
  client_secret: 10,
  client_assertion: 200,
  client_assertion_type: 200,
  resource: 20,
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
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

/** The client a successful request authenticated: the Basic user, else the form's client_id. */
function requesterOf(headers: Record<string, string>, payload: string | Buffer): string {
  if (headers.authorization && /^basic /i.test(headers.authorization)) {
    return parseBasicAuth(headers.authorization).clientId;
  }
  return new URLSearchParams(payload.toString()).get('client_id')!;
}

for (const store of FUZZ_STORES) {
  describe(`fuzz POST /device_authorization (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const ref = refArb(REFS, opts);
    const specific: Record<string, string[]> = {
      scope: ['openid', 'mcp:read', 'openid mcp:read offline_access', 'mcp:write', 'admin', 'openid profile', ''],
      resource: ['https://api.example/', 'relative', 'https://api.example/#frag', 'urn:x'],
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
    const templates = fc.constantFrom(
      template({ client_id: '=app.id', scope: 'openid mcp:read' }),
      template({ client_id: '=app.id' }),
      template({ client_id: '=svc.id', client_secret: '=svc.secret', resource: 'https://api.example/' }),
      template({ client_id: '=web.id', client_secret: '=web.secret', scope: 'openid' }),
    );
    const headers = headersArb('application/x-www-form-urlencoded', BASIC, opts);
    const deviceCase = fc.oneof(
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
          pairs: bentArb(templates, NAMES, fc.oneof(ref, str, valueFor('scope'), valueFor('resource')), opts),
          headers,
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), body: rawBodyArb(opts), headers }) },
    );

    let fz: FuzzServer | undefined;
    beforeAll(async () => {
      fz = await startFuzzServer(store, {
        clients: [
          {
            client_id: SVC.id,
            client_secret: SVC.secret,
            grant_types: [DEVICE_GRANT, 'refresh_token'],
            token_endpoint_auth_method: 'client_secret_basic',
            scope: 'openid profile offline_access mcp:read mcp:write',
          },
          // A code-flow client without the device grant: unauthorized_client.
          {
            client_id: WEB.id,
            client_secret: WEB.secret,
            redirect_uris: [REDIRECT],
            token_endpoint_auth_method: 'client_secret_post',
          },
          {
            client_id: APP.id,
            grant_types: [DEVICE_GRANT],
            token_endpoint_auth_method: 'none',
            scope: 'openid mcp:read',
          },
        ],
      });
    }, 60_000);
    afterAll(async () => {
      printStats(`/device_authorization (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `safe answers, RFC 8628 codes; an accepted request is stored for its client and pending (${runs} cases)`,
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
          fc.asyncProperty(deviceCase, async (c) => {
            const payload = c.kind === 'form' ? encodeForm(c.pairs, r) : c.body;
            const h = buildHeaders(c.headers, r, opts);
            const res = await server.inject({ method: 'POST', url: '/device_authorization', headers: h, payload });
            expectSafe(res, DEVICE_ERRORS);
            if (res.status === 401 && /^Basic /i.test(h.authorization ?? '')) {
              expect(res.headers['www-authenticate'], res.request).toMatch(/^Basic/);
            }
            if (res.status !== 200) return;
            accepted++;
            const where = `${res.request}\n-> ${res.body}`;
            expect(res.headers['cache-control'], where).toBe('no-store');
            const body = res.json as Record<string, string | number>;
            expect(body.user_code, where).toMatch(USER_CODE);
            expect(body.verification_uri, where).toBe(`${ISSUER}/device`);
            expect(body.expires_in, where).toBe(600);
            expect(body.interval, where).toBe(5);
            const clientId = requesterOf(h, payload);
            const stored = await server.gatehouse.deps.storage.getDeviceAuthorization(
              hashDeviceCode(String(body.device_code)),
            );
            expect(stored?.clientId, where).toBe(clientId);
            // Scopes asked for are granted or refused, never widened (none asked: /authorize's default applies).
            const asked = new URLSearchParams(payload.toString()).get('scope');
            if (asked) for (const s of stored!.scope) expect(asked.split(' '), where).toContain(s);

            const auth =
              clientId === SVC.id
                ? { authorization: `Basic ${Buffer.from(`${SVC.id}:${SVC.secret}`).toString('base64')}` }
                : {};
            const poll = await server.inject({
              method: 'POST',
              url: '/token',
              headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth },
              payload: new URLSearchParams({
                grant_type: DEVICE_GRANT,
                device_code: String(body.device_code),
                ...(clientId === SVC.id ? {} : { client_id: clientId }),
              }).toString(),
            });
            expect(poll.status, where).toBe(400);
            expect(poll.json?.error, where).toBe('authorization_pending');
          }),
          { numRuns: runs },
        );
        expect(accepted).toBeGreaterThan(0);
      },
      timeoutFor(runs),
    );
  });
}
