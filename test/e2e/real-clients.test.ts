/**
 * More real clients as fixtures (see mcp-clients.test.ts for VS Code, Claude, Cursor and the MCP Inspector): each
 * registers the way that client does, authorizes through the real pages, redeems the code, uses the access token at
 * an MCP server (the gatehouse/resource verifier) and refreshes where the client does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceVerifier, type ResourceVerifier } from '../../src/resource/index.js';
import { authorizeThroughPages, postForm, postJson } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const MCP = 'https://mcp.example.com/mcp';

type Params = Record<string, string | string[]>;

/** authorize (pages) → code → token; `tokenExtra` adds form fields (client_secret, resource) to the token request. */
async function flow(
  server: TestServer,
  clientId: string,
  redirectUri: string,
  extra: Params = {},
  tokenExtra: Params = {},
) {
  const { callback, verifier: v } = await authorizeThroughPages(server, clientId, redirectUri, ALICE, extra);
  expect(callback.origin + callback.pathname).toBe(redirectUri);
  expect(callback.searchParams.get('state')).toBe('st');
  expect(callback.searchParams.get('iss')).toBe(server.issuer);
  const code = callback.searchParams.get('code');
  expect(code, callback.href).toBeTruthy();
  const token = await postForm(`${server.issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code: code!,
    code_verifier: v,
    redirect_uri: redirectUri,
    ...tokenExtra,
  });
  expect(token.status, JSON.stringify(token.json)).toBe(200);
  return token.json as { access_token: string; refresh_token?: string; scope?: string };
}

const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as {
    aud: string | string[];
    client_id: string;
    scope?: string;
  };
const audience = (jwt: string) => [claims(jwt).aud].flat();

async function register(server: TestServer, metadata: Record<string, unknown>) {
  const r = await postJson(`${server.issuer}/register`, metadata);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json as { client_id: string; client_secret?: string; scope?: string };
}

describe('ChatGPT: registers without scope', () => {
  let server: TestServer;
  let mcp: ResourceVerifier;
  beforeAll(async () => {
    server = await startServer({ scopes: ['mcp:read', 'mcp:write'], resources: [MCP] });
    mcp = createResourceVerifier({ issuer: server.issuer, resource: MCP, requiredScopes: ['mcp:read'] });
  });
  afterAll(() => server.close());

  it('DCR without scope, then authorize for the scope the MCP server asks, use the token, refresh', async () => {
    const redirectUri = 'https://chatgpt.com/connector_platform_oauth_redirect';
    // A server-side client: registered confidential, authenticating in the body. No `scope` in the request.
    const reg = await register(server, {
      client_name: 'ChatGPT',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    expect(reg.scope).toBeUndefined();
    expect(reg.client_secret).toBeTruthy();
    const secret = { client_secret: reg.client_secret! };

    const t = await flow(server, reg.client_id, redirectUri, { scope: 'mcp:read', resource: MCP }, secret);
    expect(t.scope).toBe('mcp:read');
    const auth = await mcp.verify(t.access_token);
    expect(auth.clientId).toBe(reg.client_id);
    expect(auth.audience).toEqual([MCP]);

    const r = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: reg.client_id,
      refresh_token: t.refresh_token!,
      ...secret,
    });
    expect(r.status).toBe(200);
    expect(r.json.refresh_token).not.toBe(t.refresh_token);
    expect((await mcp.verify(r.json.access_token as string)).scopes).toEqual(['mcp:read']);
  });
});

describe('Gemini: authorizes and redeems without resource', () => {
  const redirectUri = 'http://localhost:7777/oauth/callback';
  const gemini = {
    client_name: 'Gemini CLI MCP Client',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  };

  it('with defaultResource configured: the token is bound to it, also after a refresh', async () => {
    const server = await startServer({ scopes: ['mcp:read'], resources: [MCP], defaultResource: MCP });
    try {
      const mcp = createResourceVerifier({ issuer: server.issuer, resource: MCP, requiredScopes: ['mcp:read'] });
      const { client_id } = await register(server, gemini);
      const t = await flow(server, client_id, redirectUri, { scope: 'mcp:read' });
      expect(audience(t.access_token)).toEqual([MCP]);
      expect((await mcp.verify(t.access_token)).clientId).toBe(client_id);
      const r = await postForm(`${server.issuer}/token`, {
        grant_type: 'refresh_token',
        client_id,
        refresh_token: t.refresh_token!,
      });
      expect(r.status).toBe(200);
      expect(audience(r.json.access_token as string)).toEqual([MCP]);
      await mcp.verify(r.json.access_token as string);
    } finally {
      await server.close();
    }
  });

  it('without defaultResource: the token is issued with aud = the client_id, which an MCP server refuses', async () => {
    // Documented behaviour (README `defaultResource`): with no resource named and no default, the token is bound to
    // the client itself, so it is no bearer for any resource server; configure `defaultResource` for such clients.
    const server = await startServer({ scopes: ['mcp:read'], resources: [MCP] });
    try {
      const mcp = createResourceVerifier({ issuer: server.issuer, resource: MCP, requiredScopes: ['mcp:read'] });
      const { client_id } = await register(server, gemini);
      const t = await flow(server, client_id, redirectUri, { scope: 'mcp:read' });
      expect(audience(t.access_token)).toEqual([client_id]);
      await expect(mcp.verify(t.access_token)).rejects.toMatchObject({ code: 'invalid_token' });
      // The same client naming the resource gets a token the MCP server accepts: only the missing resource differs.
      const named = await flow(server, client_id, redirectUri, { scope: 'mcp:read', resource: MCP });
      expect((await mcp.verify(named.access_token)).audience).toEqual([MCP]);
    } finally {
      await server.close();
    }
  });
});

describe('VS Code: its fixed port is taken, so it falls back to another', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ scopes: ['mcp:read'], resources: [MCP] });
  });
  afterAll(() => server.close());

  // RFC 8252 §7.3: loopback redirect URIs match on any port. VS Code registers http://127.0.0.1:33418/ and, when
  // 33418 is busy, listens on an ephemeral port.
  it('registers http://127.0.0.1:33418/ only, then authorizes at http://127.0.0.1:51234/', async () => {
    const mcp = createResourceVerifier({ issuer: server.issuer, resource: MCP, requiredScopes: ['mcp:read'] });
    const { client_id } = await register(server, {
      client_name: 'Visual Studio Code',
      redirect_uris: ['http://127.0.0.1:33418/', 'https://vscode.dev/redirect'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    });
    const t = await flow(server, client_id, 'http://127.0.0.1:51234/', { scope: 'mcp:read', resource: MCP });
    expect((await mcp.verify(t.access_token)).clientId).toBe(client_id);
    const r = await postForm(`${server.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id,
      refresh_token: t.refresh_token!,
    });
    expect(r.status).toBe(200);
  });
});
