/** Small raw-HTTP helpers for tests that must see exact status codes and error bodies. */
import { createHash, randomBytes } from 'node:crypto';

export const verifier = () => randomBytes(32).toString('base64url');
export const challenge = (v: string) => createHash('sha256').update(v).digest('base64url');

/** POSTs a form; returns status, JSON body and headers. */
export async function postForm(
  url: string,
  params: Record<string, string | string[]>,
  headers: Record<string, string> = {},
) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const value of Array.isArray(v) ? v : [v]) body.append(k, value);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json, headers: res.headers };
}

/** POSTs JSON; returns status, JSON body and headers. */
export async function postJson(url: string, payload: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(payload),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, any>, headers: res.headers };
}

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * Authorizes `clientId` through the real login and consent pages as `user` (PKCE S256, state `st`) and returns the
 * callback URL and the verifier; `extra` adds or overrides authorization parameters (repeatable as arrays).
 */
export async function authorizeThroughPages(
  server: { issuer: string; origin: string },
  clientId: string,
  redirectUri: string,
  user: { username: string; password: string },
  extra: Record<string, string | string[]> = {},
): Promise<{ callback: URL; verifier: string }> {
  const { FormBrowser } = await import('./browser.js');
  const v = verifier();
  const u = new URL(`${server.issuer}/authorize`);
  const params: Record<string, string | string[]> = {
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    code_challenge: challenge(v),
    code_challenge_method: 'S256',
    state: 'st',
    ...extra,
  };
  for (const [k, val] of Object.entries(params))
    for (const one of Array.isArray(val) ? val : [val]) u.searchParams.append(k, one);
  return { callback: await new FormBrowser().authorize(u.href, server.origin, user), verifier: v };
}
