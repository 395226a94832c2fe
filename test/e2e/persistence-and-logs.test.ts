/**
 * The default embedded store keeps state across a restart; and no secret, code or token ever reaches a log line,
 * even at trace level.
 */
import { Writable } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server.js';
import { FormBrowser } from '../helpers/browser.js';
import { basic, challenge, postForm, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';

async function fullFlow(server: TestServer, clientId: string, browser = new FormBrowser()) {
  const v = verifier();
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: challenge(v),
    code_challenge_method: 'S256',
    scope: 'openid mcp:read',
    state: 'st',
  }).toString();
  const cb = await browser.authorize(u.href, server.origin, ALICE);
  const code = cb.searchParams.get('code')!;
  const t = await postForm(`${server.issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code,
    code_verifier: v,
    redirect_uri: REDIRECT,
  });
  expect(t.status).toBe(200);
  return { code, verifier: v, tokens: t.json as Record<string, string> };
}

describe('embedded store across a restart', () => {
  it('keeps clients, users, keys, consents, grants and refresh tokens', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gh-persist-')), 'data');
    const cfg = { storage: dir, scopes: ['mcp:read'] };
    const first = await startServer(cfg);
    let clientId: string;
    let refresh: string;
    let jwks: string;
    const browser = new FormBrowser();
    try {
      clientId = (
        await postJson(`${first.issuer}/register`, {
          redirect_uris: [REDIRECT],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
        })
      ).json.client_id;
      refresh = (await fullFlow(first, clientId, browser)).tokens.refresh_token!;
      jwks = await (await fetch(`${first.issuer}/jwks.json`)).text();
    } finally {
      await first.close();
    }
    const second = await startServer(cfg);
    try {
      expect(await (await fetch(`${second.issuer}/jwks.json`)).text()).toBe(jwks);
      const r = await postForm(`${second.issuer}/token`, {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: refresh,
      });
      expect(r.status).toBe(200);
      // The consent survived: a new browser signs in but is not asked to approve again.
      const v = verifier();
      const u = new URL(`${second.issuer}/authorize`);
      u.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        code_challenge: challenge(v),
        code_challenge_method: 'S256',
        scope: 'openid mcp:read',
      }).toString();
      const fresh = new FormBrowser();
      const step = await fresh.follow(u.href, second.origin);
      const afterLogin = await fresh.submit(await step.res.text(), step.url, second.origin, {
        username: ALICE.username,
        password: ALICE.password,
      });
      expect(afterLogin.callback).toContain('code=');
    } finally {
      await second.close();
    }
  }, 120_000);
});

describe('logs', () => {
  it('never contain a secret, code or token, even at trace level', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const server = await startServer(
      { scopes: ['mcp:read'], registration: { allowClientCredentials: true } },
      { logger: createLogger('trace', sink) },
    );
    try {
      const reg = await postJson(`${server.issuer}/register`, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      });
      const conf = await postJson(`${server.issuer}/register`, { grant_types: ['client_credentials'] });
      const { code, verifier: v, tokens } = await fullFlow(server, reg.json.client_id);
      const replay = await postForm(`${server.issuer}/token`, {
        grant_type: 'authorization_code',
        client_id: reg.json.client_id,
        code,
        code_verifier: v,
        redirect_uri: REDIRECT,
      });
      expect(replay.status).toBe(400);
      const cc = await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        { authorization: basic(conf.json.client_id, conf.json.client_secret) },
      );
      await postForm(
        `${server.issuer}/token`,
        { grant_type: 'client_credentials' },
        { authorization: basic(conf.json.client_id, 'wrong-secret-value') },
      );
      await postForm(
        `${server.issuer}/introspect`,
        { token: tokens.access_token! },
        { authorization: basic(conf.json.client_id, conf.json.client_secret) },
      );
      await postForm(`${server.issuer}/revoke`, { client_id: reg.json.client_id, token: tokens.refresh_token! });

      const all = lines.join('\n');
      expect(lines.length).toBeGreaterThan(5); // the test must actually see logging
      const secrets = {
        code,
        verifier: v,
        access: tokens.access_token!,
        refresh: tokens.refresh_token!,
        id: tokens.id_token!,
        cc: cc.json.access_token as string,
        clientSecret: conf.json.client_secret as string,
        rat: reg.json.registration_access_token as string,
        password: ALICE.password,
        wrong: 'wrong-secret-value',
      };
      for (const [name, value] of Object.entries(secrets)) {
        expect(value, name).toBeTruthy();
        expect(all.includes(value), `${name} leaked into the log`).toBe(false);
      }
    } finally {
      await server.close();
    }
  });
});
