/**
 * The jwt-bearer grant (RFC 7523 §2.1) over HTTP on every store, with real signers (jose) whose JWK Sets local https
 * servers publish: ID-JAGs from an enterprise IdP (MCP Enterprise-Managed Authorization) redeemed by the client they
 * name, and workload tokens (Kubernetes service-account style, SPIFFE JWT-SVID style) with and without client
 * authentication. Each negative case of the profiles is refused with its RFC code; every assertion is single use,
 * also when 50 requests carry it at once to two replicas sharing a PostgreSQL or Redis store.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { startJwtIssuer, type TestIssuer } from '../helpers/jwt-issuer.js';
import { basic, postForm } from '../helpers/oauth.js';
import { freePort, startServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES, type StoreCase } from '../helpers/stores.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ID_JAG = 'oauth-id-jag+jwt';
const MCP = 'https://mcp.example.com/mcp';
const FILES = 'https://files.example.com/api';
const K8S_AUDIENCE = 'gatehouse';
const secret = (name: string) => `${name}-secret-${'x'.repeat(32)}`;
/** Registered for the grant and allowed by the IdP. */
const AGENT = { id: 'agent', secret: secret('agent'), scope: 'mcp:read mcp:write' };
/** Allowed by the IdP, with a narrower allow-list. */
const NARROW = { id: 'narrow', secret: secret('narrow'), scope: 'mcp:read' };
/** Registered for the grant, not allowed by the IdP. */
const OUTSIDER = { id: 'outsider', secret: secret('outsider'), scope: 'mcp:read' };
/** Not registered for the grant. */
const MACHINE = { id: 'machine', secret: secret('machine'), scope: 'mcp:read' };
/** The client the SPIFFE issuer's workloads act as. */
const SPIFFE_AGENT = { id: 'spiffe-agent', secret: secret('spiffe'), scope: 'mcp:read mcp:write' };

let idp: TestIssuer;
let k8s: TestIssuer;
let spiffe: TestIssuer;
beforeAll(async () => {
  [idp, k8s, spiffe] = await Promise.all([startJwtIssuer('idp'), startJwtIssuer('k8s'), startJwtIssuer('spiffe')]);
});
afterAll(() => {
  for (const issuer of [idp, k8s, spiffe]) issuer?.close();
});

const trusted = (issuer: TestIssuer) => ({
  issuer: issuer.issuer,
  jwksUri: issuer.jwksUri,
  allowPrivateAddresses: true,
  trustedCaFile: issuer.caFile,
});

function gatehouseConfig(): Partial<ConfigInput> {
  const client = (c: { id: string; secret: string; scope: string }, grantTypes = [JWT_BEARER]) => ({
    client_id: c.id,
    client_secret: c.secret,
    grant_types: grantTypes,
    scope: c.scope,
  });
  return {
    scopes: ['mcp:read', 'mcp:write', 'files:read'],
    resources: [MCP, FILES],
    clients: [
      client(AGENT),
      client(NARROW),
      client(OUTSIDER),
      client(MACHINE, ['client_credentials']),
      client(SPIFFE_AGENT),
    ],
    enterpriseIdps: [{ ...trusted(idp), allowedClients: [AGENT.id, NARROW.id], subjectPrefix: 'acme|' }],
    workloadIssuers: [
      {
        ...trusted(k8s),
        audience: K8S_AUDIENCE,
        subjectPattern: 'system:serviceaccount:agents:[a-z0-9-]+',
        subjectPrefix: 'k8s:',
        scopes: ['mcp:read'],
        maxLifetimeSeconds: 900,
      },
      {
        ...trusted(spiffe),
        subjectPattern: 'spiffe://example\\.org/agents/.+',
        clientId: SPIFFE_AGENT.id,
        scopes: ['mcp:read', 'mcp:write'],
      },
    ],
  };
}

interface Replicas {
  issuer: string;
  origins: string[];
  list: Gatehouse[];
  warnings: string[];
  close(): Promise<void>;
}

