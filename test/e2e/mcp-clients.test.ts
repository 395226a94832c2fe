/**
 * What real MCP clients do today, as fixtures: each registers (or presents a metadata document) the way that
 * client does, authorizes with the redirect URI it really uses, and redeems the code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceVerifier, type ResourceVerifier } from '../../src/resource/index.js';
import { FormBrowser } from '../helpers/browser.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { authorizeThroughPages, challenge, postForm, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const MCP = 'https://mcp.example.com/mcp';
let server: TestServer;
let cimd: CimdServer;

beforeAll(async () => {
  cimd = await startCimdServer();
  server = await startServer({
    scopes: ['mcp:read'],
    resources: [MCP, 'https://api.example.com/'],
    clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile },
  });
});
afterAll(async () => {
  await server.close();
  cimd.close();
});

async function register(metadata: Record<string, unknown>, origin?: string) {
  const res = await fetch(`${server.issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) },
    body: JSON.stringify(metadata),
  });
  expect(res.status).toBe(201);
  if (origin) expect(res.headers.get('access-control-allow-origin')).toBe('*');
  return (await res.json()).client_id as string;
}

/** authorize (pages) -> code -> token, with the redirect URI the client uses at run time. */
async function flow(
  clientId: string,
  redirectUri: string,
  extra: Record<string, string | string[]> = {},
  origin?: string,
) {
  const { callback, verifier: v } = await authorizeThroughPages(server, clientId, redirectUri, ALICE, extra);
  expect(callback.href.startsWith(redirectUri.split('?')[0]!)).toBe(true);
  expect(callback.searchParams.get('iss')).toBe(server.issuer);
  const code = callback.searchParams.get('code');
  expect(code).toBeTruthy();
  const token = await postForm(
    `${server.issuer}/token`,
    { grant_type: 'authorization_code', client_id: clientId, code: code!, code_verifier: v, redirect_uri: redirectUri },
    origin ? { origin } : {},
  );
  expect(token.status).toBe(200);
  if (origin) expect(token.headers.get('access-control-allow-origin')).toBe('*');
  return token.json;
}

/** The MCP server's view: the gatehouse/resource verifier for MCP. */
let verifierForMcp: ResourceVerifier | undefined;
const mcpVerifier = () => (verifierForMcp ??= createResourceVerifier({ issuer: server.issuer, resource: MCP }));

const aud = (jwt: unknown) => JSON.parse(Buffer.from(String(jwt).split('.')[1]!, 'base64url').toString()).aud;

describe('real MCP client fixtures', () => {
  it('VS Code: registers three redirect URIs, then uses a random loopback port', async () => {
    const id = await register({
      client_name: 'Visual Studio Code',
      redirect_uris: ['http://127.0.0.1:33418/', 'http://127.0.0.1/', 'https://vscode.dev/redirect'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    });
    const t1 = await flow(id, 'http://127.0.0.1:33418/', { resource: MCP });
    expect(aud(t1.access_token)).toBe(MCP);
    const t2 = await flow(id, 'http://127.0.0.1:51234/', { resource: MCP });
    expect(t2.refresh_token).toBeTruthy();
    await flow(id, 'https://vscode.dev/redirect', { resource: MCP });
  });

  it('Claude: a metadata document with port-less localhost redirect, an ephemeral port, offline_access', async () => {
    const clientId = `${cimd.origin}/oauth/claude-client.json`;
    cimd.docs.set('/oauth/claude-client.json', {
      body: JSON.stringify({
        client_id: clientId,
        client_name: 'Claude',
        client_uri: 'https://claude.ai',
        redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    });
    const t = await flow(clientId, 'http://localhost:61234/callback', {
      resource: MCP,
      scope: 'mcp:read offline_access',
    });
    expect(t.scope).toBe('mcp:read offline_access');
    expect(t.refresh_token).toBeTruthy();
    expect((await mcpVerifier().verify(t.access_token as string)).clientId).toBe(clientId);
    // The refresh token rotates: each use returns a new one, which works in turn and keeps the resource.
    let refresh = t.refresh_token as string;
    for (let i = 0; i < 2; i++) {
      const r = await postForm(`${server.issuer}/token`, {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: refresh,
      });
      expect(r.status).toBe(200);
      expect(r.json.refresh_token).toBeTruthy();
      expect(r.json.refresh_token).not.toBe(refresh);
      expect(aud(r.json.access_token)).toBe(MCP);
      await mcpVerifier().verify(r.json.access_token as string);
      refresh = r.json.refresh_token as string;
    }
  });

  it('Claude: the consent page names the document host and warns about localhost-only redirects', async () => {
    const clientId = `${cimd.origin}/oauth/claude-client.json`;
    const v = verifier();
    const u = new URL(`${server.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: 'http://localhost:40000/callback',
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
    }).toString();
    const browser = new FormBrowser();
    const step = await browser.follow(u.href, server.origin);
    const consent = await browser.submit(await step.res.text(), step.url, server.origin, {
      username: ALICE.username,
      password: ALICE.password,
    });
    const html = await consent.res.text();
    expect(html).toContain('name="decision"');
    expect(html).toContain(new URL(cimd.origin).host);
    expect(html).toContain('localhost:40000');
    expect(html).toContain('any program on this computer');
  });

  it('Cursor: a private-use scheme, an https and a loopback redirect in one registration, each usable', async () => {
    const uris = [
      'cursor://anysphere.cursor-mcp/oauth/callback',
      'https://www.cursor.com/agents/mcp/oauth/callback',
      'http://127.0.0.1:61000/oauth/callback',
    ];
    const id = await register({
      client_name: 'Cursor',
      redirect_uris: uris,
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    });
    for (const uri of uris) {
      const t = await flow(id, uri, { resource: MCP, scope: 'mcp:read' });
      expect(aud(t.access_token), uri).toBe(MCP);
      expect((await mcpVerifier().verify(t.access_token as string)).clientId, uri).toBe(id);
    }
  });

  it('MCP Inspector: a browser client that needs CORS on register and token', async () => {
    const origin = 'http://localhost:6274';
    const pre = await fetch(`${server.issuer}/register`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
    const id = await register(
      {
        client_name: 'MCP Inspector',
        redirect_uris: ['http://localhost:6274/oauth/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
      },
      origin,
    );
    const t = await flow(id, 'http://localhost:6274/oauth/callback', { resource: MCP }, origin);
    expect(aud(t.access_token)).toBe(MCP);
  });

  it('resource sent with or without a trailing slash maps to the configured form', async () => {
    const id = await register({ redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' });
    expect(aud((await flow(id, 'http://127.0.0.1/cb', { resource: `${MCP}/` })).access_token)).toBe(MCP);
    expect(aud((await flow(id, 'http://127.0.0.1/cb', { resource: 'https://api.example.com' })).access_token)).toBe(
      'https://api.example.com/',
    );
    // A resource the server does not serve is invalid_target.
    const u = new URL(`${server.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: id,
      redirect_uri: 'http://127.0.0.1/cb',
      response_type: 'code',
      code_challenge: challenge(verifier()),
      code_challenge_method: 'S256',
      resource: 'https://elsewhere.example.com/mcp',
    }).toString();
    const res = await fetch(u, { redirect: 'manual' });
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('invalid_target');
  });
});
