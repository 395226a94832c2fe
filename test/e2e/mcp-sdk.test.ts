/**
 * The MCP authorization spec end to end with the official SDK client: 401 -> RFC 9728 discovery -> RFC 8414
 * discovery -> DCR (and, separately, a Client ID Metadata Document) -> PKCE code flow through the real pages ->
 * resource-bound token -> tools/list, whoami -> refresh -> step-up to more scope (with examples/mcp-client/step-up.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server/server.js';
import { stepUpFetch } from '../../examples/mcp-client/step-up.js';
import { TestOAuthProvider } from '../helpers/mcp-client.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';
import { postForm } from '../helpers/oauth.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';

let gatehouse: TestServer;
let mcp: ExampleMcpServer;
let other: ExampleMcpServer;
let cimd: CimdServer;
let cimdOrigin: string;
let cimdDocs: CimdServer['docs'];

beforeAll(async () => {
  cimd = await startCimdServer();
  cimdOrigin = cimd.origin;
  cimdDocs = cimd.docs;
  gatehouse = await startServer({
    scopes: ['mcp:read', 'mcp:write'],
    // Every test's SDK client registers a client of its own (dedupe would share one, with earlier tests' consents).
    registration: { dedupe: { windowSeconds: 0 } },
    clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile, timeoutMs: 1000 },
  });
  mcp = await startExampleMcpServer({ port: 0, issuer: gatehouse.issuer });
  other = await startExampleMcpServer({ port: 0, issuer: gatehouse.issuer });
});
afterAll(async () => {
  await mcp?.close();
  await other?.close();
  await gatehouse?.close();
  cimd?.close();
});

/** Connects, handling the one interactive authorization the SDK asks for. */
async function connect(provider: TestOAuthProvider, url = mcp.url): Promise<Client> {
  const client = new Client({ name: 'test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  try {
    await client.connect(transport);
    return client;
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  expect(provider.lastCode).toBeTruthy();
  await transport.finishAuth(provider.lastCode!);
  const next = new Client({ name: 'test', version: '1.0.0' });
  await next.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  return next;
}

function claims(jwt: string) {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
}

describe('MCP SDK client against the example server', () => {
  it('discovers, registers (DCR), authorizes, calls whoami, refreshes, and challenges for more scope', async () => {
    const provider = new TestOAuthProvider({
      redirectUrl: 'http://127.0.0.1/callback',
      asOrigin: gatehouse.origin,
      user: ALICE,
    });
    const client = await connect(provider);
    // The authorization request carried PKCE S256 and the MCP server's resource.
    const authUrl = provider.lastAuthorizationUrl!;
    expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authUrl.searchParams.get('resource')).toBe(mcp.resource);

    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name).sort()).toEqual(['whoami', 'write_note']);
    const token = provider.tokens()!.access_token;
    expect(claims(token).aud).toBe(mcp.resource);
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    const me = JSON.parse((who.content as { text: string }[])[0]!.text);
    expect(me.client_id).toBe(provider.clientInformation()!.client_id);
    expect(me.scopes).toContain('mcp:read');
    expect(me.subject).toBe(claims(token).sub);

    // Refresh through the SDK: a new pair, and the new access token works.
    const oldRefresh = provider.tokens()!.refresh_token;
    expect(await auth(provider, { serverUrl: mcp.url })).toBe('AUTHORIZED');
    expect(provider.tokens()!.refresh_token).not.toBe(oldRefresh);
    const client2 = new Client({ name: 'test', version: '1.0.0' });
    await client2.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider }));
    await client2.callTool({ name: 'whoami', arguments: {} });

    // Step-up: write_note needs mcp:write -> 403 insufficient_scope naming what was granted plus what is missing.
    const direct = await fetch(mcp.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${provider.tokens()!.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'write_note', arguments: { text: 'x' } },
      }),
    });
    expect(direct.status).toBe(403);
    const challenge = direct.headers.get('www-authenticate')!;
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="mcp:read mcp:write"');
    expect(challenge).toContain('resource_metadata=');
  });

  it('steps up to more scope through the SDK with the stepUpFetch recipe', async () => {
    const provider = new TestOAuthProvider({
      redirectUrl: 'http://127.0.0.1/callback',
      asOrigin: gatehouse.origin,
      user: ALICE,
    });
    // The first authorization asks for mcp:read only (what the 401 challenge names).
    const first = await connect(provider);
    await first.close();
    expect(provider.tokens()!.scope).toBe('mcp:read');
    const grantRefresh = provider.tokens()!.refresh_token!;

    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), {
      authProvider: provider,
      fetch: stepUpFetch(provider),
    });
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(transport);
    // 403 -> the SDK starts a new authorization for the challenge's scope (login and consent in the browser) -> redirect.
    await expect(client.callTool({ name: 'write_note', arguments: { text: 'hello' } })).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    expect(provider.lastAuthorizationUrl!.searchParams.get('scope')).toBe('mcp:read mcp:write');
    expect(provider.lastAuthorizationUrl!.searchParams.get('resource')).toBe(mcp.resource);
    await transport.finishAuth(provider.lastCode!);
    expect(provider.tokens()!.scope!.split(' ').sort()).toEqual(['mcp:read', 'mcp:write']);
    expect(claims(provider.tokens()!.access_token).aud).toBe(mcp.resource);
    // The same client and transport now succeed.
    const note = await client.callTool({ name: 'write_note', arguments: { text: 'hello' } });
    expect((note.content as { text: string }[])[0]!.text).toBe('saved: hello');
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.parse((who.content as { text: string }[])[0]!.text).scopes.sort()).toEqual(['mcp:read', 'mcp:write']);
    await client.close();
    // The earlier grant was not lost, and refresh tokens now carry the wider scope.
    const info = provider.clientInformation()!;
    const stillValid = await postForm(`${gatehouse.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: info.client_id,
      refresh_token: grantRefresh,
    });
    expect(stillValid.status).toBe(200);
    expect(await auth(provider, { serverUrl: mcp.url })).toBe('AUTHORIZED');
    expect(provider.tokens()!.scope!.split(' ').sort()).toEqual(['mcp:read', 'mcp:write']);
  });

  it('without the recipe, MCP SDK 1.x refreshes on 403 and dead-ends (the limitation the README documents)', async () => {
    const provider = new TestOAuthProvider({
      redirectUrl: 'http://127.0.0.1/callback',
      asOrigin: gatehouse.origin,
      user: ALICE,
    });
    const client = await connect(provider);
    const before = provider.lastAuthorizationUrl;
    const refresh = provider.tokens()!.refresh_token;
    await expect(client.callTool({ name: 'write_note', arguments: { text: 'x' } })).rejects.toThrow(
      /403 after trying upscoping/,
    );
    // It refreshed (a refresh cannot add scope) instead of asking the user: no new authorization, same scope.
    expect(provider.lastAuthorizationUrl).toBe(before);
    expect(provider.tokens()!.refresh_token).not.toBe(refresh);
    expect(provider.tokens()!.scope).toBe('mcp:read');
    await client.close();
  });
});

describe('refresh cannot add scope (RFC 6749 §6)', () => {
  it('answers invalid_scope naming the scope that was not granted', async () => {
    const provider = new TestOAuthProvider({
      redirectUrl: 'http://127.0.0.1/callback',
      asOrigin: gatehouse.origin,
      user: ALICE,
    });
    await (await connect(provider)).close();
    const res = await postForm(`${gatehouse.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: provider.clientInformation()!.client_id,
      refresh_token: provider.tokens()!.refresh_token!,
      scope: 'mcp:read mcp:write',
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_scope');
    expect(res.json.error_description).toContain('mcp:write');
    expect(res.json.error_description).not.toContain('mcp:read');
  });
});