/** `n` replicas on one store and one issuer, each on its own port; warnings logged by any of them are collected. */
async function startReplicas(n: number, config: Partial<ConfigInput>): Promise<Replicas> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const issuer = `http://localhost:${ports[0]}`;
  const warnings: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      warnings.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const list: Gatehouse[] = [];
  for (const port of ports) {
    const cfg = parseConfig({ storage: 'memory', logLevel: 'warn', ...config, port, host: '127.0.0.1', issuer });
    const gatehouse = await createGatehouse(cfg, { logger: createLogger('warn', sink) });
    await gatehouse.app.listen({ port, host: '127.0.0.1' });
    list.push(gatehouse);
  }
  return {
    issuer,
    origins: ports.map((p) => `http://localhost:${p}`),
    list,
    warnings,
    close: async () => void (await Promise.all(list.map((g) => g.close()))),
  };
}

const now = () => Math.floor(Date.now() / 1000);

/** A token request of the grant; `auth` a client's Basic credentials (null: no client authentication). */
function redeem(
  origin: string,
  assertion: string,
  auth: { id: string; secret: string } | null,
  extra: Record<string, string | string[]> = {},
) {
  return postForm(
    `${origin}/token`,
    { grant_type: JWT_BEARER, assertion, ...extra },
    auth ? { authorization: basic(auth.id, auth.secret) } : {},
  );
}

