/**
 * private_key_jwt assertions are single use, over HTTP and on every store (RFC 7523 §3 jti, OIDC Core §9): a
 * Client ID Metadata Document client with an inline JWKS signs one assertion, and 50 concurrent refresh requests
 * carrying it reach the token endpoint (spread over two replicas on PostgreSQL and Redis). Exactly one is
 * authenticated; the other 49 are invalid_client. Inside the refresh grace window the grant itself would answer all
 * 50 with the same pair, so only the assertion's replay guard can tell them apart.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { FormBrowser } from '../helpers/browser.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { challenge, postForm, verifier } from '../helpers/oauth.js';
import { ALICE, freePort } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';

const REDIRECT = 'http://127.0.0.1/callback';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const POSTGRES = 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = 'redis://127.0.0.1:6379';

let cimd: CimdServer;
let privateKey: CryptoKey;
let clientId: string;

beforeAll(async () => {
  cimd = await startCimdServer();
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  clientId = `${cimd.origin}/clients/jwt.json`;
  cimd.docs.set('/clients/jwt.json', {
    body: JSON.stringify({
      client_id: clientId,
      client_name: 'private_key_jwt CIMD client',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), alg: 'ES256', use: 'sig', kid: 'k1' }] },
    }),
  });
});
afterAll(() => cimd?.close());

/** `n` Gatehouse replicas on one store and one issuer, each listening on its own port. */
async function startReplicas(
  n: number,
  config: Partial<ConfigInput>,
): Promise<{ issuer: string; origins: string[]; list: Gatehouse[] }> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const issuer = `http://localhost:${ports[0]}`;
  const list: Gatehouse[] = [];
  // One after another: the first creates the schema and keys, the others find them (concurrent start is tested
  // elsewhere).
  for (const port of ports) {
    const cfg = parseConfig({
      logLevel: 'silent',
      passwordHashing: { log2N: 14 },
      users: [ALICE],
      scopes: ['mcp:read'],
      clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile, timeoutMs: 2000 },
      ...config,
      port,
      host: '127.0.0.1',
      issuer,
    });
    const gatehouse = await createGatehouse(cfg, { logger: createLogger('silent') });
    await gatehouse.app.listen({ port, host: '127.0.0.1' });
    list.push(gatehouse);
  }
  return { issuer, origins: ports.map((p) => `http://localhost:${p}`), list };
}

/** A fresh assertion: iss = sub = client_id, aud = the issuer (the only audience accepted), one-minute life, a random jti. */
function assertion(issuer: string, iat = Math.floor(Date.now() / 1000)): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(issuer)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 60)
    .setJti(randomUUID())
    .sign(privateKey);
}

const withAssertion = (jwt: string) => ({
  client_id: clientId,
  client_assertion_type: JWT_BEARER,
  client_assertion: jwt,
});

interface StoreCase {
  name: string;
  replicas: number;
  service?: 'postgres' | 'redis';
  /** Config for the store, and a cleanup to run after the test. */
  setup(): { config: Partial<ConfigInput>; cleanup: () => Promise<void> };
}

