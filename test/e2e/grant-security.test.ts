/**
 * Grant security over HTTP, on every store: a failed code redemption (another client, wrong verifier, wrong
 * redirect_uri) does not use the code up, a replay after success still revokes; the token request repeats the
 * authorization request's redirect_uri (RFC 6749 §4.1.3); the refresh grace window is short, bound to the same
 * client and parameters and logged (RFC 9700 §4.14.2). Then, on the memory store: loopback redirect ports
 * (RFC 8252 §7.3), an over-long state is never echoed, and access tokens with a future `iat` are refused.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { hashToken } from '../../src/core/crypto.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createLogger } from '../../src/server.js';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const REDIRECT = 'http://127.0.0.1/callback';
const OTHER_REDIRECT = 'http://127.0.0.1/other';

const stores = E2E_STORES;

/** A server with a manual clock and a captured warn-level log. */
async function start(config: Partial<ConfigInput>) {
  const clock = new ManualClock(Date.now());
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const server = await startServer(
    { scopes: ['mcp:read', 'mcp:write'], registration: { allowClientCredentials: true }, ...config },
    { clock, logger: createLogger('warn', sink) },
  );
  const logs = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { server, clock, lines, logs };
}

/** OAuth helpers bound to one server. */
function helpers(server: () => TestServer) {
  const url = (path: string) => server().issuer + path;

  async function registerPublic(redirectUris: string[] = [REDIRECT]) {
    const r = await postJson(url('/register'), {
      redirect_uris: redirectUris,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    });
    expect(r.status).toBe(201);
    return r.json.client_id as string;
  }

  function authorizeUrl(params: Record<string, string | undefined>): string {
    const u = new URL(url('/authorize'));
    for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.append(k, v);
    return u.href;
  }

  /** A code through the real pages; `redirectUri: undefined` leaves redirect_uri out of the authorization request. */
  async function getCode(
    clientId: string,
    opts: { redirectUri?: string | undefined; scope?: string; browser?: FormBrowser } = { redirectUri: REDIRECT },
  ) {
    const v = verifier();
    const browser = opts.browser ?? new FormBrowser();
    const cb = await browser.authorize(
      authorizeUrl({
        client_id: clientId,
        redirect_uri: 'redirectUri' in opts ? opts.redirectUri : REDIRECT,
        response_type: 'code',
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        scope: opts.scope ?? 'mcp:read',
        state: 's1',
      }),
      server().origin,
      ALICE,
    );
    const code = cb.searchParams.get('code');
    expect(code, `callback ${cb.href}`).toBeTruthy();
    return { code: code!, verifier: v, browser, callback: cb };
  }

  const redeem = (clientId: string, code: string, v: string, extra: Record<string, string | undefined> = {}) => {
    const params: Record<string, string> = {};
    for (const [k, value] of Object.entries({
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      code_verifier: v,
      redirect_uri: REDIRECT,
      ...extra,
    })) {
      if (value !== undefined) params[k] = value;
    }
    return postForm(url('/token'), params);
  };

  const refresh = (clientId: string, refreshToken: string, extra: Record<string, string> = {}) =>
    postForm(url('/token'), {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: refreshToken,
      ...extra,
    });

  return { url, registerPublic, authorizeUrl, getCode, redeem, refresh };
}

const jti = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;

