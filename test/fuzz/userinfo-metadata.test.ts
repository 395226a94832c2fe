/**
 * Fuzz of the read-only endpoints: userinfo (OIDC Core §5.3 with RFC 6750 bearer tokens, GET and POST, header and
 * body token, real and bent tokens), discovery metadata (RFC 8414, OIDC Discovery), JWKS and health, with random
 * methods, query strings and headers. No 5xx, no stack trace, answers within 2 s, RFC 6750 error codes with their
 * WWW-Authenticate challenge, and the real token still works afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildHeaders,
  encodeForm,
  expectSafe,
  formArb,
  FUZZ_STORES,
  headersArb,
  mintCode,
  printStats,
  rawBodyArb,
  redeemCode,
  refArb,
  runsFor,
  segmentArb,
  startFuzzServer,
  stringArb,
  timeoutFor,
  WEB,
  type FuzzServer,
  type Val,
} from './harness.js';

const USERINFO_ERRORS = ['invalid_request', 'invalid_token', 'insufficient_scope'];

for (const store of FUZZ_STORES) {
  describe(`fuzz /userinfo, metadata, JWKS, health (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const REFS = ['access', 'noOpenid', 'idToken'];
    const token: fc.Arbitrary<Val> = fc.oneof(
      { weight: 4, arbitrary: refArb(REFS, opts) },
      { weight: 2, arbitrary: str },
    );
    const headers = headersArb('application/x-www-form-urlencoded', [], opts);
    const userinfoCase = fc.record({
      method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT'),
      /** The token in an Authorization header (exactly as RFC 6750 §2.1 spells it, or bent), or none. */
      bearer: fc.option(fc.tuple(fc.constantFrom('Bearer ', 'bearer ', 'Bearer  ', 'Basic ', 'Bearer', ''), token)),
      body: fc.oneof(
        { weight: 4, arbitrary: formArb(['access_token'], () => token, opts).map((pairs) => ({ pairs })) },
        { weight: 1, arbitrary: rawBodyArb(opts).map((raw) => ({ raw })) },
      ),
      query: fc.option(formArb(['access_token', 'scope'], () => token, opts)),
      headers,
    });

    const metadataCase = fc.record({
      path: fc.constantFrom(
        '/.well-known/oauth-authorization-server',
        '/.well-known/openid-configuration',
        '/.well-known/oauth-authorization-server/x',
        '/.well-known/jwks.json',
        '/jwks',
        '/health',
        '/.well-known/',
        '/.well-known/oauth-protected-resource',
      ),
      suffix: fc.option(segmentArb(opts)),
      method: fc.constantFrom('GET', 'GET', 'HEAD', 'OPTIONS', 'POST'),
      query: fc.option(formArb(['issuer', 'format'], () => str, opts)),
      headers,
    });

    let fz: FuzzServer | undefined;
    let live: Record<string, string>;
    beforeAll(async () => {
      fz = await startFuzzServer(store);
      if (!fz) return;
      const withOpenid = await redeemCode(
        fz,
        WEB,
        'post',
        await mintCode(fz, WEB.id, ['openid', 'profile', 'mcp:read']),
      );
      const withoutOpenid = await redeemCode(fz, WEB, 'post', await mintCode(fz, WEB.id, ['mcp:read']));
      live = { access: withOpenid.access_token, noOpenid: withoutOpenid.access_token, idToken: withOpenid.id_token! };
    }, 60_000);
    afterAll(async () => {
      printStats(`/userinfo, metadata (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `userinfo: safe answers with RFC 6750 challenges, and the real token keeps working (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const r = (name: string) => live[name]!;
        await fc.assert(
          fc.asyncProperty(userinfoCase, async (c) => {
            const h = buildHeaders(c.headers, r, opts);
            if (c.bearer)
              h.authorization = (
                c.bearer[0] + (typeof c.bearer[1] === 'string' ? c.bearer[1] : r(c.bearer[1].ref))
              ).replace(/[^\x20-\x7e]/g, '');
            const url = '/userinfo' + (c.query ? `?${encodeForm(c.query, r)}` : '');
            const payload = c.method === 'GET' ? undefined : 'raw' in c.body ? c.body.raw : encodeForm(c.body.pairs, r);
            const res = await server.inject({ method: c.method, url, headers: h, payload });
            expectSafe(res, [...USERINFO_ERRORS, 'not_found']);
            if (res.status === 401 && res.json?.error === 'invalid_token')
              expect(res.headers['www-authenticate'], res.request).toMatch(/^Bearer /);
            if (res.status === 200) expect(typeof res.json?.sub, res.body).toBe('string');
          }),
          { numRuns: runs },
        );
        const ok = await server.inject({
          method: 'GET',
          url: '/userinfo',
          headers: { authorization: `Bearer ${live.access}` },
        });
        expect(ok.status, ok.body).toBe(200);
      },
      timeoutFor(runs),
    );

    it(
      `metadata, JWKS, health: safe answers, and the metadata does not change (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const before = (await server.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).body;
        await fc.assert(
          fc.asyncProperty(metadataCase, async (c) => {
            const url =
              c.path + (c.suffix !== null ? c.suffix : '') + (c.query ? `?${encodeForm(c.query, () => '')}` : '');
            const res = await server.inject({
              method: c.method,
              url,
              headers: buildHeaders(c.headers, () => '', opts),
              payload: c.method === 'POST' ? 'x=1' : undefined,
            });
            expectSafe(res, ['not_found', 'invalid_request']);
            if (res.status === 200 && c.method === 'GET' && c.path === '/health') expect(res.json?.status).toBe('ok');
          }),
          { numRuns: runs },
        );
        expect((await server.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).body).toBe(
          before,
        );
      },
      timeoutFor(runs),
    );
  });
}
