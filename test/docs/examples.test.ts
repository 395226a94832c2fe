/**
 * The README's Express example (examples/express-resource.ts, which the README block must equal) and
 * `npm run example:mcp` run as real processes under tsx, resolving `gatehouse/resource` through the package exports,
 * against a real Gatehouse: metadata, 401 challenge, and a token from a real authorization accepted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { TestOAuthProvider } from '../helpers/mcp-client.js';
import { ALICE, freePort, startServer, type TestServer } from '../helpers/server.js';
import { ROOT } from './snippets.js';

/** Starts `tsx file` with env and resolves once `ready` matches its stdout. */
async function run(file: string, env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, file)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code}: ${output}`));
    });
  });
  return child;
}

const stop = (child: ChildProcess | undefined) =>
  new Promise<void>((resolve) => {
    if (!child || child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

let gatehouse: TestServer;
beforeAll(async () => {
  gatehouse = await startServer({ scopes: ['mcp:read', 'mcp:write'] });
});
afterAll(async () => {
  await gatehouse?.close();
});

/** Authorizes through the real pages for `serverUrl` (discovered from its RFC 9728 metadata) and returns the tokens. */
async function authorize(serverUrl: string) {
  const provider = new TestOAuthProvider({
    redirectUrl: 'http://127.0.0.1/callback',
    asOrigin: gatehouse.origin,
    user: ALICE,
  });
  expect(await auth(provider, { serverUrl })).toBe('REDIRECT');
  expect(await auth(provider, { serverUrl, authorizationCode: provider.lastCode! })).toBe('AUTHORIZED');
  return provider;
}

describe('README Express example (examples/express-resource.ts)', () => {
  let child: ChildProcess | undefined;
  let resource: string;
  beforeAll(async () => {
    const port = await freePort();
    resource = `http://127.0.0.1:${port}/mcp`;
    child = await run(
      'examples/express-resource.ts',
      { GATEHOUSE_ISSUER: gatehouse.issuer, RESOURCE_URL: resource, PORT: String(port) },
      /listening on/,
    );
  });
  afterAll(() => stop(child));

  it('serves its metadata, challenges without a token, and accepts a Gatehouse token as typed req.auth', async () => {
    const origin = new URL(resource).origin;
    const metadata = await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`);
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({
      resource,
      authorization_servers: [gatehouse.issuer],
      scopes_supported: ['mcp:read'],
    });

    const anonymous = await fetch(resource, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain(
      `resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
    );

    const provider = await authorize(resource);
    const ok = await fetch(resource, {
      method: 'POST',
      headers: { authorization: `Bearer ${provider.tokens()!.access_token}` },
    });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { subject: string; client_id: string; scopes: string[] };
    expect(body.client_id).toBe(provider.clientInformation()!.client_id);
    expect(body.scopes).toEqual(['mcp:read']);
    expect(typeof body.subject).toBe('string');
    expect(body.subject.length).toBeGreaterThan(0);
  });
});

describe('npm run example:mcp (examples/mcp-server/server.ts)', () => {
  let child: ChildProcess | undefined;
  let url: string;
  beforeAll(async () => {
    const port = await freePort();
    url = `http://localhost:${port}/mcp`;
    child = await run(
      'examples/mcp-server/server.ts',
      { GATEHOUSE_ISSUER: gatehouse.issuer, PORT: String(port) },
      /example MCP server at/,
    );
  });
  afterAll(() => stop(child));

  it('runs as its own process and serves an MCP SDK client that authorized with Gatehouse', async () => {
    const provider = await authorize(url);
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    // Authorized without a 401 challenge, the SDK asked for the metadata's scopes_supported.
    expect(JSON.parse((who.content as { text: string }[])[0]!.text)).toMatchObject({
      scopes: ['mcp:read', 'mcp:write'],
    });
    const note = await client.callTool({ name: 'write_note', arguments: { text: 'hi' } });
    expect((note.content as { text: string }[])[0]!.text).toBe('saved: hi');
    await client.close();
  });
});