for (const store of stores) {
  describe(`grant security on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_gs_${randomBytes(4).toString('hex')}`;
    let ctx: Awaited<ReturnType<typeof start>>;
    const h = helpers(() => ctx.server);

    beforeAll(async () => {
      if (!(await available)) return;
      ctx = await start(store.config(isolation));
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await ctx?.server.close();
      await store.cleanup?.(isolation);
    });

    describe('a failed redemption does not use the code up (RFC 6749 §4.1.3, RFC 7636 §4.6)', () => {
      it('another client presenting the code is refused, then the legitimate redemption succeeds', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic();
        const thief = await h.registerPublic();
        const { code, verifier: v } = await h.getCode(clientId);
        const stolen = await h.redeem(thief, code, v);
        expect(stolen.status).toBe(400);
        expect(stolen.json.error).toBe('invalid_grant');
        const legit = await h.redeem(clientId, code, v);
        expect(legit.status).toBe(200);
        expect(legit.json.access_token).toBeTruthy();
        // The failed attempt did not revoke anything either: the refresh token works.
        expect((await h.refresh(clientId, legit.json.refresh_token as string)).status).toBe(200);
      });

      it('a wrong or missing code_verifier is refused, then the legitimate redemption succeeds', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic();
        const { code, verifier: v } = await h.getCode(clientId);
        expect((await h.redeem(clientId, code, verifier())).json.error).toBe('invalid_grant');
        expect((await h.redeem(clientId, code, v, { code_verifier: undefined })).json.error).toBe('invalid_request');
        const legit = await h.redeem(clientId, code, v);
        expect(legit.status).toBe(200);
      });

      it('a wrong redirect_uri is refused, then the legitimate redemption succeeds', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic([REDIRECT, OTHER_REDIRECT]);
        const { code, verifier: v } = await h.getCode(clientId);
        expect((await h.redeem(clientId, code, v, { redirect_uri: OTHER_REDIRECT })).json.error).toBe('invalid_grant');
        expect((await h.redeem(clientId, code, v)).status).toBe(200);
      });

      it('a replay after success is still refused and revokes what the code issued (RFC 6749 §4.1.2)', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic();
        const { code, verifier: v } = await h.getCode(clientId);
        const first = await h.redeem(clientId, code, v);
        expect(first.status).toBe(200);
        const replay = await h.redeem(clientId, code, v);
        expect(replay.status).toBe(400);
        expect(replay.json.error).toBe('invalid_grant');
        expect((await h.refresh(clientId, first.json.refresh_token as string)).json.error).toBe('invalid_grant');
        expect(
          await ctx.server.gatehouse.deps.storage.isAccessTokenRevoked(jti(first.json.access_token as string)),
        ).toBe(true);
        const warned = ctx
          .logs()
          .find((l) => l.msg === 'authorization code replayed; grant revoked' && l.clientId === clientId);
        expect(warned).toBeDefined();
      });

      it('parallel legitimate redemptions: exactly one consumes the code, the rest are replays that revoke the grant', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic();
        const { code, verifier: v } = await h.getCode(clientId);
        const results = await Promise.all(Array.from({ length: 6 }, () => h.redeem(clientId, code, v)));
        // The code was redeemed more than once, so nothing it issued may survive: the winner either got tokens that
        // are revoked, or (replay landed before its grant existed) invalid_grant too.
        const won = results.filter((r) => r.status === 200);
        expect(won.length).toBeLessThanOrEqual(1);
        for (const r of results.filter((x) => x.status !== 200)) expect(r.json.error).toBe('invalid_grant');
        if (won[0]) {
          expect((await h.refresh(clientId, won[0].json.refresh_token as string)).json.error).toBe('invalid_grant');
          expect(
            await ctx.server.gatehouse.deps.storage.isAccessTokenRevoked(jti(won[0].json.access_token as string)),
          ).toBe(true);
        }
        // Exactly one consume won: the other five were each seen as a replay.
        const replays = ctx
          .logs()
          .filter((l) => l.msg === 'authorization code replayed; grant revoked' && l.clientId === clientId);
        expect(replays).toHaveLength(5);
      });
    });

    describe('redirect_uri at the token endpoint (RFC 6749 §4.1.3)', () => {
      it('when the authorization request carried redirect_uri, a token request without it is invalid_request', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic();
        const { code, verifier: v } = await h.getCode(clientId, { redirectUri: REDIRECT });
        const missing = await h.redeem(clientId, code, v, { redirect_uri: undefined });
        expect(missing.status).toBe(400);
        expect(missing.json.error).toBe('invalid_request');
        // Not used up: the identical value works.
        expect((await h.redeem(clientId, code, v)).status).toBe(200);
      });

      it('when it did not, the token request may leave it out, but one it sends must match', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic();
        const a = await h.getCode(clientId, { redirectUri: undefined });
        expect(a.callback.origin + a.callback.pathname).toBe(REDIRECT);
        expect((await h.redeem(clientId, a.code, a.verifier, { redirect_uri: undefined })).status).toBe(200);
        const b = await h.getCode(clientId, { redirectUri: undefined, browser: a.browser });
        expect((await h.redeem(clientId, b.code, b.verifier, { redirect_uri: OTHER_REDIRECT })).json.error).toBe(
          'invalid_grant',
        );
        expect((await h.redeem(clientId, b.code, b.verifier, { redirect_uri: REDIRECT })).status).toBe(200);
      });
    });

    describe('refresh grace window (RFC 9700 §4.14.2)', () => {
      async function tokens(scope = 'mcp:read mcp:write') {
        const clientId = await h.registerPublic();
        const { code, verifier: v } = await h.getCode(clientId, { redirectUri: REDIRECT, scope });
        const t = await h.redeem(clientId, code, v);
        expect(t.status).toBe(200);
        const rotated = await h.refresh(clientId, t.json.refresh_token as string);
        expect(rotated.status).toBe(200);
        return { clientId, old: t.json.refresh_token as string, rotated: rotated.json };
      }

      it('a retry by the same client with identical parameters inside the window gets the same pair, logged at warn', async (t) => {
        if (!(await available)) return t.skip();
        const { clientId, old, rotated } = await tokens();
        ctx.clock.advance(1500);
        const retry = await h.refresh(clientId, old);
        expect(retry.status).toBe(200);
        expect(retry.json.refresh_token).toBe(rotated.refresh_token);
        expect(retry.json.access_token).toBe(rotated.access_token);
        const grantId = (await ctx.server.gatehouse.deps.storage.getRefreshToken(hashToken(old)))!.grant.id;
        const warned = ctx
          .logs()
          .filter(
            (l) =>
              l.msg === 'refresh token replayed inside the grace window; same pair returned' && l.clientId === clientId,
          );
        expect(warned).toHaveLength(1);
        expect(warned[0]!.grantId).toBe(grantId);
        expect(warned[0]!.level).toBe(40);
        // No token value in any log line.
        const all = ctx.lines.join('\n');
        for (const secret of [old, rotated.refresh_token as string, rotated.access_token as string])
          expect(all).not.toContain(secret);
        // The family is alive.
        expect((await h.refresh(clientId, rotated.refresh_token as string)).status).toBe(200);
      });

      it('the default window is 2 s: a retry after 3 s is reuse and revokes the family', async (t) => {
        if (!(await available)) return t.skip();
        expect(ctx.server.gatehouse.deps.config.tokens.refreshGraceSeconds).toBe(2);
        const { clientId, old, rotated } = await tokens();
        ctx.clock.advance(3000);
        const reuse = await h.refresh(clientId, old);
        expect(reuse.json.error).toBe('invalid_grant');
        expect((await h.refresh(clientId, rotated.refresh_token as string)).json.error).toBe('invalid_grant');
        expect(await ctx.server.gatehouse.deps.storage.isAccessTokenRevoked(jti(rotated.access_token as string))).toBe(
          true,
        );
      });

      it('a retry inside the window with other parameters is reuse: invalid_grant, family revoked', async (t) => {
        if (!(await available)) return t.skip();
        for (const extra of [{ scope: 'mcp:read' }, { resource: 'https://mcp.example.com/mcp' }] as Record<
          string,
          string
        >[]) {
          const { clientId, old, rotated } = await tokens();
          const retry = await h.refresh(clientId, old, extra);
          expect(retry.status).toBe(400);
          expect(retry.json.error).toBe('invalid_grant');
          expect(retry.json.refresh_token).toBeUndefined();
          expect((await h.refresh(clientId, rotated.refresh_token as string)).json.error).toBe('invalid_grant');
          expect(
            await ctx.server.gatehouse.deps.storage.isAccessTokenRevoked(jti(rotated.access_token as string)),
          ).toBe(true);
        }
      });

      it('a retry inside the window by another client is reuse: invalid_grant, family revoked', async (t) => {
        if (!(await available)) return t.skip();
        const { old, rotated, clientId } = await tokens();
        const other = await h.registerPublic();
        const retry = await h.refresh(other, old);
        expect(retry.json.error).toBe('invalid_grant');
        expect(retry.json.access_token).toBeUndefined();
        expect((await h.refresh(clientId, rotated.refresh_token as string)).json.error).toBe('invalid_grant');
      });

      it('concurrent refreshes with identical parameters share one pair; with different ones the family dies', async (t) => {
        if (!(await available)) return t.skip();
        const clientId = await h.registerPublic();
        const { code, verifier: v } = await h.getCode(clientId);
        const first = await h.redeem(clientId, code, v);
        const same = await Promise.all([0, 1, 2].map(() => h.refresh(clientId, first.json.refresh_token as string)));
        for (const r of same) expect(r.status).toBe(200);
        expect(new Set(same.map((r) => r.json.refresh_token)).size).toBe(1);

        const next = same[0]!.json.refresh_token as string;
        const mixed = await Promise.all([h.refresh(clientId, next), h.refresh(clientId, next, { scope: 'mcp:read' })]);
        const ok = mixed.filter((r) => r.status === 200);
        expect(ok.length).toBeLessThanOrEqual(1);
        for (const r of mixed.filter((x) => x.status !== 200)) expect(r.json.error).toBe('invalid_grant');
        if (ok[0])
          expect((await h.refresh(clientId, ok[0].json.refresh_token as string)).json.error).toBe('invalid_grant');
      });
    });
  });
}

