/** The same HTTP-level scenarios, run against each framework adapter. */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceVerifier, dpopAccessTokenHash } from '../../src/resource/index.js';
import type { ProtectedResourceMetadataOptions, ResourceVerifier } from '../../src/resource/index.js';
import { startIssuer, startIssuerHost } from './issuer.js';
import type { TestIssuer, TestIssuerHost } from './issuer.js';

export const RESOURCE = 'https://mcp.example.com/mcp';
export const METADATA_URL = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';
export const METADATA_PATH = '/.well-known/oauth-protected-resource/mcp';
/** The DPoP challenge every 401 and 403 carries beside Bearer (RFC 9449 §7.1), without an error of its own. */
export const DPOP_CHALLENGE = 'DPoP algs="ES256 EdDSA RS256 PS256"';

export interface TestResponse {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

/** What each framework test provides: an app with GET /mcp (bearer auth), GET /mcp/admin (plus scope `admin`) and the metadata route. */
export interface AppUnderTest {
  /** Header values given as arrays are sent as repeated header fields. */
  request(path: string, init?: { method?: string; headers?: Record<string, string | string[]> }): Promise<TestResponse>;
  close(): Promise<void>;
}

export type AppFactory = (
  verifier: ResourceVerifier,
  metadata: ProtectedResourceMetadataOptions,
) => Promise<AppUnderTest>;

/** The body every protected route answers with. */
export function describeAuth(auth: {
  subject: string;
  clientId: string;
  scopes: string[];
  resource: URL;
  expiresAt: number;
  tenant?: string;
  extra: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    subject: auth.subject,
    clientId: auth.clientId,
    scopes: auth.scopes,
    resource: auth.resource.href,
    expiresAt: auth.expiresAt,
    tenant: auth.tenant,
    extraSubject: auth.extra['subject'],
    extraTenant: auth.extra['tenant'],
  };
}

/** A plain node:http client, so repeated headers really go out as separate fields. */
export function nodeRequest(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string | string[]> } = {},
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export function describeMiddleware(name: string, factory: AppFactory): void {
  describe(`${name} middleware`, () => {
    let as: TestIssuer;
    let app: AppUnderTest;

    beforeAll(async () => {
      as = await startIssuer();
      const verifier = createResourceVerifier({ issuer: as.issuer, resource: RESOURCE, requiredScopes: ['mcp'] });
      app = await factory(verifier, {
        resource: RESOURCE,
        authorizationServers: [as.issuer],
        scopesSupported: ['mcp', 'read', 'admin'],
        resourceName: 'Test MCP',
      });
    });
    afterAll(async () => {
      await app?.close();
      await as?.close();
    });

    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

    it('200: passes the verified auth to the handler', async () => {
      const token = await as.sign({ sub: 'alice', scope: 'mcp read' });
      const res = await app.request('/mcp', { headers: bearer(token) });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({
        subject: 'alice',
        clientId: 'client-1',
        scopes: ['mcp', 'read'],
        resource: RESOURCE,
        extraSubject: 'alice',
      });
      const lower = await app.request('/mcp', { headers: { authorization: `bearer ${token}` } });
      expect(lower.status).toBe(200);
    });

    it('401 without a token: challenge with resource_metadata and scope, no error (RFC 6750 §3.1)', async () => {
      const variants: Record<string, string>[] = [{}, { authorization: 'Basic dXNlcjpwYXNz' }];
      for (const headers of variants) {
        const res = await app.request('/mcp', { headers });
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toBe(
          `Bearer resource_metadata="${METADATA_URL}", scope="mcp", ${DPOP_CHALLENGE}`,
        );
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(JSON.parse(res.body)).toMatchObject({ error: 'invalid_token' });
      }
    });

    it('401 for an invalid token: error="invalid_token" with a description', async () => {
      const now = Math.floor(Date.now() / 1000);
      const cases = [
        await as.sign({ exp: now - 60, iat: now - 120 }),
        await as.sign({ aud: 'https://other.example.com' }),
        'abc.def.ghi',
      ];
      for (const token of cases) {
        const res = await app.request('/mcp', { headers: bearer(token) });
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(
          new RegExp(
            `^Bearer resource_metadata="${METADATA_URL}", error="invalid_token", error_description="[^"]+", scope="mcp", ${DPOP_CHALLENGE}$`,
          ),
        );
        const body = JSON.parse(res.body) as { error: string; error_description: string };
        expect(body.error).toBe('invalid_token');
        expect(body.error_description).toBeTruthy();
      }
    });

    it('403 insufficient_scope names the scopes needed (step-up)', async () => {
      const res = await app.request('/mcp/admin', { headers: bearer(await as.sign({ scope: 'mcp read' })) });
      expect(res.status).toBe(403);
      expect(res.headers['www-authenticate']).toBe(
        `Bearer resource_metadata="${METADATA_URL}", error="insufficient_scope", error_description="the access token lacks a required scope", scope="mcp admin", ${DPOP_CHALLENGE}`,
      );
      expect(JSON.parse(res.body)).toEqual({
        error: 'insufficient_scope',
        error_description: 'the access token lacks a required scope',
      });
      const ok = await app.request('/mcp/admin', { headers: bearer(await as.sign({ scope: 'mcp admin' })) });
      expect(ok.status).toBe(200);
    });

    it('400 invalid_request for malformed, doubled or query-string credentials', async () => {
      const token = await as.sign();
      const cases: { path: string; headers: Record<string, string | string[]> }[] = [
        { path: '/mcp', headers: { authorization: 'Bearer' } },
        { path: '/mcp', headers: { authorization: `Bearer ${token} extra` } },
        { path: '/mcp', headers: { authorization: `Basic dXNlcjpwYXNz, Bearer ${token}` } },
        { path: '/mcp', headers: { authorization: [`Bearer ${token}`, `Bearer ${token}`] } },
        { path: `/mcp?access_token=${token}`, headers: {} },
        { path: `/mcp?access_token=${token}`, headers: bearer(token) },
      ];
      for (const { path, headers } of cases) {
        const res = await app.request(path, { headers });
        expect(res.status, JSON.stringify(headers)).toBe(400);
        expect(JSON.parse(res.body)).toMatchObject({ error: 'invalid_request' });
        expect(res.headers['www-authenticate']).toMatch(/^Bearer resource_metadata="[^"]+", error="invalid_request"/);
      }
    });

    describe('DPoP (RFC 9449 §7)', () => {
      // The proof names the URL the client called: the resource's public origin (the adapters' default base URL).
      const HTU = RESOURCE;
      let key: { privateKey: CryptoKey; jwk: JWK; jkt: string };
      beforeAll(async () => {
        const pair = await generateKeyPair('ES256');
        const jwk = await exportJWK(pair.publicKey);
        key = { privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
      });
      const proof = (token: string, claims: Record<string, unknown> = {}, signer = key) =>
        new SignJWT({ htm: 'GET', htu: HTU, jti: randomUUID(), ath: dpopAccessTokenHash(token), ...claims })
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: signer.jwk })
          .setIssuedAt()
          .sign(signer.privateKey);
      const dpop = async (token: string, claims?: Record<string, unknown>) => ({
        authorization: `DPoP ${token}`,
        dpop: await proof(token, claims),
      });
      const boundToken = () => as.sign({ sub: 'alice', scope: 'mcp read', cnf: { jkt: key.jkt } });
      const challengeOf = (res: TestResponse) => res.headers['www-authenticate'] ?? '';

      it('200 for a bound token with a good proof; the handler sees the verified auth', async () => {
        const token = await boundToken();
        const res = await app.request('/mcp', { headers: await dpop(token) });
        expect(res.status, res.body).toBe(200);
        expect(JSON.parse(res.body)).toMatchObject({ subject: 'alice', scopes: ['mcp', 'read'] });
        // The scheme is case-insensitive (RFC 9110 §11.1); the query is no part of htu.
        const lower = await app.request('/mcp?page=2', {
          headers: { authorization: `dpop ${token}`, dpop: await proof(token) },
        });
        expect(lower.status).toBe(200);
      });

      it('a bound token used as Bearer is refused with a DPoP invalid_token challenge', async () => {
        const res = await app.request('/mcp', { headers: bearer(await boundToken()) });
        expect(res.status).toBe(401);
        expect(challengeOf(res)).toMatch(/^Bearer resource_metadata="[^"]+", scope="mcp", DPoP error="invalid_token"/);
        expect(challengeOf(res)).toMatch(/algs="ES256 EdDSA RS256 PS256"$/);
        expect(JSON.parse(res.body)).toMatchObject({ error: 'invalid_token' });
      });

      it('refuses a wrong ath, another key, a replay, a wrong htu or htm, no proof, two proofs: invalid_dpop_proof', async () => {
        const token = await boundToken();
        const other = await generateKeyPair('ES256');
        const otherJwk = await exportJWK(other.publicKey);
        const otherKey = { privateKey: other.privateKey, jwk: otherJwk, jkt: '' };
        const replayed = await dpop(token);
        expect((await app.request('/mcp', { headers: replayed })).status).toBe(200);
        const cases: [string, Record<string, string | string[]>, string][] = [
          ['wrong ath', await dpop(token, { ath: dpopAccessTokenHash('another token') }), 'invalid_dpop_proof'],
          ['replay', replayed, 'invalid_dpop_proof'],
          ['wrong htu', await dpop(token, { htu: 'https://mcp.example.com/other' }), 'invalid_dpop_proof'],
          ['internal htu', await dpop(token, { htu: 'http://127.0.0.1/mcp' }), 'invalid_dpop_proof'],
          ['wrong htm', await dpop(token, { htm: 'POST' }), 'invalid_dpop_proof'],
          ['no proof', { authorization: `DPoP ${token}` }, 'invalid_dpop_proof'],
          [
            'two proofs',
            { authorization: `DPoP ${token}`, dpop: [await proof(token), await proof(token)] },
            'invalid_dpop_proof',
          ],
          ['another key', { authorization: `DPoP ${token}`, dpop: await proof(token, {}, otherKey) }, 'invalid_token'],
          [
            'unbound token as DPoP',
            { authorization: `DPoP ${await as.sign({ scope: 'mcp' })}`, dpop: await proof(token) },
            'invalid_token',
          ],
        ];
        for (const [name, headers, error] of cases) {
          const res = await app.request('/mcp', { headers });
          expect(res.status, name).toBe(401);
          expect(JSON.parse(res.body).error, name).toBe(error);
          expect(challengeOf(res), name).toContain(`DPoP error="${error}"`);
          // The error goes with the DPoP challenge; the Bearer one offers itself without an error.
          expect(challengeOf(res), name).toMatch(/^Bearer resource_metadata="[^"]+", scope="mcp", DPoP /);
        }
      });

      it('403 insufficient_scope on a DPoP request carries the error on the DPoP challenge', async () => {
        const token = await boundToken();
        const res = await app.request('/mcp/admin', { headers: await dpop(token, { htu: `${RESOURCE}/admin` }) });
        expect(res.status).toBe(403);
        expect(challengeOf(res)).toContain('DPoP error="insufficient_scope"');
      });
    });

    it('serves the RFC 9728 metadata at the path-inserted well-known URL', async () => {
      const res = await app.request(METADATA_PATH);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(JSON.parse(res.body)).toEqual({
        resource: RESOURCE,
        authorization_servers: [as.issuer],
        scopes_supported: ['mcp', 'read', 'admin'],
        bearer_methods_supported: ['header'],
        resource_name: 'Test MCP',
      });
      const preflight = await app.request(METADATA_PATH, { method: 'OPTIONS' });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('*');
      expect((await app.request('/.well-known/oauth-protected-resource')).status).not.toBe(200);
    });
  });