describe('MCP SDK client, other registrations', () => {
  it('registers with a Client ID Metadata Document instead of DCR', async () => {
    const clientId = `${cimdOrigin}/clients/claude.json`;
    cimdDocs.set('/clients/claude.json', {
      body: JSON.stringify({
        client_id: clientId,
        client_name: 'Claude-like CIMD client',
        redirect_uris: ['http://localhost/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
      }),
    });
    const provider = new TestOAuthProvider({
      redirectUrl: 'http://localhost:53682/callback',
      asOrigin: gatehouse.origin,
      user: ALICE,
      clientMetadataUrl: clientId,
    });
    const client = await connect(provider);
    expect(provider.clientInformation()!.client_id).toBe(clientId);
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.parse((who.content as { text: string }[])[0]!.text).client_id).toBe(clientId);
    // Nothing was registered in the store: the document is the registration.
    expect(await gatehouse.gatehouse.deps.storage.getClient(clientId)).toBeUndefined();
  });

  it('a token for another MCP server is refused by this one', async () => {
    const provider = new TestOAuthProvider({
      redirectUrl: 'http://127.0.0.1/callback',
      asOrigin: gatehouse.origin,
      user: ALICE,
    });
    await connect(provider, other.url);
    const res = await fetch(mcp.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${provider.tokens()!.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});

describe('Client ID Metadata Document refusals', () => {
  const authorizeWith = async (clientId: string) => {
    const u = new URL(`${gatehouse.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: 'http://localhost/callback',
      response_type: 'code',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    const res = await fetch(u, { redirect: 'manual' });
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  };

  it('refuses a document whose client_id lies about its URL', async () => {
    cimdDocs.set('/liar.json', {
      body: JSON.stringify({
        client_id: `${cimdOrigin}/someone-else.json`,
        redirect_uris: ['http://localhost/callback'],
      }),
    });
    const r = await authorizeWith(`${cimdOrigin}/liar.json`);
    expect(r.status).toBe(401);
    expect(r.location).toBeNull();
    expect(r.html).toContain('does not match its URL');
  });

  it('refuses a document that is too large', async () => {
    const id = `${cimdOrigin}/big.json`;
    cimdDocs.set('/big.json', {
      body: JSON.stringify({ client_id: id, redirect_uris: ['http://localhost/callback'], pad: 'x'.repeat(10_000) }),
    });
    expect((await authorizeWith(id)).html).toContain('larger than');
  });

  it('refuses a document that is too slow', async () => {
    const id = `${cimdOrigin}/slow.json`;
    cimdDocs.set('/slow.json', {
      delayMs: 2500,
      body: JSON.stringify({ client_id: id, redirect_uris: ['http://localhost/callback'] }),
    });
    const started = Date.now();
    const r = await authorizeWith(id);
    expect(Date.now() - started).toBeLessThan(2400);
    expect(r.html).toMatch(/within 1000 ms/);
  });

  it('refuses documents on forbidden addresses unless allowed, and http URLs', async () => {
    const strict = await startServer({ scopes: ['mcp:read'] });
    try {
      for (const [id, expected] of [
        [`${cimdOrigin}/clients/claude.json`, 'forbidden address'],
        ['https://127.0.0.1:1/x.json', 'not allowed'],
        ['https://[::1]:1/x.json', 'not allowed'],
        ['https://169.254.169.254/latest/meta-data', 'not allowed'],
      ] as const) {
        const u = new URL(`${strict.issuer}/authorize`);
        u.search = new URLSearchParams({
          client_id: id,
          redirect_uri: 'http://localhost/callback',
          response_type: 'code',
        }).toString();
        const res = await fetch(u, { redirect: 'manual' });
        expect(res.status, id).toBe(401);
        expect(await res.text(), id).toContain(expected);
      }
      // http:// client_ids are not metadata documents at all without allowHttp: plain unknown client.
      const u = new URL(`${strict.issuer}/authorize`);
      u.search = new URLSearchParams({
        client_id: 'http://example.com/x.json',
        redirect_uri: 'http://localhost/callback',
        response_type: 'code',
      }).toString();
      expect((await fetch(u, { redirect: 'manual' })).status).toBe(400);
    } finally {
      await strict.close();
    }
  });

  it('refuses documents that carry a secret or a shared-secret auth method', async () => {
    const id = `${cimdOrigin}/secret.json`;
    cimdDocs.set('/secret.json', {
      body: JSON.stringify({
        client_id: id,
        redirect_uris: ['http://localhost/callback'],
        token_endpoint_auth_method: 'client_secret_basic',
      }),
    });
    expect((await authorizeWith(id)).html).toContain('none or private_key_jwt');
  });

  it('advertises CIMD support and `none` auth in metadata', async () => {
    const meta = await (await fetch(`${gatehouse.origin}/.well-known/oauth-authorization-server`)).json();
    expect(meta.client_id_metadata_document_supported).toBe(true);
    expect(meta.token_endpoint_auth_methods_supported).toContain('none');
  });
});
