/**
 * DPoP (RFC 9449) over HTTP on every store, with oauth4webapi's DPoP handle as the client and proofs signed with jose
 * for the requests no honest client sends: the code flow of a public client gets DPoP-bound tokens (token_type DPoP,
 * cnf.jkt) and a refresh token bound to the key (another key, or none, is invalid_grant); dpop_jkt at /authorize and
 * a proof at /par bind the code; client_credentials with DPoP; a proof for another URL or method, or replayed on the
 * other replica (two on PostgreSQL and Redis), is invalid_dpop_proof; server nonces (use_dpop_nonce, then the retry
 * oauth4webapi makes with the nonce it was given); introspection shows cnf.jkt; userinfo takes the DPoP scheme with
 * a proof and refuses the same token as Bearer.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { hashToken } from '../../src/core/crypto.js';
import { FormBrowser } from '../helpers/browser.js';
import { startJwtIssuer, type TestIssuer as JwtIssuer } from '../helpers/jwt-issuer.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, freePort, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT = 'http://127.0.0.1/callback';
const MACHINE = { id: 'machine', secret: 'machine-secret-0123456789abcdef-0123456789' };
const WEB = { id: 'web-app', secret: 'web-app-secret-0123456789abcdef-0123456789' };
const INTROSPECTOR = { id: 'resource-server', secret: 'resource-server-secret-0123456789abcdef' };
const ALWAYS_DPOP = { id: 'always-dpop', secret: 'always-dpop-secret-0123456789abcdef-012345' };

const serverConfig = (store: Partial<ConfigInput>, extra: Partial<ConfigInput> = {}): Partial<ConfigInput> => ({
  scopes: ['mcp:read'],
  introspection: { allowedClients: [INTROSPECTOR.id] },
  clients: [
    { client_id: MACHINE.id, client_secret: MACHINE.secret, grant_types: ['client_credentials'], scope: 'mcp:read' },
    {
      client_id: ALWAYS_DPOP.id,
      client_secret: ALWAYS_DPOP.secret,
      grant_types: ['client_credentials'],
      dpop_bound_access_tokens: true,
    },
    {
      client_id: WEB.id,
      client_secret: WEB.secret,
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile mcp:read',
    },
    { client_id: INTROSPECTOR.id, client_secret: INTROSPECTOR.secret, grant_types: ['client_credentials'] },
  ],
  ...store,
  ...extra,
});

async function startReplica(config: Partial<ConfigInput>, issuer: string): Promise<Gatehouse> {
  const port = await freePort();
  const gatehouse = await createGatehouse(
    parseConfig({
      logLevel: 'silent',
      passwordHashing: { log2N: 14 },
      users: [ALICE],
      ...config,
      port,
      host: '127.0.0.1',
      issuer,
    }),
    { logger: createLogger('silent') },
  );
  await gatehouse.app.listen({ port, host: '127.0.0.1' });
  return gatehouse;
}

function originOf(gatehouse: Gatehouse): string {
  const address = gatehouse.app.server.address();
  if (!address || typeof address === 'string') throw new Error('replica is not listening');
  return `http://localhost:${address.port}`;
}

interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function proofKey(): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

/** A DPoP proof signed with jose, for whatever request the test needs (right or wrong). */
function proof(key: ProofKey, htm: string, htu: string, claims: Record<string, unknown> = {}): Promise<string> {
  const jwt = new SignJWT({ htm, htu, jti: randomUUID(), ...claims }).setProtectedHeader({
    alg: 'ES256',
    typ: 'dpop+jwt',
    jwk: key.jwk,
  });
  if (claims.iat === undefined) jwt.setIssuedAt();
  return jwt.sign(key.privateKey);
}

const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, any>;

