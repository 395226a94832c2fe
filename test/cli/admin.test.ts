/**
 * The CLI's admin commands (client, user, grant, consent, key), run as real processes from the production build, on
 * every store a second process can open (embedded, PostgreSQL, Redis); and on the embedded store while a server runs
 * on it, through its control socket, with the effect seen over HTTP.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { createStorage } from '../../src/storage/index.js';
import { basic, postForm } from '../helpers/oauth.js';
import { dropIsolation, requireService } from '../helpers/services.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/gatehouse.mjs');
const DAY = 86_400_000;

function gatehouse(args: string[], env: Record<string, string>, input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'warn', ...env },
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
}
/** Runs a command that must succeed; returns its stdout. */
function ok(args: string[], env: Record<string, string>, input?: string): string {
  const r = gatehouse(args, env, input);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.status, args.join(' ')).toBe(0);
  return r.stdout;
}

beforeAll(() => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
}, 120_000);

interface CliStore {
  kind: string;
  service?: 'postgres' | 'redis';
  /** Storage URL and config for an isolated store. */
  setup(isolation: string, dir: string): { storage: string; config: Record<string, unknown> };
  cleanup?(isolation: string): Promise<void>;
}

const STORES: CliStore[] = [
  { kind: 'embedded', setup: (_i, dir) => ({ storage: join(dir, 'data'), config: {} }) },
  {
    kind: 'postgres',
    service: 'postgres',
    setup: (schema) => ({ storage: 'postgres://postgres@127.0.0.1:5432/test', config: { postgres: { schema } } }),
    cleanup: (schema) => dropIsolation('postgres', schema),
  },
  {
    kind: 'redis',
    service: 'redis',
    setup: (prefix) => ({ storage: 'redis://127.0.0.1:6379', config: { redis: { keyPrefix: `${prefix}:` } } }),
    cleanup: (prefix) => dropIsolation('redis', prefix),
  },
];

