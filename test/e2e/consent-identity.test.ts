/**
 * A client's self-chosen name cannot disguise it on the login and consent pages: control and format characters (bidi
 * overrides and isolates, marks, zero-width characters) are stripped, and the host the user can check (the redirect
 * URI's, a private-use scheme for native apps, a metadata document's URL host) is shown first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormBrowser } from '../helpers/browser.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { challenge, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

/** Every character a name may use to reorder or hide text: bidi controls, marks, zero-width, BOM, C0 controls. */
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad\u2028\u2029]/u;
// "Trusted App" written so that it renders as something else: RLO, isolates, ZWSP, ZWJ, LRM, BOM, a bell, a newline.
const TRICK_NAME = 'Trus\u202Eted\u2066 \u200BA\u200Dpp\u200E\uFEFF\u0007\u2069\n';

let server: TestServer;
let cimd: CimdServer;

beforeAll(async () => {
  cimd = await startCimdServer();
  server = await startServer({
    clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile, timeoutMs: 2000 },
  });
});
afterAll(async () => {
  await server?.close();
  cimd?.close();
});

/** The visible text of a page's <main> (tags dropped, quote entities decoded, the template's own newlines spaces). */
const mainText = (html: string) =>
  (/<main>([\s\S]*)<\/main>/.exec(html)?.[1] ?? '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&ldquo;|&rdquo;|[“”]/g, '"')
    .replace(/\n/g, ' ')
    .replace(/ +/g, ' ');

/** Opens the login page, signs in, and returns the text of the login and consent pages. */
async function pagesFor(clientId: string, redirectUri: string): Promise<{ login: string; consent: string }> {
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    code_challenge: challenge(verifier()),
    code_challenge_method: 'S256',
    scope: 'openid',
  }).toString();
  const browser = new FormBrowser();
  const step = await browser.follow(u.href, server.origin);
  const loginHtml = await step.res.text();
  expect(loginHtml).toContain('name="password"');
  const next = await browser.submit(loginHtml, step.url, server.origin, {
    username: ALICE.username,
    password: ALICE.password,
  });
  const consentHtml = await next.res.text();
  expect(consentHtml).toContain('name="decision"');
  return { login: mainText(loginHtml), consent: mainText(consentHtml) };
}

describe('client identity on the login and consent pages', () => {
  it('strips bidi, zero-width and control characters from client_name and shows the redirect host first', async () => {
    const reg = await postJson(`${server.issuer}/register`, {
      client_name: TRICK_NAME,
      redirect_uris: ['https://app.example/cb'],
      token_endpoint_auth_method: 'none',
    });
    expect(reg.status).toBe(201);
    const { login, consent } = await pagesFor(reg.json.client_id, 'https://app.example/cb');
    for (const text of [login, consent]) {
      expect(text).not.toMatch(INVISIBLE);
      expect(text).toContain('"Trusted App"');
      expect(text).toContain('app.example');
      expect(text.indexOf('app.example')).toBeLessThan(text.indexOf('Trusted App'));
    }
  });

  it('a native app with a private-use scheme is shown by its scheme', async () => {
    const reg = await postJson(`${server.issuer}/register`, {
      client_name: 'Native\u202E App',
      application_type: 'native',
      redirect_uris: ['com.example.app:/oauth'],
      token_endpoint_auth_method: 'none',
    });
    expect(reg.status, JSON.stringify(reg.json)).toBe(201);
    const { login, consent } = await pagesFor(reg.json.client_id, 'com.example.app:/oauth');
    for (const text of [login, consent]) {
      expect(text).not.toMatch(INVISIBLE);
      expect(text).toMatch(/com\.example\.app \(calls itself "Native App"\)/);
    }
  });

  it('a metadata-document client is shown by its client_id URL host, not its redirect host', async () => {
    const clientId = `${cimd.origin}/identity.json`;
    cimd.docs.set('/identity.json', {
      body: JSON.stringify({
        client_id: clientId,
        client_name: 'Doc\u200B App\u2067',
        redirect_uris: ['http://127.0.0.1/callback'],
        token_endpoint_auth_method: 'none',
      }),
    });
    const { login, consent } = await pagesFor(clientId, 'http://127.0.0.1/callback');
    for (const text of [login, consent]) {
      expect(text).not.toMatch(INVISIBLE);
      expect(text).toMatch(/localhost \(calls itself "Doc App"\)/);
    }
  });
});
