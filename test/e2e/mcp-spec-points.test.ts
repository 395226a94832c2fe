/**
 * The particular points of the MCP authorization spec (revision 2026-07-28) that docs/mcp-conformance.md maps to a
 * test and that no other test covered: `iss` on every authorization response including errors (RFC 9207), the
 * required fields of a Client ID Metadata Document, application_type for dynamic clients, the refresh-token guidance
 * (SEP-2207), consent per client (confused deputy) on every store, and client credentials bound to one server.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { ManualClock } from '../../src/core/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { createGatehouse, createLogger } from '../../src/server.js';
import { createResourceVerifier } from '../../src/resource/index.js';
import { FormBrowser } from '../helpers/browser.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
const RESOURCE = 'https://mcp.example.com/mcp';

let server: TestServer;
let cimd: CimdServer;

beforeAll(async () => {
  cimd = await startCimdServer();
  server = await startServer({
    scopes: ['mcp:read'],
    resources: [RESOURCE],
    clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile, timeoutMs: 2000 },
  });
});
afterAll(async () => {
  await server?.close();
  cimd?.close();
});

async function register(s: TestServer, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const r = await postJson(`${s.issuer}/register`, {
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'none',
    ...extra,
  });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

function authorizeUrl(s: TestServer, params: Record<string, string>): string {
  const u = new URL(`${s.issuer}/authorize`);
  u.search = new URLSearchParams(params).toString();
  return u.href;
}

const pkce = () => {
  const v = verifier();
  return { v, params: { code_challenge: challenge(v), code_challenge_method: 'S256' } };
};

/** Code flow as ALICE through the pages; returns the token response. */
async function tokens(s: TestServer, clientId: string, scope: string, browser = new FormBrowser()) {
  const { v, params } = pkce();
  const cb = await browser.authorize(
    authorizeUrl(s, {
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope,
      resource: RESOURCE,
      ...params,
    }),
    s.origin,
    ALICE,
  );
  const res = await postForm(`${s.issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code: cb.searchParams.get('code')!,
    code_verifier: v,
    redirect_uri: REDIRECT,
    resource: RESOURCE,
  });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return res.json as Record<string, string>;
}

describe('discovery and communication security', () => {
  // Security considerations: an AS that offers OpenID Connect Discovery must list code_challenge_methods_supported.
  it('both well-known documents list code_challenge_methods_supported = [S256]', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const meta = await (await fetch(`${server.origin}${path}`)).json();
      expect(meta.issuer, path).toBe(server.issuer);
      expect(meta.code_challenge_methods_supported, path).toEqual(['S256']);
    }
  });

  // Every AS endpoint must be https: TLS is the deployment's (usually a proxy's), so Gatehouse warns at start when the
  // issuer is plain http on a host other than loopback, and stays quiet for local development.
  it('warns at start about a non-loopback http issuer, not about a loopback one', async () => {
    const warnings = async (issuer: string) => {
      const lines: string[] = [];
      const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
      const g = await createGatehouse(
        parseConfig({ storage: 'memory', issuer, users: [ALICE], passwordHashing: { log2N: 14 } }),
        { logger: createLogger('warn', sink) },
      );
      await g.close();
      return lines.join('');
    };
    expect(await warnings('http://auth.example.com')).toContain('the issuer is not https');
    expect(await warnings('http://127.0.0.1:9999')).not.toContain('the issuer is not https');
    expect(await warnings('https://auth.example.com')).not.toContain('the issuer is not https');
  });
});

describe('resource parameter: canonical server URI', () => {
  // The canonical form is lower-case scheme and host, but an upper-case spelling should be accepted: the token's
  // audience is the configured canonical URI, so the MCP server's verifier accepts it.
  it('an upper-case scheme and host map to the configured resource, and the token is for it', async () => {
    const clientId = (await register(server)).client_id;
    const { v, params } = pkce();
    const shouted = 'HTTPS://MCP.EXAMPLE.COM/mcp';
    const cb = await new FormBrowser().authorize(
      authorizeUrl(server, {
        client_id: clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        scope: 'mcp:read',
        resource: shouted,
        ...params,
      }),
      server.origin,
      ALICE,
    );
    const res = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: cb.searchParams.get('code')!,
      code_verifier: v,
      redirect_uri: REDIRECT,
      resource: shouted,
    });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    await expect(
      createResourceVerifier({ issuer: server.issuer, resource: RESOURCE }).verify(res.json.access_token as string),
    ).resolves.toMatchObject({ audience: [RESOURCE] });
  });
});

describe('RFC 9207 iss on every authorization response, errors included', () => {
  it('advertises authorization_response_iss_parameter_supported', async () => {
    const meta = await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json();
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
  });

  it.each([
    ['unsupported_response_type', { response_type: 'token' }],
    ['invalid_request (no PKCE)', { response_type: 'code', code_challenge: '' }],
    ['invalid_scope', { response_type: 'code', scope: 'no-such-scope' }],
    ['invalid_target', { response_type: 'code', resource: 'https://elsewhere.example.com/' }],
    ['login_required (prompt=none)', { response_type: 'code', prompt: 'none' }],
  ])('an error redirect for %s carries iss and state', async (_name, extra: Record<string, string>) => {
    const clientId = (await register(server)).client_id;
    const params = { client_id: clientId, redirect_uri: REDIRECT, state: 'st-1', ...pkce().params, ...extra };
    const res = await fetch(
      authorizeUrl(server, Object.fromEntries(Object.entries(params).filter(([, v]) => v !== ''))),
      { redirect: 'manual' },
    );
    expect(res.status).toBe(303);
    const cb = new URL(res.headers.get('location')!);
    expect(cb.origin + cb.pathname).toBe(REDIRECT);
    expect(cb.searchParams.get('error')).toBeTruthy();
    expect(cb.searchParams.get('iss')).toBe(server.issuer);
    expect(cb.searchParams.get('state')).toBe('st-1');
  });

  it('access_denied (the user denies) and the success response carry iss', async () => {
    const clientId = (await register(server)).client_id;
    const denied = await new FormBrowser().authorize(
      authorizeUrl(server, {
        client_id: clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        state: 'd',
        ...pkce().params,
      }),
      server.origin,
      ALICE,
      'deny',
    );
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('iss')).toBe(server.issuer);
    const ok = await new FormBrowser().authorize(
      authorizeUrl(server, {
        client_id: clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        state: 'o',
        ...pkce().params,
      }),
      server.origin,
      ALICE,
    );
    expect(ok.searchParams.get('code')).toBeTruthy();
    expect(ok.searchParams.get('iss')).toBe(server.issuer);
  });
});

describe('Client ID Metadata Document required fields', () => {
  const authorizeWith = async (path: string, doc: Record<string, unknown>) => {
    const clientId = `${cimd.origin}${path}`;
    cimd.docs.set(path, { body: JSON.stringify({ client_id: clientId, ...doc }) });
    const res = await fetch(
      authorizeUrl(server, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', ...pkce().params }),
      { redirect: 'manual' },
    );
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  };

  it('a document with client_id, client_name and redirect_uris is accepted (the refusals below are about the fields)', async () => {
    const r = await authorizeWith('/complete.json', { client_name: 'Complete', redirect_uris: [REDIRECT] });
    expect(r.status).toBe(303);
    expect(r.location).toMatch(/\/interaction\//);
  });

  it.each([
    ['no client_name', { redirect_uris: [REDIRECT] }, 'client_name'],
    ['an empty client_name', { client_name: '  ', redirect_uris: [REDIRECT] }, 'client_name'],
    ['a non-string client_name', { client_name: 42, redirect_uris: [REDIRECT] }, 'client_name'],
    ['no redirect_uris', { client_name: 'x' }, 'redirect_uris'],
    ['empty redirect_uris and no grants', { client_name: 'x', redirect_uris: [], grant_types: [] }, 'redirect_uris'],
  ])('refuses a document with %s (invalid_client, on a page)', async (name, doc, field) => {
    const r = await authorizeWith(`/missing-${name.replace(/\W+/g, '-')}.json`, doc);
    expect(r.status).toBe(401);
    expect(r.location).toBeNull();
    expect(r.html).toContain('invalid_client');
    expect(r.html).toContain(field);
  });
});

describe('Client ID Metadata Document caching follows the HTTP caching headers', () => {
  // Within the configured bounds (minCacheSeconds 60, maxCacheSeconds 24 h by default): max-age is honoured, no-store
  // and no-cache are never cached, a tiny max-age is raised to the minimum, a huge one capped at the maximum.
  it.each([
    ['max-age=600', 'max-age=600', [599, 601]],
    ['no-store', 'no-store', [0, 1]],
    ['no-cache', 'no-cache, max-age=600', [0, 1]],
    ['a max-age below the minimum', 'max-age=5', [59, 61]],
    ['a max-age above the maximum', 'max-age=999999999', [24 * 3600 - 1, 24 * 3600 + 1]],
  ])('%s', async (_name, cacheControl, [stillCached, refetched]: number[]) => {
    const clock = new ManualClock(Date.now());
    const s = await startServer(
      { clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile, timeoutMs: 2000 } },
      { clock },
    );
    try {
      const path = `/cache-${randomBytes(4).toString('hex')}.json`;
      const clientId = `${cimd.origin}${path}`;
      let fetches = 0;
      cimd.docs.set(path, {
        headers: { 'cache-control': cacheControl },
        get body() {
          fetches++;
          return JSON.stringify({ client_id: clientId, client_name: 'cached', redirect_uris: [REDIRECT] });
        },
      });
      const open = async () => {
        const res = await fetch(
          authorizeUrl(s, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', ...pkce().params }),
          { redirect: 'manual' },
        );
        expect(res.status).toBe(303);
      };
      await open();
      expect(fetches).toBe(1);
      const start = clock.now();
      clock.set(start + stillCached! * 1000);
      await open();
      expect(fetches, 'still cached').toBe(stillCached === 0 ? 2 : 1);
      clock.set(start + refetched! * 1000);
      await open();
      expect(fetches, 'fetched again').toBe(stillCached === 0 ? 3 : 2);
    } finally {
      await s.close();
    }
  });
});

describe('dynamic registration: application_type', () => {
  it.each([
    ['a loopback redirect', ['http://127.0.0.1/callback'], 'native'],
    ['a localhost redirect', ['http://localhost:3000/callback'], 'native'],
    ['a private-use scheme', ['com.example.app:/oauth'], 'native'],
    ['an https redirect', ['https://app.example.com/cb'], 'web'],
  ])('a client that omits application_type with %s is registered as %s', async (_name, redirectUris, type) => {
    const reg = await register(server, { redirect_uris: redirectUris });
    expect(reg.application_type).toBe(type);
  });

  it('an explicit application_type is kept, and native is required for a private-use scheme', async () => {
    expect(
      (await register(server, { application_type: 'native', redirect_uris: ['http://127.0.0.1/cb'] })).application_type,
    ).toBe('native');
    const web = await postJson(`${server.issuer}/register`, {
      application_type: 'web',
      redirect_uris: ['com.example.app:/oauth'],
      token_endpoint_auth_method: 'none',
    });
    expect(web.status).toBe(400);
    expect(web.json.error).toBe('invalid_redirect_uri');
  });
});

describe('refresh tokens (SEP-2207)', () => {
  it('metadata lists offline_access in scopes_supported', async () => {
    const meta = await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json();
    expect(meta.scopes_supported).toContain('offline_access');
  });

  it('a client with refresh_token in grant_types gets a refresh token, with or without offline_access', async () => {
    const clientId = (await register(server, { grant_types: ['authorization_code', 'refresh_token'] })).client_id;
    expect((await tokens(server, clientId, 'mcp:read')).refresh_token).toBeTruthy();
    expect((await tokens(server, clientId, 'mcp:read offline_access')).refresh_token).toBeTruthy();
  });

  it('a client without refresh_token in grant_types gets none, even when it asks offline_access', async () => {
    const clientId = (await register(server, { grant_types: ['authorization_code'] })).client_id;
    expect((await tokens(server, clientId, 'mcp:read')).refresh_token).toBeUndefined();
    const withOffline = await tokens(server, clientId, 'mcp:read offline_access');
    expect(withOffline.refresh_token).toBeUndefined();
  });

  it('tokens.refreshRequiresOfflineAccess: only a client that holds the grant and asks offline_access gets one', async () => {
    const strict = await startServer({
      scopes: ['mcp:read'],
      resources: [RESOURCE],
      tokens: { refreshRequiresOfflineAccess: true },
    });
    try {
      const clientId = (await register(strict, { grant_types: ['authorization_code', 'refresh_token'] })).client_id;
      expect((await tokens(strict, clientId, 'mcp:read')).refresh_token).toBeUndefined();
      expect((await tokens(strict, clientId, 'mcp:read offline_access')).refresh_token).toBeTruthy();
    } finally {
      await strict.close();
    }
  });
});

describe('client credentials are bound to the authorization server that issued them', () => {
  it('a client registered at one Gatehouse is unknown at another, and its tokens are refused there', async () => {
    const other = await startServer({ scopes: ['mcp:read'], resources: [RESOURCE] });
    try {
      const reg = await register(server, { grant_types: ['authorization_code', 'refresh_token'] });
      const res = await fetch(
        authorizeUrl(other, {
          client_id: reg.client_id,
          redirect_uri: REDIRECT,
          response_type: 'code',
          ...pkce().params,
        }),
        { redirect: 'manual' },
      );
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('unknown client_id');
      const t = await tokens(server, reg.client_id, 'mcp:read');
      const atOther = await postForm(`${other.issuer}/token`, {
        grant_type: 'refresh_token',
        client_id: reg.client_id,
        refresh_token: t.refresh_token!,
      });
      expect(atOther.status).toBe(401);
      expect(atOther.json.error).toBe('invalid_client');
      // A resource server that trusts the other issuer refuses this issuer's token (iss), same resource or not.
      await expect(
        createResourceVerifier({ issuer: other.issuer, resource: RESOURCE }).verify(t.access_token!),
      ).rejects.toMatchObject({ code: 'invalid_token' });
    } finally {
      await other.close();
    }
  });
});

const isolation = `gh_mcp_${randomBytes(4).toString('hex')}`;
const stores = E2E_STORES;

for (const store of stores) {
  // Confused deputy: consent is remembered per user and client, so a user's approval of one client never lets
  // another client (say a freshly registered one presenting the same redirect URI) through without its own consent.
  describe(`consent is per client (${store.kind})`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    let s: TestServer | undefined;

    beforeAll(async () => {
      if (!(await available)) return;
      s = await startServer({ scopes: ['mcp:read'], resources: [RESOURCE], ...store.config(isolation) });
    }, 60_000);
    afterAll(async () => {
      if (!s) return;
      await s.close();
      await store.cleanup?.(isolation);
    });

    it("a signed-in user's consent to client A is reused for A, and client B still gets the consent page", async (ctx) => {
      if (!s) return ctx.skip();
      const a = (await register(s)).client_id;
      const b = (await register(s)).client_id;
      const browser = new FormBrowser();
      await tokens(s, a, 'mcp:read', browser);
      const again = await browser.follow(
        authorizeUrl(s, {
          client_id: a,
          redirect_uri: REDIRECT,
          response_type: 'code',
          scope: 'mcp:read',
          resource: RESOURCE,
          ...pkce().params,
        }),
        s.origin,
      );
      expect(again.callback, 'A was approved: no page').toBeDefined();
      expect(new URL(again.callback!).searchParams.get('code')).toBeTruthy();
      const other = await browser.follow(
        authorizeUrl(s, {
          client_id: b,
          redirect_uri: REDIRECT,
          response_type: 'code',
          scope: 'mcp:read',
          resource: RESOURCE,
          ...pkce().params,
        }),
        s.origin,
      );
      expect(other.callback).toBeUndefined();
      expect(await other.res.text()).toContain('name="decision"');
      // And prompt=none for B tells the client that consent is needed, never a code.
      const silent = await browser.follow(
        authorizeUrl(s, {
          client_id: b,
          redirect_uri: REDIRECT,
          response_type: 'code',
          scope: 'mcp:read',
          resource: RESOURCE,
          prompt: 'none',
          ...pkce().params,
        }),
        s.origin,
      );
      expect(new URL(silent.callback!).searchParams.get('error')).toBe('consent_required');
    });
  });
}
