/**
 * Example MCP server protected by Gatehouse (`npm run example:mcp`): the official MCP SDK over Streamable HTTP at
 * `/mcp`, guarded by `gatehouse/resource`. Its resource URI is its own `/mcp` URL. Tools:
 * - `whoami` (scope `mcp:read`): the token's subject, client_id and scopes;
 * - `write_note` (scope `mcp:write`): shows step-up; without the scope the HTTP layer answers 403 insufficient_scope.
 * - `upstream_profile` (with UPSTREAM_ID set): the user's profile at the upstream identity provider they signed in
 *   with, read with their upstream access token, which the server gets from Gatehouse by token exchange (RFC 8693):
 *   Gatehouse's `tokenExchange.resourceServers` must list MCP_CLIENT_ID for this server's resource URI and the upstream.
 * Env: PORT (default 3001), GATEHOUSE_ISSUER (default http://localhost:8080), MCP_PUBLIC_URL (default http://localhost:$PORT);
 * UPSTREAM_ID, UPSTREAM_PROFILE_URL (default GitHub's https://api.github.com/user), MCP_CLIENT_ID, MCP_CLIENT_SECRET.
 */
import express from 'express';
import type { Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import {
  bearerErrorResponse,
  createResourceVerifier,
  createTokenExchangeClient,
  TokenExchangeError,
  expressProtectedResourceMetadata,
  requireBearerAuth,
  ResourceAuthError,
  type RequestAuth,
} from 'gatehouse/resource';

export const READ_SCOPE = 'mcp:read';
export const WRITE_SCOPE = 'mcp:write';

/** Scopes each tool needs beyond the base `mcp:read` (checked before the request reaches the MCP layer). */
const TOOL_SCOPES: Record<string, string[]> = { write_note: [WRITE_SCOPE] };

/** The upstream whose profile `upstream_profile` reads, and this server's client at Gatehouse for the exchange. */
export interface ExampleUpstream {
  id: string;
  /** Where the upstream serves the user's profile (GitHub: https://api.github.com/user; OIDC: its userinfo). */
  profileUrl: string;
  clientId: string;
  clientSecret: string;
}

function buildMcpServer(
  upstream?: ExampleUpstream & { token: ReturnType<typeof createTokenExchangeClient> },
): McpServer {
  const server = new McpServer({ name: 'gatehouse-example', version: '1.0.0' });
  if (upstream) {
    const { upstreamToken } = upstream.token;
    server.registerTool(
      'upstream_profile',
      { description: `Your profile at ${upstream.id}`, inputSchema: {} },
      async (_args, extra) => {
        try {
          // The user's token at the upstream, in one line (exchanged, then cached until shortly before it expires).
          const token = await upstreamToken(extra.authInfo as RequestAuth, upstream.id);
          const res = await fetch(upstream.profileUrl, {
            headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
          });
          const profile = (await res.json()) as Record<string, unknown>;
          return { content: [{ type: 'text', text: JSON.stringify(profile) }], structuredContent: profile };
        } catch (err) {
          // The user's upstream sign-in is gone or expired: they authorize again (sign in at the upstream).
          if (err instanceof TokenExchangeError && err.signInAgain) {
            return { isError: true, content: [{ type: 'text', text: `sign in with ${upstream.id} again` }] };
          }
          throw err;
        }
      },
    );
  }
  server.registerTool(
    'whoami',
    { description: 'Who the access token belongs to', inputSchema: {} },
    async (_args, extra) => {
      const auth = extra.authInfo as RequestAuth | undefined;
      const who = { subject: auth?.subject, client_id: auth?.clientId, scopes: auth?.scopes ?? [] };
      return { content: [{ type: 'text', text: JSON.stringify(who) }], structuredContent: who };
    },
  );
  server.registerTool(
    'write_note',
    { description: 'Stores a note (needs mcp:write)', inputSchema: { text: z.string().max(1000) } },
    async ({ text }) => ({ content: [{ type: 'text', text: `saved: ${text}` }] }),
  );
  return server;
}

export interface ExampleMcpServer {
  url: string;
  resource: string;
  close(): Promise<void>;
}

/** Starts the example on `port` (0 = random) and resolves once it listens. */
export async function startExampleMcpServer(options: {
  port: number;
  issuer: string;
  publicUrl?: string;
  /** Offers `upstream_profile`. */
  upstream?: ExampleUpstream;
}): Promise<ExampleMcpServer> {
  const app = express();
  const listening = await new Promise<Server>((resolve) => {
    const s = app.listen(options.port, '127.0.0.1', () => resolve(s));
  });
  const address = listening.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const base = options.publicUrl ?? `http://localhost:${port}`;
  const resource = `${base}/mcp`;
  const verifier = createResourceVerifier({ issuer: options.issuer, resource, requiredScopes: [READ_SCOPE] });
  const upstream = options.upstream && {
    ...options.upstream,
    token: createTokenExchangeClient({
      issuer: options.issuer,
      clientId: options.upstream.clientId,
      clientSecret: options.upstream.clientSecret,
    }),
  };

  app.use(
    expressProtectedResourceMetadata({
      resource,
      authorizationServers: [options.issuer],
      scopesSupported: [READ_SCOPE, WRITE_SCOPE],
      resourceName: 'Gatehouse example MCP server',
    }),
  );
  app.use('/mcp', express.json({ limit: '256kb' }));
  app.use('/mcp', requireBearerAuth(verifier));
  // Step-up (MCP 2025-11-25): a tool that needs more scope gets 403 insufficient_scope. The challenge names the scopes
  // already granted plus the missing ones, because clients (the MCP SDK among them) authorize for exactly that list.
  app.use('/mcp', (req, res, next) => {
    const body = req.body as { method?: string; params?: { name?: string } } | undefined;
    const needed = body?.method === 'tools/call' ? TOOL_SCOPES[body.params?.name ?? ''] : undefined;
    const granted = req.auth?.scopes ?? [];
    const missing = needed?.filter((s) => !granted.includes(s)) ?? [];
    if (missing.length === 0) return next();
    const out = bearerErrorResponse(
      new ResourceAuthError('insufficient_scope', `this tool needs ${missing.join(' ')}`, {
        requiredScopes: [...new Set([...granted, ...missing])],
      }),
      { resourceMetadataUrl: verifier.resourceMetadataUrl },
    );
    res.status(out.status).set(out.headers).json(out.body);
  });
  app.all('/mcp', async (req, res) => {
    // Stateless Streamable HTTP: one server + transport per request.
    const server = buildMcpServer(upstream);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  return {
    url: resource,
    resource,
    close: () =>
      new Promise<void>((resolve) => {
        listening.close(() => resolve());
        // Keep-alive connections of MCP clients would otherwise hold the close open.
        listening.closeAllConnections();
      }),
  };
}

// Run directly: `npm run example:mcp`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3001);
  const issuer = process.env.GATEHOUSE_ISSUER ?? 'http://localhost:8080';
  const upstreamId = process.env.UPSTREAM_ID;
  const server = await startExampleMcpServer({
    port,
    issuer,
    publicUrl: process.env.MCP_PUBLIC_URL,
    ...(upstreamId && {
      upstream: {
        id: upstreamId,
        profileUrl: process.env.UPSTREAM_PROFILE_URL ?? 'https://api.github.com/user',
        clientId: process.env.MCP_CLIENT_ID ?? '',
        clientSecret: process.env.MCP_CLIENT_SECRET ?? '',
      },
    }),
  });
  console.log(`example MCP server at ${server.url} (issuer ${issuer})`);
}
