/** OIDC Core §3.1.2.1 prompt and max_age against a signed-in browser that has already consented. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormBrowser } from '../helpers/browser.js';
import { challenge, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, BOB, startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
let server: TestServer;
let clientId: string;
let browser: FormBrowser;

const authorizeUrl = (extra: Record<string, string> = {}) => {
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: challenge(verifier()),
    code_challenge_method: 'S256',
    scope: 'openid',
    ...extra,
  }).toString();
  return u.href;
};

beforeAll(async () => {
  server = await startServer();
  clientId = (
    await postJson(`${server.issuer}/register`, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
  ).json.client_id;
  browser = new FormBrowser();
  const first = await browser.authorize(authorizeUrl(), server.origin, ALICE);
  expect(first.searchParams.get('code')).toBeTruthy();
});
afterAll(() => server.close());

/** Where the browser ends up: the callback, or the page shown (login / consent). */
async function land(url: string): Promise<'callback' | 'login' | 'consent'> {
  const step = await browser.follow(url, server.origin);
  if (step.callback) return 'callback';
  const html = await step.res.text();
  if (html.includes('name="password"')) return 'login';
  if (html.includes('name="decision"')) return 'consent';
  throw new Error(`unexpected page ${step.res.status}`);
}

describe('prompt and max_age', () => {
  it('a signed-in, consented user goes straight back; prompt=none too', async () => {
    expect(await land(authorizeUrl())).toBe('callback');
    expect(await land(authorizeUrl({ prompt: 'none' }))).toBe('callback');
  });

  it('prompt=login asks for the password again, prompt=consent shows the consent page', async () => {
    expect(await land(authorizeUrl({ prompt: 'login' }))).toBe('login');
    expect(await land(authorizeUrl({ prompt: 'consent' }))).toBe('consent');
  });

  it('max_age=0 forces a fresh sign-in; a generous max_age does not', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    expect(await land(authorizeUrl({ max_age: '0' }))).toBe('login');
    expect(await land(authorizeUrl({ max_age: '3600' }))).toBe('callback');
  });

  it('prompt=login lets another user sign in on the same browser, and the code is theirs', async () => {
    const cb = await browser.authorize(authorizeUrl({ prompt: 'login' }), server.origin, BOB);
    expect(cb.searchParams.get('code')).toBeTruthy();
  });

  it('prompt=none without consent is consent_required', async () => {
    const other = (
      await postJson(`${server.issuer}/register`, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
    ).json.client_id;
    const u = new URL(authorizeUrl({ prompt: 'none' }));
    u.searchParams.set('client_id', other);
    const step = await browser.follow(u.href, server.origin);
    expect(new URL(step.callback!).searchParams.get('error')).toBe('consent_required');
  });
});
