/** The `gatehouse` command, run as a real process from the production build. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import pg from 'pg';
import { parseConfig } from '../../src/config/load.js';
import { hashCost, verifyPassword } from '../../src/core/password.js';
import { createGatehouse, createLogger } from '../../src/server.js';
import { createStorage } from '../../src/storage/index.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { requireService } from '../helpers/services.js';
import { basic } from '../helpers/oauth.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/gatehouse.mjs');

function gatehouse(args: string[], env: Record<string, string>, input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

beforeAll(() => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
}, 120_000);

describe('gatehouse CLI', () => {
  it('a bad config stops serve with a message naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({ tokens: { accessTokenTtl: -5 }, clients: [{ client_id: 'x', redirect_uris: 'nope' }] }),
    );
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

  it("hash-password and user add hash at the config's passwordHashing.log2N, not a fixed cost", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-cost-'));
    const file = join(dir, 'config.json');
    for (const log2N of [14, 16]) {
      writeFileSync(file, JSON.stringify({ passwordHashing: { log2N } }));
      const r = gatehouse(['hash-password'], { GATEHOUSE_CONFIG: file }, 'a very good password\n');
      expect(r.status).toBe(0);
      expect(hashCost(r.stdout.trim())).toBe(log2N);
      expect(await verifyPassword('a very good password', r.stdout.trim())).toBe(true);
    }
    const data = join(dir, 'data');
    const added = gatehouse(
      ['user', 'add', 'dave'],
      { GATEHOUSE_CONFIG: file, GATEHOUSE_STORAGE: data },
      'daves password\n',
    );
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    const store = await createStorage(data, { clock: systemClock, cleanupIntervalMs: 0 });
    try {
      const dave = await store.getUserByUsername('dave');
      expect(hashCost(dave!.passwordHash)).toBe(16);
      expect(await verifyPassword('daves password', dave!.passwordHash)).toBe(true);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('user add takes email and name, holds the password to passwordPolicy; set-password and sign-out end sessions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-users-'));
    const data = join(dir, 'data');
    const file = join(dir, 'config.json');
    writeFileSync(join(dir, 'breached.txt'), '# known\ncorrect horse battery\n');
    writeFileSync(file, JSON.stringify({ passwordPolicy: { minLength: 14, denyListFile: join(dir, 'breached.txt') } }));
    const env = { GATEHOUSE_CONFIG: file, GATEHOUSE_STORAGE: data };

    const short = gatehouse(['user', 'add', 'erin'], env, 'too short pw\n');
    expect(short.status).toBe(1);
    expect(short.stderr).toBe('gatehouse: password refused: use at least 14 characters (passwordPolicy)\n');
    const breached = gatehouse(['user', 'add', 'erin'], env, 'Correct Horse Battery\n');
    expect(breached.status).toBe(1);
    expect(breached.stderr).toMatch(/known from data breaches/);

    const added = gatehouse(
      ['user', 'add', 'erin', '--email', 'erin@example.com', '--name', 'Erin Example'],
      env,
      'erins long password\n',
    );
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    const listed = gatehouse(['user', 'list'], env);
    expect(listed.stdout).toMatch(/^\S+\terin\terin@example\.com\tErin Example\n$/);

    // Two browser sessions of erin, one of someone else.
    const clock = new ManualClock(Date.now());
    let store = await createStorage(data, { clock, cleanupIntervalMs: 0 });
    const erin = (await store.getUserByUsername('erin'))!;
    expect(erin).toMatchObject({ email: 'erin@example.com', emailVerified: false, name: 'Erin Example' });
    const session = (id: string, userId: string) => ({
      id,
      userId,
      authTime: clock.now(),
      createdAt: clock.now(),
      expiresAt: clock.now() + 3600_000,
    });
    await store.saveSession(session('s1', erin.id));
    await store.saveSession(session('s2', erin.id));
    await store.saveSession(session('s3', 'someone-else'));
    await store.close();

    const reset = gatehouse(['user', 'set-password', 'erin'], env, 'erins new long password\n');
    expect(reset.stderr).toBe('');
    expect(reset.stdout).toBe('password of erin reset; 2 session(s) of erin ended\n');
    store = await createStorage(data, { clock, cleanupIntervalMs: 0 });
    try {
      expect(
        await verifyPassword('erins new long password', (await store.getUserByUsername('erin'))!.passwordHash),
      ).toBe(true);
      expect(await store.getSession('s1')).toBeUndefined();
      expect(await store.getSession('s3')).toBeDefined();
      await store.saveSession(session('s4', erin.id));
    } finally {
      await store.close();
    }
    const signOut = gatehouse(['user', 'sign-out', 'erin'], env);
    expect(signOut.stdout).toBe('1 session(s) of erin ended\n');
    const unknown = gatehouse(['user', 'sign-out', 'nobody'], env);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('gatehouse: no user named nobody\n');
  }, 90_000);

  it('user mfa sets and clears the requirement; user mfa-reset removes the factors and ends the sessions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-mfa-'));
    const env = { GATEHOUSE_STORAGE: join(dir, 'data') };
    expect(gatehouse(['user', 'add', 'frank'], env, 'franks long password\n').status).toBe(0);
    const neither = gatehouse(['user', 'mfa', 'frank'], env);
    expect(neither.status).toBe(2);
    expect(neither.stderr).toContain('exactly one of --require or --no-require');

    const required = gatehouse(['user', 'mfa', 'frank', '--require'], env);
    expect(required.stderr).toBe('');
    expect(required.stdout).toContain('frank must sign in with a second factor');
    const clock = new ManualClock(Date.now());
    let store = await createStorage(env.GATEHOUSE_STORAGE, { clock, cleanupIntervalMs: 0 });
    const frank = (await store.getUserByUsername('frank'))!;
    expect(frank.mfaRequired).toBe(true);
    // Factors as the sign-in would have stored them, and a session.
    await store.saveUser({
      ...frank,
      totp: { secret: 'JBSWY3DPEHPK3PXP', createdAt: clock.now() },
      passkeys: [
        {
          id: 'cred',
          publicKey: 'key',
          counter: 0,
          deviceType: 'singleDevice',
          backedUp: false,
          name: 'Key',
          createdAt: 1,
        },
      ],
      recoveryCodes: { batch: 'b', hashes: ['h1'], createdAt: clock.now() },
    });
    await store.saveSession({
      id: 's1',
      userId: frank.id,
      authTime: clock.now(),
      amr: ['pwd', 'otp', 'mfa'],
      createdAt: clock.now(),
      expiresAt: clock.now() + 3600_000,
    });
    await store.close();

    const reset = gatehouse(['user', 'mfa-reset', 'frank'], env);
    expect(reset.stderr).toBe('');
    expect(reset.stdout).toBe('second factors of frank removed; 1 session(s) ended\n');
    expect(gatehouse(['user', 'mfa', 'frank', '--no-require'], env).status).toBe(0);
    store = await createStorage(env.GATEHOUSE_STORAGE, { clock, cleanupIntervalMs: 0 });
    try {
      const after = (await store.getUserByUsername('frank'))!;
      expect(after.totp).toBeUndefined();
      expect(after.passkeys).toBeUndefined();
      expect(after.recoveryCodes).toBeUndefined();
      expect(after.mfaRequired).toBe(false);
      expect(await verifyPassword('franks long password', after.passwordHash)).toBe(true);
      expect(await store.getSession('s1')).toBeUndefined();
    } finally {
      await store.close();
    }
    expect(gatehouse(['user', 'mfa-reset', 'nobody'], env).stderr).toBe('gatehouse: no user named nobody\n');
  }, 90_000);

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

describe('gatehouse tenant', () => {
  it('adds, lists, shows, updates and removes tenants; --tenant scopes user and key commands', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-tenants-'));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ issuer: 'https://auth.example.com', tenantRefreshSeconds: 0 }));
    const settings = join(dir, 'acme.json');
    writeFileSync(settings, JSON.stringify({ branding: { name: 'Acme' }, tokens: { accessTokenTtl: 300 } }));
    const env = { GATEHOUSE_STORAGE: join(dir, 'data'), GATEHOUSE_CONFIG: config };

    const added = gatehouse(['tenant', 'add', 'acme', '--settings', settings], env);
    expect(added.stderr).toBe('');
    expect(added.stdout).toContain('issuer https://auth.example.com/acme');
    expect(gatehouse(['tenant', 'add', 'acme'], env).stderr).toContain('exists already');
    expect(gatehouse(['tenant', 'add', 'token'], env).stderr).toContain("deployment's own endpoints");
    const badSettings = join(dir, 'bad.json');
    writeFileSync(badSettings, JSON.stringify({ storage: 'memory' }));
    const refused = gatehouse(['tenant', 'add', 'other', '--settings', badSettings], env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('storage: not a tenant setting');
    expect(gatehouse(['tenant', 'add', 'globex', '--settings', '-'], env, '{}').status).toBe(0);

    expect(gatehouse(['tenant', 'list'], env).stdout).toMatch(
      /^acme\tadmin\thttps:\/\/auth\.example\.com\/acme\t.*\nglobex\t/,
    );
    const shown = JSON.parse(gatehouse(['tenant', 'show', 'acme'], env).stdout);
    expect(shown.settings.branding).toEqual({ name: 'Acme' });
    writeFileSync(settings, JSON.stringify({ branding: { name: 'Acme Corp' } }));
    expect(gatehouse(['tenant', 'update', 'acme', '--settings', settings], env).status).toBe(0);
    expect(JSON.parse(gatehouse(['tenant', 'show', 'acme'], env).stdout).settings).toEqual({
      branding: { name: 'Acme Corp' },
    });

    // The same username in the tenant and at the deployment: two users.
    expect(gatehouse(['user', 'add', 'dana', '--tenant', 'acme'], env, 'danas acme password\n').status).toBe(0);
    expect(gatehouse(['user', 'add', 'dana'], env, 'danas own password\n').status).toBe(0);
    expect(gatehouse(['user', 'list', '--tenant=acme'], env).stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(gatehouse(['user', 'add', 'x', '--tenant', 'nope'], env, 'some password here\n').stderr).toContain(
      'no tenant nope',
    );
    expect(gatehouse(['key', 'rotate', '--tenant', 'acme'], env).status).toBe(0);
    const store = await createStorage(env.GATEHOUSE_STORAGE, { clock: systemClock, cleanupIntervalMs: 0 });
    try {
      const own = await store.getUserByUsername('dana');
      const atAcme = await store.forTenant('acme').getUserByUsername('dana');
      expect(await verifyPassword('danas own password', own!.passwordHash)).toBe(true);
      expect(await verifyPassword('danas acme password', atAcme!.passwordHash)).toBe(true);
      expect(atAcme!.id).not.toBe(own!.id);
      expect((await store.forTenant('acme').listSigningKeys()).length).toBe(1);
      expect(await store.listSigningKeys()).toEqual([]);
    } finally {
      await store.close();
    }

    const removed = gatehouse(['tenant', 'remove', 'acme'], env);
    expect(removed.stderr).toBe('');
    expect(removed.stdout).toMatch(/tenant acme deleted; [1-9]\d* stored item/);
    expect(gatehouse(['tenant', 'list'], env).stdout).not.toContain('acme');
    const after = await createStorage(env.GATEHOUSE_STORAGE, { clock: systemClock, cleanupIntervalMs: 0 });
    try {
      expect(await after.forTenant('acme').listUsers()).toEqual([]);
      expect(await after.forTenant('acme').listSigningKeys()).toEqual([]);
      expect((await after.getUserByUsername('dana'))?.username).toBe('dana');
    } finally {
      await after.close();
    }
  }, 120_000);
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
      // The CLI and the server write their audit events to one file.
      audit: { destination: join(dir, 'audit.log') },
      signing: { keyRefreshSeconds: 1 },
      clients: [{ client_id: 'svc', client_secret: secret, grant_types: ['client_credentials' as const] }],
    };
    writeFileSync(configFile, JSON.stringify(fileConfig));
    // The server's clock stands still until the test moves it: whether the new key signs yet must not depend on how
    // long the CLI processes take (it did with a wall-clock sleep, and failed on a slow machine).
    const clock = new ManualClock();
    const g = await createGatehouse(parseConfig({ ...fileConfig, port: 0 }), { logger: createLogger('silent'), clock });
    let closed = false;
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
      await g.close();
      closed = true;
      const audit = readFileSync(join(dir, 'audit.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit.filter((e) => e.type === 'key.rotated')).toMatchObject([
        { kid: newKid, previousKid: oldKid, alg: 'ES256', source: 'cli', outcome: 'success', stream: 'audit' },
      ]);
      expect(audit.filter((e) => e.type === 'token.issued')).toHaveLength(3);
      expect(audit.map((e) => JSON.stringify(e)).join('\n')).not.toContain(secret);
    } finally {
      if (!closed) await g.close();
    }
  }, 60_000);
});

describe('gatehouse usage', () => {
  it.each(['--help', 'help', '-h', 'serve --help'])(
    '`gatehouse %s` prints the usage on stdout and exits 0 without serving',
    (args) => {
      const r = gatehouse(args.split(' '), { GATEHOUSE_STORAGE: 'memory', PORT: '0' });
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^Usage: gatehouse <command>/);
      expect(r.stdout).toContain('serve');
      expect(r.stderr).toBe('');
    },
  );

  it('without a command prints the usage on stderr and exits 2 instead of serving', () => {
    const r = gatehouse([], { GATEHOUSE_STORAGE: 'memory', PORT: '0' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^Usage: gatehouse <command>/);
    expect(r.stdout).toBe('');
  });

  it('an unknown command names it, prints the usage on stderr and exits 2', () => {
    const r = gatehouse(['srve'], { GATEHOUSE_STORAGE: 'memory', PORT: '0' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^unknown command srve\nUsage: gatehouse <command>/);
  });

  it('npm start runs `gatehouse serve`', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
      bin: Record<string, string>;
    };
    expect(pkg.scripts.start).toBe(`node ${pkg.bin.gatehouse} serve`);
  });
});

/** Runs `gatehouse serve` and waits for it to exit (at most 30 s). */
function serveFails(env: Record<string, string>, cwd = ROOT) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, 'serve'], {
    cwd,
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { ...r, ms: Date.now() - started };
}