for (const store of STORES) {
  describe(`gatehouse admin commands (${store.kind})`, () => {
    const isolation = `gh_cliadm_${randomBytes(4).toString('hex')}`;
    afterAll(async () => {
      await store.cleanup?.(isolation);
    });

    it('client, user, grant, consent and key commands', async (ctx) => {
      if (store.service && !(await requireService(store.service))) return ctx.skip();
      const dir = mkdtempSync(join(tmpdir(), 'gh-cli-admin-'));
      const { storage, config } = store.setup(isolation, dir);
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ ...config, passwordPolicy: { minLength: 12 } }));
      const env = { GATEHOUSE_STORAGE: storage, GATEHOUSE_CONFIG: file };

      // Clients.
      const robot = JSON.parse(
        ok(
          [
            'client',
            'add',
            '--name',
            'Billing Robot',
            '--grant-type',
            'client_credentials',
            '--auth-method',
            'client_secret_basic',
            '--scope',
            'openid',
            '--client-id',
            'billing-robot',
          ],
          env,
        ),
      );
      expect(robot).toMatchObject({ client_id: 'billing-robot', client_name: 'Billing Robot', source: 'admin' });
      expect(robot.client_secret).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      ok(['client', 'add', '--name', 'Notes', '--redirect-uri', 'http://127.0.0.1/cb', '--auth-method', 'none'], env);
      expect(ok(['client', 'list', '--name-prefix', 'bill'], env)).toBe(
        'billing-robot\tadmin\tclient_secret_basic\tBilling Robot\t\n',
      );
      expect(ok(['client', 'list'], env).trim().split('\n')).toHaveLength(2);
      const shown = JSON.parse(ok(['client', 'show', 'billing-robot'], env));
      expect(shown.client_secret).toBeUndefined();
      const rotated = JSON.parse(ok(['client', 'rotate-secret', 'billing-robot'], env));
      expect(rotated.client_secret).not.toBe(robot.client_secret);
      const renamed = JSON.parse(
        ok(
          [
            'client',
            'update',
            'billing-robot',
            '--name',
            'Invoice Robot',
            '--grant-type',
            'client_credentials',
            '--auth-method',
            'client_secret_basic',
            '--scope',
            'openid',
          ],
          env,
        ),
      );
      expect(renamed.client_name).toBe('Invoice Robot');
      expect(ok(['client', 'list', '--client-id-prefix', 'billing'], env)).toContain('Invoice Robot');
      expect(gatehouse(['client', 'show', 'nope'], env).stderr).toBe('gatehouse: no such client\n');
      const badMeta = gatehouse(['client', 'add', '--redirect-uri', 'not a url'], env);
      expect(badMeta.status).toBe(1);

      // Users.
      expect(gatehouse(['user', 'add', 'dave'], env, 'short\n').status).toBe(1);
      ok(['user', 'add', 'dave', '--email', 'dave@example.com'], env, 'dave has a long password\n');
      ok(['user', 'add', 'erin'], env, 'erin has a long password\n');
      const listed = ok(['user', 'list', '--prefix', 'da'], env);
      expect(listed).toMatch(/^\S+\tdave\tdave@example\.com\t\n$/);
      const daveId = listed.split('\t')[0]!;

      // A grant and a consent of dave's, written as the token endpoint would.
      const seed = await createStorage(storage, {
        clock: systemClock,
        cleanupIntervalMs: 0,
        // The store as the CLI opens it: the isolation's schema or key prefix.
        ...(store.kind === 'postgres' && { sqlSchema: isolation }),
        ...(store.kind === 'redis' && { redisKeyPrefix: `${isolation}:` }),
      });
      const now = Date.now();
      try {
        await seed.createGrant(
          {
            id: 'grant-1',
            clientId: 'billing-robot',
            userId: daveId,
            scope: ['openid'],
            resource: [],
            authTime: now,
            createdAt: now,
            expiresAt: now + DAY,
          },
          undefined,
          { jti: 'jti-1', expiresAt: now + 60_000 },
        );
        await seed.saveConsent({
          userId: daveId,
          clientId: 'billing-robot',
          scope: ['openid'],
          resource: [],
          createdAt: now,
          expiresAt: now + DAY,
        });
      } finally {
        await seed.close();
      }
      expect(ok(['grant', 'list', '--user', 'dave'], env)).toMatch(
        new RegExp(`^grant-1\\t${daveId}\\tbilling-robot\\topenid\\tcreated .+\\tlast used .+\\tactive\\n$`),
      );
      expect(ok(['grant', 'list', '--client', 'billing-robot'], env)).toContain('grant-1');
      expect(ok(['consent', 'list', '--client', 'billing-robot'], env)).toMatch(
        new RegExp(`^${daveId}\\tbilling-robot\\topenid\\t`),
      );
      expect(ok(['grant', 'revoke', 'grant-1'], env)).toBe('grant grant-1 revoked\n');
      expect(ok(['grant', 'list', '--user', 'dave'], env)).toContain('\trevoked ');
      expect(ok(['consent', 'revoke', '--user', 'dave', '--client', 'billing-robot'], env)).toContain('withdrawn');
      expect(ok(['consent', 'list', '--user', 'dave'], env)).toBe('');
      expect(gatehouse(['grant', 'list'], env).stderr).toContain('exactly one of --user or --client');

      expect(ok(['user', 'disable', 'dave'], env)).toContain('user dave disabled');
      expect(ok(['user', 'list', '--prefix', 'dave'], env)).toMatch(/\tdisabled\n$/);
      ok(['user', 'enable', 'dave'], env);
      expect(ok(['user', 'list', '--prefix', 'dave'], env)).not.toContain('disabled');
      expect(ok(['user', 'set-password', 'dave'], env, 'dave has a new password\n')).toContain(
        'password of dave reset',
      );
      ok(['user', 'remove', 'erin'], env);
      expect(ok(['user', 'list'], env)).not.toContain('erin');
      ok(['client', 'remove', 'billing-robot'], env);
      expect(ok(['client', 'list'], env)).not.toContain('billing-robot');

      // Keys.
      ok(['key', 'rotate'], env);
      const keys = ok(['key', 'list'], env).trim().split('\n');
      const active = keys.find((line) => line.split('\t')[2] === 'active')!.split('\t')[0]!;
      expect(ok(['key', 'retire', active], env)).toMatch(
        new RegExp(`^key ${active} retired; new ES256 key \\S+ is active\\n$`),
      );
      expect(gatehouse(['key', 'retire', active], env).stderr).toContain('already retired');
    }, 300_000);
  });
}

