/**
 * Secrets at rest: with `encryptionKey` set, someone who can only read the store (SQL rows, Redis keys) finds no
 * private key, cookie key or pepper in clear (nor a pushed request's request_uri), and nothing there lets them mint an
 * access token, forge a session cookie or take over a pending interaction. Restarts with the same key and with a
 * rotated key keep working; a wrong key stops the start with one line naming encryptionKey. Without a key, one warning
 * at start says what a store reader can do (and the test shows they can).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PGlite } from '@electric-sql/pglite';
import { Redis } from 'ioredis';
import { SignJWT, importJWK, type CryptoKey, type JWK } from 'jose';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { hashToken } from '../../src/core/crypto.js';
import { encryptionKeyId } from '../../src/core/sealing.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { signValue } from '../../src/http/cookies.js';
import { createResourceVerifier } from '../../src/resource/index.js';
import { parseConfig } from '../../src/config/load.js';
import { createGatehouse, createLogger } from '../../src/server.js';
import { MemoryStorage } from '../../src/storage/memory/memory-storage.js';
import { redisKeys } from '../../src/storage/redis/keys.js';
import { createEmbeddedStorageOn } from '../../src/storage/sql/embedded.js';
import { createStorage } from '../../src/storage/index.js';
import type { Storage } from '../../src/model/ports.js';
import { FormBrowser } from '../helpers/browser.js';
import { challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, BOB, freePort, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { enrolTotpOnAccount } from '../helpers/sign-in.js';

const PG_URL = process.env.GATEHOUSE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIRECT = 'http://127.0.0.1/callback';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const RESOURCE = 'https://mcp.example.com/mcp';
const SECRET_NAMES = ['client-secret-pepper', 'cookie-key'];
const newKey = () => randomBytes(32).toString('base64');

/** What a reader of the store sees, read with the backend's own client (not through Gatehouse). */
interface RawView {
  /** Every record, as text. */
  dump(): Promise<string>;
  /** The stored `privateJwk` of every signing key, with its alg. */
  privateJwks(): Promise<{ alg: string; privateJwk: Record<string, unknown> }[]>;
  /** Stored value of each named server secret. */
  secrets(): Promise<Record<string, string>>;
  /** Ids the sessions / interactions are stored under. */
  sessionIds(): Promise<string[]>;
  interactionIds(): Promise<string[]>;
}

/** One store namespace (schema, key prefix, instance) that servers can be started on, again and again. */
interface StoreUnderTest {
  config: Partial<ConfigInput>;
  /** A backend instance to hand to the server (memory, embedded); undefined: the server opens `config.storage`. */
  backend?: () => Promise<Storage>;
  raw: RawView;
  port?: number;
}

interface Backend {
  name: string;
  available: () => Promise<boolean>;
  namespace: () => Promise<StoreUnderTest>;
  close: () => Promise<void>;
}

type Query = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

function sqlView(query: Query, schema: string): RawView {
  return {
    async dump() {
      const tables = await query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
      const out: string[] = [];
      for (const t of tables) {
        for (const row of await query(`SELECT row_to_json(x)::text AS j FROM ${schema}."${String(t.table_name)}" x`))
          out.push(String(row.j));
      }
      return out.join('\n');
    },
    async privateJwks() {
      const rows = await query(`SELECT alg, private_jwk FROM ${schema}.signing_keys`);
      return rows.map((r) => ({ alg: String(r.alg), privateJwk: r.private_jwk as Record<string, unknown> }));
    },
    async secrets() {
      const rows = await query(`SELECT name, value FROM ${schema}.secrets`);
      return Object.fromEntries(rows.map((r) => [String(r.name), String(r.value)]));
    },
    async sessionIds() {
      return (await query(`SELECT id FROM ${schema}.records WHERE kind = 'session'`)).map((r) => String(r.id));
    },
    async interactionIds() {
      return (await query(`SELECT id FROM ${schema}.records WHERE kind = 'interaction'`)).map((r) => String(r.id));
    },
  };
}