/** The access token's claims, verified with the server's published keys. */
async function accessClaims(origin: string, issuer: string, token: string): Promise<JWTPayload> {
  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${origin}/jwks.json`)), {
    issuer,
  });
  expect(protectedHeader.typ).toBe('at+jwt');
  return payload;
}

type Row = [
  name: string,
  request: (
    issuer: string,
  ) => Promise<{ assertion: string; auth?: typeof AGENT | null; extra?: Record<string, string> }>,
  status: number,
  error: string,
];

for (const store of E2E_STORES) {
  runOn(store);
}

function runOn(store: StoreCase) {
  describe(`jwt-bearer grant on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_jwtb_${randomBytes(4).toString('hex')}`;
    // Two replicas where the store is shared by processes; the embedded store belongs to one process.
    const replicaCount = store.kind === 'postgres' || store.kind === 'redis' ? 2 : 1;
    let r: Replicas;
    const origin = () => r.origins[0]!;

    beforeAll(async () => {
      if (!(await available)) return;
      r = await startReplicas(replicaCount, { ...gatehouseConfig(), ...store.config(isolation) });
    }, 60_000);
    afterAll(async () => {
      if (!(await available)) return;
      await r?.close();
      await store.cleanup?.(isolation);
    });

    /** An ID-JAG of the IdP for AGENT; `claims` override (undefined removes a claim). */
    const jag = (claims: JWTPayload = {}, typ: string | null = ID_JAG) =>
      idp.sign(
        {
          sub: 'alice@acme.example',
          aud: r.issuer,
          client_id: AGENT.id,
          resource: MCP,
          scope: 'mcp:read mcp:write',
          auth_time: now() - 30,
          ...claims,
        },
        { typ: typ ?? undefined },
      );
    /** A Kubernetes-style projected service-account token (no typ, two audiences, no jti, 10 minutes). */
    const saToken = (claims: JWTPayload = {}, typ?: string) =>
      k8s.sign(
        {
          sub: 'system:serviceaccount:agents:planner',
          aud: [K8S_AUDIENCE, 'https://kubernetes.default.svc'],
          exp: now() + 600,
          jti: undefined,
          ...claims,
        },
        { typ },
      );
    /** A SPIFFE JWT-SVID-style token (typ JWT, aud this server). */
    const svid = (claims: JWTPayload = {}) =>
      spiffe.sign({ sub: 'spiffe://example.org/agents/indexer', aud: r.issuer, ...claims }, { typ: 'JWT' });

    it('discovery lists the grant and the ID-JAG profile', async (t) => {
      if (!(await available)) return t.skip();
      const md = (await (await fetch(`${origin()}/.well-known/oauth-authorization-server`)).json()) as Record<
        string,
        unknown
      >;
      expect(md.grant_types_supported).toContain(JWT_BEARER);
      expect(md.authorization_grant_profiles_supported).toEqual(['urn:ietf:params:oauth:grant-profile:id-jag']);
    });

    it('an ID-JAG buys one access token for the client it names: resource, subject, scope, no refresh token', async (t) => {
      if (!(await available)) return t.skip();
      const assertion = await jag({ scope: 'mcp:read mcp:write files:read admin' });
      const res = await redeem(origin(), assertion, AGENT);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.json).toMatchObject({ token_type: 'Bearer', scope: 'mcp:read mcp:write' });
      expect(res.json.refresh_token).toBeUndefined();
      const claims = await accessClaims(origin(), r.issuer, res.json.access_token as string);
      expect(claims).toMatchObject({ sub: 'acme|alice@acme.example', client_id: AGENT.id, aud: MCP });
      expect(claims.scope).toBe('mcp:read mcp:write');
      expect(typeof claims.auth_time).toBe('number');

      // Single use, on every replica.
      for (const o of r.origins) {
        const again = await redeem(o, assertion, AGENT);
        expect([again.status, again.json.error]).toEqual([400, 'invalid_grant']);
        expect(again.json.error_description).toMatch(/already used/);
      }
    });

    it("scope is narrowed to the client's allow-list; a request may narrow resource and scope further", async (t) => {
      if (!(await available)) return t.skip();
      const narrowed = await redeem(origin(), await jag({ client_id: NARROW.id }), NARROW);
      expect([narrowed.status, narrowed.json.scope]).toEqual([200, 'mcp:read']);

      const both = await jag({ resource: [MCP, FILES], scope: 'mcp:read mcp:write' });
      const res = await redeem(origin(), both, AGENT, { resource: FILES, scope: 'mcp:read' });
      expect([res.status, res.json.scope]).toEqual([200, 'mcp:read']);
      expect((await accessClaims(origin(), r.issuer, res.json.access_token as string)).aud).toBe(FILES);
    });

    it('a refused request does not use the ID-JAG up', async (t) => {
      if (!(await available)) return t.skip();
      const assertion = await jag();
      const refused = await redeem(origin(), assertion, AGENT, { scope: 'files:read' });
      expect([refused.status, refused.json.error]).toEqual([400, 'invalid_scope']);
      expect((await redeem(origin(), assertion, AGENT)).status).toBe(200);
    });

    const idJagRows: Row[] = [
      [
        'typ JWT (an ID-JAG must say what it is)',
        async () => ({ assertion: await jag({}, 'JWT') }),
        400,
        'invalid_grant',
      ],
      ['no typ', async () => ({ assertion: await jag({}, null) }), 400, 'invalid_grant'],
      ['typ at+jwt (an access token)', async () => ({ assertion: await jag({}, 'at+jwt') }), 400, 'invalid_grant'],
      [
        'a workload issuer token typed as an ID-JAG',
        async () => ({ assertion: await k8s.sign({ sub: 'x', aud: r.issuer, client_id: AGENT.id }, { typ: ID_JAG }) }),
        400,
        'invalid_grant',
      ],
      [
        'aud another server',
        async () => ({ assertion: await jag({ aud: 'https://as.example.org' }) }),
        400,
        'invalid_grant',
      ],
      ['aud the token endpoint', async (i) => ({ assertion: await jag({ aud: `${i}/token` }) }), 400, 'invalid_grant'],
      [
        'aud this server and another',
        async (i) => ({ assertion: await jag({ aud: [i, 'https://as.example.org'] }) }),
        400,
        'invalid_grant',
      ],
      ['expired', async () => ({ assertion: await jag({ iat: now() - 400, exp: now() - 100 }) }), 400, 'invalid_grant'],
      [
        'lives 15 minutes (over 600 s)',
        async () => ({ assertion: await jag({ exp: now() + 900 }) }),
        400,
        'invalid_grant',
      ],
      [
        'issued two minutes ahead',
        async () => ({ assertion: await jag({ iat: now() + 120, exp: now() + 400 }) }),
        400,
        'invalid_grant',
      ],
      ['no iat', async () => ({ assertion: await jag({ iat: undefined }) }), 400, 'invalid_grant'],
      ['no jti', async () => ({ assertion: await jag({ jti: undefined }) }), 400, 'invalid_grant'],
      [
        'client_id of another client',
        async () => ({ assertion: await jag({ client_id: NARROW.id }) }),
        400,
        'invalid_grant',
      ],
      ['no client_id claim', async () => ({ assertion: await jag({ client_id: undefined }) }), 400, 'invalid_grant'],
      ['no sub', async () => ({ assertion: await jag({ sub: undefined }) }), 400, 'invalid_grant'],
      [
        'unknown issuer',
        async () => ({ assertion: await jag({ iss: 'https://idp.evil.example' }) }),
        400,
        'invalid_grant',
      ],
      [
        'bad signature (a key the IdP does not publish)',
        async (i) => ({
          assertion: await idp.signWithUnpublishedKey(
            { sub: 'alice', aud: i, client_id: AGENT.id, resource: MCP },
            { typ: ID_JAG },
          ),
        }),
        400,
        'invalid_grant',
      ],
      [
        'a resource this server does not serve',
        async () => ({ assertion: await jag({ resource: 'https://unknown.example.com/mcp' }) }),
        400,
        'invalid_target',
      ],
      [
        'a requested resource the ID-JAG does not grant',
        async () => ({ assertion: await jag(), extra: { resource: FILES } }),
        400,
        'invalid_target',
      ],
      [
        'a requested scope the ID-JAG does not grant',
        async () => ({ assertion: await jag(), extra: { scope: 'mcp:read files:read' } }),
        400,
        'invalid_scope',
      ],
      [
        'a client the IdP is not trusted for',
        async () => ({ assertion: await jag({ client_id: OUTSIDER.id }), auth: OUTSIDER }),
        400,
        'unauthorized_client',
      ],
      [
        'a client not registered for the grant',
        async () => ({ assertion: await jag({ client_id: MACHINE.id }), auth: MACHINE }),
        400,
        'unauthorized_client',
      ],
      ['no client authentication', async () => ({ assertion: await jag(), auth: null }), 401, 'invalid_client'],
      [
        'a wrong client secret',
        async () => ({ assertion: await jag(), auth: { ...AGENT, secret: secret('wrong') } }),
        401,
        'invalid_client',
      ],
      ['no assertion', async () => ({ assertion: '' }), 400, 'invalid_request'],
      ['not a JWT', async () => ({ assertion: 'not-a-jwt' }), 400, 'invalid_grant'],
    ];

    it.each(idJagRows)('refuses an ID-JAG with %s', async (_name, request, status, error) => {
      if (!(await available)) return;
      const { assertion, auth, extra } = await request(r.issuer);
      const res = await redeem(origin(), assertion, auth === undefined ? AGENT : auth, extra);
      expect([res.status, res.json.error], JSON.stringify(res.json)).toEqual([status, error]);
      expect(res.headers.get('cache-control')).toBe('no-store');
    });

    it('a service-account token without client authentication: the mapped subject, its own client_id, once', async (t) => {
      if (!(await available)) return t.skip();
      const token = await saToken();
      const res = await redeem(origin(), token, null, { resource: MCP });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.json).toMatchObject({ token_type: 'Bearer', scope: 'mcp:read' });
      expect(res.json.refresh_token).toBeUndefined();
      const claims = await accessClaims(origin(), r.issuer, res.json.access_token as string);
      expect(claims).toMatchObject({
        sub: 'k8s:system:serviceaccount:agents:planner',
        client_id: 'k8s:system:serviceaccount:agents:planner',
        aud: MCP,
        scope: 'mcp:read',
      });
      // No jti: the token itself is claimed once, until its exp.
      for (const o of r.origins) {
        const again = await redeem(o, token, null, { resource: MCP });
        expect([again.status, again.json.error]).toEqual([400, 'invalid_grant']);
      }
    });

    it("an authenticating client gets the workload's token as itself, within both allow-lists", async (t) => {
      if (!(await available)) return t.skip();
      const res = await redeem(origin(), await saToken(), NARROW);
      expect([res.status, res.json.scope]).toEqual([200, 'mcp:read']);
      const claims = await accessClaims(origin(), r.issuer, res.json.access_token as string);
      expect(claims).toMatchObject({ sub: 'k8s:system:serviceaccount:agents:planner', client_id: NARROW.id });
    });

    it("a SPIFFE JWT-SVID acts as its issuer's configured client, named or not", async (t) => {
      if (!(await available)) return t.skip();
      for (const extra of [{}, { client_id: SPIFFE_AGENT.id }] as Record<string, string>[]) {
        const res = await redeem(origin(), await svid(), null, { scope: 'mcp:write', ...extra });
        expect([res.status, res.json.scope], JSON.stringify(res.json)).toEqual([200, 'mcp:write']);
        const claims = await accessClaims(origin(), r.issuer, res.json.access_token as string);
        expect(claims).toMatchObject({ sub: 'spiffe://example.org/agents/indexer', client_id: SPIFFE_AGENT.id });
      }
      const authenticated = await redeem(origin(), await svid(), SPIFFE_AGENT);
      expect([authenticated.status, authenticated.json.scope]).toEqual([200, 'mcp:read mcp:write']);
    });

    const workloadRows: Row[] = [
      [
        'aud this server (the issuer is configured for "gatehouse")',
        async (i) => ({ assertion: await saToken({ aud: i }), auth: null }),
        400,
        'invalid_grant',
      ],
      [
        'a subject outside subjectPattern',
        async () => ({ assertion: await saToken({ sub: 'system:serviceaccount:default:builder' }), auth: null }),
        400,
        'invalid_grant',
      ],
      [
        'a subject that only starts like subjectPattern',
        async () => ({ assertion: await saToken({ sub: 'system:serviceaccount:agents:planner/x' }), auth: null }),
        400,
        'invalid_grant',
      ],
      ['expired', async () => ({ assertion: await saToken({ exp: now() - 5 }), auth: null }), 400, 'invalid_grant'],
      [
        'lives 20 minutes (over its issuer’s 900 s)',
        async () => ({ assertion: await saToken({ exp: now() + 1200 }), auth: null }),
        400,
        'invalid_grant',
      ],
      ['typ at+jwt', async () => ({ assertion: await saToken({}, 'at+jwt'), auth: null }), 400, 'invalid_grant'],
      [
        'typ oauth-id-jag+jwt (its issuer is no enterprise IdP)',
        async () => ({ assertion: await saToken({}, ID_JAG), auth: AGENT }),
        400,
        'invalid_grant',
      ],
      [
        'typ oauth-id-jag+jwt and no client authentication',
        async () => ({ assertion: await saToken({}, ID_JAG), auth: null }),
        401,
        'invalid_client',
      ],
      [
        'bad signature',
        async () => ({
          assertion: await k8s.signWithUnpublishedKey({
            sub: 'system:serviceaccount:agents:planner',
            aud: K8S_AUDIENCE,
          }),
          auth: null,
        }),
        400,
        'invalid_grant',
      ],
      [
        'unknown issuer',
        async () => ({ assertion: await saToken({ iss: 'https://k8s.evil.example' }), auth: null }),
        400,
        'invalid_grant',
      ],
      [
        'a scope outside the issuer’s allow-list',
        async () => ({ assertion: await saToken(), auth: null, extra: { scope: 'mcp:write' } }),
        400,
        'invalid_scope',
      ],
      [
        'a resource this server does not serve',
        async () => ({ assertion: await saToken(), auth: null, extra: { resource: 'https://unknown.example.com/' } }),
        400,
        'invalid_target',
      ],
      [
        'a client_id that is not the workload’s',
        async () => ({ assertion: await saToken(), auth: null, extra: { client_id: AGENT.id } }),
        401,
        'invalid_client',
      ],
      [
        'SPIFFE: a client other than the configured one',
        async () => ({ assertion: await svid(), auth: AGENT }),
        400,
        'unauthorized_client',
      ],
      [
        'SPIFFE: another audience',
        async () => ({ assertion: await svid({ aud: 'spiffe://example.org/other' }), auth: null }),
        400,
        'invalid_grant',
      ],
    ];

    it.each(workloadRows)('refuses a workload token with %s', async (_name, request, status, error) => {
      if (!(await available)) return;
      const { assertion, auth, extra } = await request(r.issuer);
      const res = await redeem(origin(), assertion, auth === undefined ? AGENT : auth, extra);
      expect([res.status, res.json.error], JSON.stringify(res.json)).toEqual([status, error]);
    });

    it(`50 concurrent uses of one ID-JAG, and of one jti-less service-account token, over ${replicaCount} replica(s): exactly one each`, async (t) => {
      if (!(await available)) return t.skip();
      for (const [assertion, auth] of [
        [await jag(), AGENT],
        [await saToken(), null],
      ] as const) {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => redeem(r.origins[i % r.origins.length]!, assertion, auth)),
        );
        expect(results.filter((x) => x.status === 200)).toHaveLength(1);
        const refused = results.filter((x) => x.status !== 200);
        expect(refused).toHaveLength(49);
        for (const x of refused) expect([x.status, x.json.error]).toEqual([400, 'invalid_grant']);
      }
    }, 60_000);
  });
}

describe('jwt-bearer configuration (memory store)', () => {
  it('without trusted issuers the grant is neither advertised nor accepted', async () => {
    const server = await startServer({ clients: [{ client_id: AGENT.id, client_secret: AGENT.secret }] });
    try {
      const md = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<
        string,
        unknown
      >;
      expect(md.grant_types_supported).not.toContain(JWT_BEARER);
      expect(md.authorization_grant_profiles_supported).toBeUndefined();
      const res = await redeem(server.origin, await idp.sign({ sub: 'alice' }, { typ: ID_JAG }), AGENT);
      expect([res.status, res.json.error]).toEqual([400, 'unsupported_grant_type']);
    } finally {
      await server.close();
    }
  });

  it('with workload issuers only, the grant is advertised without the ID-JAG profile', async () => {
    const server = await startServer({ workloadIssuers: [trusted(k8s)] });
    try {
      const md = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
        string,
        unknown
      >;
      expect(md.grant_types_supported).toContain(JWT_BEARER);
      expect(md.authorization_grant_profiles_supported).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('a jwks_uri on a private address is not fetched unless allowPrivateAddresses; a failed fetch is logged', async () => {
    const r = await startReplicas(1, {
      workloadIssuers: [{ issuer: k8s.issuer, jwksUri: k8s.jwksUri, trustedCaFile: k8s.caFile }],
    });
    try {
      const res = await redeem(r.origins[0]!, await k8s.sign({ sub: 'w', aud: r.issuer }), null);
      expect([res.status, res.json.error]).toEqual([400, 'invalid_grant']);
      expect(res.json.error_description).toMatch(/signing keys could not be fetched/);
      expect(r.warnings.some((l) => /jwks_uri fetch failed/.test(l) && /forbidden address/.test(l))).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('a key the cached set lacks is looked up again once the copy is 30 s old (issuer key rotation)', async () => {
    const issuer = await startJwtIssuer('rotating');
    const clock = new ManualClock(Date.now());
    const server = await startServer({ workloadIssuers: [{ ...trusted(issuer), scopes: [] }] }, { clock });
    try {
      const use = async () =>
        (await redeem(server.origin, await issuer.sign({ sub: 'w', aud: server.issuer }), null)).status;
      expect(await use()).toBe(200);
      await issuer.rotate();
      // Within 30 s of the fetch the cached set is used: the new key is not known yet.
      expect(await use()).toBe(400);
      clock.advance(31_000);
      expect(await use()).toBe(200);
      // An unreachable set after that changes nothing while the copy is fresh.
      issuer.server.docs.clear();
      expect(await use()).toBe(200);
    } finally {
      await server.close();
      issuer.close();
    }
  });
});
