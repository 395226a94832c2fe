/**
 * Store round trips per flow step (issue #12): a real server on PostgreSQL, the embedded store and Redis, driven over
 * HTTP, with the store's single entry point to its database counting (StoreOptions.onRoundTrip: every SQL statement,
 * BEGIN and COMMIT included; every Redis command, pipeline, MULTI or script call). Each step runs once first so the
 * caches (clients, verified tokens, named statements, loaded scripts) are warm, then again counted; the count must be
 * exactly the one below, so a step that gains a round trip fails here. bench/README.md reports the same numbers.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import type { Storage } from '../../src/model/ports.js';
import { createStorage } from '../../src/storage/index.js';
import { createEmbeddedStorageOn } from '../../src/storage/sql/embedded.js';
import type { StoreOptions } from '../../src/storage/options.js';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';
import { dropIsolation, requireService } from '../helpers/services.js';

const REDIRECT = 'http://127.0.0.1/callback';
const APP = 'rt-app';
const APP_AUTH = { id: APP, secret: 'round-trip-app-client-secret-0123456789abcdef' };
const RS = { id: 'rt-rs', secret: 'round-trip-resource-server-secret-0123456789' };
const M2M = { id: 'rt-m2m', secret: 'round-trip-machine-client-secret-0123456789' };

type Step =
  | 'client_credentials'
  | 'authorize'
  | 'code'
  | 'refresh'
  | 'introspect_access'
  | 'introspect_refresh'
  | 'revoke_access'
  | 'revoke_refresh';

/** The exact count per step and store: a change here must be deliberate (and reported in bench/README.md). */
const EXPECTED: Record<'postgres' | 'embedded' | 'redis', Record<Step, number>> = {
  postgres: {
    client_credentials: 0,
    authorize: 4,
    code: 4,
    refresh: 2,
    introspect_access: 1,
    introspect_refresh: 1,
    revoke_access: 1,
    revoke_refresh: 3,
  },
  embedded: {
    client_credentials: 0,
    authorize: 4,
    code: 4,
    refresh: 2,
    introspect_access: 1,
    introspect_refresh: 1,
    revoke_access: 1,
    revoke_refresh: 3,
  },
  redis: {
    client_credentials: 0,
    authorize: 4,
    code: 4,
    refresh: 3,
    introspect_access: 2,
    introspect_refresh: 2,
    revoke_access: 1,
    revoke_refresh: 5,
  },
};

/**
 * The same steps with flow traces on (config `trace`): what each adds is the trace's append
 * (ExpiringRecordStore.appendToRecord, one round trip, written off the request's path once the trace's steps have
 * waited `trace.coalesceMilliseconds`; measure() flushes it). Each step's events go in one append: refresh.rotated
 * and token.issued; GET /authorize's authorize.accepted and, after the store's reads, code.issued.
 */
const TRACE_APPENDS: Partial<Record<Step, readonly [number, number]>> = {
  authorize: [1, 1],
  code: [1, 1],
  refresh: [1, 1],
};

interface Counter {
  n: number;
  what: string[];
}

const CASES = [
  {
    kind: 'postgres' as const,
    service: 'postgres' as const,
    open: async (isolation: string, options: StoreOptions) =>
      createStorage('postgres://postgres@127.0.0.1:5432/test', { ...options, sqlSchema: isolation, sqlPoolSize: 4 }),
    cleanup: (isolation: string) => dropIsolation('postgres', isolation),
  },
  {
    kind: 'embedded' as const,
    service: undefined,
    open: async (isolation: string, options: StoreOptions) => {
      const pglite = new PGlite('memory://');
      const storage = createEmbeddedStorageOn(pglite, { ...options, sqlSchema: isolation });
      await storage.init();
      const close = storage.close.bind(storage);
      storage.close = async () => {
        await close();
        await pglite.close();
      };
      return storage;
    },
    cleanup: async () => undefined,
  },
  {
    kind: 'redis' as const,
    service: 'redis' as const,
    open: async (isolation: string, options: StoreOptions) =>
      createStorage('redis://127.0.0.1:6379', { ...options, redisKeyPrefix: `${isolation}:` }),
    cleanup: (isolation: string) => dropIsolation('redis', isolation),
  },
];

const RUNS = CASES.flatMap((c) => [
  { ...c, traced: false, label: `${c.kind}` },
  { ...c, traced: true, label: `${c.kind}, flow traces on` },
]);

