/**
 * private_key_jwt for registered and config-file clients (RFC 7523 §2.2, RFC 7591 `jwks`; MCP SEP-1046 client
 * credentials), on every store: a client registers its public key, gets no secret, and obtains client_credentials
 * tokens with assertions signed by its private key — the MCP SDK's own signer included; each assertion once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createPrivateKeyJwtAuth } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createGatehouse, createLogger } from '../../src/server.js';
import { postForm, postJson } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let privateKey: CryptoKey;
let publicJwk: JWK;
let otherPrivateKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  otherPrivateKey = (await generateKeyPair('ES256')).privateKey;
});

/** A client assertion: iss = sub = clientId, aud the issuer, 2 minutes, a fresh jti. */
function assertion(clientId: string, aud: string, key = privateKey, kid = 'k1'): Promise<string> {
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(key);
}

for (const store of E2E_STORES) {
  describe(`private_key_jwt clients on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_pkj_${randomBytes(4).toString('hex')}`;
    let server: TestServer;

    beforeAll(async () => {
      if (!(await available)) return;
      server = await startServer({
        scopes: ['jobs:run'],
        registration: { allowClientCredentials: true },
        clients: [
          {
            client_id: 'batch-worker',
            token_endpoint_auth_method: 'private_key_jwt',
            jwks: { keys: [publicJwk] },
            grant_types: ['client_credentials'],
            scope: 'jobs:run',
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

    const token = (clientId: string, clientAssertion: string, extra: Record<string, string> = {}) =>
      postForm(`${server.issuer}/token`, {
        grant_type: 'client_credentials',
        client_id: clientId,
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: clientAssertion,
        ...extra,
      });

    it('a registered client with jwks gets no secret and client_credentials tokens; an assertion works once', async (t) => {
      if (!(await available)) return t.skip();
      const reg = await postJson(`${server.issuer}/register`, {
        token_endpoint_auth_method: 'private_key_jwt',
        grant_types: ['client_credentials'],
        jwks: { keys: [publicJwk] },
        scope: 'jobs:run',
      });
      expect(reg.status, JSON.stringify(reg.json)).toBe(201);
      expect(reg.json.client_secret).toBeUndefined();
      expect(reg.json.token_endpoint_auth_method).toBe('private_key_jwt');
      expect(reg.json.jwks).toEqual({ keys: [publicJwk] });
      const clientId = reg.json.client_id as string;

      const signed = await assertion(clientId, server.issuer);
      const first = await token(clientId, signed, { scope: 'jobs:run' });
      expect([first.status, first.json.token_type, first.json.scope]).toEqual([200, 'Bearer', 'jobs:run']);
      const replay = await token(clientId, signed);
      expect([replay.status, replay.json.error]).toEqual([401, 'invalid_client']);
      // Another key, another audience, or a plain secret: refused.
      expect((await token(clientId, await assertion(clientId, server.issuer, otherPrivateKey))).status).toBe(401);
      expect((await token(clientId, await assertion(clientId, `${server.issuer}/token`))).status).toBe(401);
      const secretTry = await postForm(`${server.issuer}/token`, {
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: 'guess',
      });
      expect(secretTry.status).toBe(401);
    });

    it('a config-file client with jwks works with the MCP SDK’s private_key_jwt signer', async (t) => {
      if (!(await available)) return t.skip();
      const metadata = (await (await fetch(`${server.origin}/.well-known/oauth-authorization-server`)).json()) as {
        issuer: string;
        token_endpoint: string;
        token_endpoint_auth_methods_supported: string[];
      };
      expect(metadata.token_endpoint_auth_methods_supported).toContain('private_key_jwt');
      const params = new URLSearchParams({ grant_type: 'client_credentials', scope: 'jobs:run' });
      const addAuth = createPrivateKeyJwtAuth({
        issuer: 'batch-worker',
        subject: 'batch-worker',
        privateKey: await exportJWK(privateKey),
        alg: 'ES256',
      });
      await addAuth(new Headers(), params, metadata.token_endpoint, metadata as never);
      const res = await postForm(metadata.token_endpoint, Object.fromEntries(params));
      expect([res.status, res.json.scope], JSON.stringify(res.json)).toEqual([200, 'jobs:run']);
    });

    it('registration refuses private keys, symmetric keys, both jwks and jwks_uri, and private_key_jwt without keys', async (t) => {
      if (!(await available)) return t.skip();
      const privateJwk = await exportJWK(privateKey);
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ jwks: { keys: [privateJwk] } }, /private key/],
        [{ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, /kty must be EC, RSA or OKP/],
        [{ jwks: { keys: [publicJwk] }, jwks_uri: 'https://keys.example.com/jwks.json' }, /must not both/],
        [{}, /requires jwks or jwks_uri/],
        [{ jwks_uri: 'http://keys.example.com/jwks.json' }, /https/],
      ];
      for (const [body, message] of cases) {
        const res = await postJson(`${server.issuer}/register`, {
          token_endpoint_auth_method: 'private_key_jwt',
          grant_types: ['client_credentials'],
          ...body,
        });
        expect([res.status, res.json.error], JSON.stringify(body)).toEqual([400, 'invalid_client_metadata']);
        expect(res.json.error_description).toMatch(message);
      }
    });
  });
}

describe('private_key_jwt config-file clients', () => {
  it('a client_secret on a private_key_jwt client, or no keys, stops the start with the field named', async () => {
    const base = { storage: 'memory', logLevel: 'silent' as const, issuer: 'http://localhost:1' };
    const keys = { jwks: { keys: [publicJwk as Record<string, unknown>] } };
    const start = (client: Record<string, unknown>) =>
      createGatehouse(
        parseConfig({
          ...base,
          clients: [
            {
              client_id: 'w',
              token_endpoint_auth_method: 'private_key_jwt',
              grant_types: ['client_credentials'],
              ...client,
            },
          ],
        }),
        { logger: createLogger('silent') },
      );
    await expect(start({ ...keys, client_secret: 'x'.repeat(40) })).rejects.toThrow(
      /clients\[w\]\.client_secret: a private_key_jwt client has no secret/,
    );
    await expect(start({})).rejects.toThrow(/clients\[w\]: private_key_jwt requires jwks or jwks_uri/);
  });
});
