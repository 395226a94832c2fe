/**
 * Rehash on sign-in (item: username enumeration by timing): a user whose stored hash has another scrypt cost than
 * `passwordHashing.log2N` gets it rehashed at the configured cost by a successful sign-in, on every store, so every
 * known user's check costs what the dummy check for unknown usernames costs. A failed sign-in changes nothing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { hashCost, hashPassword, verifyPassword } from '../../src/core/password.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { FormBrowser } from '../helpers/browser.js';
import { challenge, postJson, verifier } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';

const REDIRECT = 'http://127.0.0.1/callback';
const CONFIGURED = 14; // test/helpers/server.ts
const DORA = { username: 'dora', password: 'doras long passphrase' };
const isolation = `gh_rehash_${randomBytes(4).toString('hex')}`;

const stores: { name: string; available: () => Promise<boolean>; config: () => Partial<ConfigInput> }[] = [
  { name: 'memory', available: async () => true, config: () => ({ storage: 'memory' }) },
  {
    name: 'embedded',
    available: async () => true,
    config: () => ({ storage: mkdtempSync(join(tmpdir(), 'gh-rehash-')) }),
  },
  {
    name: 'postgres',
    available: () => requireService('postgres'),
    config: () => ({ storage: 'postgres://postgres@127.0.0.1:5432/test', postgres: { schema: isolation } }),
  },
  {
    name: 'redis',
    available: () => requireService('redis'),
    config: () => ({ storage: 'redis://127.0.0.1:6379', redis: { keyPrefix: `${isolation}:` } }),
  },
];

afterAll(async () => {
  if (await requireService('postgres')) {
    const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${isolation} CASCADE`);
    await client.end();
  }
  if (await requireService('redis')) {
    const redis = new Redis(6379, '127.0.0.1');
    const keys = await redis.keys(`${isolation}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
});

async function authorizeUrl(server: TestServer): Promise<string> {
  const reg = await postJson(`${server.issuer}/register`, {
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
  });
  expect(reg.status).toBe(201);
  const url = new URL(`${server.issuer}/authorize`);
  url.search = new URLSearchParams({
    client_id: reg.json.client_id as string,
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: challenge(verifier()),
    code_challenge_method: 'S256',
  }).toString();
  return url.href;
}

for (const store of stores) {
  describe(`rehash on sign-in (${store.name} store)`, () => {
    it('a hash at cost 15 is rehashed at the configured 14 by a good sign-in, not by a bad one', async (ctx) => {
      if (!(await store.available())) return ctx.skip();
      const oldHash = await hashPassword(DORA.password, 15);
      const server = await startServer({
        ...store.config(),
        users: [
          { username: DORA.username, password_hash: oldHash },
          { username: 'erin', password: 'erins passphrase' },
        ],
      });
      try {
        const storage = server.gatehouse.deps.storage;
        expect((await storage.getUserByUsername(DORA.username))!.passwordHash).toBe(oldHash);

        // A wrong password: the hash stays as it was.
        const browser = new FormBrowser();
        const page = await browser.follow(await authorizeUrl(server), server.origin);
        const failed = await browser.submit(await page.res.text(), page.url, server.origin, {
          username: DORA.username,
          password: 'wrong',
        });
        expect(failed.callback).toBeUndefined();
        expect((await storage.getUserByUsername(DORA.username))!.passwordHash).toBe(oldHash);

        const callback = await new FormBrowser().authorize(await authorizeUrl(server), server.origin, DORA);
        expect(callback.searchParams.get('code')).toBeTruthy();
        const after = (await storage.getUserByUsername(DORA.username))!;
        expect(after.passwordHash).not.toBe(oldHash);
        expect(hashCost(after.passwordHash)).toBe(CONFIGURED);
        expect(await verifyPassword(DORA.password, after.passwordHash)).toBe(true);

        // Already at the configured cost: a sign-in leaves it alone.
        const erinBefore = (await storage.getUserByUsername('erin'))!;
        expect(hashCost(erinBefore.passwordHash)).toBe(CONFIGURED);
        await new FormBrowser().authorize(await authorizeUrl(server), server.origin, {
          username: 'erin',
          password: 'erins passphrase',
        });
        expect((await storage.getUserByUsername('erin'))!.passwordHash).toBe(erinBefore.passwordHash);
      } finally {
        await server.close();
      }
    }, 60_000);
  });
}