/** stderr is one line, without stack frames; returns it. */
function oneLine(r: { stderr: string; status: number | null; ms: number }): string {
  expect(r.status).toBe(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr.endsWith('\n')).toBe(true);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(r.ms).toBeLessThan(20_000); // no endless reconnect loop
  return lines[0]!;
}

/** A TCP port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe('gatehouse serve start-up failures: one line naming the setting and the fix, exit 1', () => {
  const postgres = requireService('postgres');
  const redis = requireService('redis');

  it('PostgreSQL refusing the connection', async (ctx) => {
    if (!(await postgres)) return ctx.skip();
    const port = await closedPort();
    const line = oneLine(
      serveFails({ GATEHOUSE_STORAGE: `postgres://postgres:s3cret@127.0.0.1:${port}/test`, PORT: '0' }),
    );
    expect(line).toBe(
      `gatehouse: cannot connect to PostgreSQL at 127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}): start PostgreSQL there or fix the address in GATEHOUSE_STORAGE (config: storage)`,
    );
  });

  it('a PostgreSQL database that does not exist', async (ctx) => {
    if (!(await postgres)) return ctx.skip();
    const line = oneLine(
      serveFails({ GATEHOUSE_STORAGE: 'postgres://postgres@127.0.0.1:5432/does_not_exist_xyz', PORT: '0' }),
    );
    expect(line).toBe(
      'gatehouse: PostgreSQL database "does_not_exist_xyz" does not exist on 127.0.0.1:5432: create it (createdb -h 127.0.0.1 -p 5432 does_not_exist_xyz) or name an existing database in GATEHOUSE_STORAGE (config: storage)',
    );
  });

  it('Redis unreachable, without retrying forever', async (ctx) => {
    if (!(await redis)) return ctx.skip();
    const port = await closedPort();
    const line = oneLine(serveFails({ GATEHOUSE_STORAGE: `redis://:pw@127.0.0.1:${port}`, PORT: '0' }));
    expect(line).toBe(
      `gatehouse: cannot connect to Redis at 127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}): start Redis there or fix the address in GATEHOUSE_STORAGE (config: storage)`,
    );
  });

  it('the port already in use', async () => {
    const busy = createNetServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const line = oneLine(serveFails({ GATEHOUSE_STORAGE: 'memory', PORT: String(port), HOST: '127.0.0.1' }));
      expect(line).toBe(
        `gatehouse: port ${port} on 127.0.0.1 is already in use: stop the other process or set PORT (config: port) to a free port`,
      );
    } finally {
      busy.close();
    }
  });

  it('at debug level the stack trace follows the line', async () => {
    const port = await closedPort();
    const r = serveFails({ GATEHOUSE_STORAGE: `redis://127.0.0.1:${port}`, PORT: '0', GATEHOUSE_LOG_LEVEL: 'debug' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^gatehouse: cannot connect to Redis at .*\n/);
    expect(r.stderr).toMatch(/^\s+at /m);
  });

  it('a mistyped storage scheme is refused, lists the schemes, and creates no directory', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'gh-cli-cwd-'));
    const r = serveFails({ GATEHOUSE_STORAGE: 'postgress://postgres:s3cret@127.0.0.1:5432/test', PORT: '0' }, cwd);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('storage (GATEHOUSE_STORAGE): unknown storage scheme "postgress:"');
    for (const form of ['memory', 'redis://', 'rediss://', 'postgres://', 'postgresql://', 'file:'])
      expect(r.stderr).toContain(form);
    expect(r.stderr).not.toContain('s3cret');
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('the embedded store locked by a running server; the start log names its absolute directory', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'gh-cli-cwd-'));
    const first = spawn(process.execPath, [BIN, 'serve'], {
      cwd,
      env: { ...process.env, GATEHOUSE_STORAGE: './store', PORT: '0', GATEHOUSE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let out = '';
        first.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          for (const line of out.split('\n')) {
            if (line.includes('"gatehouse listening"')) resolve(JSON.parse(line) as Record<string, unknown>);
          }
        });
        first.once('exit', (code) => reject(new Error(`first server exited with ${code}: ${out}`)));
      });
      const dir = join(cwd, 'store');
      expect(listening.storage).toBe(`embedded (${dir})`);
      const line = oneLine(serveFails({ GATEHOUSE_STORAGE: dir, PORT: '0' }));
      expect(line).toBe(
        `gatehouse: the embedded store in ${dir} is in use by process ${first.pid}: stop that process first, or set GATEHOUSE_STORAGE (config: storage) to another directory, or to PostgreSQL or Redis to share one store between processes`,
      );
    } finally {
      const exited = new Promise((resolve) => first.once('exit', resolve));
      first.kill('SIGTERM');
      await exited;
    }
  }, 120_000);
});
