/**
 * client_secret_jwt (RFC 7523 §2.2 with HS256, OIDC Core §9; MCP SEP-1046) over HTTP on every store, for config-file
 * and registered clients. The secret is needed to check an HMAC, so such clients exist only with an encryptionKey,
 * which keeps their secret sealed in the store beside the usual keyed hash; without the key the method is neither
 * advertised nor accepted. iss = sub = client_id, aud the issuer or the token endpoint (a single value), exp within
 * 600 s, jti single use.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { createPrivateKeyJwtAuth } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSealed } from '../../src/core/sealing.js';
import { parseConfig } from '../../src/config/load.js';
import { createGatehouse, createLogger } from '../../src/server.js';
import { basic, postForm, postJson } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES, type StoreCase } from '../helpers/stores.js';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SIGNER = { id: 'signer', secret: `signer-${randomBytes(24).toString('base64url')}` };
const encryptionKey = () => randomBytes(32).toString('base64');

const now = () => Math.floor(Date.now() / 1000);

/** An HS256 client assertion keyed with `secret` (iss = sub = `clientId`, aud `aud`, 5 minutes, a fresh jti). */
function assertion(clientId: string, secret: string, aud: string | string[], claims: JWTPayload = {}, alg = 'HS256') {
  const payload: JWTPayload = {
    iss: clientId,
    sub: clientId,
    aud,
    iat: now(),
    exp: now() + 300,
    jti: randomUUID(),
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

function machineToken(server: TestServer, clientAssertion: string, headers: Record<string, string> = {}) {
  return postForm(
    `${server.issuer}/token`,
    { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion },
    headers,
  );
}

for (const store of E2E_STORES) runOn(store);

function runOn(store: StoreCase) {
  describe(`client_secret_jwt on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_csj_${randomBytes(4).toString('hex')}`;
    let server: TestServer;

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer({
        encryptionKey: encryptionKey(),
        scopes: ['mcp:read'],
        registration: { allowClientCredentials: true },
        clients: [
          {
            client_id: SIGNER.id,
            client_secret: SIGNER.secret,
            grant_types: ['client_credentials'],
            token_endpoint_auth_method: 'client_secret_jwt',
            scope: 'mcp:read',
          },
        ],
        ...store.config(isolation),
      });
    }, 60_000);
    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await store.cleanup?.(isolation);
    });

    it('discovery lists client_secret_jwt and HS256 for the endpoints that authenticate clients', async (t) => {
      if (!(await available)) return t.skip();
      const md = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
        string,
        string[]
      >;
      expect(md.token_endpoint_auth_methods_supported).toContain('client_secret_jwt');
      expect(md.revocation_endpoint_auth_methods_supported).toContain('client_secret_jwt');
      expect(md.introspection_endpoint_auth_methods_supported).toContain('client_secret_jwt');
      expect(md.token_endpoint_auth_signing_alg_values_supported).toContain('HS256');
    });

    it('a config-file client signs with its secret (aud the issuer or the token endpoint); each assertion once', async (t) => {
      if (!(await available)) return t.skip();
      for (const aud of [server.issuer, `${server.issuer}/token`, [server.issuer]]) {
        const jwt = await assertion(SIGNER.id, SIGNER.secret, aud);
        const res = await machineToken(server, jwt);
        expect([res.status, res.json.scope], JSON.stringify(res.json)).toEqual([200, 'mcp:read']);
        const replay = await machineToken(server, jwt);
        expect([replay.status, replay.json.error]).toEqual([401, 'invalid_client']);
      }
      // The store holds the secret sealed, never in clear.
      const stored = await server.gatehouse.deps.storage.getClient(SIGNER.id);
      expect(isSealed(stored?.clientSecretSealed)).toBe(true);
      expect(JSON.stringify(stored)).not.toContain(SIGNER.secret);
    });

    it.each([
      ['expired', () => ({ iat: now() - 400, exp: now() - 10 })],
      ['a lifetime over 600 s', () => ({ exp: now() + 900 })],
      ['iat beyond the clock skew', () => ({ iat: now() + 120, exp: now() + 300 })],
      ['aud another server', () => ({ aud: 'https://as.example.org' })],
      ['aud the issuer and another server', (i: string) => ({ aud: [i, 'https://as.example.org'] })],
      ['no jti', () => ({ jti: undefined })],
      ['no exp', () => ({ exp: undefined })],
      ['sub another client', () => ({ sub: 'someone-else' })],
    ])('refuses an assertion with %s (401 invalid_client)', async (_name, claims) => {
      if (!(await available)) return;
      const res = await machineToken(
        server,
        await assertion(SIGNER.id, SIGNER.secret, server.issuer, claims(server.issuer)),
      );
      expect([res.status, res.json.error]).toEqual([401, 'invalid_client']);
    });

    it('refuses another key, another HMAC, a public-key signature and the secret itself', async (t) => {
      if (!(await available)) return t.skip();
      const refused = async (res: Promise<{ status: number; json: Record<string, unknown> }>) =>
        expect([(await res).status, (await res).json.error]).toEqual([401, 'invalid_client']);
      await refused(machineToken(server, await assertion(SIGNER.id, `${SIGNER.secret}x`, server.issuer)));
      await refused(machineToken(server, await assertion(SIGNER.id, SIGNER.secret, server.issuer, {}, 'HS512')));
      const pair = await generateKeyPair('ES256');
      const es256 = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(SIGNER.id)
        .setSubject(SIGNER.id)
        .setAudience(server.issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(pair.privateKey);
      await refused(machineToken(server, es256));
      // A client that chose client_secret_jwt never sends its secret: Basic with it is refused.
      const viaBasic = await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        { authorization: basic(SIGNER.id, SIGNER.secret) },
      );
      expect([viaBasic.status, viaBasic.json.error]).toEqual([401, 'invalid_client']);
    });

    it('a registered client gets a secret it signs with, kept sealed; RFC 7592 can switch a client to it and back', async (t) => {
      if (!(await available)) return t.skip();
      const reg = await postJson(`${server.issuer}/register`, {
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_jwt',
        scope: 'mcp:read',
      });
      expect(reg.status, JSON.stringify(reg.json)).toBe(201);
      expect(reg.json.token_endpoint_auth_method).toBe('client_secret_jwt');
      const { client_id: id, client_secret: issued } = reg.json as { client_id: string; client_secret: string };
      const ok = await machineToken(server, await assertion(id, issued, server.issuer));
      expect(ok.status, JSON.stringify(ok.json)).toBe(200);
      const stored = await server.gatehouse.deps.storage.getClient(id);
      expect(isSealed(stored?.clientSecretSealed)).toBe(true);
      expect(JSON.stringify(stored)).not.toContain(issued);

      // A client_secret_basic client switched to client_secret_jwt: its secret is only a hash here, so it gets a new one.
      const basicReg = await postJson(`${server.issuer}/register`, {
        grant_types: ['client_credentials'],
        scope: 'mcp:read',
      });
      expect(basicReg.status).toBe(201);
      const { client_id: bid, client_secret: first, registration_access_token: rat } = basicReg.json;
      const manage = (body: Record<string, unknown>) =>
        fetch(`${server.issuer}/register/${bid}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${rat}` },
          body: JSON.stringify({ client_id: bid, grant_types: ['client_credentials'], scope: 'mcp:read', ...body }),
        }).then(async (res) => ({ status: res.status, json: (await res.json()) as Record<string, string> }));
      const switched = await manage({ token_endpoint_auth_method: 'client_secret_jwt' });
      expect(switched.status, JSON.stringify(switched.json)).toBe(200);
      const second = switched.json.client_secret!;
      expect(second).toBeTruthy();
      expect(second).not.toBe(first);
      expect((await machineToken(server, await assertion(bid, second, server.issuer))).status).toBe(200);
      expect((await machineToken(server, await assertion(bid, first, server.issuer))).status).toBe(401);

      // And back: the current secret stays, sent as before; the sealed copy is gone.
      const back = await manage({ token_endpoint_auth_method: 'client_secret_basic' });
      expect(back.status).toBe(200);
      expect(back.json.client_secret).toBeUndefined();
      const viaBasic = await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        { authorization: basic(bid, second) },
      );
      expect(viaBasic.status).toBe(200);
      expect((await server.gatehouse.deps.storage.getClient(bid))?.clientSecretSealed).toBeUndefined();
    });
  });
}

