/**
 * Three Gatehouse processes, one issuer, one store (PostgreSQL, then Redis): every step of a flow on a different
 * replica, identical JWKS everywhere; then the store goes away (connection cut by a proxy): 503 with Retry-After
 * and degraded health, logged once; then it comes back and the same grants still work, without a restart.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, freePort } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { dropIsolation, requireService } from '../helpers/services.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const REDIRECT = 'http://127.0.0.1/callback';
const RESOURCE = 'https://mcp.example.com/mcp';
/** The resource server's client, allowed to introspect any token (introspection.allowedClients). */
const RS = { id: 'mcp-rs', secret: 'resource-server-secret-0123456789abcdef' };
const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const admin = (body?: unknown) => ({
  headers: {
    authorization: `Bearer ${ADMIN_TOKEN}`,
    ...(body !== undefined && { 'content-type': 'application/json' }),
  },
  ...(body !== undefined && { body: JSON.stringify(body) }),
});

interface Replica {
  origin: string;
  proc: ChildProcess;
  log: string[];
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what()}`);
}

const stores = [
  { kind: 'postgres', port: 5432, url: (port: number) => `postgres://postgres@127.0.0.1:${port}/test` },
  { kind: 'redis', port: 6379, url: (port: number) => `redis://127.0.0.1:${port}` },
] as const;

