/**
 * Writes the upgrade fixtures in test/upgrade/fixtures/ from an OLD release's build: starts its server on PostgreSQL
 * and on Redis, creates data over HTTP (DCR clients, code flows, a client_credentials token), then dumps the store.
 * Run once per release whose data must keep working:
 *
 *   npx tsx test/upgrade/generate-fixtures.ts /path/to/old/checkout <release-tag>
 *
 * The old checkout must be built (dist/) with node_modules installed. Not a test: nothing here runs in `npm test`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { freePort } from '../helpers/server.js';
import {
  FIXTURE_USER,
  FIXTURE_STATIC_CLIENT,
  FIXTURE_SCOPE,
  PG_SCHEMA_PLACEHOLDER,
  REDIS_PREFIX_PLACEHOLDER,
  fixtureConfig,
} from './fixture-config.js';

const [oldCheckout, release] = process.argv.slice(2);
if (!oldCheckout || !release) throw new Error('usage: generate-fixtures.ts <old checkout> <release tag>');
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'fixtures');
mkdirSync(out, { recursive: true });
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

async function startOld(storage: string, isolation: { schema?: string; keyPrefix?: string }) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const configFile = join('/tmp', `gatehouse-fixture-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(configFile, JSON.stringify(fixtureConfig(isolation)));
  const child: ChildProcess = spawn(process.execPath, [join(oldCheckout!, 'bin/gatehouse.mjs'), 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      GATEHOUSE_ISSUER: issuer,
      GATEHOUSE_STORAGE: storage,
      GATEHOUSE_CONFIG: configFile,
      GATEHOUSE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${issuer}/health`)).ok) break;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { issuer, origin: issuer, stop: () => (child.kill('SIGTERM'), exited) };
}

/** Everything a test needs to exercise the old data, made over HTTP against the old server. */
async function makeData(server: { issuer: string; origin: string }) {
  const redirectUri = 'http://127.0.0.1:9/callback';
  const publicReg = await postJson(`${server.issuer}/register`, {
    client_name: 'fixture public',
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    scope: `openid offline_access ${FIXTURE_SCOPE}`,
  });
  const confidentialReg = await postJson(`${server.issuer}/register`, {
    client_name: 'fixture confidential',
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
  });
  if (publicReg.status !== 201 || confidentialReg.status !== 201)
    throw new Error(`registration failed: ${JSON.stringify([publicReg.json, confidentialReg.json])}`);

  const browser = new FormBrowser();
  const codeFlow = async (clientId: string, auth: Record<string, string>, body: Record<string, string>) => {
    const v = verifier();
    const u = new URL(`${server.issuer}/authorize`);
    for (const [k, val] of Object.entries({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      state: 'st',
      scope: `openid offline_access ${FIXTURE_SCOPE}`,
    }))
      u.searchParams.set(k, val);
    const callback = await browser.authorize(u.href, server.origin, FIXTURE_USER);
    const code = callback.searchParams.get('code');
    if (!code) throw new Error(`no code: ${callback.href}`);
    const tok = await postForm(
      `${server.issuer}/token`,
      { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: v, ...body },
      auth,
    );
    if (tok.status !== 200) throw new Error(`token failed: ${JSON.stringify(tok.json)}`);
    return tok.json as { access_token: string; refresh_token: string; id_token: string; scope: string };
  };
  const publicTokens = await codeFlow(publicReg.json.client_id, {}, { client_id: publicReg.json.client_id });
  const confidentialTokens = await codeFlow(
    confidentialReg.json.client_id,
    { authorization: basic(confidentialReg.json.client_id, confidentialReg.json.client_secret) },
    {},
  );
  const cc = await postForm(
    `${server.issuer}/token`,
    { grant_type: 'client_credentials', scope: FIXTURE_SCOPE },
    { authorization: basic(FIXTURE_STATIC_CLIENT.client_id, FIXTURE_STATIC_CLIENT.client_secret) },
  );
  if (cc.status !== 200) throw new Error(`client_credentials failed: ${JSON.stringify(cc.json)}`);
  const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as {
    jwks_uri: string;
  };
  const jwks = (await (await fetch(metadata.jwks_uri)).json()) as { keys: Array<{ kid: string }> };
  if (!jwks.keys?.length) throw new Error(`no JWKS: ${JSON.stringify(jwks)}`);
  return {
    issuer: server.issuer,
    createdAt: Date.now(),
    staticClient: {
      client_id: FIXTURE_STATIC_CLIENT.client_id,
      client_secret: FIXTURE_STATIC_CLIENT.client_secret,
      access_token: cc.json.access_token,
    },
    publicClient: {
      client_id: publicReg.json.client_id,
      registration_access_token: publicReg.json.registration_access_token,
      registration_client_uri: publicReg.json.registration_client_uri,
      redirect_uri: redirectUri,
      access_token: publicTokens.access_token,
      refresh_token: publicTokens.refresh_token,
      scope: publicTokens.scope,
    },
    confidentialClient: {
      client_id: confidentialReg.json.client_id,
      client_secret: confidentialReg.json.client_secret,
      registration_access_token: confidentialReg.json.registration_access_token,
      access_token: confidentialTokens.access_token,
      refresh_token: confidentialTokens.refresh_token,
      scope: confidentialTokens.scope,
    },
    jwks,
  };
}

