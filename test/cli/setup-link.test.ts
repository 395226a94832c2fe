/**
 * The first-run setup link from the real `gatehouse` process (production build): `serve` with no users prints it on
 * stderr once and never in a log line; `gatehouse setup-link` makes a new, live one; with a user it refuses.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { setupLinkLive } from '../../src/authorization/setup.js';
import { createStorage } from '../../src/storage/index.js';
import { freePort } from '../helpers/server.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/gatehouse.mjs');
const LINK = /(http:\/\/\S+\/setup\?token=([A-Za-z0-9_-]{43}))/;

function gatehouse(args: string[], env: Record<string, string>, input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** Whether the embedded store at `dir` holds a live setup link for `token`. */
async function live(dir: string, token: string): Promise<boolean> {
  const storage = await createStorage(dir, { clock: systemClock, cleanupIntervalMs: 0 });
  try {
    const config = parseConfig({ storage: dir });
    return await setupLinkLive(token, {
      config: { ...config, issuer: 'http://localhost' },
      clock: systemClock,
      storage,
    } as unknown as Parameters<typeof setupLinkLive>[1]);
  } finally {
    await storage.close();
  }
}

beforeAll(() => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
}, 120_000);

describe('the setup link on the command line', () => {
  it('serve prints it on stderr, never in a log line; setup-link makes a new one; refused once a user exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-setup-'));
    const port = await freePort();
    const env = { GATEHOUSE_STORAGE: dir, PORT: String(port), GATEHOUSE_LOG_LEVEL: 'info' };
    const child = spawn(process.execPath, [BIN, 'serve'], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no link in time: ${stderr}`)), 30_000);
        const check = () => {
          if (LINK.test(stderr) && stdout.includes('gatehouse listening')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stderr.on('data', check);
        child.stdout.on('data', check);
      });
      const [, url, token] = LINK.exec(stderr)!;
      expect(url).toContain(`localhost:${port}/setup?token=`);
      expect(stderr.match(/\/setup\?token=/g)).toHaveLength(1);
      expect(stdout).toContain('no users yet: open the one-time setup link printed on stderr');
      expect(stdout).not.toContain(token!);
      const page = await fetch(url!);
      expect(page.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    expect(stdout).not.toContain(LINK.exec(stderr)![2]!);

    const made = gatehouse(['setup-link'], { GATEHOUSE_STORAGE: dir });
    expect(made.status, made.stderr).toBe(0);
    const [, , token] = LINK.exec(made.stderr)!;
    expect(made.stdout).toBe('');
    expect(await live(dir, token!)).toBe(true);

    const added = gatehouse(['user', 'add', 'erin'], { GATEHOUSE_STORAGE: dir }, 'erins long password\n');
    expect(added.status, added.stderr).toBe(0);
    const refused = gatehouse(['setup-link'], { GATEHOUSE_STORAGE: dir });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('users exist already');
    expect(refused.stderr).not.toMatch(LINK);
  }, 90_000);
});
