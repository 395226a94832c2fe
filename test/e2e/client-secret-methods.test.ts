/**
 * Which client authentication a client may use over HTTP. A client holding a secret may send it with either secret
 * method, whichever it registered (RFC 6749 §2.3.1 makes Basic mandatory for every client issued a secret, and
 * clients such as the MCP conformance tool choose from our metadata); the secret methods never stand in for
 * `none` or `private_key_jwt`, nor the other way round.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, postForm, postJson } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';

type SecretMethod = 'client_secret_basic' | 'client_secret_post';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ scopes: ['mcp:read'], registration: { allowClientCredentials: true } });
});
afterAll(() => server.close());

async function register(method: SecretMethod | 'none') {
  const reg = await postJson(`${server.issuer}/register`, {
    client_name: `registered for ${method}`,
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: method === 'none' ? ['authorization_code'] : ['client_credentials'],
    scope: 'mcp:read',
    token_endpoint_auth_method: method,
  });
  expect(reg.status).toBe(201);
  expect(reg.json.token_endpoint_auth_method).toBe(method);
  return { clientId: reg.json.client_id as string, secret: reg.json.client_secret as string | undefined };
}

/** A client_credentials token request authenticated with `method`. */
function tokenRequest(method: SecretMethod, clientId: string, secret: string) {
  const form = { grant_type: 'client_credentials', scope: 'mcp:read' };
  return method === 'client_secret_post'
    ? postForm(`${server.issuer}/token`, { ...form, client_id: clientId, client_secret: secret })
    : postForm(`${server.issuer}/token`, form, { authorization: basic(clientId, secret) });
}

const other = (m: SecretMethod): SecretMethod =>
  m === 'client_secret_basic' ? 'client_secret_post' : 'client_secret_basic';

describe.each<SecretMethod>(['client_secret_basic', 'client_secret_post'])(
  'a client registered for %s',
  (registered) => {
    it(`gets a token with its registered method and with ${other(registered)}`, async () => {
      const { clientId, secret } = await register(registered);
      for (const method of [registered, other(registered)]) {
        const res = await tokenRequest(method, clientId, secret!);
        expect(res.status, method).toBe(200);
        expect(res.json.token_type).toBe('Bearer');
        expect(typeof res.json.access_token).toBe('string');
      }
    });

    it(`is refused with a wrong secret through ${other(registered)} (401 invalid_client)`, async () => {
      const { clientId } = await register(registered);
      const res = await tokenRequest(other(registered), clientId, 'not-the-secret');
      expect(res.status).toBe(401);
      expect(res.json.error).toBe('invalid_client');
      // RFC 6749 §5.2: the Basic challenge answers a failed Basic attempt, and only that.
      expect(res.headers.get('www-authenticate')).toBe(
        other(registered) === 'client_secret_basic' ? 'Basic realm="gatehouse"' : null,
      );
    });

    it('may introspect with the other secret method too', async () => {
      const { clientId, secret } = await register(registered);
      const token = (await tokenRequest(registered, clientId, secret!)).json.access_token as string;
      const via = other(registered);
      const res =
        via === 'client_secret_post'
          ? await postForm(`${server.issuer}/introspect`, { token, client_id: clientId, client_secret: secret! })
          : await postForm(`${server.issuer}/introspect`, { token }, { authorization: basic(clientId, secret!) });
      expect(res.status).toBe(200);
      expect(res.json.active).toBe(true);
    });

    it('is refused when it sends no secret at all (client_id only, as a public client would)', async () => {
      const { clientId } = await register(registered);
      const res = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', client_id: clientId });
      expect(res.status).toBe(401);
      expect(res.json.error).toBe('invalid_client');
    });
  },
);

describe('a public client', () => {
  it.each<SecretMethod>(['client_secret_basic', 'client_secret_post'])(
    'is refused when it presents a secret with %s',
    async (method) => {
      const { clientId } = await register('none');
      const res = await tokenRequest(method, clientId, 'made-up-secret');
      expect(res.status).toBe(401);
      expect(res.json.error).toBe('invalid_client');
    },
  );
});