async function postgresFixture(): Promise<void> {
  const schema = `upgrade_fixture_${randomBytes(4).toString('hex')}`;
  const server = await startOld(PG_URL, { schema });
  try {
    const data = await makeData(server);
    await server.stop();
    const sql = execFileSync('pg_dump', ['--schema', schema, '--no-owner', '--no-privileges', '--inserts', PG_URL], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    // pg_dump >= 15.14 wraps the dump in psql-only \\restrict lines; the test loads it with a plain client.
    const plain = sql
      .split('\n')
      .filter((line) => !/^\\(un)?restrict /.test(line))
      .join('\n');
    writeFileSync(join(out, `postgres-${release}.sql`), plain.replaceAll(schema, PG_SCHEMA_PLACEHOLDER));
    writeFileSync(join(out, `tokens-postgres-${release}.json`), JSON.stringify(data, null, 2) + '\n');
  } finally {
    await server.stop().catch(() => undefined);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
}

async function redisFixture(): Promise<void> {
  const keyPrefix = `upgrade-fixture-${randomBytes(4).toString('hex')}:`;
  const server = await startOld('redis://127.0.0.1:6379', { keyPrefix });
  const redis = new Redis(6379, '127.0.0.1');
  try {
    const data = await makeData(server);
    await server.stop();
    const keys = (await redis.keys(`${keyPrefix}*`)).sort();
    const dumped: Array<{ key: string; type: string; pttl: number; value: unknown }> = [];
    for (const key of keys) {
      const type = await redis.type(key);
      const pttl = await redis.pttl(key);
      let value: unknown;
      if (type === 'string') value = await redis.get(key);
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'set') value = (await redis.smembers(key)).sort();
      else if (type === 'zset') value = await redis.zrange(key, 0, -1, 'WITHSCORES');
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else throw new Error(`unexpected type ${type} for ${key}`);
      dumped.push({ key: key.replace(keyPrefix, REDIS_PREFIX_PLACEHOLDER), type, pttl, value });
    }
    const text = JSON.stringify({ release, dumpedAt: Date.now(), keys: dumped }, null, 2);
    writeFileSync(join(out, `redis-${release}.json`), text + '\n');
    writeFileSync(join(out, `tokens-redis-${release}.json`), JSON.stringify(data, null, 2) + '\n');
  } finally {
    await server.stop().catch(() => undefined);
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
}

await postgresFixture();
await redisFixture();
console.log(`fixtures written to ${out}`);