describe.each(RUNS)('store round trips per flow step on $label', ({ kind, service, open, cleanup, traced }) => {
  const isolation = `rt_${randomBytes(6).toString('hex')}`;
  const counter: Counter = { n: 0, what: [] };
  let storage: Storage | undefined;
  let server: TestServer | undefined;
  let skip = false;
  const browser = new FormBrowser();
  const counts: Partial<Record<Step, number>> = {};

  beforeAll(async () => {
    if (service && !(await requireService(service))) {
      skip = true;
      return;
    }
    storage = await open(isolation, {
      clock: systemClock,
      cleanupIntervalMs: 0,
      onRoundTrip: (what) => {
        counter.n++;
        counter.what.push(what);
      },
    });
    server = await startServer(
      {
        scopes: ['mcp:read'],
        clients: [
          {
            client_id: APP,
            client_secret: APP_AUTH.secret,
            redirect_uris: [REDIRECT],
            grant_types: ['authorization_code', 'refresh_token'],
          },
          { client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'] },
          { client_id: M2M.id, client_secret: M2M.secret, grant_types: ['client_credentials'], scope: 'mcp:read' },
        ],
        introspection: { allowedClients: [RS.id] },
        // Flow traces are written off the request's path (measure() waits for them): off in the first run of each
        // store, on in the second, which counts the traced steps only (TRACE_APPENDS).
        // A short window: the default (1 s) would outlast the client cache between the two runs of a step.
        trace: { enabled: traced, coalesceMilliseconds: 100 },
      },
      { storage },
    );
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await storage?.close();
    if (!skip) await cleanup(isolation);
  });

  const settled = async () => {
    await server!.gatehouse.traces?.flush();
    await new Promise((r) => setTimeout(r, 50));
  };

  /** Runs `step` once to warm every cache, then counts the round trips of a second run. */
  async function measure(step: Step, run: () => Promise<void>): Promise<void> {
    const appends = traced ? TRACE_APPENDS[step] : ([0, 0] as const);
    if (!appends) return;
    await run();
    // Let anything the first run started in the background (fire-and-forget writes, the trace's coalesced append)
    // finish before counting.
    await settled();
    counter.n = 0;
    counter.what = [];
    await run();
    await settled();
    counts[step] = counter.n;
    if (process.env.ROUND_TRIPS_DEBUG) console.info(kind, step, counter.what);
    // The exact count, or the nearest end of the range of trace appends.
    const [fewest, most] = appends.map((n) => EXPECTED[kind][step] + n) as [number, number];
    expect({ step, n: counter.n, what: counter.what }).toEqual({
      step,
      n: Math.min(most, Math.max(fewest, counter.n)),
      what: counter.what,
    });
  }

  const token = (params: Record<string, string>, auth?: { id: string; secret: string }) =>
    postForm(`${server!.issuer}/token`, params, auth ? { authorization: basic(auth.id, auth.secret) } : {});

  /** A code through GET /authorize with the browser's session and the consent remembered (303 straight back). */
  async function authorize(): Promise<{ code: string; verifier: string }> {
    const v = verifier();
    const u = new URL(`${server!.issuer}/authorize`);
    for (const [k, val] of Object.entries({
      client_id: APP,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp:read',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      state: 'st',
    }))
      u.searchParams.set(k, val);
    const res = await browser.request(u.href);
    expect(res.status).toBe(303);
    const code = new URL(res.headers.get('location')!).searchParams.get('code');
    expect(code).toBeTruthy();
    return { code: code!, verifier: v };
  }

  async function redeem(): Promise<{ access_token: string; refresh_token: string }> {
    const { code, verifier: v } = await authorize();
    const res = await token(
      {
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        code_verifier: v,
      },
      APP_AUTH,
    );
    expect(res.status).toBe(200);
    return res.json as { access_token: string; refresh_token: string };
  }

  it('signs in once (session and consent, not counted)', async () => {
    if (skip) return;
    const v = verifier();
    const u = new URL(`${server!.issuer}/authorize`);
    for (const [k, val] of Object.entries({
      client_id: APP,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp:read',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      state: 'st',
    }))
      u.searchParams.set(k, val);
    const callback = await browser.authorize(u.href, server!.origin, ALICE);
    expect(callback.searchParams.get('code')).toBeTruthy();
  });

  it('client_credentials token', async () => {
    if (skip) return;
    await measure('client_credentials', async () => {
      const res = await token({ grant_type: 'client_credentials', scope: 'mcp:read' }, M2M);
      expect(res.status).toBe(200);
    });
  });

  it('authorize with a session and the consent remembered', async () => {
    if (skip) return;
    await measure('authorize', async () => {
      await authorize();
    });
  });

  it('code redemption', async () => {
    if (skip) return;
    let next = await authorize();
    let fresh = await authorize();
    await measure('code', async () => {
      const { code, verifier: v } = next;
      next = fresh;
      const res = await token(
        {
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT,
          code_verifier: v,
        },
        APP_AUTH,
      );
      expect(res.status).toBe(200);
    });
    fresh = next;
  });

  it('refresh rotation', async () => {
    if (skip) return;
    let { refresh_token: rt } = await redeem();
    await measure('refresh', async () => {
      const res = await token({ grant_type: 'refresh_token', refresh_token: rt }, APP_AUTH);
      expect(res.status).toBe(200);
      rt = String(res.json.refresh_token);
    });
  });

  it('introspection of an access token and of a refresh token (each distinct, never seen)', async () => {
    if (skip) return;
    const pairs = [await redeem(), await redeem()];
    // The resource server introspects access tokens; a refresh token is only described to its own client.
    const introspect = async (t: string, as: { id: string; secret: string }) => {
      const res = await postForm(
        `${server!.issuer}/introspect`,
        { token: t },
        { authorization: basic(as.id, as.secret) },
      );
      expect(res.status).toBe(200);
      expect(res.json.active).toBe(true);
    };
    let i = 0;
    await measure('introspect_access', () => introspect(pairs[i++]!.access_token, RS));
    i = 0;
    await measure('introspect_refresh', () => introspect(pairs[i++]!.refresh_token, APP_AUTH));
  });

  it('revocation of an access token and of a refresh token', async () => {
    if (skip) return;
    const pairs = [await redeem(), await redeem(), await redeem(), await redeem()];
    const revoke = async (t: string) => {
      const res = await postForm(
        `${server!.issuer}/revoke`,
        { token: t },
        { authorization: basic(APP, APP_AUTH.secret) },
      );
      expect(res.status).toBe(200);
    };
    let i = 0;
    await measure('revoke_access', () => revoke(pairs[i++]!.access_token));
    await measure('revoke_refresh', () => revoke(pairs[i++]!.refresh_token));
  });

  afterAll(() => {
    if (!skip) console.info(`round trips on ${kind}${traced ? ' (traced)' : ''}: ${JSON.stringify(counts)}`);
  });
});