  describe(`${name} middleware with an issuer template`, () => {
    let host: TestIssuerHost;
    let app: AppUnderTest;
    let servers: string[];

    beforeAll(async () => {
      host = await startIssuerHost(['/t1', '/t2']);
      const verifier = createResourceVerifier({
        issuerTemplate: `${host.origin}/{tenant}`,
        authorizationServers: [`${host.origin}/t1`, `${host.origin}/t2`],
        resource: RESOURCE,
        requiredScopes: ['mcp'],
      });
      servers = [...verifier.authorizationServers];
      app = await factory(verifier, { resource: RESOURCE, authorizationServers: verifier.authorizationServers });
    });
    afterAll(async () => {
      await app?.close();
      await host?.close();
    });

    it('200 for each tenant, naming it; 401 for a token one tenant signed for another', async () => {
      for (const tenant of ['t1', 't2']) {
        const token = await host.issuers[`/${tenant}`]!.sign({ sub: `user-of-${tenant}` });
        const res = await app.request('/mcp', { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
        expect(JSON.parse(res.body)).toMatchObject({ subject: `user-of-${tenant}`, tenant, extraTenant: tenant });
      }
      const forged = await host.issuers['/t1']!.sign({ iss: `${host.origin}/t2` });
      const res = await app.request('/mcp', { headers: { authorization: `Bearer ${forged}` } });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
      const metadata = await app.request(METADATA_PATH);
      expect(JSON.parse(metadata.body)).toMatchObject({ authorization_servers: servers });
    });
  });
}