const schemaName = () => `gh_sar_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

const pgPool = new pg.Pool({ connectionString: PG_URL, max: 2 });
pgPool.on('error', () => undefined);
const pgSchemas: string[] = [];
const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
redis.on('error', () => undefined);
const redisPrefixes: string[] = [];
let pglite: PGlite | undefined;

async function redisKeysWith(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

const BACKENDS: Backend[] = [
  {
    name: 'memory',
    available: async () => true,
    async namespace() {
      const store = new MemoryStorage({ clock: systemClock, cleanupIntervalMs: 0 });
      await store.init();
      // The memory store has no outside reader; its maps stand in for "the store's content".
      // Every map of the store, the split parts' too, by name (memory-storage.ts `maps`).
      const maps = (store as unknown as { maps: { name: string; entries: Map<string, unknown> }[] }).maps;
      const entries = (name: string) => [...maps.find((m) => m.name === name)!.entries];
      return {
        config: {},
        backend: async () => store,
        raw: {
          dump: async () => JSON.stringify(maps.map((m) => [m.name, [...m.entries]])),
          privateJwks: async () =>
            (await store.listSigningKeys()).map((k) => ({ alg: k.alg, privateJwk: k.privateJwk })),
          secrets: async () => Object.fromEntries(entries('secrets') as [string, string][]),
          // records are keyed `<kind>\u0000<id>`
          sessionIds: async () =>
            entries('records')
              .map(([key]) => key.split('\u0000'))
              .filter(([kind]) => kind === 'session')
              .map(([, id]) => id!),
          interactionIds: async () =>
            entries('records')
              .map(([key]) => key.split('\u0000'))
              .filter(([kind]) => kind === 'interaction')
              .map(([, id]) => id!),
        },
      };
    },
    close: async () => undefined,
  },
  {
    name: 'embedded',
    available: async () => true,
    async namespace() {
      pglite ??= new PGlite();
      const db = pglite;
      const schema = schemaName();
      return {
        config: {},
        backend: async () => {
          const store = createEmbeddedStorageOn(db, { clock: systemClock, sqlSchema: schema, cleanupIntervalMs: 0 });
          await store.init();
          return store;
        },
        raw: sqlView(async (sql, params) => (await db.query<Record<string, unknown>>(sql, params)).rows, schema),
      };
    },
    close: async () => {
      await pglite?.close();
    },
  },
  {
    name: 'postgres',
    available: () => requireService('postgres'),
    async namespace() {
      const schema = schemaName();
      pgSchemas.push(schema);
      return {
        config: { storage: PG_URL, postgres: { schema, poolSize: 2 } },
        raw: sqlView(
          async (sql, params) => (await pgPool.query(sql, params)).rows as Record<string, unknown>[],
          schema,
        ),
      };
    },
    close: async () => {
      for (const s of pgSchemas) await pgPool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await pgPool.end();
    },
  },
  {
    name: 'redis',
    available: () => requireService('redis'),
    async namespace() {
      const prefix = `gh-sar-${randomUUID()}:`;
      redisPrefixes.push(prefix);
      const k = redisKeys(prefix);
      const strip = async (start: string) => (await redisKeysWith(start)).map((key) => key.slice(start.length));
      return {
        config: { storage: REDIS_URL, redis: { keyPrefix: prefix } },
        raw: {
          async dump() {
            const out: string[] = [];
            for (const key of await redisKeysWith(prefix)) {
              const type = await redis.type(key);
              const value =
                type === 'string'
                  ? await redis.get(key)
                  : type === 'hash'
                    ? JSON.stringify(await redis.hgetall(key))
                    : type === 'zset'
                      ? JSON.stringify(await redis.zrange(key, 0, -1))
                      : type === 'set'
                        ? JSON.stringify(await redis.smembers(key))
                        : type === 'list'
                          ? JSON.stringify(await redis.lrange(key, 0, -1))
                          : '';
              out.push(`${key} ${value}`);
            }
            return out.join('\n');
          },
          async privateJwks() {
            const all = await redis.hgetall(k.signingKeys);
            return Object.values(all).map((json) => {
              const record = JSON.parse(json) as { alg: string; privateJwk: Record<string, unknown> };
              return { alg: record.alg, privateJwk: record.privateJwk };
            });
          },
          async secrets() {
            const out: Record<string, string> = {};
            for (const name of SECRET_NAMES) {
              const value = await redis.get(k.secret(name));
              if (value !== null) out[name] = value;
            }
            return out;
          },
          sessionIds: () => strip(k.record('session', '')),
          interactionIds: () => strip(k.record('interaction', '')),
        },
      };
    },
    close: async () => {
      for (const p of redisPrefixes) {
        const keys = await redisKeysWith(p);
        if (keys.length) await redis.del(...keys);
      }
      redis.disconnect();
    },
  },
];

afterAll(async () => {
  for (const b of BACKENDS) await b.close().catch(() => undefined);
});

/** Log lines (parsed) of a server started with this logger. */
function captureLogs() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: createLogger('warn', sink), lines };
}

/** Starts a server on the namespace; restarts keep its port, so the issuer (and tokens' `iss`) stay the same. */
async function start(
  ns: StoreUnderTest,
  config: Partial<ConfigInput>,
  logger = createLogger('silent'),
): Promise<TestServer> {
  ns.port ??= await freePort();
  const origin = `http://localhost:${ns.port}`;
  const cfg = parseConfig({
    logLevel: 'silent',
    passwordHashing: { log2N: 14 },
    users: [ALICE, BOB],
    scopes: ['mcp:read'],
    ...ns.config,
    ...config,
    port: ns.port,
    host: '127.0.0.1',
    issuer: origin,
  });
  const gatehouse = await createGatehouse(cfg, { logger, ...(ns.backend ? { storage: await ns.backend() } : {}) });
  await gatehouse.app.listen({ port: ns.port, host: '127.0.0.1' });
  return { gatehouse, issuer: origin, origin, close: () => gatehouse.close() };
}

