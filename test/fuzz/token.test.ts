/**
 * Fuzz of POST /token, every grant (authorization_code, refresh_token, client_credentials, and none): real parameter
 * names with hostile values, real and bent credentials, codes and refresh tokens, random headers and raw bodies.
 * No 5xx, no stack trace, answers within 2 s, RFC 6749 §5.2 / RFC 8707 error codes, and a refused request changes
 * nothing: a live refresh token is not rotated or revoked by it, and a code and credentials kept aside still work.
 * The jwt-bearer grant gets a property of its own: really signed assertions (an ID-JAG or a workload token) whose every
 * claim and request field is drawn from values its profile accepts or values that break one rule; the answer is 200
 * exactly when no rule was broken, and then only once.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/core/crypto.js';
import { startJwtIssuer, type TestIssuer } from '../helpers/jwt-issuer.js';
import {
  APP,
  buildHeaders,
  encodeForm,
  expectSafe,
  formArb,
  FUZZ_STORES,
  headersArb,
  ISSUER,
  mintCode,
  printStats,
  rawBodyArb,
  redeemCode,
  REDIRECT,
  refArb,
  runsFor,
  startFuzzServer,
  stringArb,
  SVC,
  bentArb,
  template,
  timeoutFor,
  WEB,
  type FuzzServer,
  type Val,
} from './harness.js';

const TOKEN_ERRORS = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
];
const NAMES = [
  'grant_type',
  'code',
  'code_verifier',
  'redirect_uri',
  'client_id',
  'client_secret',
  'refresh_token',
  'scope',
  'resource',
  'client_assertion',
  'client_assertion_type',
];
/** Real values a case may name; `code`/`verifier` are a fresh code minted for that case (for web), `refresh` the live one. */
/** Parameters most requests leave out: absent with this weight (against 20 for present). */
const OPTIONAL: Record<string, number> = {
  grant_type: 1,
  client_secret: 12,
  scope: 20,
  resource: 30,
  client_assertion: 200,
  client_assertion_type: 200,
};
/** The real values that belong in a parameter. */
const OWN_REFS: Record<string, string[]> = {
  client_id: ['svc.id', 'web.id', 'app.id'],
  client_secret: ['svc.secret', 'web.secret'],
  code: ['code'],
  code_verifier: ['verifier'],
  refresh_token: ['refresh'],
};
/** Basic credentials a case may present (mostly matching pairs). */
const BASIC: [string, string][] = [
  ['svc.id', 'svc.secret'],
  ['web.id', 'web.secret'],
  ['app.id', 'svc.secret'],
];
const REFS = ['svc.id', 'svc.secret', 'web.id', 'web.secret', 'app.id', 'code', 'verifier', 'refresh'];

