/**
 * Fuzz of revocation (RFC 7009) and introspection (RFC 7662): real parameter names with hostile values, real and bent
 * tokens and credentials of several clients, random headers and raw bodies. No 5xx, no stack trace, answers within
 * 2 s, their RFCs' error codes, and no state change from a refused request: live tokens stay active (checked in the
 * store) after every refused revocation and after every introspection, and are only revoked by their own client.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/core/crypto.js';
import {
  APP,
  bentArb,
  buildHeaders,
  encodeForm,
  expectSafe,
  formArb,
  FUZZ_STORES,
  headersArb,
  jtiOf,
  mintCode,
  printStats,
  rawBodyArb,
  redeemCode,
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

const ERRORS = ['invalid_request', 'invalid_client', 'unsupported_token_type'];
const NAMES = ['token', 'token_type_hint', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
const OWN_REFS: Record<string, string[]> = {
  token: ['access', 'refresh', 'svcAccess'],
  client_id: ['web.id', 'svc.id', 'app.id'],
  client_secret: ['web.secret', 'svc.secret'],
};
const REFS = ['web.id', 'web.secret', 'svc.id', 'svc.secret', 'app.id', 'access', 'refresh', 'svcAccess'];
const BASIC: [string, string][] = [
  ['svc.id', 'svc.secret'],
  ['web.id', 'web.secret'],
  ['svc.id', 'web.secret'],
];

for (const store of FUZZ_STORES) {
  describe(`fuzz POST /revoke and /introspect (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const ref = refArb(REFS, opts);
    const valueFor = (name: string): fc.Arbitrary<Val> => {
      const own = OWN_REFS[name];
      const specific: Record<string, string[]> = {
        token_type_hint: ['access_token', 'refresh_token', 'id_token', 'ACCESS_TOKEN'],
        client_assertion_type: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
      };
      return fc.oneof(
        { weight: own ? 8 : 1, arbitrary: own ? refArb(own, opts) : ref },
        { weight: 1, arbitrary: ref },
        {
          weight: specific[name] ? 3 : 1,
          arbitrary: specific[name] ? (fc.constantFrom(...specific[name]) as fc.Arbitrary<Val>) : ref,
        },
        { weight: 2, arbitrary: str },
      );
    };
    const OPTIONAL: Record<string, number> = { token_type_hint: 20, client_assertion: 200, client_assertion_type: 200 };
    const templates = fc.constantFrom(
      template({ token: '=access', client_id: '=web.id', client_secret: '=web.secret' }),
      template({
        token: '=refresh',
        token_type_hint: 'refresh_token',
        client_id: '=web.id',
        client_secret: '=web.secret',
      }),
      template({
        token: '=access',
        token_type_hint: 'access_token',
        client_id: '=svc.id',
        client_secret: '=svc.secret',
      }),
      template({ token: '=svcAccess', client_id: '=web.id', client_secret: '=web.secret' }),
      template({ token: '=refresh', client_id: '=app.id' }),
    );
    const headers = headersArb('application/x-www-form-urlencoded', BASIC, opts);
    const body = fc.oneof(
      { weight: 4, arbitrary: formArb(NAMES, valueFor, opts, (n) => OPTIONAL[n] ?? 3).map((pairs) => ({ pairs })) },
      { weight: 4, arbitrary: bentArb(templates, NAMES, fc.oneof(ref, str), opts).map((pairs) => ({ pairs })) },
      { weight: 1, arbitrary: rawBodyArb(opts).map((raw) => ({ raw })) },
    );
    const testCase = fc.record({ endpoint: fc.constantFrom('/revoke', '/introspect'), body, headers });

    let fz: FuzzServer | undefined;
    /** Live tokens: `web`'s access and refresh token (one grant), and a client_credentials token of `svc`. */
    let live: { access: string; refresh: string; svcAccess: string };
    const issueWeb = async () => {
      const t = await redeemCode(fz!, WEB, 'post', await mintCode(fz!, WEB.id));
      return { access: t.access_token, refresh: t.refresh_token };
    };
    const issueSvc = async () => {
      const res = await fz!.inject({
        method: 'POST',
        url: '/token',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${SVC.id}:${SVC.secret}`).toString('base64')}`,
        },
        payload: 'grant_type=client_credentials&scope=mcp:read',
      });
      expect(res.status, res.body).toBe(200);
      return res.json!.access_token as string;
    };
    const webRevoked = async () => {
      const { storage } = fz!.gatehouse.deps;
      const refresh = await storage.getRefreshToken(hashToken(live.refresh));
      return (
        (await storage.isAccessTokenRevoked(jtiOf(live.access))) || !refresh || refresh.grant.revokedAt !== undefined
      );
    };
    const svcRevoked = () => fz!.gatehouse.deps.storage.isAccessTokenRevoked(jtiOf(live.svcAccess));
    /** Whether a request carried `secret`, in the body or a Basic header (only its client may revoke its tokens). */
    const presented = (payload: string | Buffer, h: Record<string, string>, secret: string) =>
      String(payload).includes(secret) ||
      Buffer.from((h.authorization ?? '').replace(/^Basic /i, ''), 'base64')
        .toString()
        .includes(secret);

    beforeAll(async () => {
      fz = await startFuzzServer(store);
      if (!fz) return;
      live = { ...(await issueWeb()), svcAccess: await issueSvc() };
    }, 60_000);
    afterAll(async () => {
      printStats(`/revoke, /introspect (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `safe answers, and tokens are only revoked by a successful revocation of their own client (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        await fc.assert(
          fc.asyncProperty(testCase, async (c) => {
            const values: Record<string, string> = {
              'web.id': WEB.id,
              'web.secret': WEB.secret,
              'svc.id': SVC.id,
              'svc.secret': SVC.secret,
              'app.id': APP.id,
              access: live.access,
              refresh: live.refresh,
              svcAccess: live.svcAccess,
            };
            const r = (name: string) => values[name]!;
            const payload = 'raw' in c.body ? c.body.raw : encodeForm(c.body.pairs, r);
            const h = buildHeaders(c.headers, r, opts);
            const res = await server.inject({ method: 'POST', url: c.endpoint, headers: h, payload });
            expectSafe(res, ERRORS);
            if (res.status === 200 && c.endpoint === '/introspect')
              expect(typeof res.json?.active, res.body).toBe('boolean');
            if (res.status === 200 && c.endpoint === '/revoke') expect(res.body).toBe('');

            const revocation = c.endpoint === '/revoke' && res.status === 200;
            if (await webRevoked()) {
              expect(
                revocation && presented(payload, h, WEB.secret),
                `web's tokens revoked by: ${res.request} -> ${res.status}`,
              ).toBe(true);
              live = { ...live, ...(await issueWeb()) };
            }
            if (await svcRevoked()) {
              expect(
                revocation && presented(payload, h, SVC.secret),
                `svc's token revoked by: ${res.request} -> ${res.status}`,
              ).toBe(true);
              live = { ...live, svcAccess: await issueSvc() };
            }
          }),
          { numRuns: runs },
        );
      },
      timeoutFor(runs),
    );
  });
}