for (const store of E2E_STORES) {
  describe(`DPoP on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_dpop_${randomBytes(4).toString('hex')}`;
    const nonceIsolation = `gh_dpopn_${randomBytes(4).toString('hex')}`;
    let server: TestServer;
    let nonces: TestServer;
    let second: Gatehouse | undefined;
    let replicas: string[];
    let as: oauth.AuthorizationServer;

    beforeAll(async () => {
      if (!(await available)) return;
      const config = serverConfig(store.config(isolation));
      server = await startServer(config);
      replicas = [server.origin];
      if (store.service) {
        second = await startReplica(config, server.issuer);
        replicas.push(originOf(second));
      }
      nonces = await startServer(serverConfig(store.config(nonceIsolation), { dpop: { nonce: true } }));
      const issuer = new URL(server.issuer);
      as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
      );
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await second?.close();
      await server?.close();
      await nonces?.close();
      await store.cleanup?.(isolation);
      await store.cleanup?.(nonceIsolation);
    });

    const url = (path: string) => server.issuer + path;
    const registerPublic = async () => {
      const r = await postJson(url('/register'), {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      });
      expect(r.status).toBe(201);
      return r.json as oauth.Client;
    };
    /** Signs Alice in through the pages and returns the code and its verifier. */
    const authorize = async (clientId: string, extra: Record<string, string> = {}, base = url('/authorize')) => {
      const v = verifier();
      const u = new URL(base);
      const params = {
        client_id: clientId,
        response_type: 'code',
        redirect_uri: REDIRECT,
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        scope: 'openid mcp:read',
        state: 'st',
        ...extra,
      };
      for (const [k, val] of Object.entries(params)) u.searchParams.set(k, val);
      const callback = await new FormBrowser().authorize(u.href, server.origin, ALICE);
      return { callback, code: callback.searchParams.get('code')!, codeVerifier: v };
    };
    const machineToken = (headers: Record<string, string>, origin = server.origin) =>
      postForm(
        `${origin}/token`,
        { grant_type: 'client_credentials', scope: 'mcp:read' },
        {
          authorization: basic(MACHINE.id, MACHINE.secret),
          ...headers,
        },
      );

    it('discovery advertises the proof algorithms', async (t) => {
      if (!(await available)) return t.skip();
      expect(as.dpop_signing_alg_values_supported).toEqual(['ES256', 'EdDSA', 'RS256', 'PS256']);
    });

    it('code flow of a public client with oauth4webapi: DPoP tokens, cnf.jkt, a refresh token bound to the key', async (t) => {
      if (!(await available)) return t.skip();
      const client = await registerPublic();
      const keyPair = await oauth.generateKeyPair('ES256');
      const DPoP = oauth.DPoP(client, keyPair);
      const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), 'sha256');
      const { callback, codeVerifier } = await authorize(client.client_id);
      const params = oauth.validateAuthResponse(as, client, callback, 'st');
      const tokens = await oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, codeVerifier, {
          DPoP,
          ...insecure,
        }),
      );
      expect(tokens.token_type).toBe('dpop');
      expect(claimsOf(tokens.access_token).cnf).toEqual({ jkt });

      // The refresh token works with the same key only.
      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, { DPoP, ...insecure }),
      );
      expect(refreshed.token_type).toBe('dpop');
      expect(claimsOf(refreshed.access_token).cnf).toEqual({ jkt });
      const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
      const withOther = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token!, {
        DPoP: other,
        ...insecure,
      });
      expect(withOther.status).toBe(400);
      expect((await withOther.json()).error).toBe('invalid_grant');
      const without = await postForm(url('/token'), {
        grant_type: 'refresh_token',
        client_id: client.client_id,
        refresh_token: refreshed.refresh_token!,
      });
      expect(without.status).toBe(400);
      expect(without.json.error).toBe('invalid_grant');
      // Neither refusal spent the token: the key holder still refreshes.
      const again = await oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token!, {
          DPoP,
          ...insecure,
        }),
      );
      expect(again.token_type).toBe('dpop');
    });

    it("a confidential client's refresh token is not bound (§5): a refresh without a proof gets a Bearer token", async (t) => {
      if (!(await available)) return t.skip();
      const key = await proofKey();
      const { code, codeVerifier } = await authorize(WEB.id);
      const first = await postForm(
        url('/token'),
        { grant_type: 'authorization_code', code, code_verifier: codeVerifier, redirect_uri: REDIRECT },
        { authorization: basic(WEB.id, WEB.secret), dpop: await proof(key, 'POST', url('/token')) },
      );
      expect(first.status, JSON.stringify(first.json)).toBe(200);
      expect(first.json.token_type).toBe('DPoP');
      expect(claimsOf(first.json.access_token as string).cnf).toEqual({ jkt: key.jkt });
      const refreshed = await postForm(
        url('/token'),
        { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string },
        { authorization: basic(WEB.id, WEB.secret) },
      );
      expect(refreshed.status).toBe(200);
      expect(refreshed.json.token_type).toBe('Bearer');
      expect(claimsOf(refreshed.json.access_token as string).cnf).toBeUndefined();
    });

    it('dpop_jkt at /authorize binds the code: another key or no proof is invalid_grant, the named key redeems', async (t) => {
      if (!(await available)) return t.skip();
      const client = await registerPublic();
      const key = await proofKey();
      const other = await proofKey();
      const { code, codeVerifier } = await authorize(client.client_id, { dpop_jkt: key.jkt });
      const redeem = async (dpop?: string) =>
        postForm(
          url('/token'),
          {
            grant_type: 'authorization_code',
            client_id: client.client_id,
            code,
            code_verifier: codeVerifier,
            redirect_uri: REDIRECT,
          },
          dpop ? { dpop } : {},
        );
      for (const refused of [await redeem(await proof(other, 'POST', url('/token'))), await redeem()]) {
        expect(refused.status).toBe(400);
        expect(refused.json.error).toBe('invalid_grant');
      }
      const ok = await redeem(await proof(key, 'POST', url('/token')));
      expect(ok.status, JSON.stringify(ok.json)).toBe(200);
      expect(ok.json.token_type).toBe('DPoP');
      expect(claimsOf(ok.json.access_token as string).cnf).toEqual({ jkt: key.jkt });

      // A malformed dpop_jkt is refused at /authorize itself (invalid_request on the redirect).
      const bad = new URL(url('/authorize'));
      for (const [k, v] of Object.entries({
        client_id: client.client_id,
        response_type: 'code',
        redirect_uri: REDIRECT,
        code_challenge: challenge(verifier()),
        code_challenge_method: 'S256',
        dpop_jkt: 'not-a-thumbprint',
      }))
        bad.searchParams.set(k, v);
      const res = await fetch(bad, { redirect: 'manual' });
      expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
    });

    it('a proof at /par binds the code to its key (oauth4webapi sends it), as dpop_jkt does', async (t) => {
      if (!(await available)) return t.skip();
      const client = await registerPublic();
      const keyPair = await oauth.generateKeyPair('ES256');
      const DPoP = oauth.DPoP(client, keyPair);
      const codeVerifier = oauth.generateRandomCodeVerifier();
      const pushed = await oauth.pushedAuthorizationRequest(
        as,
        client,
        oauth.None(),
        {
          redirect_uri: REDIRECT,
          response_type: 'code',
          code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: 'S256',
          scope: 'mcp:read',
          state: 'st',
        },
        { DPoP, ...insecure },
      );
      const { request_uri } = await oauth.processPushedAuthorizationResponse(as, client, pushed);
      const u = new URL(url('/authorize'));
      u.searchParams.set('client_id', client.client_id);
      u.searchParams.set('request_uri', request_uri);
      const callback = await new FormBrowser().authorize(u.href, server.origin, ALICE);
      const code = callback.searchParams.get('code')!;
      const otherKey = await proofKey();
      const refused = await postForm(
        url('/token'),
        {
          grant_type: 'authorization_code',
          client_id: client.client_id,
          code,
          code_verifier: codeVerifier,
          redirect_uri: REDIRECT,
        },
        { dpop: await proof(otherKey, 'POST', url('/token')) },
      );
      expect(refused.json.error).toBe('invalid_grant');
      const params = oauth.validateAuthResponse(as, client, callback, 'st');
      const tokens = await oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, codeVerifier, {
          DPoP,
          ...insecure,
        }),
      );
      expect(tokens.token_type).toBe('dpop');
    });

    it('client_credentials with a proof: a DPoP token; introspection shows token_type DPoP and cnf.jkt', async (t) => {
      if (!(await available)) return t.skip();
      const key = await proofKey();
      const res = await machineToken({ dpop: await proof(key, 'POST', url('/token')) });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.json.token_type).toBe('DPoP');
      const token = res.json.access_token as string;
      expect(claimsOf(token).cnf).toEqual({ jkt: key.jkt });
      const seen = await postForm(
        url('/introspect'),
        { token },
        { authorization: basic(INTROSPECTOR.id, INTROSPECTOR.secret) },
      );
      expect(seen.json).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.jkt } });
      // Without a proof: a Bearer token without cnf, as before.
      const plain = await machineToken({});
      expect(plain.json.token_type).toBe('Bearer');
      expect(claimsOf(plain.json.access_token as string).cnf).toBeUndefined();
      const plainSeen = await postForm(
        url('/introspect'),
        { token: plain.json.access_token as string },
        { authorization: basic(INTROSPECTOR.id, INTROSPECTOR.secret) },
      );
      expect(plainSeen.json.token_type).toBe('Bearer');
      expect(plainSeen.json.cnf).toBeUndefined();
    });

    it('a client registered with dpop_bound_access_tokens must send a proof', async (t) => {
      if (!(await available)) return t.skip();
      const auth = { authorization: basic(ALWAYS_DPOP.id, ALWAYS_DPOP.secret) };
      const without = await postForm(url('/token'), { grant_type: 'client_credentials' }, auth);
      expect(without.status).toBe(400);
      expect(without.json.error).toBe('invalid_request');
      const key = await proofKey();
      const withProof = await postForm(
        url('/token'),
        { grant_type: 'client_credentials' },
        { ...auth, dpop: await proof(key, 'POST', url('/token')) },
      );
      expect(withProof.json.token_type).toBe('DPoP');
    });

    it('refuses proofs for another URL or method, with a query, badly typed, old, or with a private key', async (t) => {
      if (!(await available)) return t.skip();
      const key = await proofKey();
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      const privateJwk = await exportJWK(privateKey);
      const cases: [string, string][] = [
        ['another URL', await proof(key, 'POST', url('/introspect'))],
        ['another origin', await proof(key, 'POST', `http://evil.example${new URL(url('/token')).pathname}`)],
        ['another method', await proof(key, 'GET', url('/token'))],
        ['old', await proof(key, 'POST', url('/token'), { iat: Math.floor(Date.now() / 1000) - 120 })],
        ['future', await proof(key, 'POST', url('/token'), { iat: Math.floor(Date.now() / 1000) + 120 })],
        [
          'typ JWT',
          await new SignJWT({ htm: 'POST', htu: url('/token'), jti: randomUUID() })
            .setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: key.jwk })
            .setIssuedAt()
            .sign(key.privateKey),
        ],
        [
          'private jwk',
          await new SignJWT({ htm: 'POST', htu: url('/token'), jti: randomUUID() })
            .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: privateJwk })
            .setIssuedAt()
            .sign(privateKey),
        ],
        ['not a JWS', 'garbage'],
      ];
      for (const [name, dpop] of cases) {
        const res = await machineToken({ dpop });
        expect(res.status, name).toBe(400);
        expect(res.json.error, name).toBe('invalid_dpop_proof');
      }
      // htu ignores the query and fragment of the proof's URL (RFC 9449 §4.3), and normalises case and port.
      const u = new URL(url('/token'));
      const spelled = `HTTP://${u.host.toUpperCase()}${u.pathname}?x=1#frag`;
      expect((await machineToken({ dpop: await proof(key, 'POST', spelled) })).json.token_type).toBe('DPoP');
    });

    it('a proof is single use: replayed on the other replica (or the same one) it is refused', async (t) => {
      if (!(await available)) return t.skip();
      const key = await proofKey();
      const dpop = await proof(key, 'POST', url('/token'));
      const first = await machineToken({ dpop }, replicas[0]);
      expect(first.json.token_type).toBe('DPoP');
      for (const origin of replicas) {
        const replayed = await machineToken({ dpop }, origin);
        expect(replayed.status).toBe(400);
        expect(replayed.json.error).toBe('invalid_dpop_proof');
      }
      // Ten racing uses of one fresh proof over the replicas: exactly one is accepted.
      const racing = await proof(key, 'POST', url('/token'));
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => machineToken({ dpop: racing }, replicas[i % replicas.length])),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    });

    it('server nonces: use_dpop_nonce with DPoP-Nonce first, then oauth4webapi retries with it', async (t) => {
      if (!(await available)) return t.skip();
      const issuer = new URL(nonces.issuer);
      const nas = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
      );
      const client: oauth.Client = { client_id: MACHINE.id };
      const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
      const request = () =>
        oauth.clientCredentialsGrantRequest(
          nas,
          client,
          oauth.ClientSecretBasic(MACHINE.secret),
          { scope: 'mcp:read' },
          {
            DPoP,
            ...insecure,
          },
        );
      const first = await request();
      expect(first.status).toBe(400);
      expect(first.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{32}$/);
      let error: unknown;
      try {
        await oauth.processClientCredentialsResponse(nas, client, first);
      } catch (err) {
        error = err;
      }
      expect(oauth.isDPoPNonceError(error)).toBe(true);
      const tokens = await oauth.processClientCredentialsResponse(nas, client, await request());
      expect(tokens.token_type).toBe('dpop');
      // A nonce that this server never issued is use_dpop_nonce again.
      const key = await proofKey();
      const forged = await postForm(
        `${nonces.origin}/token`,
        { grant_type: 'client_credentials' },
        {
          authorization: basic(MACHINE.id, MACHINE.secret),
          dpop: await proof(key, 'POST', `${nonces.issuer}/token`, { nonce: 'made-up' }),
        },
      );
      expect(forged.json.error).toBe('use_dpop_nonce');
    });

    it('userinfo: the DPoP scheme with a proof (ath) works; Bearer use, wrong ath or another key are refused', async (t) => {
      if (!(await available)) return t.skip();
      const client = await registerPublic();
      const keyPair = await oauth.generateKeyPair('ES256');
      const DPoP = oauth.DPoP(client, keyPair);
      const { callback, codeVerifier } = await authorize(client.client_id);
      const params = oauth.validateAuthResponse(as, client, callback, 'st');
      const tokens = await oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, codeVerifier, {
          DPoP,
          ...insecure,
        }),
      );
      const info = await oauth.processUserInfoResponse(
        as,
        client,
        oauth.skipSubjectCheck,
        await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure }),
      );
      expect(info.sub).toBeTruthy();

      const bearer = await fetch(url('/userinfo'), { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(bearer.status).toBe(401);
      expect(bearer.headers.get('www-authenticate')).toContain(
        'DPoP error="invalid_token", algs="ES256 EdDSA RS256 PS256"',
      );

      const key = await proofKey();
      const dpopAuth = { authorization: `DPoP ${tokens.access_token}` };
      const wrongAth = await fetch(url('/userinfo'), {
        headers: { ...dpopAuth, dpop: await proof(key, 'GET', url('/userinfo'), { ath: hashToken('other') }) },
      });
      expect(wrongAth.status).toBe(401);
      expect(wrongAth.headers.get('www-authenticate')).toContain('DPoP error="invalid_dpop_proof"');
      const otherKey = await fetch(url('/userinfo'), {
        headers: {
          ...dpopAuth,
          dpop: await proof(key, 'GET', url('/userinfo'), { ath: hashToken(tokens.access_token) }),
        },
      });
      expect(otherKey.status).toBe(401);
      expect(otherKey.headers.get('www-authenticate')).toContain('DPoP error="invalid_token"');
      const noProof = await fetch(url('/userinfo'), { headers: dpopAuth });
      expect(noProof.status).toBe(401);
      expect(noProof.headers.get('www-authenticate')).toContain('DPoP error="invalid_dpop_proof"');
      // No credentials: both schemes offered.
      const none = await fetch(url('/userinfo'));
      expect(none.headers.get('www-authenticate')).toBe(
        'Bearer realm="gatehouse", DPoP algs="ES256 EdDSA RS256 PS256"',
      );
    });
  });
}