for (const store of FUZZ_STORES) {
  describe(`fuzz POST /token (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const ref = refArb(REFS, opts);
    const oneOf = (...values: string[]) => fc.constantFrom(...values) as fc.Arbitrary<Val>;
    const specificValues = (): Record<string, fc.Arbitrary<Val>> => ({
      grant_type: oneOf(
        'authorization_code',
        'refresh_token',
        'client_credentials',
        'password',
        'implicit',
        'urn:ietf:params:oauth:grant-type:device_code',
        'AUTHORIZATION_CODE',
      ),
      redirect_uri: oneOf(REDIRECT, 'http://127.0.0.1/other', REDIRECT + '/', 'http://127.0.0.1:8080/callback'),
      scope: oneOf(
        'openid',
        'mcp:read',
        'mcp:write',
        'openid mcp:read',
        'offline_access',
        'admin',
        'mcp:read mcp:read',
        'openid  profile',
      ),
      resource: oneOf('https://api.example/', 'http://localhost:9999', 'not a uri', 'https://api.example/#f', 'urn:x'),
      client_assertion_type: oneOf('urn:ietf:params:oauth:client-assertion-type:jwt-bearer'),
      client_assertion: oneOf(
        'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJzdmMifQ.AAAA',
        'eyJhbGciOiJub25lIn0.eyJpc3MiOiJzdmMiLCJzdWIiOiJzdmMifQ.',
      ),
    });
    const valueFor = (name: string): fc.Arbitrary<Val> => {
      const specific = specificValues();
      // grant_type mostly names a real grant, so the cases get past the dispatch into the grants themselves.
      if (name === 'grant_type')
        return fc.oneof(
          { weight: 12, arbitrary: oneOf('authorization_code', 'refresh_token', 'client_credentials') },
          { weight: 1, arbitrary: specific.grant_type! },
          { weight: 1, arbitrary: str },
        );
      const own = OWN_REFS[name];
      return fc.oneof(
        { weight: own ? 8 : 1, arbitrary: own ? refArb(own, opts) : ref },
        { weight: 1, arbitrary: ref },
        { weight: 2, arbitrary: specific[name] ?? ref },
        { weight: 2, arbitrary: str },
      );
    };
    const formCase = fc.record({
      kind: fc.constant('form' as const),
      pairs: formArb(NAMES, valueFor, opts, (name) => OPTIONAL[name] ?? 3),
      headers: headersArb('application/x-www-form-urlencoded', BASIC, opts),
    });
    const rawCase = fc.record({
      kind: fc.constant('raw' as const),
      body: rawBodyArb(opts),
      headers: headersArb('application/x-www-form-urlencoded', BASIC, opts),
    });
    /** Valid requests of every grant and client authentication method, then bent. */
    const templates = fc.constantFrom(
      template({
        grant_type: 'authorization_code',
        code: '=code',
        code_verifier: '=verifier',
        redirect_uri: REDIRECT,
        client_id: '=web.id',
        client_secret: '=web.secret',
      }),
      template({
        grant_type: 'authorization_code',
        code: '=code',
        code_verifier: '=verifier',
        redirect_uri: REDIRECT,
        client_id: '=web.id',
        client_secret: '=web.secret',
        resource: 'https://api.example/',
        scope: 'openid',
      }),
      template({
        grant_type: 'refresh_token',
        refresh_token: '=refresh',
        client_id: '=web.id',
        client_secret: '=web.secret',
      }),
      template({
        grant_type: 'refresh_token',
        refresh_token: '=refresh',
        client_id: '=web.id',
        client_secret: '=web.secret',
        scope: 'mcp:read',
      }),
      template({ grant_type: 'refresh_token', refresh_token: '=refresh', client_id: '=app.id' }),
      template({
        grant_type: 'client_credentials',
        client_id: '=svc.id',
        client_secret: '=svc.secret',
        scope: 'mcp:read',
      }),
      template({ grant_type: 'client_credentials', client_id: '=web.id', client_secret: '=web.secret' }),
    );
    const anyValue = fc.oneof(ref, str, ...Object.values(specificValues()));
    const bentCase = fc.record({
      kind: fc.constant('form' as const),
      pairs: bentArb(templates, NAMES, anyValue, opts),
      headers: headersArb('application/x-www-form-urlencoded', BASIC, opts),
    });
    const tokenCase = fc.oneof(
      { weight: 4, arbitrary: formCase },
      { weight: 4, arbitrary: bentCase },
      { weight: 1, arbitrary: rawCase },
    );

    let fz: FuzzServer | undefined;
    /** The live refresh token of `web`: no refused request may rotate or revoke it. */
    let live: { token: string; grantId: string };
    /** A code of `web` no case ever sees: it must still redeem after the run. */
    let keptCode: Awaited<ReturnType<typeof mintCode>>;

    beforeAll(async () => {
      fz = await startFuzzServer(store);
      if (!fz) return;
      const tokens = await redeemCode(fz, WEB, 'post', await mintCode(fz, WEB.id));
      live = {
        token: tokens.refresh_token,
        grantId: (await fz.gatehouse.deps.storage.getRefreshToken(hashToken(tokens.refresh_token)))!.grant.id,
      };
      keptCode = await mintCode(fz, WEB.id);
    }, 60_000);
    afterAll(async () => {
      printStats(`/token (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `no 5xx, no stack trace, RFC error codes, no state change from a refusal (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const storage = server.gatehouse.deps.storage;
        await fc.assert(
          fc.asyncProperty(tokenCase, async (c) => {
            const minted = await mintCode(server, WEB.id);
            const values: Record<string, string> = {
              'svc.id': SVC.id,
              'svc.secret': SVC.secret,
              'web.id': WEB.id,
              'web.secret': WEB.secret,
              'app.id': APP.id,
              code: minted.code,
              verifier: minted.verifier,
              refresh: live.token,
            };
            const r = (name: string) => values[name]!;
            const payload = c.kind === 'form' ? encodeForm(c.pairs, r) : c.body;
            const headers = buildHeaders(c.headers, r, opts);
            const res = await server.inject({ method: 'POST', url: '/token', headers, payload });
            expectSafe(res, TOKEN_ERRORS);
            if (res.status === 200) {
              expect(typeof res.json?.access_token, res.body).toBe('string');
              expect(res.headers['cache-control']).toBe('no-store');
            }
            // RFC 6749 §5.2: a failed Basic authentication answers 401 with WWW-Authenticate.
            if (res.status === 401 && /^Basic /i.test(headers.authorization ?? '')) {
              expect(res.headers['www-authenticate'], res.request).toMatch(/^Basic/);
            }

            const current = await storage.getRefreshToken(hashToken(live.token));
            expect(current?.grant.revokedAt, `grant revoked by: ${res.request} -> ${res.status}`).toBeUndefined();
            if (current?.token.rotatedAt !== undefined) {
              // Only a successful refresh may rotate it; follow the rotation to the new live token.
              expect(res.status, `rotated by a refused request: ${res.request} -> ${res.body}`).toBe(200);
              const next = res.json?.refresh_token as string;
              expect((await storage.getRefreshToken(hashToken(next)))?.grant.id).toBe(live.grantId);
              live = { ...live, token: next };
            } else {
              expect(current, `refresh token gone after: ${res.request}`).toBeDefined();
            }
          }),
          { numRuns: runs },
        );

        // What no case touched still works: the kept code, the live refresh token, the service's credentials.
        await redeemCode(server, WEB, 'post', keptCode);
        const refreshed = await server.inject({
          method: 'POST',
          url: '/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: live.token,
            client_id: WEB.id,
            client_secret: WEB.secret,
          }).toString(),
        });
        expect(refreshed.status, refreshed.body).toBe(200);
        const cc = await server.inject({
          method: 'POST',
          url: '/token',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${SVC.id}:${SVC.secret}`).toString('base64')}`,
          },
          payload: 'grant_type=client_credentials',
        });
        expect(cc.status, cc.body).toBe(200);
      },
      timeoutFor(runs),
    );
  });
}

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const MCP = 'https://mcp.example.com/mcp';
const AGENT = { id: 'agent', secret: 'an-agent-secret-of-at-least-32-characters' };

/** A field value, and whether the profile accepts it (`ok`) or it breaks a rule. */
type Drawn<T> = { v: T; ok: boolean };
/** Mostly a value the profile accepts, sometimes one that breaks its rule. */
const pick = <T>(goods: readonly T[], bads: readonly T[]): fc.Arbitrary<Drawn<T>> =>
  bads.length === 0
    ? fc.constantFrom(...goods).map((v) => ({ v, ok: true }))
    : fc.oneof(
        { weight: 10, arbitrary: fc.constantFrom(...goods).map((v) => ({ v, ok: true })) },
        { weight: 1, arbitrary: fc.constantFrom(...bads).map((v) => ({ v, ok: false })) },
      );

/** One case of either profile: how its assertion is made and how it is sent. */
const jwtBearerCase = fc.constantFrom('idp' as const, 'workload' as const).chain((profile) => {
  const idJag = profile === 'idp';
  const other = idJag ? 'workload' : 'idp';
  return fc.record({
    profile: fc.constant(profile),
    signer: pick([profile], ['unpublished', 'garbage', other]),
    typ: pick<string | undefined>(
      idJag ? ['oauth-id-jag+jwt', 'application/oauth-id-jag+jwt', 'OAUTH-ID-JAG+JWT'] : [undefined, 'JWT', 'jwt'],
      ['at+jwt', '', idJag ? 'JWT' : 'oauth-id-jag+jwt'],
    ),
    iss: pick(['own'], ['other', 'absent']),
    aud: pick(
      idJag ? ['issuer', 'issuer-array'] : ['issuer', 'issuer-array', 'issuer-and-other'],
      idJag ? ['token-endpoint', 'other', 'issuer-and-other', 'absent'] : ['token-endpoint', 'other', 'absent'],
    ),
    expIn: pick<number | null>([30, 300, 599], [-120, 700, 5000, null]),
    iatIn: pick<number | null>(idJag ? [0] : [0, null], idJag ? [120, -700, null] : [120, -700]),
    jti: pick(idJag ? ['fresh', 'fixed'] : ['fresh', 'fixed', 'absent'], idJag ? ['absent', 'number'] : ['number']),
    clientIdClaim: pick(idJag ? ['agent'] : ['agent', 'other', 'absent'], idJag ? ['other', 'absent'] : []),
    sub: pick<unknown>(['alice'], ['', 'absent', 42]),
    resourceClaim: pick<unknown>(
      idJag ? [MCP, [MCP], undefined] : [MCP, 7],
      idJag ? ['https://unknown.example/', 7] : [],
    ),
    scopeClaim: pick<unknown>(
      idJag ? ['mcp:read', 'mcp:read admin', '', undefined] : ['mcp:read', 7],
      idJag ? [7] : [],
    ),
    auth: pick(
      idJag ? ['agent'] : ['none', 'agent'],
      idJag ? ['none', 'wrong-secret', 'client-id-only'] : ['wrong-secret', 'client-id-only'],
    ),
    scope: pick<string | undefined>([undefined], ['mcp:write', 'mcp read']),
    resource: pick<string | undefined>([undefined, MCP], ['https://unknown.example/', 'relative']),
  });
});

for (const store of FUZZ_STORES) {
  describe(`fuzz POST /token, jwt-bearer assertions (${store.kind})`, () => {
    let fz: FuzzServer | undefined;
    let idp: TestIssuer;
    let workload: TestIssuer;
    beforeAll(async () => {
      [idp, workload] = await Promise.all([startJwtIssuer('idp'), startJwtIssuer('workload')]);
      const trusted = (i: TestIssuer) => ({
        issuer: i.issuer,
        jwksUri: i.jwksUri,
        allowPrivateAddresses: true,
        trustedCaFile: i.caFile,
      });
      fz = await startFuzzServer(store, {
        resources: [MCP],
        clients: [{ client_id: AGENT.id, client_secret: AGENT.secret, grant_types: [JWT_BEARER], scope: 'mcp:read' }],
        enterpriseIdps: [{ ...trusted(idp), allowedClients: [AGENT.id] }],
        workloadIssuers: [{ ...trusted(workload), scopes: ['mcp:read'], maxLifetimeSeconds: 600 }],
      });
    }, 60_000);
    afterAll(async () => {
      printStats(`/token jwt-bearer (${store.kind})`);
      await fz?.close();
      idp?.close();
      workload?.close();
    });

    const runs = runsFor(store);
    it(
      `no 5xx, RFC error codes, 200 exactly when no rule of the profile is broken, and only once (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        const fixedJti = randomUUID();
        /** Profiles whose assertion with the one fixed jti was accepted: a second one is a replay. */
        const fixedUsed = new Set<string>();
        let accepted = 0;
        await fc.assert(
          fc.asyncProperty(jwtBearerCase, async (c) => {
            const now = Math.floor(Date.now() / 1000);
            const signer = c.signer.v === 'workload' ? workload : idp;
            const claims: JWTPayload = {
              iss: c.iss.v === 'own' ? signer.issuer : c.iss.v === 'other' ? 'https://other.example' : undefined,
              aud: {
                issuer: ISSUER,
                'token-endpoint': `${ISSUER}/token`,
                other: 'https://other.example',
                'issuer-array': [ISSUER],
                'issuer-and-other': [ISSUER, 'https://other.example'],
                absent: undefined,
              }[c.aud.v],
              exp: c.expIn.v === null ? undefined : now + c.expIn.v,
              iat: c.iatIn.v === null ? undefined : now + c.iatIn.v,
              jti: { fresh: randomUUID(), fixed: fixedJti, absent: undefined, number: 5 as unknown as string }[c.jti.v],
              client_id: { agent: AGENT.id, other: 'other', absent: undefined }[c.clientIdClaim.v],
              sub: c.sub.v === 'absent' ? undefined : (c.sub.v as string),
              resource: c.resourceClaim.v,
              scope: c.scopeClaim.v,
            };
            const header = { typ: c.typ.v };
            const assertion =
              c.signer.v === 'garbage'
                ? 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.'
                : c.signer.v === 'unpublished'
                  ? await (c.profile === 'idp' ? idp : workload).signWithUnpublishedKey(
                      { ...claims, iss: claims.iss && (c.profile === 'idp' ? idp : workload).issuer },
                      header,
                    )
                  : await signer.sign(claims, header);
            const form: Record<string, string> = { grant_type: JWT_BEARER, assertion };
            if (c.scope.v !== undefined) form.scope = c.scope.v;
            if (c.resource.v !== undefined) form.resource = c.resource.v;
            if (c.auth.v === 'client-id-only') form.client_id = AGENT.id;
            const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
            if (c.auth.v === 'agent' || c.auth.v === 'wrong-secret') {
              const secret = c.auth.v === 'agent' ? AGENT.secret : 'x'.repeat(40);
              headers.authorization = `Basic ${Buffer.from(`${AGENT.id}:${secret}`).toString('base64')}`;
            }
            const send = () =>
              server.inject({ method: 'POST', url: '/token', headers, payload: new URLSearchParams(form).toString() });
            const res = await send();
            expectSafe(res, TOKEN_ERRORS);

            const broken = Object.entries(c)
              .filter(([, d]) => typeof d === 'object' && !(d as Drawn<unknown>).ok)
              .map(([name]) => name);
            const replayed = c.jti.v === 'fixed' && fixedUsed.has(c.profile);
            const where = `${JSON.stringify(c)}\n-> ${res.status} ${res.body}`;
            expect(
              res.status === 200,
              `broken: ${broken.join(', ') || 'nothing'}${replayed ? ' (replayed jti)' : ''}: ${where}`,
            ).toBe(broken.length === 0 && !replayed);
            if (res.status !== 200) return;
            accepted += 1;
            if (c.jti.v === 'fixed') fixedUsed.add(c.profile);
            const again = await send();
            expect([again.status, again.json?.error], where).toEqual([400, 'invalid_grant']);
          }),
          { numRuns: runs },
        );
        // The arbitraries reach the success path, not only the refusals.
        expect(accepted).toBeGreaterThan(0);
      },
      timeoutFor(runs),
    );
  });
}