const cases: StoreCase[] = [
  { name: 'memory', replicas: 1, setup: () => ({ config: { storage: 'memory' }, cleanup: async () => {} }) },
  {
    name: 'embedded',
    replicas: 1,
    setup: () => {
      const dir = mkdtempSync(join(tmpdir(), 'gh-assertion-'));
      return { config: { storage: dir }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    replicas: 2,
    service: 'postgres',
    setup: () => {
      const schema = `gh_test_${randomBytes(6).toString('hex')}`;
      return {
        config: { storage: POSTGRES, postgres: { schema, poolSize: 4 } },
        cleanup: async () => {
          const client = new pg.Client({ connectionString: POSTGRES });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await client.end();
        },
      };
    },
  },
  {
    name: 'redis',
    replicas: 2,
    service: 'redis',
    setup: () => {
      const keyPrefix = `gh_test_${randomBytes(6).toString('hex')}:`;
      return {
        config: { storage: REDIS, redis: { keyPrefix } },
        cleanup: async () => {
          const redis = new Redis(6379, '127.0.0.1');
          const keys = await redis.keys(`${keyPrefix}*`);
          if (keys.length) await redis.del(...keys);
          redis.disconnect();
        },
      };
    },
  },
];

for (const store of cases) {
  describe(`one private_key_jwt assertion, 50 concurrent token requests (${store.name})`, () => {
    it('exactly one is authenticated; 49 are invalid_client', async (ctx) => {
      if (store.service && !(await requireService(store.service))) return ctx.skip();
      const { config, cleanup } = store.setup();
      const { issuer, origins, list } = await startReplicas(store.replicas, config);
      try {
        // A grant through the real pages, redeemed with a first assertion.
        const v = verifier();
        const u = new URL(`${origins[0]}/authorize`);
        u.search = new URLSearchParams({
          client_id: clientId,
          redirect_uri: REDIRECT,
          response_type: 'code',
          code_challenge: challenge(v),
          code_challenge_method: 'S256',
          scope: 'mcp:read',
          state: 's',
        }).toString();
        const callback = await new FormBrowser().authorize(u.href, origins[0]!, ALICE);
        const code = callback.searchParams.get('code')!;
        const redeemed = await postForm(`${origins[0]}/token`, {
          grant_type: 'authorization_code',
          code,
          code_verifier: v,
          redirect_uri: REDIRECT,
          ...withAssertion(await assertion(issuer)),
        });
        expect(redeemed.status).toBe(200);
        const refreshToken = redeemed.json.refresh_token as string;
        expect(refreshToken).toBeTruthy();

        // 50 refreshes with one assertion, spread over the replicas.
        const replayed = withAssertion(await assertion(issuer));
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            postForm(`${origins[i % origins.length]}/token`, {
              grant_type: 'refresh_token',
              refresh_token: refreshToken,
              ...replayed,
            }),
          ),
        );
        const statuses = results.map((r) => r.status);
        expect(statuses.filter((s) => s === 200)).toHaveLength(1);
        const refused = results.filter((r) => r.status !== 200);
        expect(refused).toHaveLength(49);
        for (const r of refused) {
          expect(r.status).toBe(401);
          expect(r.json.error).toBe('invalid_client');
        }

        // The refusals were the assertion's: the new refresh token works with a fresh assertion, on every replica.
        let latest = results.find((r) => r.status === 200)!.json.refresh_token as string;
        for (const origin of origins) {
          const next = await postForm(`${origin}/token`, {
            grant_type: 'refresh_token',
            refresh_token: latest,
            ...withAssertion(await assertion(issuer)),
          });
          expect(next.status).toBe(200);
          latest = next.json.refresh_token as string;
        }
      } finally {
        await Promise.all(list.map((g) => g.close()));
        await cleanup();
      }
    }, 60_000);
  });
}

describe('assertion lifetime', () => {
  it('an assertion pre-dated into the future (iat a day ahead, exp a minute later) is invalid_client', async () => {
    const { issuer, origins, list } = await startReplicas(1, { storage: 'memory' });
    try {
      // Client authentication runs before the grant: a bogus refresh token tells "authenticated" (invalid_grant)
      // from "refused" (invalid_client).
      const refresh = (jwt: string) =>
        postForm(`${origins[0]}/token`, {
          grant_type: 'refresh_token',
          refresh_token: 'not-a-token',
          ...withAssertion(jwt),
        });
      const current = await refresh(await assertion(issuer));
      expect([current.status, current.json.error]).toEqual([400, 'invalid_grant']);
      const future = await refresh(await assertion(issuer, Math.floor(Date.now() / 1000) + 86_400));
      expect([future.status, future.json.error]).toEqual([401, 'invalid_client']);
    } finally {
      await Promise.all(list.map((g) => g.close()));
    }
  });
});
