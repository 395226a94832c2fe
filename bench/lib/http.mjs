/**
 * Small HTTP client for the multi-step scenarios: an undici Pool per server (keep-alive, one request in flight per
 * connection), a per-virtual-user cookie jar, form parsing for the login/consent pages, PKCE and Basic auth.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Pool } from 'undici';

/** One keep-alive pool for an origin. */
export function createPool(origin, connections) {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
}

/** A PKCE verifier and its S256 challenge. */
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export const randomState = () => randomBytes(16).toString('base64url');

/** RFC 6749 §2.3.1 client_secret_basic. */
export function basicAuth(id, secret) {
  const enc = (s) => encodeURIComponent(s);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

/** Cookie jar of one virtual user: names to values; paths and domains are ignored (one server per jar). */
export class CookieJar {
  #cookies = new Map();

  header() {
    if (this.#cookies.size === 0) return undefined;
    let out = '';
    for (const [k, v] of this.#cookies) out += (out ? '; ' : '') + `${k}=${v}`;
    return out;
  }

  store(headers) {
    let lines = headers['set-cookie'];
    if (lines === undefined) return;
    if (!Array.isArray(lines)) lines = [lines];
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.trim().split('=');
        const key = k.toLowerCase();
        return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) < Date.now());
      });
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  clear() {
    this.#cookies.clear();
  }
}

/**
 * One request through `pool`; returns status, headers and the body as text (always read, so the connection is
 * reusable). `jar` adds the Cookie header and stores Set-Cookie.
 */
export async function send(pool, { path, method = 'GET', headers = {}, body, jar }) {
  const h = { ...headers };
  const cookie = jar?.header();
  if (cookie) h.cookie = cookie;
  if (body !== undefined && h['content-type'] === undefined) h['content-type'] = 'application/x-www-form-urlencoded';
  const res = await pool.request({ path, method, headers: h, body });
  const text = await res.body.text();
  if (jar) jar.store(res.headers);
  return { status: res.statusCode, headers: res.headers, text };
}

/** POSTs a form and parses a JSON answer; throws with the body when the status is not `expect`. */
export async function postJson(pool, path, form, headers = {}, expect = 200) {
  const res = await send(pool, { path, method: 'POST', headers, body: new URLSearchParams(form).toString() });
  if (res.status !== expect) throw new Error(`POST ${path}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return JSON.parse(res.text);
}

function unescapeHtml(s) {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#x2F;/gi, '/');
}

/** Reads the first form of a page: its action (absolute) and its hidden inputs. */
export function readForm(html, pageUrl) {
  const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no form on page: ${html.slice(0, 300)}`);
  const fields = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]+)"/.exec(m[0])?.[1];
    const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
    if (name) fields[name] = unescapeHtml(value);
  }
  return { action: new URL(unescapeHtml(action), pageUrl), fields };
}

/**
 * Drives the browser part of an authorization request like a user agent without scripts: follows redirects on
 * the server's origin, signs in when a password field is shown, approves when a consent form is shown. Returns the
 * off-origin callback URL (the client's redirect_uri with the code).
 */
export async function browserAuthorize(pool, origin, url, jar, user) {
  let current = new URL(url);
  let res = await send(pool, { path: current.pathname + current.search, jar });
  for (let step = 0; step < 12; step++) {
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.location, current);
      if (next.origin !== origin) return next;
      current = next;
      res = await send(pool, { path: current.pathname + current.search, jar });
      continue;
    }
    if (res.status !== 200)
      throw new Error(`authorize: HTTP ${res.status} at ${current.pathname}: ${res.text.slice(0, 300)}`);
    const form = readForm(res.text, current);
    let extra;
    if (res.text.includes('name="password"')) extra = { username: user.username, password: user.password };
    else if (res.text.includes('name="decision"')) extra = { decision: 'approve' };
    else throw new Error(`authorize: unexpected page at ${current.pathname}: ${res.text.slice(0, 300)}`);
    current = form.action;
    res = await send(pool, {
      path: current.pathname + current.search,
      method: 'POST',
      jar,
      body: new URLSearchParams({ ...form.fields, ...extra }).toString(),
    });
  }
  throw new Error('authorize: too many steps');
}