describe('authorization endpoint: loopback ports, state, and access tokens issued in the future', () => {
  let ctx: Awaited<ReturnType<typeof start>>;
  const h = helpers(() => ctx.server);
  beforeAll(async () => {
    ctx = await start({ storage: 'memory' });
  });
  afterAll(() => ctx.server.close());
  const get = (u: string) => fetch(u, { redirect: 'manual' });

  it('RFC 8252 §7.3: a loopback URI registered with a port is used with any port (VS Code falls back to a random one)', async () => {
    const clientId = await h.registerPublic(['http://127.0.0.1:33418/cb']);
    const { code, verifier: v, callback } = await h.getCode(clientId, { redirectUri: 'http://127.0.0.1:51234/cb' });
    expect(callback.host).toBe('127.0.0.1:51234');
    expect(callback.pathname).toBe('/cb');
    const tokens = await h.redeem(clientId, code, v, { redirect_uri: 'http://127.0.0.1:51234/cb' });
    expect(tokens.status).toBe(200);
  });

  it.each([
    ['a non-loopback host keeps its port', 'https://app.example.com:443/cb', 'https://app.example.com:444/cb'],
    ['a loopback port with a leading zero', 'http://127.0.0.1:33418/cb', 'http://127.0.0.1:080/cb'],
    ['another path on a loopback host', 'http://127.0.0.1:33418/cb', 'http://127.0.0.1:51234/cb2'],
  ])('refuses %s on the error page, without redirecting', async (_label, registered, requested) => {
    const clientId = await h.registerPublic([registered]);
    const v = verifier();
    const res = await get(
      h.authorizeUrl({
        client_id: clientId,
        redirect_uri: requested,
        response_type: 'code',
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        state: 'st',
      }),
    );
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('invalid_request');
  });

  it('an over-long state is never echoed, even when an earlier check fails', async () => {
    const clientId = await h.registerPublic();
    const longState = 'S'.repeat(3000);
    const v = verifier();
    for (const params of [
      // response_type is checked before everything else in the trusted part
      { response_type: 'token', code_challenge: challenge(v), code_challenge_method: 'S256' },
      { response_type: 'code', code_challenge_method: 'plain', code_challenge: v },
      { response_type: 'code', code_challenge: challenge(v), code_challenge_method: 'S256' },
    ]) {
      const res = await get(
        h.authorizeUrl({ client_id: clientId, redirect_uri: REDIRECT, state: longState, ...params }),
      );
      const location = res.headers.get('location');
      if (location) {
        const to = new URL(location);
        expect(to.origin + to.pathname).toBe(REDIRECT);
        expect(to.searchParams.get('error')).toBe('invalid_request');
        expect(to.searchParams.has('state')).toBe(false);
        expect(location).not.toContain('SSSS');
      } else {
        expect(res.status).toBe(400);
        expect(await res.text()).not.toContain('SSSS');
      }
    }
  });

  it('introspection refuses an access token whose iat lies in the future; a few seconds of skew are fine', async () => {
    const rs = await postJson(h.url('/register'), { grant_types: ['client_credentials'] });
    const auth = basic(rs.json.client_id, rs.json.client_secret);
    const mintAt = async (offsetMs: number) => {
      ctx.clock.advance(offsetMs);
      try {
        const t = await postForm(h.url('/token'), { grant_type: 'client_credentials' }, { authorization: auth });
        expect(t.status).toBe(200);
        return t.json.access_token as string;
      } finally {
        ctx.clock.advance(-offsetMs);
      }
    };
    const introspect = async (token: string) =>
      (await postForm(h.url('/introspect'), { token }, { authorization: auth })).json;
    const future = await mintAt(30 * 60_000);
    expect(await introspect(future)).toEqual({ active: false });
    const slightlyAhead = await mintAt(5_000);
    expect((await introspect(slightlyAhead)).active).toBe(true);
  });
});
