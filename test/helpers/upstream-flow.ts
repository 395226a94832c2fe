/**
 * The Gatehouse side of an upstream sign-in, driven over HTTP with the FormBrowser: from the client's authorization
 * URL to the upstream's authorization URL (choosing the upstream on the login page when it is shown), and from the
 * upstream's redirect back to the client's callback (through the consent page when it is shown). What happens at
 * the upstream is the caller's: a stub answers at once, a real upstream has pages of its own.
 */
import { expect } from 'vitest';
import { jwtVerify, createRemoteJWKSet } from 'jose';
import { FormBrowser } from './browser.js';
import { challenge, postForm, postJson, verifier } from './oauth.js';
import { formWith, onConsentPage, pageOf, submit, type Page } from './sign-in.js';
import type { TestServer } from './server.js';

/** A public client registered dynamically, with one loopback redirect URI. */
export async function registerClient(
  server: TestServer,
  name: string,
): Promise<{ clientId: string; redirectUri: string }> {
  const redirectUri = `http://127.0.0.1/${name}/callback`;
  const reg = await postJson(`${server.issuer}/register`, {
    client_name: name,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  });
  expect(reg.status, JSON.stringify(reg.json)).toBe(201);
  return { clientId: reg.json.client_id as string, redirectUri };
}

/** A fresh authorization request of `client` (PKCE S256, state `st`, scope openid + offline_access). */
export function authorizationRequest(server: TestServer, client: { clientId: string; redirectUri: string }) {
  const v = verifier();
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    code_challenge: challenge(v),
    code_challenge_method: 'S256',
    scope: 'openid offline_access',
    state: 'st',
  }).toString();
  return { url: u.href, verifier: v };
}

/** Where the browser went off Gatehouse's origin, the upstream (`upstream`) or the client (`client`); else its page. */
export interface LeftGatehouse {
  upstream?: URL;
  client?: URL;
  page?: Page;
}

/**
 * Follows `url` within Gatehouse; on the login page, submits the form of the upstream named `upstreamName` (when
 * given). Returns the off-origin URL the browser was sent to, telling the upstream's apart by `upstreamOrigin`, or the
 * page it stopped at.
 */
export async function toUpstream(
  browser: FormBrowser,
  server: TestServer,
  url: string,
  upstreamOrigin: string,
  upstreamName?: string,
): Promise<LeftGatehouse> {
  let page = await pageOf(await browser.follow(url, server.origin));
  if (!page.callback && upstreamName && page.html.includes(`Sign in with ${upstreamName}`)) {
    page = await submit(browser, page, server.origin, `Sign in with ${upstreamName}`);
  }
  if (!page.callback) return { page };
  const off = new URL(page.callback);
  return off.origin === upstreamOrigin ? { upstream: off } : { client: off };
}

/** The login page's upstream forms: the upstream ids offered, in order. */
export function upstreamsOffered(html: string): string[] {
  return [...html.matchAll(/<input type="hidden" name="upstream" value="([^"]*)">/g)].map((m) => m[1]!);
}

/**
 * Comes back to Gatehouse at `callbackUrl` (where the upstream redirected the browser) and goes on to the client:
 * approving (or denying) consent when it is asked. Returns the client's callback and whether consent was asked.
 */
export async function backFromUpstream(
  browser: FormBrowser,
  server: TestServer,
  callbackUrl: string,
  decision: 'approve' | 'deny' = 'approve',
): Promise<{ client?: URL; consentAsked: boolean; page: Page }> {
  let page = await pageOf(await browser.follow(callbackUrl, server.origin));
  let consentAsked = false;
  if (!page.callback && onConsentPage(page)) {
    consentAsked = true;
    formWith(page.html, page.url, `value="${decision}"`);
    page = await submit(browser, page, server.origin, `value="${decision}"`, { decision });
  }
  return { ...(page.callback && { client: new URL(page.callback) }), consentAsked, page };
}

/** Redeems `code` for a public client. */
export function redeem(
  server: TestServer,
  client: { clientId: string; redirectUri: string },
  code: string,
  codeVerifier: string,
) {
  return postForm(`${server.issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: client.clientId,
    code,
    code_verifier: codeVerifier,
    redirect_uri: client.redirectUri,
  });
}

/** The `sub` of a Gatehouse access token, verified against the issuer's JWKS. */
export async function subjectOf(server: TestServer, accessToken: string): Promise<string> {
  const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks.json`));
  const { payload } = await jwtVerify(accessToken, jwks, { issuer: server.issuer });
  return payload.sub!;
}