for (const store of stores) {
  describe(`three replicas on one ${store.kind} store`, () => {
    const available = requireService(store.kind);
    const proxy = new TcpProxy(store.port);
    const replicas: Replica[] = [];
    const isolation = `gh_rep_${randomBytes(4).toString('hex')}`;
    let issuer = '';

    beforeAll(async () => {
      if (!(await available)) return;
      // The production build is what runs in the replicas.
      execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
      const proxyPort = await proxy.start();
      const dir = mkdtempSync(join(tmpdir(), 'gh-replicas-'));
      const configFile = join(dir, 'config.json');
      writeFileSync(
        configFile,
        JSON.stringify({
          scopes: ['mcp:read'],
          logLevel: 'info',
          passwordHashing: { log2N: 14 },
          users: [ALICE],
          registration: { allowClientCredentials: true },
          clients: [{ client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'] }],
          introspection: { allowedClients: [RS.id] },
          postgres: { schema: isolation, poolSize: 4 },
          redis: { keyPrefix: `${isolation}:` },
          retryAfterSeconds: 3,
          adminToken: ADMIN_TOKEN,
          tenantRefreshSeconds: 1,
        }),
      );
      const ports = [await freePort(), await freePort(), await freePort()];
      issuer = `http://localhost:${ports[0]}`;
      for (const port of ports) {
        const log: string[] = [];
        const proc = spawn(process.execPath, [join(ROOT, 'bin/gatehouse.mjs'), 'serve'], {
          cwd: ROOT,
          env: {
            ...process.env,
            PORT: String(port),
            HOST: '127.0.0.1',
            GATEHOUSE_ISSUER: issuer,
            GATEHOUSE_STORAGE: store.url(proxyPort),
            GATEHOUSE_CONFIG: configFile,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        proc.stdout.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
        proc.stderr.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
        replicas.push({ origin: `http://localhost:${port}`, proc, log });
      }
      // Started together: migrations, key creation and secrets must agree across them.
      for (const r of replicas) {
        await waitFor(
          async () => (await fetch(`${r.origin}/health`)).status === 200,
          30_000,
          () => `${r.origin} to be healthy\n${r.log.join('\n')}`,
        );
      }
    }, 120_000);

    afterAll(async () => {
      for (const r of replicas) r.proc.kill('SIGTERM');
      await proxy.stop();
      if (!(await available)) return;
      await dropIsolation(store.kind, isolation);
    });

    it('runs one flow across replicas A, B and C, then survives the store going away', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const [A, B, C] = replicas.map((r) => r.origin) as [string, string, string];

      // The JWKS is identical everywhere.
      const jwks = await Promise.all([A, B, C].map(async (o) => (await fetch(`${o}/jwks.json`)).text()));
      expect(new Set(jwks).size).toBe(1);
      expect(JSON.parse(jwks[0]!).keys.length).toBeGreaterThanOrEqual(2);

      // DCR at A.
      const reg = await postJson(`${A}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      });
      expect(reg.status).toBe(201);
      const clientId = reg.json.client_id as string;

      // Authorize, sign in and consent at B.
      const codeAt = async (browser: FormBrowser) => {
        const v = verifier();
        const u = new URL(`${B}/authorize`);
        u.search = new URLSearchParams({
          client_id: clientId,
          redirect_uri: REDIRECT,
          response_type: 'code',
          code_challenge: challenge(v),
          code_challenge_method: 'S256',
          scope: 'mcp:read',
          resource: RESOURCE,
          state: 's',
        }).toString();
        const cb = await browser.authorize(u.href, B, ALICE);
        expect(cb.searchParams.get('iss')).toBe(issuer);
        return { code: cb.searchParams.get('code')!, v };
      };
      const browser = new FormBrowser();
      const first = await codeAt(browser);
      // Redeem at C.
      const tokens = await postForm(`${C}/token`, {
        grant_type: 'authorization_code',
        client_id: clientId,
        code: first.code,
        code_verifier: first.v,
        redirect_uri: REDIRECT,
      });
      expect(tokens.status).toBe(200);
      // Refresh at A.
      const refreshed = await postForm(`${A}/token`, {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: tokens.json.refresh_token as string,
      });
      expect(refreshed.status).toBe(200);
      // The replayed code at A is caught although C redeemed it.
      const replay = await postForm(`${A}/token`, {
        grant_type: 'authorization_code',
        client_id: clientId,
        code: first.code,
        code_verifier: first.v,
        redirect_uri: REDIRECT,
      });
      expect(replay.json.error).toBe('invalid_grant');

      // A second grant, kept for after the outage.
      const second = await codeAt(browser);
      const kept = await postForm(`${B}/token`, {
        grant_type: 'authorization_code',
        client_id: clientId,
        code: second.code,
        code_verifier: second.v,
        redirect_uri: REDIRECT,
      });
      expect(kept.status).toBe(200);

      // Revocation at B is seen by introspection at C.
      const auth = { authorization: basic(RS.id, RS.secret) };
      const live = await postForm(`${C}/introspect`, { token: kept.json.access_token as string }, auth);
      expect(live.json.active).toBe(true);
      await postForm(`${B}/revoke`, { client_id: clientId, token: refreshed.json.refresh_token as string });
      expect((await postForm(`${C}/introspect`, { token: refreshed.json.access_token as string }, auth)).json).toEqual({
        active: false,
      });

      // The store goes away.
      await proxy.stop();
      for (let i = 0; i < 5; i++) {
        const down = await postForm(`${A}/token`, {
          grant_type: 'refresh_token',
          client_id: clientId,
          refresh_token: kept.json.refresh_token as string,
        });
        expect(down.status).toBe(503);
        expect(down.json.error).toBe('temporarily_unavailable');
        expect(down.headers.get('retry-after')).toBe('3');
      }
      const health = await fetch(`${B}/health`);
      expect(health.status).toBe(503);
      expect((await health.json()).status).toBe('degraded');
      // Logged once per state change, not once per request.
      const outageLines = replicas[0]!.log.filter((l) => /unreachable/.test(l));
      expect(outageLines.length).toBeGreaterThanOrEqual(1);
      expect(outageLines.length).toBeLessThanOrEqual(2);

      // It comes back; no restart.
      await proxy.start();
      for (const o of [A, B, C])
        await waitFor(
          async () => (await fetch(`${o}/health`)).status === 200,
          20_000,
          () => `${o} to recover`,
        );
      const after = await postForm(`${C}/token`, {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: kept.json.refresh_token as string,
      });
      expect(after.status).toBe(200);
      expect((await postForm(`${A}/introspect`, { token: after.json.access_token as string }, auth)).json.active).toBe(
        true,
      );
      // The revoked family is still revoked.
      expect(
        (
          await postForm(`${B}/token`, {
            grant_type: 'refresh_token',
            client_id: clientId,
            refresh_token: refreshed.json.refresh_token as string,
          })
        ).json.error,
      ).toBe('invalid_grant');
    }, 120_000);

    it('shares tenants created, changed and deleted at run time, within tenantRefreshSeconds', async (ctx) => {
      if (!(await available)) return ctx.skip();
      const [A, B, C] = replicas.map((r) => r.origin) as [string, string, string];
      const metadataAt = (origin: string) => fetch(`${origin}/t1/.well-known/openid-configuration`);
      // B is asked first, so it remembers t1 as unknown: creation must still reach it within the bound.
      expect((await metadataAt(B)).status).toBe(404);
      const created = await fetch(`${A}/admin/tenants`, {
        method: 'POST',
        ...admin({ id: 't1', settings: { scopes: ['mcp:read'] } }),
      });
      expect(created.status).toBe(201);
      const within = async (check: () => Promise<boolean>, what: string) => {
        const started = Date.now();
        await waitFor(check, 5_000, () => what);
        // tenantRefreshSeconds is 1: allow for the background re-read and the 100 ms polling.
        expect(Date.now() - started).toBeLessThan(3_000);
      };
      for (const o of [B, C]) {
        await within(async () => (await metadataAt(o)).status === 200, `${o} to serve t1`);
        expect((await (await metadataAt(o)).json()).issuer).toBe(`${issuer}/t1`);
      }
      // One set of keys for the tenant, whichever replica made them.
      const jwks = await Promise.all([A, B, C].map(async (o) => (await fetch(`${o}/t1/jwks.json`)).text()));
      expect(new Set(jwks).size).toBe(1);

      // A flow within the tenant across the replicas: register at A, sign in at B, redeem at C.
      const reg = await postJson(`${A}/t1/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      });
      expect(reg.status).toBe(201);
      // The tenant has no users yet: the update at C adds one (a password_hash: the store keeps no password).
      const { hashPassword } = await import('../../src/core/password.js');
      const dana = { username: 'dana', password: 'dana at t1, long enough' };
      const updated = await fetch(`${C}/admin/tenants/t1`, {
        method: 'PUT',
        ...admin({
          settings: {
            scopes: ['mcp:read'],
            branding: { name: 'Tenant One' },
            users: [{ username: dana.username, password_hash: await hashPassword(dana.password, 14) }],
          },
        }),
      });
      expect(updated.status).toBe(200);
      const v = verifier();
      const u = new URL(`${B}/t1/authorize`);
      u.search = new URLSearchParams({
        client_id: reg.json.client_id as string,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        scope: 'mcp:read',
      }).toString();
      await within(
        async () => (await (await new FormBrowser().follow(u.href, B)).res.text()).includes('Tenant One'),
        'B to show the new branding',
      );
      const cb = await new FormBrowser().authorize(u.href, B, dana);
      expect(cb.searchParams.get('iss')).toBe(`${issuer}/t1`);
      const tokens = await postForm(`${C}/t1/token`, {
        grant_type: 'authorization_code',
        client_id: reg.json.client_id as string,
        code: cb.searchParams.get('code')!,
        code_verifier: v,
        redirect_uri: REDIRECT,
      });
      expect(tokens.status).toBe(200);
      expect(
        JSON.parse(Buffer.from((tokens.json.access_token as string).split('.')[1]!, 'base64url').toString()).iss,
      ).toBe(`${issuer}/t1`);

      // Deleted at B: gone everywhere within the bound.
      const deleted = await fetch(`${B}/admin/tenants/t1`, { method: 'DELETE', ...admin() });
      expect(deleted.status).toBe(200);
      for (const o of [A, C]) await within(async () => (await metadataAt(o)).status === 404, `${o} to drop t1`);
      const refresh = await postForm(`${A}/t1/token`, {
        grant_type: 'refresh_token',
        client_id: reg.json.client_id as string,
        refresh_token: tokens.json.refresh_token as string,
      });
      expect(refresh.status).toBe(404);
    }, 120_000);
  });
}
