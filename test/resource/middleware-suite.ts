/** The same HTTP-level scenarios, run against each framework adapter. */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceVerifier } from '../../src/resource/index.js';
import type { ProtectedResourceMetadataOptions, ResourceVerifier } from '../../src/resource/index.js';
import { startIssuer, startIssuerHost } from './issuer.js';
import type { TestIssuer, TestIssuerHost } from './issuer.js';

export const RESOURCE = 'https://mcp.example.com/mcp';
export const METADATA_URL = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';
export const METADATA_PATH = '/.well-known/oauth-protected-resource/mcp';

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
        expect(res.headers['www-authenticate']).toBe(`Bearer resource_metadata="${METADATA_URL}", scope="mcp"`);
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
            `^Bearer resource_metadata="${METADATA_URL}", error="invalid_token", error_description="[^"]+", scope="mcp"$`,
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
        `Bearer resource_metadata="${METADATA_URL}", error="insufficient_scope", error_description="the access token lacks a required scope", scope="mcp admin"`,
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