describe('client_secret_jwt with a real client library, and without encryptionKey', () => {
  it("the MCP SDK's JWT client authentication with HS256 and the client secret is accepted", async () => {
    const server = await startServer({
      encryptionKey: encryptionKey(),
      scopes: ['mcp:read'],
      clients: [
        {
          client_id: SIGNER.id,
          client_secret: SIGNER.secret,
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_jwt',
          scope: 'mcp:read',
        },
      ],
    });
    try {
      const params = new URLSearchParams({ grant_type: 'client_credentials' });
      const addAuth = createPrivateKeyJwtAuth({
        issuer: SIGNER.id,
        subject: SIGNER.id,
        privateKey: SIGNER.secret,
        alg: 'HS256',
      });
      const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as {
        issuer: string;
        token_endpoint: string;
      };
      await addAuth(new Headers(), params, metadata.token_endpoint, metadata as never);
      const res = await postForm(metadata.token_endpoint, Object.fromEntries(params));
      expect([res.status, res.json.token_type], JSON.stringify(res.json)).toEqual([200, 'Bearer']);
    } finally {
      await server.close();
    }
  });

  it('without encryptionKey: not advertised, not registrable, and a config-file client is a start error', async () => {
    const server = await startServer({ registration: { allowClientCredentials: true } });
    try {
      const md = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
        string,
        string[]
      >;
      expect(md.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
      expect(md.token_endpoint_auth_signing_alg_values_supported).not.toContain('HS256');
      const reg = await postJson(`${server.issuer}/register`, {
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_jwt',
      });
      expect([reg.status, reg.json.error]).toEqual([400, 'invalid_client_metadata']);
    } finally {
      await server.close();
    }
    const staticClient = {
      client_id: SIGNER.id,
      client_secret: SIGNER.secret,
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_jwt' as const,
    };
    const start = (config: Record<string, unknown>) =>
      createGatehouse(parseConfig({ storage: 'memory', logLevel: 'silent', ...config }), {
        logger: createLogger('silent'),
      });
    await expect(start({ clients: [staticClient] })).rejects.toThrow(
      /clients\[signer\]\.token_endpoint_auth_method: client_secret_jwt needs encryptionKey/,
    );
    // With the key, a secret shorter than the 256-bit HS256 key is refused too.
    await expect(
      start({ encryptionKey: encryptionKey(), clients: [{ ...staticClient, client_secret: 'x'.repeat(31) }] }),
    ).rejects.toThrow(/clients\[signer\]\.client_secret: client_secret_jwt needs a secret of at least 32 bytes/);
  });
});