describe('DPoP at a tenant', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      tenants: [
        {
          id: 'acme',
          clients: [{ client_id: MACHINE.id, client_secret: MACHINE.secret, grant_types: ['client_credentials'] }],
        },
      ],
    });
  });
  afterAll(() => server?.close());

  it("binds a tenant's token to the proof, whose htu is the tenant's own token endpoint", async () => {
    const key = await proofKey();
    const tenantToken = `${server.issuer}/acme/token`;
    const send = async (htu: string) =>
      postForm(
        tenantToken,
        { grant_type: 'client_credentials' },
        { authorization: basic(MACHINE.id, MACHINE.secret), dpop: await proof(key, 'POST', htu) },
      );
    const ok = await send(tenantToken);
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    expect(ok.json.token_type).toBe('DPoP');
    expect(claimsOf(ok.json.access_token as string)).toMatchObject({
      iss: `${server.issuer}/acme`,
      cnf: { jkt: key.jkt },
    });
    // The deployment's token endpoint is another URL: a proof for it is refused at the tenant.
    const other = await send(`${server.issuer}/token`);
    expect(other.json.error).toBe('invalid_dpop_proof');
  });
});

describe('DPoP with the jwt-bearer and token-exchange grants', () => {
  let server: TestServer;
  let workload: JwtIssuer;
  const R = 'https://mcp.example.com/mcp';
  const R2 = 'https://api.example.com/';
  const RS_CLIENT = { id: 'rs', secret: 'rs-secret-0123456789abcdef-0123456789abc' };
  beforeAll(async () => {
    workload = await startJwtIssuer('k8s');
    server = await startServer({
      scopes: ['mcp:read'],
      resources: [R, R2],
      workloadIssuers: [
        {
          issuer: workload.issuer,
          jwksUri: workload.jwksUri,
          allowPrivateAddresses: true,
          trustedCaFile: workload.caFile,
          scopes: ['mcp:read'],
        },
      ],
      clients: [
        {
          client_id: MACHINE.id,
          client_secret: MACHINE.secret,
          grant_types: ['client_credentials'],
          scope: 'mcp:read',
        },
        {
          client_id: RS_CLIENT.id,
          client_secret: RS_CLIENT.secret,
          grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'],
        },
      ],
      tokenExchange: {
        resourceServers: [{ clientId: RS_CLIENT.id, audiences: [R], upstreams: [], audiencesOut: [R2] }],
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    workload?.close();
  });

  it('a workload token redeemed without client authentication, with a proof: a DPoP token', async () => {
    const key = await proofKey();
    const res = await postForm(
      `${server.origin}/token`,
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion: await workload.sign({ sub: 'agent', aud: server.issuer }),
        scope: 'mcp:read',
      },
      { dpop: await proof(key, 'POST', `${server.issuer}/token`) },
    );
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.token_type).toBe('DPoP');
    expect(claimsOf(res.json.access_token as string).cnf).toEqual({ jkt: key.jkt });
  });

  it('token exchange with a proof: the exchanged token is bound to the exchanging key', async () => {
    const subject = await postForm(
      `${server.origin}/token`,
      { grant_type: 'client_credentials', scope: 'mcp:read', resource: R },
      { authorization: basic(MACHINE.id, MACHINE.secret) },
    );
    expect(subject.status).toBe(200);
    const key = await proofKey();
    const res = await postForm(
      `${server.origin}/token`,
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subject.json.access_token as string,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        resource: R2,
      },
      {
        authorization: basic(RS_CLIENT.id, RS_CLIENT.secret),
        dpop: await proof(key, 'POST', `${server.issuer}/token`),
      },
    );
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.token_type).toBe('DPoP');
    expect(claimsOf(res.json.access_token as string)).toMatchObject({ aud: R2, cnf: { jkt: key.jkt } });
  });
});
