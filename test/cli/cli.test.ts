/** The `gatehouse` command, run as a real process from the production build. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import pg from 'pg';
import { parseConfig } from '../../src/config/load.js';
import { verifyPassword } from '../../src/core/password.js';
import { createGatehouse, createLogger } from '../../src/server.js';
import { createStorage } from '../../src/storage/index.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { requireService } from '../helpers/services.js';
import { basic } from '../helpers/oauth.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/gatehouse.mjs');

function gatehouse(args: string[], env: Record<string, string>, input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, input, encoding: 'utf8', timeout: 60_000 });
}

beforeAll(() => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
}, 120_000);

describe('gatehouse CLI', () => {
  it('a bad config stops serve with a message naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ tokens: { accessTokenTtl: -5 }, clients: [{ client_id: 'x', redirect_uris: 'nope' }] }));
    const r = gatehouse(['serve'], { GATEHOUSE_CONFIG: file, GATEHOUSE_STORAGE: 'memory', PORT: '0' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('tokens.accessTokenTtl');
    expect(r.stderr).toContain('clients.0.redirect_uris');
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    const badPort = gatehouse(['serve'], { GATEHOUSE_STORAGE: 'memory', PORT: 'eighty' });
    expect(badPort.status).toBe(1);
    expect(badPort.stderr).toContain('PORT');
  });

  it('hash-password prints an scrypt hash of stdin', async () => {
    const r = gatehouse(['hash-password'], {}, 'a very good password\n');
    expect(r.status).toBe(0);
    const hash = r.stdout.trim();
    expect(hash).toMatch(/^scrypt\$/);
    expect(await verifyPassword('a very good password', hash)).toBe(true);
  });

  it('user add writes a user into the embedded store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-data-'));
    const r = gatehouse(['user', 'add', 'carol'], { GATEHOUSE_STORAGE: dir }, 'carols password\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const store = await createStorage(dir, { clock: systemClock, cleanupIntervalMs: 0 });
    try {
      const carol = await store.getUserByUsername('carol');
      expect(carol).toBeDefined();
      expect(await verifyPassword('carols password', carol!.passwordHash)).toBe(true);
    } finally {
      await store.close();
    }
  }, 60_000);
});

describe('gatehouse key rotate', () => {
  const schema = `gh_cli_${randomBytes(4).toString('hex')}`;
  const available = requireService('postgres');

  afterAll(async () => {
    if (!(await available)) return;
    const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('adds a new active key; the old one stays published so its tokens still verify', async (ctx) => {
    if (!(await available)) return ctx.skip();
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const configFile = join(dir, 'config.json');
    const secret = 'service-secret-that-is-long-enough-123';
    const fileConfig = {
      storage: 'postgres://postgres@127.0.0.1:5432/test',
      postgres: { schema },
      logLevel: 'silent' as const,
      signing: { keyRefreshSeconds: 1 },
      clients: [{ client_id: 'svc', client_secret: secret, grant_types: ['client_credentials' as const] }],
    };
    writeFileSync(configFile, JSON.stringify(fileConfig));
    // The server's clock stands still until the test moves it: whether the new key signs yet must not depend on how
    // long the CLI processes take (it did with a wall-clock sleep, and failed on a slow machine).
    const clock = new ManualClock();
    const g = await createGatehouse(parseConfig({ ...fileConfig, port: 0 }), { logger: createLogger('silent'), clock });
    try {
      const token = async () => {
        const res = await g.app.inject({
          method: 'POST',
          url: '/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('svc', secret) },
          payload: 'grant_type=client_credentials',
        });
        expect(res.statusCode).toBe(200);
        return res.json().access_token as string;
      };
      const before = await token();
      const oldKid = decodeProtectedHeader(before).kid;

      const r = gatehouse(['key', 'rotate'], { GATEHOUSE_CONFIG: configFile });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/new ES256 key .* is active/);
      const list = gatehouse(['key', 'list'], { GATEHOUSE_CONFIG: configFile });
      expect(list.stdout).toContain(`${oldKid}\tES256\tretired`);
      const created = /^(\S+)\tES256\tactive\t(\S+)/m.exec(list.stdout);
      expect(created).not.toBeNull();
      const newKeyCreatedAt = Date.parse(created![2]!);
      expect(newKeyCreatedAt).toBeGreaterThanOrEqual(clock.now());

      await g.deps.keys.refresh(); // what the periodic refresh does on every replica
      // The new key is published at once but signs only after one refresh interval, when every replica publishes it.
      const jwksNow = (await g.app.inject({ method: 'GET', url: '/jwks.json' })).json();
      expect(jwksNow.keys.length).toBe(3);
      clock.set(newKeyCreatedAt + 999);
      expect(decodeProtectedHeader(await token()).kid).toBe(oldKid);
      clock.set(newKeyCreatedAt + 1000); // one refresh interval (keyRefreshSeconds: 1) after the rotation
      const after = await token();
      const newKid = decodeProtectedHeader(after).kid;
      expect(newKid).toBe(created![1]);
      const jwks = (await g.app.inject({ method: 'GET', url: '/jwks.json' })).json();
      const kids = jwks.keys.map((k: { kid: string }) => k.kid);
      expect(kids).toContain(oldKid);
      expect(kids).toContain(newKid);
      const keySet = createLocalJWKSet(jwks);
      const currentDate = new Date(clock.now());
      await expect(jwtVerify(before, keySet, { currentDate })).resolves.toBeTruthy();
      await expect(jwtVerify(after, keySet, { currentDate })).resolves.toBeTruthy();
    } finally {
      await g.close();
    }
  }, 60_000);
});