/** `gatehouse serve` on the embedded store in `cwd`, until stop(); log() is everything it wrote to stdout so far. */
async function startLiveServer(
  cwd: string,
  env: Record<string, string>,
): Promise<{ origin: string; log: () => string; stop: () => Promise<void> }> {
  const server = spawn(process.execPath, [BIN, 'serve'], {
    cwd,
    env: { ...process.env, ...env, PORT: '0', GATEHOUSE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  // 'close': its output read to the end too (the audit log is written asynchronously).
  const closed = new Promise((resolve) => server.once('close', resolve));
  const stop = async () => {
    server.kill('SIGTERM');
    await closed;
  };
  try {
    const listening = await new Promise<{ port: number }>((resolve, reject) => {
      server.stdout.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        for (const line of log.split('\n')) {
          if (line.includes('"gatehouse listening"')) resolve(JSON.parse(line) as { port: number });
        }
      });
      server.once('exit', (code) => reject(new Error(`server exited with ${code}: ${log}`)));
    });
    return { origin: `http://localhost:${listening.port}`, log: () => log, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

describe('gatehouse admin commands while a server runs on the embedded store', () => {
  it('are sent to the server over its control socket; their effect shows over HTTP', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'gh-cli-live-'));
    const dir = join(cwd, 'data');
    const env = { GATEHOUSE_STORAGE: dir };
    const server = await startLiveServer(cwd, env);
    const { origin } = server;
    try {
      const socket = join(dir, 'control.sock');
      expect(statSync(socket).mode & 0o777).toBe(0o600);

      const robot = JSON.parse(
        ok(
          [
            'client',
            'add',
            '--name',
            'Robot',
            '--grant-type',
            'client_credentials',
            '--auth-method',
            'client_secret_basic',
            '--scope',
            'openid',
          ],
          env,
        ),
      );
      const token = (secret: string) =>
        postForm(
          `${origin}/token`,
          { grant_type: 'client_credentials', scope: 'openid' },
          {
            authorization: basic(robot.client_id, secret),
          },
        );
      expect((await token(robot.client_secret)).status).toBe(200);
      const rotated = JSON.parse(ok(['client', 'rotate-secret', robot.client_id], env));
      expect((await token(robot.client_secret)).status).toBe(401);
      expect((await token(rotated.client_secret)).status).toBe(200);

      const rotatedKey = ok(['key', 'rotate'], env).match(/key (\S+) is active/)![1]!;
      const jwks = (await (await fetch(`${origin}/jwks.json`)).json()) as { keys: { kid: string }[] };
      expect(jwks.keys.map((k) => k.kid)).toContain(rotatedKey);

      ok(['user', 'add', 'dave'], env, 'dave has a long password\n');
      expect(ok(['user', 'list'], env)).toContain('\tdave\t');
      expect(gatehouse(['client', 'show', 'nope'], env).stderr).toBe('gatehouse: no such client\n');
      // Each call is in the server's audit log, without the password.
      const log = server.log();
      expect(log).toMatch(/"type":"admin\.call"[^\n]*"route":"control:client\.add"[^\n]*"actor":"cli"/);
      expect(log).toMatch(/"type":"key\.rotated"[^\n]*"source":"cli"/);
      expect(log).not.toContain('dave has a long password');
      expect(log).not.toContain(rotated.client_secret);
    } finally {
      await server.stop();
    }
    // The socket goes with the server; the CLI opens the store itself again.
    expect(existsSync(join(dir, 'control.sock'))).toBe(false);
    expect(ok(['user', 'list'], env)).toContain('\tdave\t');
  }, 300_000);

  it('tenant, upstream and user mfa commands go over the socket too; a tenant added there is served at once', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'gh-cli-live-'));
    const dir = join(cwd, 'data');
    // Nothing listens on port 9: its discovery fails at once.
    const down = {
      id: 'down',
      name: 'Down',
      type: 'oidc',
      issuer: 'http://127.0.0.1:9',
      clientId: 'gatehouse',
      clientSecretEnv: 'DOWN_SECRET',
      timeoutMs: 1000,
    };
    const config = join(cwd, 'config.json');
    writeFileSync(config, JSON.stringify({ upstreams: [down] }));
    const env = {
      GATEHOUSE_STORAGE: dir,
      GATEHOUSE_CONFIG: config,
      GATEHOUSE_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      DOWN_SECRET: 'down-client-secret',
    };
    const server = await startLiveServer(cwd, env);
    const { origin } = server;
    try {
      // A new connection each time: spawnSync blocks this process, so a pooled one may have been closed meanwhile.
      const discovery = () =>
        new Promise<{ status: number; json: () => Promise<unknown> }>((resolve, reject) => {
          httpGet(`${origin}/acme/.well-known/openid-configuration`, { agent: false }, (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, json: async () => JSON.parse(body) }));
          }).on('error', reject);
        });
      expect((await discovery()).status).toBe(404);

      // Tenants: added through the server, served by it at once (its registry entry dropped, as the admin API does).
      const settings = join(cwd, 'acme.json');
      writeFileSync(settings, JSON.stringify({ scopes: ['orders'] }));
      expect(ok(['tenant', 'add', 'acme', '--settings', settings], env)).toMatch(
        /^tenant acme created: issuer \S+\/acme\n$/,
      );
      const served = await discovery();
      expect(served.status).toBe(200);
      const metadata = (await served.json()) as { issuer: string; scopes_supported: string[] };
      expect(metadata.issuer).toMatch(/\/acme$/);
      expect(metadata.scopes_supported).toContain('orders');
      expect(gatehouse(['tenant', 'add', 'acme'], env).stderr).toBe('gatehouse: tenant acme exists already\n');
      expect(ok(['tenant', 'list'], env)).toMatch(/^acme\tadmin\t\S+\/acme\t\S+\n$/);
      expect(JSON.parse(ok(['tenant', 'show', 'acme'], env)).settings).toEqual({ scopes: ['orders'] });
      writeFileSync(settings, JSON.stringify({ scopes: ['invoices'] }));
      expect(ok(['tenant', 'update', 'acme', '--settings', settings], env)).toMatch(/^tenant acme updated; /);
      const updated = (await (await discovery()).json()) as { scopes_supported: string[] };
      expect(updated.scopes_supported).toContain('invoices');
      expect(updated.scopes_supported).not.toContain('orders');

      // --tenant scopes the user commands run over the socket.
      ok(['user', 'add', 'erin', '--tenant', 'acme'], env, 'erin has a long password\n');
      expect(ok(['user', 'list', '--tenant', 'acme'], env)).toContain('\terin\t');
      expect(ok(['user', 'list'], env)).not.toContain('erin');
      expect(ok(['user', 'mfa', 'erin', '--require', '--tenant', 'acme'], env)).toBe(
        'erin must sign in with a second factor (sessions signed in with a password alone no longer count)\n',
      );
      expect(gatehouse(['user', 'mfa', 'erin', '--require'], env).stderr).toBe('gatehouse: no user named erin\n');
      expect(ok(['user', 'mfa-reset', 'erin', '--tenant', 'acme'], env)).toBe(
        'second factors of erin removed; 0 session(s) ended\n',
      );

      // Upstreams: the server's own providers.
      expect(ok(['upstream', 'list', '--no-check'], env)).toBe('down\tDown\toidc\thttp://127.0.0.1:9\t-\n');
      expect(ok(['upstream', 'list'], env)).toBe('down\tDown\toidc\thttp://127.0.0.1:9\tfailed\n');
      expect(ok(['upstream', 'links'], env)).toBe('');

      expect(ok(['tenant', 'remove', 'acme'], env)).toMatch(
        /^tenant acme deleted; [1-9]\d* stored item\(s\) removed\n$/,
      );
      expect((await discovery()).status).toBe(404);
      expect(ok(['tenant', 'list'], env)).toBe('');
    } finally {
      await server.stop();
    }
    // Each call is in the server's audit log (read once it exited: its log is written asynchronously).
    const log = server.log();
    for (const op of ['tenant.add', 'tenant.remove', 'user.mfa', 'user.mfa-reset', 'upstream.list']) {
      expect(log).toContain(`"route":"control:${op}"`);
    }
    expect(log).not.toContain('erin has a long password');
    expect(existsSync(join(dir, 'control.sock'))).toBe(false);
    // Without the server, the same commands open the store themselves.
    expect(ok(['tenant', 'list'], env)).toBe('');
    expect(ok(['upstream', 'list', '--no-check'], env)).toBe('down\tDown\toidc\thttp://127.0.0.1:9\t-\n');
  }, 300_000);
});
