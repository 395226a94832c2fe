/**
 * Error codes, table-driven: every required parameter of every grant and endpoint missing, empty, duplicated and of
 * the wrong shape, each answered with the code and status its RFC names, and `Cache-Control: no-store`. Each table
 * has a control row (the untouched request succeeds), so a row fails for the reason it names and not another.
 * The behaviour under test is request parsing, not storage, so one in-memory server is enough.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormBrowser } from '../helpers/browser.js';
import { startJwtIssuer, type TestIssuer } from '../helpers/jwt-issuer.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
const OTHER_REDIRECT = 'http://127.0.0.1/other';
const MCP = 'https://mcp.example.com/mcp';
const RS = { id: 'resource-server', secret: 'a-resource-server-secret-of-40-characters' };
/** A confidential web client of the code flow (client_secret_basic). */
const WEB = { id: 'web-client', secret: 'a-web-client-secret-of-at-least-40-characters' };
/** A public client of the device authorization grant (RFC 8628). */
const DEVICE_CLI = 'device-cli';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

let server: TestServer;
let publicClient: string;
const browser = new FormBrowser();

beforeAll(async () => {
  server = await startServer({
    scopes: ['mcp:read', 'mcp:write'],
    clients: [
      { client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'], scope: 'mcp:read' },
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT] },
      { client_id: DEVICE_CLI, token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'] },
    ],
  });
  // Two redirect URIs, so redirect_uri is required at /authorize (OAuth 2.1 §4.1.1).
  const reg = await postJson(url('/register'), {
    redirect_uris: [REDIRECT, OTHER_REDIRECT],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
  });
  expect(reg.status).toBe(201);
  publicClient = reg.json.client_id;
});
afterAll(() => server.close());

const url = (path: string) => server.issuer + path;
type Params = Record<string, string | string[]>;

