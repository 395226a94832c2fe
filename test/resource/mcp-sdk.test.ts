/** End-to-end with the official MCP SDK: our Express middleware's `req.auth` reaches tool handlers as `authInfo`. */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import {
  createResourceVerifier,
  expressProtectedResourceMetadata,
  protectedResourceMetadataPath,
  requireBearerAuth,
} from '../../src/resource/index.js';
import { startIssuer } from './issuer.js';
import type { TestIssuer } from './issuer.js';

describe('MCP SDK interop', () => {
  let as: TestIssuer;
  let server: Server;
  let base: string;
  let resource: string;

  beforeAll(async () => {
    as = await startIssuer();
    const app = express();
    app.use(express.json());
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    resource = `${base}/mcp`;
    const verifier = createResourceVerifier({ issuer: as.issuer, resource, requiredScopes: ['mcp'] });
    app.use(
      expressProtectedResourceMetadata({ resource, authorizationServers: [as.issuer], scopesSupported: ['mcp'] }),
    );
    app.post('/mcp', requireBearerAuth(verifier), async (req, res) => {
      const mcp = new McpServer({ name: 'test', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'Echo the caller' }, async (extra) => ({
        content: [
          {
            type: 'text',
            text: JSON.stringify({
              clientId: extra.authInfo?.clientId,
              scopes: extra.authInfo?.scopes,
              resource: extra.authInfo?.resource?.href,
              subject: extra.authInfo?.extra?.['subject'],
            }),
          },
        ],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void transport.close());
      await mcp.connect(transport);
      await transport.handleRequest(req, res, req.body);
    });
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await as?.close();
  });

  it('passes the verified token to MCP tool handlers as authInfo', async () => {
    const token = await as.sign({ aud: resource, sub: 'carol', client_id: 'mcp-client', scope: 'mcp' });
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(resource), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const [first] = result.content as { type: string; text: string }[];
    expect(JSON.parse(first!.text)).toEqual({ clientId: 'mcp-client', scopes: ['mcp'], resource, subject: 'carol' });
    await client.close();
  });

  it('answers an unauthenticated MCP request with 401 pointing at the metadata', async () => {
    const res = await fetch(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(res.status).toBe(401);
    const metadataUrl = `${base}${protectedResourceMetadataPath(resource)}`;
    // The SDK reads resource_metadata from the Bearer challenge; the DPoP one follows it (RFC 9449 §7.1).
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${metadataUrl}", scope="mcp", DPoP algs="ES256 EdDSA RS256 PS256"`,
    );
    const metadata = (await (await fetch(metadataUrl)).json()) as { resource: string; authorization_servers: string[] };
    expect(metadata).toMatchObject({ resource, authorization_servers: [as.issuer] });
    // The SDK client finds the same document from the server URL alone (RFC 9728 path-inserted well-known URL).
    await expect(discoverOAuthProtectedResourceMetadata(resource)).resolves.toMatchObject({ resource });
  });
});