function authorizeUrl(server: TestServer, clientId: string, v: string): string {
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: challenge(v),
    code_challenge_method: 'S256',
    // No resource: the token's aud is the client, so /userinfo accepts it (a resource-bound token is refused there).
    scope: 'openid mcp:read',
    state: 'st',
  }).toString();
  return u.href;
}

/** Registers a public client and runs the code flow as ALICE; returns the tokens and the signed-in browser. */
async function signIn(server: TestServer) {
  const reg = await postJson(`${server.issuer}/register`, {
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
  });
  expect(reg.status).toBe(201);
  const clientId = reg.json.client_id as string;
  const v = verifier();
  const browser = new FormBrowser();
  const cb = await browser.authorize(authorizeUrl(server, clientId, v), server.origin, ALICE);
  const t = await postForm(`${server.issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code: cb.searchParams.get('code')!,
    code_verifier: v,
    redirect_uri: REDIRECT,
  });
  expect(t.status).toBe(200);
  const sessionCookie = (browser as unknown as { jar: Map<string, string> }).jar.get('gatehouse_session');
  expect(sessionCookie).toBeTruthy();
  return { clientId, tokens: t.json as Record<string, string>, sessionCookie: sessionCookie!, browser };
}

/** Does this session cookie sign the browser in? (The consent is remembered, so a good session goes straight back.) */
async function sessionWorks(server: TestServer, clientId: string, cookieValue: string): Promise<boolean> {
  const browser = new FormBrowser();
  (browser as unknown as { jar: Map<string, string> }).jar.set('gatehouse_session', cookieValue);
  const step = await browser.follow(authorizeUrl(server, clientId, verifier()), server.origin);
  if (step.callback) return new URL(step.callback).searchParams.has('code');
  expect(await step.res.text()).toContain('name="password"');
  return false;
}

/** The attack: a 1-year access token for ALICE signed with `key`, tried on /userinfo and on a resource verifier. */
async function forgedTokenAccepted(server: TestServer, clientId: string, key: CryptoKey, alg: string, kid: string) {
  const alice = (await server.gatehouse.deps.storage.getUserByUsername(ALICE.username))!;
  const now = Math.floor(Date.now() / 1000);
  // One forgery per target: /userinfo takes tokens bound to no resource (aud = client_id), the verifier its resource.
  const forge = (aud: string) =>
    new SignJWT({ client_id: clientId, scope: 'openid mcp:read', jti: randomUUID() })
      .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
      .setIssuer(server.issuer)
      .setSubject(alice.id)
      .setAudience(aud)
      .setIssuedAt(now)
      .setExpirationTime(now + 365 * 24 * 3600)
      .sign(key);
  const userinfo = await fetch(`${server.issuer}/userinfo`, {
    headers: { authorization: `Bearer ${await forge(clientId)}` },
  });
  const verified = await createResourceVerifier({ issuer: server.issuer, resource: RESOURCE })
    .verify(await forge(RESOURCE))
    .then(
      () => true,
      () => false,
    );
  return { userinfo: userinfo.status === 200, verifier: verified };
}

/** Tries to turn every stored private key into a signing key, as a store reader would. */
async function importStoredKeys(raw: RawView) {
  const stored = await raw.privateJwks();
  expect(stored.length).toBeGreaterThan(0);
  return Promise.all(
    stored.map(async ({ alg, privateJwk }) => ({
      alg,
      kid: String(privateJwk.kid ?? ''),
      key: await importJWK(privateJwk as JWK, alg).then(
        (k) => k as CryptoKey,
        () => undefined,
      ),
    })),
  );
}

const envelopeKeyIds = (values: string[]) => values.map((v) => /^sealed:v1:([0-9a-f]{8}):/.exec(v)?.[1]);

const AVAILABLE = new Map(await Promise.all(BACKENDS.map(async (b) => [b.name, await b.available()] as const)));

for (const backend of BACKENDS) {
  describe(`${backend.name} store`, () => {
    const available = AVAILABLE.get(backend.name) === true;

    it.skipIf(!available)(
      'with encryptionKey: no key material in clear, and nothing in the store mints a token, a session or an interaction',
      async () => {
        const ns = await backend.namespace();
        const key = newKey();
        const server = await start(ns, {
          encryptionKey: key,
          clients: [{ client_id: 'device-cli', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT] }],
        });
        try {
          const { clientId, sessionCookie } = await signIn(server);
          // A second browser leaves a pending interaction (on its login page).
          const second = new FormBrowser();
          const pending = await second.follow(authorizeUrl(server, clientId, verifier()), server.origin);
          const interactionId = /\/interaction\/([^/?#]+)/.exec(pending.url)?.[1];
          expect(interactionId).toBeTruthy();
          // A pushed request (RFC 9126) waits for its request_uri: the store holds it under the hash of its random part.
          const pushed = await postForm(
            `${server.issuer}/par`,
            Object.fromEntries(new URL(authorizeUrl(server, clientId, verifier())).searchParams),
          );
          expect(pushed.status).toBe(201);
          const requestUri = pushed.json.request_uri as string;
          const pushedRequestId = requestUri.slice(requestUri.lastIndexOf(':') + 1);
          // A device authorization (RFC 8628) waits for its user: both codes are stored hashed only.
          const device = await postForm(`${server.issuer}/device_authorization`, { client_id: 'device-cli' });
          expect(device.status).toBe(200);
          const deviceCode = device.json.device_code as string;
          const userCode = device.json.user_code as string;
          const { cookieKey, pepper } = server.gatehouse.deps;
          const sessionId = sessionCookie.slice(0, sessionCookie.lastIndexOf('.'));
          // A TOTP factor with its recovery codes: the secret is sealed, the codes kept as keyed hashes.
          const totp = await enrolTotpOnAccount(server, new ManualClock(Date.now()), BOB);
          const stored = await server.gatehouse.deps.storage.getUserByUsername(BOB.username);
          expect(envelopeKeyIds([stored!.totp!.secret])).toEqual([encryptionKeyId(key)]);

          const dump = await ns.raw.dump();
          expect(dump).toContain(stored!.totp!.secret.slice(0, 40));
          for (const secret of [totp.secret, ...totp.recoveryCodes])
            expect(dump.includes(secret), 'a second factor is in the store in clear').toBe(false);
          expect(dump.length).toBeGreaterThan(500); // the dump really holds the store's content
          expect(dump).toContain(clientId);
          // No private JWK member `d` (grants and codes in Redis have a `d` field too, but it holds JSON, not base64url).
          expect(dump).not.toMatch(/\\*"d\\*":\s*\\*"[A-Za-z0-9_-]{40,}/);
          for (const [name, value] of Object.entries({
            cookieKey,
            pepper,
            sessionId,
            interactionId: interactionId!,
            pushedRequestId,
            deviceCode,
            userCode,
            userCodeNormalised: userCode.replace('-', ''),
          })) {
            expect(dump.includes(value), `${name} is in the store in clear`).toBe(false);
          }
          expect(dump).toContain(hashToken(pushedRequestId));
          expect(dump).toContain(hashToken(deviceCode));
          const secrets = await ns.raw.secrets();
          expect(Object.keys(secrets).sort()).toEqual(SECRET_NAMES);
          expect(envelopeKeyIds(Object.values(secrets))).toEqual([encryptionKeyId(key), encryptionKeyId(key)]);

          // (a) The stored key material cannot be imported, so it signs nothing; the very same forgery with the real key
          // (held only in the server's memory) is accepted, so the attack itself is sound.
          for (const stored of await importStoredKeys(ns.raw))
            expect(stored.key, `stored ${stored.alg} key imports`).toBeUndefined();
          const real = server.gatehouse.deps.keys.signer();
          expect(await forgedTokenAccepted(server, clientId, real.key, real.alg, real.kid)).toEqual({
            userinfo: true,
            verifier: true,
          });

          // (b) A cookie built from a stored session id (even signed with the real cookie key) is no session.
          expect(await sessionWorks(server, clientId, sessionCookie)).toBe(true);
          const storedSessions = await ns.raw.sessionIds();
          expect(storedSessions.length).toBeGreaterThan(0);
          for (const id of storedSessions)
            expect(await sessionWorks(server, clientId, signValue(id, cookieKey))).toBe(false);

          // (c) An interaction id found in the store does not open that interaction.
          const storedInteractions = await ns.raw.interactionIds();
          expect(storedInteractions.length).toBeGreaterThan(0);
          for (const id of storedInteractions) {
            const res = await fetch(`${server.issuer}/interaction/${encodeURIComponent(id)}`);
            expect(res.status).toBe(400);
            expect(await res.text()).not.toContain('name="password"');
          }
          // The raw id opens it, in the browser it is bound to.
          const own = await second.follow(`${server.issuer}/interaction/${interactionId}`, server.origin);
          expect(own.res.status).toBe(200);
        } finally {
          await server.close();
        }
      },
      120_000,
    );

    it.skipIf(!available)(
      'restarts with the same key, then with a rotated key (old one previous), keep keys, sessions and tokens; a wrong key stops the start with one line',
      async () => {
        const ns = await backend.namespace();
        const oldKey = newKey();
        const first = await start(ns, { encryptionKey: oldKey });
        let signedIn: Awaited<ReturnType<typeof signIn>>;
        let jwks: string;
        try {
          signedIn = await signIn(first);
          jwks = await (await fetch(`${first.issuer}/jwks.json`)).text();
        } finally {
          await first.close();
        }
        const userinfo = (server: TestServer) =>
          fetch(`${server.issuer}/userinfo`, {
            headers: { authorization: `Bearer ${signedIn.tokens.access_token}` },
          }).then((r) => r.status);

        const same = await start(ns, { encryptionKey: oldKey });
        try {
          expect(await (await fetch(`${same.issuer}/jwks.json`)).text()).toBe(jwks);
          expect(await userinfo(same)).toBe(200);
          expect(await sessionWorks(same, signedIn.clientId, signedIn.sessionCookie)).toBe(true);
        } finally {
          await same.close();
        }

        // Rotated: new current key, the old one only opens. A newly configured alg gets a key sealed with the new one.
        const newCurrent = newKey();
        const rotated = await start(ns, {
          encryptionKey: newCurrent,
          encryptionKeysPrevious: [oldKey],
          signing: { additionalAlgs: ['RS256', 'EdDSA'] },
        });
        try {
          expect(await userinfo(rotated)).toBe(200);
          expect(await sessionWorks(rotated, signedIn.clientId, signedIn.sessionCookie)).toBe(true);
          const refreshed = await postForm(`${rotated.issuer}/token`, {
            grant_type: 'refresh_token',
            client_id: signedIn.clientId,
            refresh_token: signedIn.tokens.refresh_token!,
          });
          expect(refreshed.status).toBe(200);
          const stored = await ns.raw.privateJwks();
          const byAlg = Object.fromEntries(
            stored.map((s) => [s.alg, envelopeKeyIds([String(s.privateJwk.sealed)])[0]]),
          );
          expect(byAlg).toEqual({
            ES256: encryptionKeyId(oldKey),
            RS256: encryptionKeyId(oldKey),
            EdDSA: encryptionKeyId(newCurrent),
          });
        } finally {
          await rotated.close();
        }

        // A wrong key, and no key at all, on a sealed store: the start fails with one line naming encryptionKey.
        for (const config of [{ encryptionKey: newKey() }, { encryptionKey: newCurrent }, {}]) {
          const err = await start(ns, config).then(
            (s) => s.close().then(() => undefined),
            (e: unknown) => e as Error,
          );
          expect(err, JSON.stringify(config)).toBeInstanceOf(Error);
          expect(err!.name).toBe('ConfigError');
          expect(err!.message).toMatch(/^encryptionKey: [^\n]+$/);
        }
      },
      120_000,
    );

    it.skipIf(!available)(
      `without encryptionKey: ${backend.name === 'memory' ? 'no warning for the in-process store' : 'one warning at start, because a store reader can mint tokens'}; turning the key on later keeps old records working, with a warning`,
      async () => {
        const ns = await backend.namespace();
        const clear = captureLogs();
        const server = await start(ns, {}, clear.logger);
        let signedIn: Awaited<ReturnType<typeof signIn>>;
        try {
          const warned = clear.lines.filter((l) => l.level === 40 && /encryptionKey is not set/.test(l.msg));
          expect(warned).toHaveLength(backend.name === 'memory' ? 0 : 1);
          if (warned[0])
            expect(warned[0].msg).toMatch(/mint access tokens and forge session cookies.*GATEHOUSE_ENCRYPTION_KEY/);
          signedIn = await signIn(server);
          // What the warning is about: the stored key signs a token that both checks accept.
          const [stored] = (await importStoredKeys(ns.raw)).filter((k) => k.alg === 'ES256');
          expect(stored?.key).toBeDefined();
          expect(await forgedTokenAccepted(server, signedIn.clientId, stored!.key!, 'ES256', stored!.kid)).toEqual({
            userinfo: true,
            verifier: true,
          });
        } finally {
          await server.close();
        }

        const later = captureLogs();
        const sealed = await start(ns, { encryptionKey: newKey() }, later.logger);
        try {
          expect(later.lines.some((l) => /encryptionKey is not set/.test(l.msg))).toBe(false);
          const inClear = later.lines.filter(
            (l) => l.level === 40 && /written in clear before encryptionKey was set/.test(l.msg),
          );
          expect(inClear).toHaveLength(1);
          expect((inClear[0]!.signingKeysInClear as string[]).length).toBe(2);
          expect((inClear[0]!.secretsInClear as string[]).sort()).toEqual(SECRET_NAMES);
          const status = await fetch(`${sealed.issuer}/userinfo`, {
            headers: { authorization: `Bearer ${signedIn.tokens.access_token}` },
          }).then((r) => r.status);
          expect(status).toBe(200);
          expect(await sessionWorks(sealed, signedIn.clientId, signedIn.sessionCookie)).toBe(true);
        } finally {
          await sealed.close();
        }
      },
      120_000,
    );
  });
}

describe('gatehouse key rotate with encryptionKey', () => {
  const ROOT = new URL('../..', import.meta.url).pathname;
  const cli = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [join(ROOT, 'bin/gatehouse.mjs'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('seals the new key with the current key, and refuses a wrong or missing key in one line', async () => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-ready.mjs')], { cwd: ROOT, stdio: 'inherit' });
    const dir = join(mkdtempSync(join(tmpdir(), 'gh-sar-cli-')), 'data');
    const key = newKey();
    const first = await createGatehouse(parseConfig({ storage: dir, encryptionKey: key, logLevel: 'silent' }), {
      logger: createLogger('silent'),
    });
    await first.close();

    const ok = cli(['key', 'rotate'], { GATEHOUSE_STORAGE: dir, GATEHOUSE_ENCRYPTION_KEY: key });
    expect(ok.status).toBe(0);
    // stderr holds the rotation's audit event (audit.destination `log` is stderr in the CLI) and nothing else.
    const lines = ok.stderr.split('\n').filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as { type?: string }).type)).toEqual(['key.rotated']);
    for (const env of [{ GATEHOUSE_ENCRYPTION_KEY: newKey() }, {}]) {
      const refused = cli(['key', 'rotate'], { GATEHOUSE_STORAGE: dir, GATEHOUSE_ENCRYPTION_KEY: '', ...env });
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/^gatehouse: encryptionKey: [^\n]+\n$/);
    }

    const store = await createStorage(dir, { clock: systemClock, cleanupIntervalMs: 0 });
    try {
      const keys = await store.listSigningKeys();
      expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'ES256', 'RS256']);
      for (const k of keys) expect(envelopeKeyIds([String(k.privateJwk.sealed)])).toEqual([encryptionKeyId(key)]);
    } finally {
      await store.close();
    }
  }, 180_000);
});
