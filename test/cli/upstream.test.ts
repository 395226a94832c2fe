/** `gatehouse upstream list | links`, run as a real process from the production build, against a real upstream. */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { createStorage } from '../../src/storage/index.js';
import { startOidcUpstream, type OidcUpstream } from '../helpers/oidc-upstream.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/gatehouse.mjs');

function gatehouse(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** The same, without blocking this process (where the upstream answers the command's discovery requests). */
function gatehouseAsync(args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr })),
    ),
  );
}

let upstream: OidcUpstream;
beforeAll(async () => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
  upstream = await startOidcUpstream({ redirectUris: ['http://localhost:9/upstream/callback'] });
}, 120_000);
afterAll(() => upstream?.close());

describe('gatehouse upstream', () => {
  it('lists the upstreams with their discovery state, per tenant too, and the users upstream sign-ins made', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-upstream-'));
    const corp = {
      id: 'corp',
      name: 'Corp',
      type: 'oidc',
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      clientSecret: upstream.clientSecret,
    };
    // Nothing listens on port 9: discovery fails at once.
    const down = { ...corp, id: 'down', name: 'Down', issuer: 'http://127.0.0.1:9', timeoutMs: 1000 };
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ issuer: 'https://auth.example.com', upstreams: [corp, down] }));
    const data = join(dir, 'data');
    const env = {
      GATEHOUSE_STORAGE: data,
      GATEHOUSE_CONFIG: config,
      GATEHOUSE_LOG_LEVEL: 'silent',
      ACME_SSO_SECRET: upstream.clientSecret,
    };

    const listed = await gatehouseAsync(['upstream', 'list'], env);
    expect(listed.stderr).toBe('');
    expect(listed.stdout).toBe(
      `corp\tCorp\toidc\t${upstream.issuer}\tok\ndown\tDown\toidc\thttp://127.0.0.1:9\tfailed\n`,
    );
    expect(gatehouse(['upstream', 'list', '--no-check'], env).stdout).toBe(
      `corp\tCorp\toidc\t${upstream.issuer}\t-\ndown\tDown\toidc\thttp://127.0.0.1:9\t-\n`,
    );

    // A tenant with an upstream of its own.
    const settings = join(dir, 'acme.json');
    const { clientSecret: _inline, ...withoutSecret } = corp;
    const acmeSso = { ...withoutSecret, id: 'acme-sso', name: 'Acme SSO', clientSecretEnv: 'ACME_SSO_SECRET' };
    writeFileSync(settings, JSON.stringify({ upstreams: [acmeSso] }));
    const added = gatehouse(['tenant', 'add', 'acme', '--settings', settings], env);
    expect(added.stderr).toBe('');
    expect((await gatehouseAsync(['upstream', 'list', '--tenant', 'acme'], env)).stdout).toBe(
      `acme-sso\tAcme SSO\toidc\t${upstream.issuer}\tok\n`,
    );

    // Users: one made by an upstream sign-in, one local (not listed).
    const store = await createStorage(data, { clock: systemClock, cleanupIntervalMs: 0 });
    const now = Date.now();
    try {
      await store.saveUser({
        id: 'u-upstream-1',
        username: 'corp:alice',
        passwordHash: '',
        email: 'alice@example.com',
        emailVerified: true,
        createdAt: now,
        updatedAt: now,
      });
      await store.saveUser({
        id: 'u-local',
        username: 'bob',
        passwordHash: 'scrypt$x',
        createdAt: now,
        updatedAt: now,
      });
      await store.forTenant('acme').saveUser({
        id: 'u-acme-1',
        username: 'acme-sso:carol',
        passwordHash: '',
        createdAt: now,
        updatedAt: now,
      });
    } finally {
      await store.close();
    }
    expect(gatehouse(['upstream', 'links'], env).stdout).toBe('u-upstream-1\tcorp:alice\tcorp\talice@example.com\n');
    expect(gatehouse(['upstream', 'links', '--tenant', 'acme'], env).stdout).toBe(
      'u-acme-1\tacme-sso:carol\tacme-sso\t\n',
    );
    const unknown = gatehouse(['upstream', 'nope'], env);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('upstream list');
  }, 120_000);
});
