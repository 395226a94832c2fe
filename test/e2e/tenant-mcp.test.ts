/**
 * The official MCP SDK client against a tenant's issuer (`<origin>/acme`): 401 -> RFC 9728 -> RFC 8414 path-inserted
 * discovery -> DCR at the tenant -> code flow through the tenant's pages -> tools/call -> refresh. An MCP server
 * trusting another tenant refuses the token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server/server.js';
import { TestOAuthProvider } from '../helpers/mcp-client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const DANA = { username: 'dana', password: 'dana signs in at acme only' };
let gatehouse: TestServer;
let mcp: ExampleMcpServer;
let otherTenantsMcp: ExampleMcpServer;

beforeAll(async () => {
  gatehouse = await startServer({
    users: [],
    tenants: [
      { id: 'acme', scopes: ['mcp:read', 'mcp:write'], users: [DANA] },
      { id: 'globex', scopes: ['mcp:read', 'mcp:write'] },
    ],
  });
  mcp = await startExampleMcpServer({ port: 0, issuer: `${gatehouse.origin}/acme` });
  otherTenantsMcp = await startExampleMcpServer({ port: 0, issuer: `${gatehouse.origin}/globex` });
});
afterAll(async () => {
  await mcp?.close();
  await otherTenantsMcp?.close();
  await gatehouse?.close();
});

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

describe('MCP SDK client against a tenant issuer', () => {
  it('discovers the tenant, registers, authorizes, calls a tool and refreshes', async () => {
    const provider = new TestOAuthProvider({
      redirectUrl: 'http://127.0.0.1/callback',
      asOrigin: gatehouse.origin,
      user: DANA,
    });
    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider });
    await expect(new Client({ name: 'test', version: '1.0.0' }).connect(transport)).rejects.toThrow(UnauthorizedError);
    expect(provider.lastAuthorizationUrl!.href.startsWith(`${gatehouse.origin}/acme/authorize?`)).toBe(true);
    await transport.finishAuth(provider.lastCode!);
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider }));
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    const me = JSON.parse((who.content as { text: string }[])[0]!.text);
    expect(me.client_id).toBe(provider.clientInformation()!.client_id);
    const token = provider.tokens()!.access_token;
    expect(claims(token).iss).toBe(`${gatehouse.origin}/acme`);
    expect(claims(token).aud).toBe(mcp.resource);

    const oldRefresh = provider.tokens()!.refresh_token;
    expect(await auth(provider, { serverUrl: mcp.url })).toBe('AUTHORIZED');
    expect(provider.tokens()!.refresh_token).not.toBe(oldRefresh);
    await client.close();

    // The other tenant's MCP server does not take acme's token.
    const elsewhere = await fetch(otherTenantsMcp.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${provider.tokens()!.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(elsewhere.status).toBe(401);
  });
});
