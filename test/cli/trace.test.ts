/**
 * `gatehouse trace <id>` as a real process from the production build, on an embedded store a server wrote a trace
 * into (a refused authorization: the reference its error page showed).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createGatehouse, createLogger } from '../../src/server.js';
import { challenge, verifier } from '../helpers/oauth.js';
import { freePort } from '../helpers/server.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/gatehouse.mjs');

beforeAll(() => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
}, 120_000);

describe('gatehouse trace', () => {
  it('prints the steps of the reference an error page showed, from the store', async () => {
    const data = join(mkdtempSync(join(tmpdir(), 'gh-cli-trace-')), 'data');
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    const config = parseConfig({
      storage: data,
      logLevel: 'silent',
      port,
      host: '127.0.0.1',
      issuer,
      clients: [{ client_id: 'cli-app', redirect_uris: ['https://app.example.com/cb'] }],
    });
    const gatehouse = await createGatehouse(config, { logger: createLogger('silent'), setupLink: false });
    let reference: string | undefined;
    try {
      await gatehouse.app.listen({ port, host: '127.0.0.1' });
      const url = new URL(`${issuer}/authorize`);
      for (const [k, v] of Object.entries({
        client_id: 'cli-app',
        redirect_uri: 'https://evil.example.net/cb',
        response_type: 'code',
        code_challenge: challenge(verifier()),
        code_challenge_method: 'S256',
      }))
        url.searchParams.set(k, v);
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(400);
      reference = /Reference: <code>([A-Za-z0-9_-]+)<\/code>/.exec(await res.text())?.[1];
      expect(reference).toBeDefined();
    } finally {
      // Closing waits for the queued trace steps, and releases the embedded store's lock for the CLI.
      await gatehouse.close();
    }
    const env = { ...process.env, GATEHOUSE_STORAGE: data };
    const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env, encoding: 'utf8' });
    const shown = run(['trace', reference!]);
    expect(shown.stderr).toBe('');
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain(`trace ${reference} (client cli-app)`);
    expect(shown.stdout).toContain(
      'authorize.refused  denied  redirect_uri refused: registered https://app.example.com/cb, got https://evil.example.net/cb (invalid_request, shown on the error page)',
    );
    const json = JSON.parse(run(['trace', reference!, '--json']).stdout) as { steps: { step: string }[] };
    expect(json.steps.map((s) => s.step)).toEqual(['authorize.refused']);
    const missing = run(['trace', 'no-such-reference']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no trace no-such-reference');
  }, 120_000);
});