/** Applies a row's changes to a base request: a key mapped to undefined is removed. */
function edit(base: Params, change: Record<string, string | string[] | undefined>): Params {
  const out: Params = { ...base };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

function authorizeUrl(params: Params): string {
  const u = new URL(url('/authorize'));
  for (const [k, v] of Object.entries(params))
    for (const value of Array.isArray(v) ? v : [v]) u.searchParams.append(k, value);
  return u.href;
}

/** A fresh code through the real pages (the shared browser signs in and consents once, then is redirected at once). */
async function freshCode(scope = 'openid mcp:read', resource: string[] = [MCP]) {
  const v = verifier();
  const cb = await browser.authorize(
    authorizeUrl({
      client_id: publicClient,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      scope,
      resource,
      state: 's',
    }),
    server.origin,
    ALICE,
  );
  const code = cb.searchParams.get('code');
  expect(code).toBeTruthy();
  return { code: code!, verifier: v };
}

async function freshTokens(resource?: string[]) {
  const { code, verifier: v } = await freshCode(undefined, resource);
  const t = await postForm(url('/token'), {
    grant_type: 'authorization_code',
    client_id: publicClient,
    code,
    code_verifier: v,
    redirect_uri: REDIRECT,
  });
  expect(t.status).toBe(200);
  return t.json as { access_token: string; refresh_token: string };
}

interface JsonRow {
  name: string;
  change: Record<string, string | string[] | undefined>;
  error?: string;
  status: number;
}

function expectJsonError(res: { status: number; json: Record<string, unknown>; headers: Headers }, row: JsonRow) {
  expect(res.status, row.name).toBe(row.status);
  expect(res.headers.get('cache-control'), row.name).toBe('no-store');
  if (row.error) {
    expect(res.json.error, row.name).toBe(row.error);
    expect(typeof res.json.error_description, row.name).toBe('string');
  } else {
    expect(res.json.error, row.name).toBeUndefined();
  }
}

// RFC 6749 §5.2 / OAuth 2.1 §3.2.4: a missing, empty (§3.1: "parameters sent without a value MUST be treated as if
// they were omitted"), repeated or malformed parameter is invalid_request; an unknown grant_type is
// unsupported_grant_type; failed client authentication is invalid_client (401).
describe('POST /token: grant_type', () => {
  const rows: JsonRow[] = [
    { name: 'missing', change: { grant_type: undefined }, error: 'invalid_request', status: 400 },
    { name: 'empty', change: { grant_type: '' }, error: 'invalid_request', status: 400 },
    {
      name: 'duplicated',
      change: { grant_type: ['client_credentials', 'client_credentials'] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'unknown', change: { grant_type: 'password' }, error: 'unsupported_grant_type', status: 400 },
    {
      name: 'unknown URN',
      change: { grant_type: 'urn:ietf:params:oauth:grant-type:saml2-bearer' },
      error: 'unsupported_grant_type',
      status: 400,
    },
    { name: 'control', change: {}, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const res = await postForm(url('/token'), edit({ grant_type: 'client_credentials' }, row.change), {
      authorization: basic(RS.id, RS.secret),
    });
    expectJsonError(res, row);
  });
});

// RFC 6749 §4.1.3 (code, redirect_uri, client_id), RFC 7636 §4.5 (code_verifier, §4.1 syntax), OAuth 2.1 §3.2.4: a
// missing or malformed parameter is invalid_request; a code or verifier that does not verify is invalid_grant (§5.2,
// RFC 7636 §4.6); no client authentication is invalid_client (§5.2).
describe('POST /token: authorization_code', () => {
  const rows: JsonRow[] = [
    { name: 'code missing', change: { code: undefined }, error: 'invalid_request', status: 400 },
    { name: 'code empty', change: { code: '' }, error: 'invalid_request', status: 400 },
    { name: 'code duplicated', change: { code: ['CODE', 'CODE'] }, error: 'invalid_request', status: 400 },
    { name: 'code unknown', change: { code: 'not-a-code-this-server-issued' }, error: 'invalid_grant', status: 400 },
    { name: 'code_verifier missing', change: { code_verifier: undefined }, error: 'invalid_request', status: 400 },
    { name: 'code_verifier empty', change: { code_verifier: '' }, error: 'invalid_request', status: 400 },
    {
      name: 'code_verifier duplicated',
      change: { code_verifier: ['VERIFIER', 'VERIFIER'] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'code_verifier too short', change: { code_verifier: 'abc' }, error: 'invalid_request', status: 400 },
    {
      name: 'code_verifier with an illegal character',
      change: { code_verifier: `${'a'.repeat(42)}!` },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'code_verifier well-formed but wrong',
      change: { code_verifier: 'b'.repeat(43) },
      error: 'invalid_grant',
      status: 400,
    },
    // RFC 6749 §4.1.3: REQUIRED when the authorization request included it (freshCode sends it), so missing is §5.2's.
    {
      name: 'redirect_uri missing (the authorization request carried it)',
      change: { redirect_uri: undefined },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'redirect_uri duplicated',
      change: { redirect_uri: [REDIRECT, REDIRECT] },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'redirect_uri another registered one',
      change: { redirect_uri: OTHER_REDIRECT },
      error: 'invalid_grant',
      status: 400,
    },
    {
      name: 'client_id missing (public client)',
      change: { client_id: undefined },
      error: 'invalid_client',
      status: 401,
    },
    { name: 'client_id empty (public client)', change: { client_id: '' }, error: 'invalid_client', status: 401 },
    {
      name: 'client_id duplicated',
      change: { client_id: ['CLIENT', 'CLIENT'] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'client_id unknown', change: { client_id: 'no-such-client' }, error: 'invalid_client', status: 401 },
    { name: 'resource relative', change: { resource: '/mcp' }, error: 'invalid_target', status: 400 },
    {
      name: 'resource not authorized',
      change: { resource: 'https://other.example.com/' },
      error: 'invalid_target',
      status: 400,
    },
    { name: 'control', change: {}, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const { code, verifier: v } = await freshCode();
    // Placeholders in duplicated values stand for the real ones, so only the repetition is wrong.
    const real: Record<string, string> = { CODE: code, VERIFIER: v, CLIENT: publicClient };
    const change = Object.fromEntries(
      Object.entries(row.change).map(([k, val]) => [k, Array.isArray(val) ? val.map((x) => real[x] ?? x) : val]),
    );
    const base = {
      grant_type: 'authorization_code',
      client_id: publicClient,
      code,
      code_verifier: v,
      redirect_uri: REDIRECT,
    };
    expectJsonError(await postForm(url('/token'), edit(base, change)), row);
  });

  it('a request refused as malformed does not spend the code', async () => {
    const { code, verifier: v } = await freshCode();
    const base = { grant_type: 'authorization_code', client_id: publicClient, code, redirect_uri: REDIRECT };
    expect((await postForm(url('/token'), base)).json.error).toBe('invalid_request');
    expect((await postForm(url('/token'), { ...base, code_verifier: v })).status).toBe(200);
  });
});

// RFC 6749 §6 (refresh_token REQUIRED, scope only narrowing → invalid_scope), §3.3 (scope syntax), RFC 8707 §2.2.
describe('POST /token: refresh_token', () => {
  const rows: JsonRow[] = [
    { name: 'refresh_token missing', change: { refresh_token: undefined }, error: 'invalid_request', status: 400 },
    { name: 'refresh_token empty', change: { refresh_token: '' }, error: 'invalid_request', status: 400 },
    {
      name: 'refresh_token duplicated',
      change: { refresh_token: ['RT', 'RT'] },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'refresh_token unknown',
      change: { refresh_token: 'not-a-refresh-token' },
      error: 'invalid_grant',
      status: 400,
    },
    { name: 'refresh_token is an access token', change: { refresh_token: 'AT' }, error: 'invalid_grant', status: 400 },
    { name: 'scope malformed', change: { scope: 'mcp:read "quoted"' }, error: 'invalid_scope', status: 400 },
    { name: 'scope duplicated', change: { scope: ['mcp:read', 'mcp:read'] }, error: 'invalid_request', status: 400 },
    { name: 'scope never granted', change: { scope: 'mcp:write' }, error: 'invalid_scope', status: 400 },
    {
      name: 'resource not authorized',
      change: { resource: 'https://other.example.com/' },
      error: 'invalid_target',
      status: 400,
    },
    {
      name: 'client_id missing (public client)',
      change: { client_id: undefined },
      error: 'invalid_client',
      status: 401,
    },
    { name: 'control', change: {}, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const t = await freshTokens();
    const real: Record<string, string> = { RT: t.refresh_token, AT: t.access_token };
    const change = Object.fromEntries(
      Object.entries(row.change).map(([k, val]) => [
        k,
        Array.isArray(val) ? val.map((x) => real[x] ?? x) : val && (real[val] ?? val),
      ]),
    );
    const base = { grant_type: 'refresh_token', client_id: publicClient, refresh_token: t.refresh_token };
    expectJsonError(await postForm(url('/token'), edit(base, change)), row);
  });
});

// RFC 6749 §4.4.2 (scope syntax §3.3 → invalid_scope), §5.2 (invalid_client 401, WWW-Authenticate for Basic),
// RFC 8707 §2 (invalid_target).
describe('POST /token: client_credentials', () => {
  const rows: (JsonRow & { authorization?: string })[] = [
    { name: 'scope malformed', change: { scope: 'mcp:read\\x' }, error: 'invalid_scope', status: 400 },
    { name: 'scope duplicated', change: { scope: ['mcp:read', 'mcp:read'] }, error: 'invalid_request', status: 400 },
    { name: 'resource relative', change: { resource: 'mcp' }, error: 'invalid_target', status: 400 },
    { name: 'resource with a fragment', change: { resource: `${MCP}#x` }, error: 'invalid_target', status: 400 },
    { name: 'no client authentication', change: {}, authorization: '', error: 'invalid_client', status: 401 },
    {
      name: 'wrong secret',
      change: {},
      authorization: basic(RS.id, 'w'.repeat(40)),
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'two authentication methods',
      change: { client_id: RS.id, client_secret: RS.secret },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'control', change: { scope: 'mcp:read' }, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const authorization = row.authorization ?? basic(RS.id, RS.secret);
    const res = await postForm(
      url('/token'),
      edit({ grant_type: 'client_credentials' }, row.change),
      authorization ? { authorization } : {},
    );
    expectJsonError(res, row);
    if (row.status === 401 && authorization) expect(res.headers.get('www-authenticate'), row.name).toMatch(/^Basic /);
  });
});

// RFC 9449 §4.3 / §5 (invalid_dpop_proof 400 at the token endpoint); §8 (use_dpop_nonce is in test/e2e/dpop.test.ts,
// on a server with nonces on).
describe('POST /token: DPoP proofs', () => {
  const dpopProof = async (claims: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    return new SignJWT({
      htm: 'POST',
      htu: url('/token'),
      jti: randomUUID(),
      iat: Math.floor(Date.now() / 1000),
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey), ...header })
      .sign(privateKey);
  };
  const rows: { name: string; proof: () => Promise<string | string[]>; error?: string; status: number }[] = [
    { name: 'not a JWS', proof: async () => 'x', error: 'invalid_dpop_proof', status: 400 },
    { name: 'typ JWT', proof: () => dpopProof({}, { typ: 'JWT' }), error: 'invalid_dpop_proof', status: 400 },
    { name: 'htm GET', proof: () => dpopProof({ htm: 'GET' }), error: 'invalid_dpop_proof', status: 400 },
    {
      name: 'htu another endpoint',
      proof: () => dpopProof({ htu: url('/par') }),
      error: 'invalid_dpop_proof',
      status: 400,
    },
    {
      name: 'iat 10 minutes old',
      proof: () => dpopProof({ iat: Math.floor(Date.now() / 1000) - 600 }),
      error: 'invalid_dpop_proof',
      status: 400,
    },
    { name: 'no jti', proof: () => dpopProof({ jti: undefined }), error: 'invalid_dpop_proof', status: 400 },
    {
      name: 'two DPoP headers',
      proof: async () => [await dpopProof({}), await dpopProof({})],
      error: 'invalid_dpop_proof',
      status: 400,
    },
    { name: 'control', proof: () => dpopProof({}), status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const proof = await row.proof();
    const headers = new Headers({
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basic(RS.id, RS.secret),
    });
    for (const p of Array.isArray(proof) ? proof : [proof]) headers.append('dpop', p);
    const res = await fetch(url('/token'), {
      method: 'POST',
      headers,
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'mcp:read' }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status, row.name).toBe(row.status);
    if (row.error) expect(json.error, row.name).toBe(row.error);
    else expect(json.token_type, row.name).toBe('DPoP');
  });
});

// RFC 7523 §2.1 / §3.1 (assertion required, once; a bad assertion is invalid_grant), RFC 6749 §5.2, RFC 8707 §2;
// ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §4.3): the client must authenticate. Fresh assertions per
// row: each is single use.
describe('POST /token: jwt-bearer', () => {
  const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
  const AGENT = { id: 'agent', secret: 'an-agent-secret-of-at-least-32-characters' };
  let idp: TestIssuer;
  let workloads: TestIssuer;
  let jb: TestServer;
  beforeAll(async () => {
    [idp, workloads] = await Promise.all([startJwtIssuer('idp'), startJwtIssuer('workloads')]);
    const trusted = (i: TestIssuer) => ({
      issuer: i.issuer,
      jwksUri: i.jwksUri,
      allowPrivateAddresses: true,
      trustedCaFile: i.caFile,
    });
    jb = await startServer({
      scopes: ['mcp:read'],
      resources: [MCP],
      clients: [{ client_id: AGENT.id, client_secret: AGENT.secret, grant_types: [JWT_BEARER], scope: 'mcp:read' }],
      enterpriseIdps: [{ ...trusted(idp), allowedClients: [AGENT.id] }],
      workloadIssuers: [{ ...trusted(workloads), scopes: ['mcp:read'] }],
    });
  });
  afterAll(async () => {
    await jb?.close();
    idp?.close();
    workloads?.close();
  });

  const idJag = () =>
    idp.sign(
      { sub: 'alice', aud: jb.issuer, client_id: AGENT.id, resource: MCP, scope: 'mcp:read' },
      { typ: 'oauth-id-jag+jwt' },
    );
  const workloadToken = () => workloads.sign({ sub: 'spiffe://example.org/w', aud: jb.issuer });
  const rows: (JsonRow & { workload?: boolean; authorization?: string })[] = [
    { name: 'assertion missing', change: { assertion: undefined }, error: 'invalid_request', status: 400 },
    { name: 'assertion empty', change: { assertion: '' }, error: 'invalid_request', status: 400 },
    { name: 'assertion not a JWT', change: { assertion: 'abc.def' }, error: 'invalid_grant', status: 400 },
    {
      name: 'assertion duplicated',
      change: { assertion: ['a.b.c', 'a.b.c'] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'scope malformed', change: { scope: 'mcp:read\\x' }, error: 'invalid_scope', status: 400 },
    { name: 'scope duplicated', change: { scope: ['mcp:read', 'mcp:read'] }, error: 'invalid_request', status: 400 },
    { name: 'resource relative', change: { resource: 'mcp' }, error: 'invalid_target', status: 400 },
    { name: 'resource with a fragment', change: { resource: `${MCP}#x` }, error: 'invalid_target', status: 400 },
    {
      name: 'ID-JAG without client authentication',
      change: {},
      authorization: '',
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'ID-JAG with a wrong secret',
      change: {},
      authorization: basic(AGENT.id, 'w'.repeat(40)),
      error: 'invalid_client',
      status: 401,
    },
    { name: 'control: ID-JAG', change: { scope: 'mcp:read' }, status: 200 },
    {
      name: 'workload token naming another client_id',
      workload: true,
      change: { client_id: AGENT.id },
      authorization: '',
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'workload token, scope outside its allow-list',
      workload: true,
      change: { scope: 'openid' },
      authorization: '',
      error: 'invalid_scope',
      status: 400,
    },
    {
      name: 'control: workload token without client authentication',
      workload: true,
      change: {},
      authorization: '',
      status: 200,
    },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const authorization = row.authorization ?? basic(AGENT.id, AGENT.secret);
    const assertion = row.workload ? await workloadToken() : await idJag();
    const res = await postForm(
      `${jb.issuer}/token`,
      edit({ grant_type: JWT_BEARER, assertion, resource: MCP }, row.change),
      authorization ? { authorization } : {},
    );
    expectJsonError(res, row);
    if (row.status === 401 && authorization) expect(res.headers.get('www-authenticate'), row.name).toMatch(/^Basic /);
  });
});

// RFC 8693 §2.1 / §2.2.2: a subject token of type access_token is required (invalid_request), a bad one is
// invalid_grant, a target not allowed (or two) invalid_target; only configured confidential clients.
describe('POST /token: token exchange', () => {
  const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
  const API = 'https://api.example.com/';
  const EXCHANGER = { id: 'exchanger', secret: 'an-exchanger-secret-of-at-least-32-chars' };
  let tx: TestServer;
  let subject: string;
  beforeAll(async () => {
    tx = await startServer({
      scopes: ['mcp:read'],
      resources: [MCP, API],
      clients: [
        { client_id: EXCHANGER.id, client_secret: EXCHANGER.secret, grant_types: [EXCHANGE] },
        { client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'], scope: 'mcp:read' },
      ],
      tokenExchange: { resourceServers: [{ clientId: EXCHANGER.id, audiences: [MCP], audiencesOut: [API] }] },
    });
    const machine = await postForm(
      `${tx.issuer}/token`,
      { grant_type: 'client_credentials', resource: MCP, scope: 'mcp:read' },
      { authorization: basic(RS.id, RS.secret) },
    );
    expect(machine.status).toBe(200);
    subject = machine.json.access_token as string;
  });
  afterAll(() => tx?.close());

  const rows: (JsonRow & { authorization?: string })[] = [
    { name: 'subject_token missing', change: { subject_token: undefined }, error: 'invalid_request', status: 400 },
    { name: 'subject_token empty', change: { subject_token: '' }, error: 'invalid_request', status: 400 },
    { name: 'subject_token duplicated', change: { subject_token: ['a', 'a'] }, error: 'invalid_request', status: 400 },
    { name: 'subject_token not a token', change: { subject_token: 'a.b.c' }, error: 'invalid_grant', status: 400 },
    {
      name: 'subject_token_type missing',
      change: { subject_token_type: undefined },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'subject_token_type an ID token',
      change: { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'requested_token_type a refresh token',
      change: { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'actor_token sent', change: { actor_token: 'x' }, error: 'invalid_request', status: 400 },
    { name: 'no target', change: { resource: undefined }, error: 'invalid_request', status: 400 },
    { name: 'two targets', change: { audience: API }, error: 'invalid_target', status: 400 },
    { name: 'target not allowed', change: { resource: MCP }, error: 'invalid_target', status: 400 },
    {
      name: 'upstream not configured',
      change: { resource: 'urn:gatehouse:upstream:x' },
      error: 'invalid_target',
      status: 400,
    },
    { name: 'scope not held', change: { scope: 'openid' }, error: 'invalid_scope', status: 400 },
    { name: 'no client authentication', change: {}, authorization: '', error: 'invalid_client', status: 401 },
    {
      name: 'a client that is no resource server here',
      change: {},
      authorization: basic(RS.id, RS.secret),
      error: 'unauthorized_client',
      status: 400,
    },
    { name: 'control: a token for another audience', change: {}, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const authorization = row.authorization ?? basic(EXCHANGER.id, EXCHANGER.secret);
    const res = await postForm(
      `${tx.issuer}/token`,
      edit(
        { grant_type: EXCHANGE, subject_token: subject, subject_token_type: ACCESS_TOKEN, resource: API },
        row.change,
      ),
      authorization ? { authorization } : {},
    );
    expectJsonError(res, row);
  });
});

interface AuthorizeRow {
  name: string;
  change: Record<string, string | string[] | undefined>;
  /** page: shown to the user, never redirected (RFC 6749 §4.1.2.1 first paragraph); redirect: sent to the client. */
  expect: 'page' | 'redirect' | 'interaction';
  error?: string;
  /** The redirect carries no state (the state parameter itself was the problem). */
  noState?: boolean;
}

// RFC 6749 §4.1.2.1: a missing, invalid or mismatching client_id or redirect_uri is shown to the user and never
// redirected; every other error is redirected with `error`, `state` and (RFC 9207) `iss`. Codes: invalid_request for
// a missing, repeated or malformed parameter (incl. PKCE, RFC 7636 §4.4.1, OAuth 2.1 §4.1.2.1),
// unsupported_response_type, invalid_scope (§3.3 syntax), invalid_target (RFC 8707 §2), OIDC Core §3.1.2.6
// request_not_supported / request_uri_not_supported (discovery says request_parameter_supported: false); a request_uri
// in the PAR namespace that the server did not issue (or that is used up or expired) is invalid_request_uri on a page
// (RFC 9126 §4: nothing of the request can be trusted).
describe('GET /authorize', () => {
  const rows: AuthorizeRow[] = [
    { name: 'client_id missing', change: { client_id: undefined }, expect: 'page', error: 'invalid_request' },
    { name: 'client_id empty', change: { client_id: '' }, expect: 'page', error: 'invalid_request' },
    {
      name: 'client_id duplicated',
      change: { client_id: ['CLIENT', 'CLIENT'] },
      expect: 'page',
      error: 'invalid_request',
    },
    { name: 'client_id unknown', change: { client_id: 'no-such-client' }, expect: 'page', error: 'invalid_request' },
    {
      name: 'redirect_uri missing (two registered)',
      change: { redirect_uri: undefined },
      expect: 'page',
      error: 'invalid_request',
    },
    { name: 'redirect_uri empty', change: { redirect_uri: '' }, expect: 'page', error: 'invalid_request' },
    {
      name: 'redirect_uri duplicated',
      change: { redirect_uri: [REDIRECT, REDIRECT] },
      expect: 'page',
      error: 'invalid_request',
    },
    {
      name: 'redirect_uri not registered',
      change: { redirect_uri: 'http://127.0.0.1/elsewhere' },
      expect: 'page',
      error: 'invalid_request',
    },
    { name: 'redirect_uri relative', change: { redirect_uri: '/callback' }, expect: 'page', error: 'invalid_request' },
    {
      name: 'response_type missing',
      change: { response_type: undefined },
      expect: 'redirect',
      error: 'invalid_request',
    },
    { name: 'response_type empty', change: { response_type: '' }, expect: 'redirect', error: 'invalid_request' },
    {
      name: 'response_type duplicated',
      change: { response_type: ['code', 'code'] },
      expect: 'redirect',
      error: 'invalid_request',
    },
    {
      name: 'response_type token',
      change: { response_type: 'token' },
      expect: 'redirect',
      error: 'unsupported_response_type',
    },
    {
      name: 'response_type code id_token',
      change: { response_type: 'code id_token' },
      expect: 'redirect',
      error: 'unsupported_response_type',
    },
    {
      name: 'code_challenge missing',
      change: { code_challenge: undefined },
      expect: 'redirect',
      error: 'invalid_request',
    },
    { name: 'code_challenge empty', change: { code_challenge: '' }, expect: 'redirect', error: 'invalid_request' },
    {
      name: 'code_challenge duplicated',
      change: { code_challenge: ['CHALLENGE', 'CHALLENGE'] },
      expect: 'redirect',
      error: 'invalid_request',
    },
    {
      name: 'code_challenge malformed',
      change: { code_challenge: 'short' },
      expect: 'redirect',
      error: 'invalid_request',
    },
    {
      name: 'code_challenge_method missing (plain by default)',
      change: { code_challenge_method: undefined },
      expect: 'redirect',
      error: 'invalid_request',
    },
    {
      name: 'code_challenge_method plain',
      change: { code_challenge_method: 'plain' },
      expect: 'redirect',
      error: 'invalid_request',
    },
    {
      name: 'code_challenge_method unknown',
      change: { code_challenge_method: 'S512' },
      expect: 'redirect',
      error: 'invalid_request',
    },
    {
      name: 'code_challenge_method duplicated',
      change: { code_challenge_method: ['S256', 'S256'] },
      expect: 'redirect',
      error: 'invalid_request',
    },
    { name: 'scope malformed', change: { scope: 'mcp:read "x"' }, expect: 'redirect', error: 'invalid_scope' },
    {
      name: 'scope duplicated',
      change: { scope: ['mcp:read', 'mcp:read'] },
      expect: 'redirect',
      error: 'invalid_request',
    },
    { name: 'resource relative', change: { resource: '/mcp' }, expect: 'redirect', error: 'invalid_target' },
    { name: 'resource with a fragment', change: { resource: `${MCP}#f` }, expect: 'redirect', error: 'invalid_target' },
    { name: 'prompt unknown', change: { prompt: 'sometimes' }, expect: 'redirect', error: 'invalid_request' },
    { name: 'prompt none combined', change: { prompt: 'none login' }, expect: 'redirect', error: 'invalid_request' },
    { name: 'prompt duplicated', change: { prompt: ['login', 'login'] }, expect: 'redirect', error: 'invalid_request' },
    { name: 'max_age not a number', change: { max_age: 'soon' }, expect: 'redirect', error: 'invalid_request' },
    { name: 'max_age negative', change: { max_age: '-1' }, expect: 'redirect', error: 'invalid_request' },
    { name: 'max_age fractional', change: { max_age: '1.5' }, expect: 'redirect', error: 'invalid_request' },
    { name: 'max_age duplicated', change: { max_age: ['60', '60'] }, expect: 'redirect', error: 'invalid_request' },
    {
      name: 'state duplicated',
      change: { state: ['st', 'st'] },
      expect: 'redirect',
      error: 'invalid_request',
      noState: true,
    },
    {
      name: 'response_mode fragment',
      change: { response_mode: 'fragment' },
      expect: 'redirect',
      error: 'invalid_request',
    },
    {
      name: 'request object',
      change: { request: 'eyJhbGciOiJub25lIn0.e30.' },
      expect: 'redirect',
      error: 'request_not_supported',
    },
    {
      name: 'request_uri',
      change: { request_uri: 'https://client.example.com/req' },
      expect: 'redirect',
      error: 'request_uri_not_supported',
    },
    {
      name: 'request_uri of a pushed request never pushed',
      change: { request_uri: 'urn:ietf:params:oauth:request_uri:never-pushed' },
      expect: 'page',
      error: 'invalid_request_uri',
    },
    { name: 'control', change: {}, expect: 'interaction' },
  ];
  it.each(rows)('$name → $expect $error', async (row) => {
    const v = verifier();
    const real: Record<string, string> = { CLIENT: publicClient, CHALLENGE: challenge(v) };
    const change = Object.fromEntries(
      Object.entries(row.change).map(([k, val]) => [k, Array.isArray(val) ? val.map((x) => real[x] ?? x) : val]),
    );
    const base = {
      client_id: publicClient,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      scope: 'mcp:read',
      resource: MCP,
      state: 'st',
    };
    const res = await fetch(authorizeUrl(edit(base, change)), { redirect: 'manual' });
    expect(res.headers.get('cache-control'), row.name).toBe('no-store');
    if (row.expect === 'page') {
      expect(res.status, row.name).toBe(400);
      expect(res.headers.get('location'), row.name).toBeNull();
      expect(res.headers.get('content-type'), row.name).toMatch(/^text\/html/);
      expect(await res.text(), row.name).toContain(row.error);
      return;
    }
    expect(res.status, row.name).toBe(303);
    const loc = new URL(res.headers.get('location')!, server.origin);
    if (row.expect === 'interaction') {
      expect(loc.pathname, row.name).toMatch(/^\/interaction\//);
      return;
    }
    expect(loc.origin + loc.pathname, row.name).toBe(REDIRECT);
    expect(loc.searchParams.get('error'), row.name).toBe(row.error);
    expect(loc.searchParams.get('error_description'), row.name).toBeTruthy();
    expect(loc.searchParams.get('state'), row.name).toBe(row.noState ? null : 'st');
    expect(loc.searchParams.get('iss'), row.name).toBe(server.issuer);
  });
});

// RFC 9126 §2.1, §2.3: a push is checked as /authorize checks a request, every refusal answered as RFC 6749 §5.2 JSON:
// invalid_request where /authorize would show a page (client_id and redirect_uri problems) or for a request_uri in the
// push, the /authorize codes otherwise; client authentication as at the token endpoint (invalid_client 401).
describe('POST /par', () => {
  const rows: (JsonRow & { authorization?: string })[] = [
    { name: 'client_id missing', change: { client_id: undefined }, error: 'invalid_client', status: 401 },
    { name: 'client_id empty', change: { client_id: '' }, error: 'invalid_client', status: 401 },
    {
      name: 'client_id duplicated',
      change: { client_id: ['CLIENT', 'CLIENT'] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'client_id unknown', change: { client_id: 'no-such-client' }, error: 'invalid_client', status: 401 },
    {
      name: 'client_secret for a public client',
      change: { client_secret: 'x'.repeat(40) },
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'confidential client without credentials',
      change: { client_id: WEB.id, redirect_uri: undefined },
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'confidential client with a wrong secret',
      change: { client_id: WEB.id, redirect_uri: undefined },
      authorization: basic(WEB.id, 'w'.repeat(40)),
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'redirect_uri missing (two registered)',
      change: { redirect_uri: undefined },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'redirect_uri empty', change: { redirect_uri: '' }, error: 'invalid_request', status: 400 },
    {
      name: 'redirect_uri duplicated',
      change: { redirect_uri: [REDIRECT, REDIRECT] },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'redirect_uri not registered',
      change: { redirect_uri: 'http://127.0.0.1/elsewhere' },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'response_type missing', change: { response_type: undefined }, error: 'invalid_request', status: 400 },
    {
      name: 'response_type token',
      change: { response_type: 'token' },
      error: 'unsupported_response_type',
      status: 400,
    },
    { name: 'code_challenge missing', change: { code_challenge: undefined }, error: 'invalid_request', status: 400 },
    { name: 'code_challenge malformed', change: { code_challenge: 'short' }, error: 'invalid_request', status: 400 },
    {
      name: 'code_challenge_method missing (plain by default)',
      change: { code_challenge_method: undefined },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'code_challenge_method plain',
      change: { code_challenge_method: 'plain' },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'scope malformed', change: { scope: 'mcp:read "x"' }, error: 'invalid_scope', status: 400 },
    { name: 'scope unknown', change: { scope: 'mcp:admin' }, error: 'invalid_scope', status: 400 },
    { name: 'resource relative', change: { resource: '/mcp' }, error: 'invalid_target', status: 400 },
    { name: 'prompt unknown', change: { prompt: 'sometimes' }, error: 'invalid_request', status: 400 },
    { name: 'max_age negative', change: { max_age: '-1' }, error: 'invalid_request', status: 400 },
    { name: 'nonce too long', change: { nonce: 'n'.repeat(513) }, error: 'invalid_request', status: 400 },
    { name: 'state duplicated', change: { state: ['st', 'st'] }, error: 'invalid_request', status: 400 },
    { name: 'state too long', change: { state: 's'.repeat(2049) }, error: 'invalid_request', status: 400 },
    {
      name: 'response_mode fragment',
      change: { response_mode: 'fragment' },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'request object',
      change: { request: 'eyJhbGciOiJub25lIn0.e30.' },
      error: 'request_not_supported',
      status: 400,
    },
    {
      name: 'request_uri (a pushed request)',
      change: { request_uri: 'urn:ietf:params:oauth:request_uri:abc' },
      error: 'invalid_request',
      status: 400,
    },
    {
      name: 'request_uri (a request object)',
      change: { request_uri: 'https://client.example.com/req' },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'control', change: {}, status: 201 },
    {
      name: 'control (confidential client, Basic)',
      change: { client_id: WEB.id, redirect_uri: undefined },
      authorization: basic(WEB.id, WEB.secret),
      status: 201,
    },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const change = Object.fromEntries(
      Object.entries(row.change).map(([k, val]) => [
        k,
        Array.isArray(val) ? val.map((x) => (x === 'CLIENT' ? publicClient : x)) : val,
      ]),
    );
    const base = {
      client_id: publicClient,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(verifier()),
      code_challenge_method: 'S256',
      scope: 'mcp:read',
      resource: MCP,
      state: 'st',
    };
    const res = await postForm(
      url('/par'),
      edit(base, change),
      row.authorization ? { authorization: row.authorization } : {},
    );
    expectJsonError(res, row);
    if (row.status === 201) expect(res.json.request_uri, row.name).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    if (row.status === 401 && row.authorization)
      expect(res.headers.get('www-authenticate'), row.name).toMatch(/^Basic /);
  });
});

// RFC 8628 §3.1: client authentication as at the token endpoint (public clients by client_id, §3.1 / RFC 6749
// §2.3), the client must hold the grant (unauthorized_client), scope and resource checked as at /authorize
// (invalid_scope, invalid_target); a repeated parameter is invalid_request.
describe('POST /device_authorization', () => {
  const rows: (JsonRow & { authorization?: string })[] = [
    { name: 'client_id missing', change: { client_id: undefined }, error: 'invalid_client', status: 401 },
    { name: 'client_id empty', change: { client_id: '' }, error: 'invalid_client', status: 401 },
    {
      name: 'client_id duplicated',
      change: { client_id: [DEVICE_CLI, DEVICE_CLI] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'client_id unknown', change: { client_id: 'no-such-client' }, error: 'invalid_client', status: 401 },
    {
      name: 'client_secret for a public client',
      change: { client_secret: 'x'.repeat(40) },
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'confidential client with a wrong secret',
      change: { client_id: WEB.id },
      authorization: basic(WEB.id, 'w'.repeat(40)),
      error: 'invalid_client',
      status: 401,
    },
    {
      name: 'a client without the device grant',
      change: { client_id: WEB.id },
      authorization: basic(WEB.id, WEB.secret),
      error: 'unauthorized_client',
      status: 400,
    },
    { name: 'scope duplicated', change: { scope: ['mcp:read', 'mcp:read'] }, error: 'invalid_request', status: 400 },
    { name: 'scope malformed', change: { scope: 'mcp:read "x"' }, error: 'invalid_scope', status: 400 },
    { name: 'scope unknown', change: { scope: 'mcp:admin' }, error: 'invalid_scope', status: 400 },
    { name: 'resource relative', change: { resource: '/mcp' }, error: 'invalid_target', status: 400 },
    { name: 'resource with a fragment', change: { resource: `${MCP}#x` }, error: 'invalid_target', status: 400 },
    { name: 'control', change: {}, status: 200 },
    { name: 'control (no scope, no resource)', change: { scope: undefined, resource: undefined }, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const base = { client_id: DEVICE_CLI, scope: 'mcp:read', resource: MCP };
    const res = await postForm(
      url('/device_authorization'),
      edit(base, row.change),
      row.authorization ? { authorization: row.authorization } : {},
    );
    expectJsonError(res, row);
    if (row.status === 200) {
      expect(res.json.user_code, row.name).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
      expect(res.json.verification_uri, row.name).toBe(url('/device'));
    }
  });
});

/** A device code of DEVICE_CLI, approved through the real pages by the shared browser when `approve`. */
async function freshDeviceCode(approve: boolean): Promise<string> {
  const r = await postForm(url('/device_authorization'), { client_id: DEVICE_CLI, scope: 'mcp:read' });
  expect(r.status).toBe(200);
  if (approve) {
    let step = await browser.follow(r.json.verification_uri_complete as string, server.origin);
    let html = await step.res.text();
    step = await browser.submit(html, step.url, server.origin, { user_code: r.json.user_code as string });
    for (let i = 0; i < 3 && !html.includes('data-result='); i++) {
      html = await step.res.text();
      if (html.includes('name="password"')) {
        step = await browser.submit(html, step.url, server.origin, ALICE);
      } else if (html.includes('name="decision"')) {
        step = await browser.submit(html, step.url, server.origin, { decision: 'approve' });
      }
    }
    expect(html).toContain('data-result="approved"');
  }
  return r.json.device_code as string;
}

// RFC 8628 §3.4–3.5: device_code REQUIRED (missing, empty, repeated: invalid_request); an unknown one invalid_grant;
// not yet decided authorization_pending; a client without the grant unauthorized_client; approved: the tokens.
describe('POST /token: device_code', () => {
  const rows: (JsonRow & { client?: string; approved?: boolean })[] = [
    { name: 'device_code missing', change: { device_code: undefined }, error: 'invalid_request', status: 400 },
    { name: 'device_code empty', change: { device_code: '' }, error: 'invalid_request', status: 400 },
    {
      name: 'device_code duplicated',
      change: { device_code: ['CODE', 'CODE'] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'device_code unknown', change: { device_code: 'not-a-device-code' }, error: 'invalid_grant', status: 400 },
    { name: 'not decided yet', change: {}, error: 'authorization_pending', status: 400 },
    {
      name: 'a client without the grant',
      change: {},
      client: 'PUBLIC',
      error: 'unauthorized_client',
      status: 400,
    },
    { name: 'control (approved)', change: {}, approved: true, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const deviceCode = await freshDeviceCode(row.approved === true);
    const change = Object.fromEntries(
      Object.entries(row.change).map(([k, val]) => [
        k,
        Array.isArray(val) ? val.map((x) => (x === 'CODE' ? deviceCode : x)) : val,
      ]),
    );
    const base = {
      grant_type: DEVICE_GRANT,
      client_id: row.client === 'PUBLIC' ? publicClient : DEVICE_CLI,
      device_code: deviceCode,
    };
    const res = await postForm(url('/token'), edit(base, change));
    expectJsonError(res, row);
    if (row.status === 200) expect(res.json.access_token, row.name).toBeTruthy();
  });
});

// RFC 7009 §2.1: token REQUIRED (missing → invalid_request, §2.2.1 → RFC 6749 §5.2); token_type_hint is only a hint:
// "If the server is unable to locate the token using the given hint, it MUST extend its search across all of its
// supported token types", so an unknown hint is ignored, not unsupported_token_type (that is for a type the server
// cannot revoke at all). An unknown token answers 200 (§2.2).
describe('POST /revoke', () => {
  const rows: JsonRow[] = [
    { name: 'token missing', change: { token: undefined }, error: 'invalid_request', status: 400 },
    { name: 'token empty', change: { token: '' }, error: 'invalid_request', status: 400 },
    { name: 'token duplicated', change: { token: ['RT', 'RT'] }, error: 'invalid_request', status: 400 },
    {
      name: 'token_type_hint duplicated',
      change: { token_type_hint: ['refresh_token', 'refresh_token'] },
      error: 'invalid_request',
      status: 400,
    },
    { name: 'client_id missing', change: { client_id: undefined }, error: 'invalid_client', status: 401 },
    { name: 'token unknown', change: { token: 'not-a-token' }, status: 200 },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const t = await freshTokens();
    const real: Record<string, string> = { RT: t.refresh_token };
    const change = Object.fromEntries(
      Object.entries(row.change).map(([k, val]) => [k, Array.isArray(val) ? val.map((x) => real[x] ?? x) : val]),
    );
    const res = await postForm(url('/revoke'), edit({ client_id: publicClient, token: t.refresh_token }, change));
    expect(res.status, row.name).toBe(row.status);
    expect(res.headers.get('cache-control'), row.name).toBe('no-store');
    if (row.error) expect(res.json.error, row.name).toBe(row.error);
    // A refused request revoked nothing.
    if (row.error) {
      const still = await postForm(url('/token'), {
        grant_type: 'refresh_token',
        client_id: publicClient,
        refresh_token: t.refresh_token,
      });
      expect(still.status, row.name).toBe(200);
    }
  });

  it.each(['unknown_type', 'access_token', 'refresh_token'])(
    'token_type_hint=%s is a hint only: the refresh token is revoked',
    async (hint) => {
      const t = await freshTokens();
      const res = await postForm(url('/revoke'), {
        client_id: publicClient,
        token: t.refresh_token,
        token_type_hint: hint,
      });
      expect(res.status).toBe(200);
      const after = await postForm(url('/token'), {
        grant_type: 'refresh_token',
        client_id: publicClient,
        refresh_token: t.refresh_token,
      });
      expect(after.json.error).toBe('invalid_grant');
    },
  );
});

// RFC 7662 §2.1: token REQUIRED (missing → invalid_request 400); the caller must authenticate (401 invalid_client);
// token_type_hint is optional and an unknown value is ignored; an unknown token is {"active": false} (§2.2).
describe('POST /introspect', () => {
  const rows: (JsonRow & { authorization?: string; active?: boolean })[] = [
    { name: 'token missing', change: { token: undefined }, error: 'invalid_request', status: 400 },
    { name: 'token empty', change: { token: '' }, error: 'invalid_request', status: 400 },
    { name: 'token duplicated', change: { token: ['AT', 'AT'] }, error: 'invalid_request', status: 400 },
    { name: 'no client authentication', change: {}, authorization: '', error: 'invalid_client', status: 401 },
    {
      name: 'a public client (nothing to authenticate with)',
      change: { client_id: 'PUBLIC' },
      authorization: '',
      error: 'invalid_client',
      status: 401,
    },
    { name: 'token_type_hint unknown', change: { token_type_hint: 'unknown_type' }, status: 200, active: true },
    { name: 'token unknown', change: { token: 'not-a-token' }, status: 200, active: false },
    { name: 'control', change: {}, status: 200, active: true },
  ];
  it.each(rows)('$name → $error $status', async (row) => {
    const cc = await postForm(
      url('/token'),
      { grant_type: 'client_credentials', scope: 'mcp:read' },
      { authorization: basic(RS.id, RS.secret) },
    );
    const at = cc.json.access_token as string;
    const change = Object.fromEntries(
      Object.entries(row.change).map(([k, val]) => [
        k,
        Array.isArray(val) ? val.map((x) => (x === 'AT' ? at : x)) : val === 'PUBLIC' ? publicClient : val,
      ]),
    );
    const authorization = row.authorization ?? basic(RS.id, RS.secret);
    const res = await postForm(url('/introspect'), edit({ token: at }, change), authorization ? { authorization } : {});
    expectJsonError(res, row);
    if (row.active !== undefined) expect(res.json.active, row.name).toBe(row.active);
  });
});

// RFC 7591 §3.2.2: invalid_redirect_uri for a bad redirect_uris value, invalid_client_metadata for any other field
// of the wrong type or value; both 400.
describe('POST /register', () => {
  const rows: { name: string; body: unknown; error: string }[] = [
    { name: 'body an array', body: [1], error: 'invalid_client_metadata' },
    { name: 'redirect_uris a string', body: { redirect_uris: REDIRECT }, error: 'invalid_redirect_uri' },
    { name: 'redirect_uris of numbers', body: { redirect_uris: [1] }, error: 'invalid_redirect_uri' },
    {
      name: 'redirect_uris missing for authorization_code',
      body: { token_endpoint_auth_method: 'none' },
      error: 'invalid_redirect_uri',
    },
    { name: 'redirect_uris empty for authorization_code', body: { redirect_uris: [] }, error: 'invalid_redirect_uri' },
    { name: 'redirect_uri relative', body: { redirect_uris: ['/callback'] }, error: 'invalid_redirect_uri' },
    {
      name: 'redirect_uri with a fragment',
      body: { redirect_uris: ['https://app.example.com/cb#x'] },
      error: 'invalid_redirect_uri',
    },
    {
      name: 'redirect_uri plain http',
      body: { redirect_uris: ['http://app.example.com/cb'] },
      error: 'invalid_redirect_uri',
    },
    {
      name: 'redirect_uri javascript:',
      body: { redirect_uris: ['javascript:alert(1)'] },
      error: 'invalid_redirect_uri',
    },
    {
      name: 'token_endpoint_auth_method a number',
      body: { redirect_uris: [REDIRECT], token_endpoint_auth_method: 1 },
      error: 'invalid_client_metadata',
    },
    {
      name: 'token_endpoint_auth_method unknown',
      body: { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'magic' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'grant_types a string',
      body: { redirect_uris: [REDIRECT], grant_types: 'authorization_code' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'grant_types unknown',
      body: { redirect_uris: [REDIRECT], grant_types: ['password'] },
      error: 'invalid_client_metadata',
    },
    {
      name: 'response_types a string',
      body: { redirect_uris: [REDIRECT], response_types: 'code' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'response_types token',
      body: { redirect_uris: [REDIRECT], response_types: ['token'] },
      error: 'invalid_client_metadata',
    },
    {
      name: 'grant and response types inconsistent',
      body: { grant_types: ['client_credentials'], response_types: ['code'] },
      error: 'invalid_client_metadata',
    },
    {
      name: 'refresh_token without authorization_code',
      body: { grant_types: ['refresh_token'] },
      error: 'invalid_client_metadata',
    },
    {
      name: 'client_name a number',
      body: { redirect_uris: [REDIRECT], client_name: 5 },
      error: 'invalid_client_metadata',
    },
    {
      name: 'client_uri not a URL',
      body: { redirect_uris: [REDIRECT], client_uri: 'home page' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'client_uri http',
      body: { redirect_uris: [REDIRECT], client_uri: 'http://app.example.com' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'logo_uri javascript:',
      body: { redirect_uris: [REDIRECT], logo_uri: 'javascript:alert(1)' },
      error: 'invalid_client_metadata',
    },
    { name: 'tos_uri a number', body: { redirect_uris: [REDIRECT], tos_uri: 1 }, error: 'invalid_client_metadata' },
    {
      name: 'policy_uri not a URL',
      body: { redirect_uris: [REDIRECT], policy_uri: 'policy' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'scope an array',
      body: { redirect_uris: [REDIRECT], scope: ['mcp:read'] },
      error: 'invalid_client_metadata',
    },
    {
      name: 'scope malformed',
      body: { redirect_uris: [REDIRECT], scope: 'mcp:read "x"' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'contacts a string',
      body: { redirect_uris: [REDIRECT], contacts: 'ops@example.com' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'software_id a number',
      body: { redirect_uris: [REDIRECT], software_id: 7 },
      error: 'invalid_client_metadata',
    },
    {
      name: 'software_version a number',
      body: { redirect_uris: [REDIRECT], software_version: 7 },
      error: 'invalid_client_metadata',
    },
    {
      name: 'application_type unknown',
      body: { redirect_uris: [REDIRECT], application_type: 'desktop' },
      error: 'invalid_client_metadata',
    },
    {
      name: 'public client with client_credentials',
      body: { grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' },
      error: 'invalid_client_metadata',
    },
  ];
  it.each(rows)('$name → $error 400', async (row) => {
    const res = await postJson(url('/register'), row.body);
    expect(res.status, row.name).toBe(400);
    expect(res.headers.get('cache-control'), row.name).toBe('no-store');
    expect(res.json.error, row.name).toBe(row.error);
  });

  it('control: the same server registers a well-formed client', async () => {
    const res = await postJson(url('/register'), {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
      client_name: 'ok',
      scope: 'mcp:read',
    });
    expect(res.status).toBe(201);
  });
});

// RFC 7591 §3: the initial access token is an RFC 6750 bearer token: missing → 401 with a challenge without an
// error code (RFC 6750 §3.1), wrong → 401 invalid_token.
describe('POST /register with an initial access token', () => {
  const INITIAL = 'initial-access-token-0123456789';
  let closed: TestServer;
  beforeAll(async () => {
    closed = await startServer({ registration: { initialAccessToken: INITIAL } });
  });
  afterAll(() => closed.close());
  const rows: { name: string; authorization?: string; status: number; challengeError?: boolean }[] = [
    { name: 'token missing', status: 401, challengeError: false },
    { name: 'another scheme', authorization: 'Basic YTpi', status: 401, challengeError: false },
    { name: 'token wrong', authorization: 'Bearer wrong-initial-access-token', status: 401, challengeError: true },
    { name: 'control', authorization: `Bearer ${INITIAL}`, status: 201 },
  ];
  it.each(rows)('$name → $status', async (row) => {
    const res = await postJson(
      `${closed.issuer}/register`,
      { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' },
      row.authorization ? { authorization: row.authorization } : {},
    );
    expect(res.status, row.name).toBe(row.status);
    expect(res.headers.get('cache-control'), row.name).toBe('no-store');
    if (row.status === 201) return;
    expect(res.json.error, row.name).toBe('invalid_token');
    const challengeHeader = res.headers.get('www-authenticate') ?? '';
    expect(challengeHeader, row.name).toMatch(/^Bearer realm="gatehouse"/);
    expect(challengeHeader.includes('error='), row.name).toBe(row.challengeError);
  });
});

// RFC 7592 §2: a missing or invalid registration access token is answered as RFC 6750 describes: 401 with a
// WWW-Authenticate Bearer challenge; §3.1 of RFC 6750: when the request carried no token at all, the challenge
// carries no error code. Unknown client ids answer the same 401 (RFC 7592 §2), so ids cannot be probed.
describe('RFC 7592 /register/:client_id', () => {
  let clientId: string;
  let token: string;
  let otherToken: string;
  beforeAll(async () => {
    const a = await postJson(url('/register'), { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' });
    const b = await postJson(url('/register'), { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' });
    clientId = a.json.client_id;
    token = a.json.registration_access_token;
    otherToken = b.json.registration_access_token;
  });
  const rows: { name: string; id?: string; authorization?: string; challengeError: boolean }[] = [
    { name: 'token missing', challengeError: false },
    { name: 'token wrong', authorization: 'Bearer not-the-token', challengeError: true },
    { name: "another client's token", authorization: 'OTHER', challengeError: true },
    { name: 'client unknown', id: 'no-such-client', authorization: 'OWN', challengeError: true },
  ];
  for (const method of ['GET', 'PUT', 'DELETE']) {
    it.each(rows)(`${method} $name → invalid_token 401`, async (row) => {
      const authorization =
        row.authorization === 'OTHER'
          ? `Bearer ${otherToken}`
          : row.authorization === 'OWN'
            ? `Bearer ${token}`
            : row.authorization;
      const id = row.id ?? clientId;
      const res = await fetch(`${url('/register')}/${id}`, {
        method,
        headers: {
          ...(authorization ? { authorization } : {}),
          ...(method === 'PUT' ? { 'content-type': 'application/json' } : {}),
        },
        body:
          method === 'PUT'
            ? JSON.stringify({ client_id: id, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
            : undefined,
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect((await res.json()).error).toBe('invalid_token');
      const challengeHeader = res.headers.get('www-authenticate') ?? '';
      expect(challengeHeader).toMatch(/^Bearer /);
      expect(challengeHeader.includes('error='), challengeHeader).toBe(row.challengeError);
    });
  }

  it('control: the own token reads the registration', async () => {
    const res = await fetch(`${url('/register')}/${clientId}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  });
});

// RFC 6750 §3.1: no token → 401 with a challenge that carries no error code; a malformed request (bad header syntax,
// two methods, a repeated parameter) → 400 invalid_request; a token that does not verify → 401 invalid_token;
// a token without the scope → 403 insufficient_scope. §3: the challenge comes with each of them.
describe('/userinfo', () => {
  const rows: {
    name: string;
    method: 'GET' | 'POST';
    authorization?: string;
    body?: Params;
    status: number;
    error?: string;
    challengeError?: string;
  }[] = [
    { name: 'no token', method: 'GET', status: 401, challengeError: undefined },
    { name: 'no token (POST)', method: 'POST', body: {}, status: 401, challengeError: undefined },
    {
      name: 'empty access_token in the body',
      method: 'POST',
      body: { access_token: '' },
      status: 401,
      challengeError: undefined,
    },
    {
      name: 'Bearer without a token',
      method: 'GET',
      authorization: 'Bearer',
      status: 400,
      error: 'invalid_request',
      challengeError: 'invalid_request',
    },
    {
      name: 'Bearer with two words',
      method: 'GET',
      authorization: 'Bearer a b',
      status: 400,
      error: 'invalid_request',
      challengeError: 'invalid_request',
    },
    {
      name: 'header and body',
      method: 'POST',
      authorization: 'AT',
      body: { access_token: 'AT' },
      status: 400,
      error: 'invalid_request',
      challengeError: 'invalid_request',
    },
    {
      name: 'access_token duplicated',
      method: 'POST',
      body: { access_token: ['AT', 'AT'] },
      status: 400,
      error: 'invalid_request',
      challengeError: 'invalid_request',
    },
    {
      name: 'token not ours',
      method: 'GET',
      authorization: 'Bearer abc.def.ghi',
      status: 401,
      error: 'invalid_token',
      challengeError: 'invalid_token',
    },
    {
      name: 'token without openid',
      method: 'GET',
      authorization: 'CC',
      status: 403,
      error: 'insufficient_scope',
      challengeError: 'insufficient_scope',
    },
    { name: 'control', method: 'GET', authorization: 'AT', status: 200 },
  ];
  it.each(rows)('$name → $status $error', async (row) => {
    // No resource: a token bound to a resource server is not for /userinfo.
    const t = await freshTokens([]);
    const cc = await postForm(
      url('/token'),
      { grant_type: 'client_credentials', scope: 'mcp:read' },
      { authorization: basic(RS.id, RS.secret) },
    );
    const real: Record<string, string> = { AT: t.access_token, CC: cc.json.access_token as string };
    const authorization =
      row.authorization && real[row.authorization] ? `Bearer ${real[row.authorization]}` : row.authorization;
    const init: RequestInit = { method: row.method, headers: authorization ? { authorization } : {} };
    if (row.body) {
      const body = new URLSearchParams();
      for (const [k, v] of Object.entries(row.body))
        for (const one of Array.isArray(v) ? v : [v]) body.append(k, real[one] ?? one);
      init.body = body.toString();
      init.headers = {
        ...(init.headers as Record<string, string>),
        'content-type': 'application/x-www-form-urlencoded',
      };
    }
    const res = await fetch(url('/userinfo'), init);
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status, row.name).toBe(row.status);
    expect(res.headers.get('cache-control'), row.name).toBe('no-store');
    if (row.status === 200) {
      expect(json.sub, row.name).toBeTruthy();
      return;
    }
    if (row.error) expect(json.error, row.name).toBe(row.error);
    const challengeHeader = res.headers.get('www-authenticate') ?? '';
    expect(challengeHeader, row.name).toMatch(/^Bearer realm="gatehouse"/);
    if (row.challengeError) expect(challengeHeader, row.name).toContain(`error="${row.challengeError}"`);
    else expect(challengeHeader, row.name).not.toContain('error=');
  });
});
