/** Signed cookies (HMAC-SHA-256) and CSRF tokens bound to a per-browser random value. */
import { hashToken, keyedHash, randomToken, safeEqual } from '../core/crypto.js';

/** Parses a Cookie header. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !(name in out)) out[name] = part.slice(eq + 1).trim();
  }
  return out;
}

/** `value.signature` */
export function signValue(value: string, key: string): string {
  return `${value}.${keyedHash(key, `cookie:${value}`)}`;
}

/** Returns the value if the signature is good. */
export function unsignValue(signed: string | undefined, key: string): string | undefined {
  if (!signed) return undefined;
  const dot = signed.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const value = signed.slice(0, dot);
  return safeEqual(signValue(value, key), signed) ? value : undefined;
}

/** Serializes a Set-Cookie header: HttpOnly, SameSite=Lax, Secure on https, scoped to the issuer path. */
export function setCookie(
  name: string,
  value: string,
  opts: { maxAgeSeconds?: number; secure: boolean; path: string },
): string {
  const parts = [`${name}=${value}`, `Path=${opts.path}`, 'HttpOnly', 'SameSite=Lax'];
  if (opts.secure) parts.push('Secure');
  if (opts.maxAgeSeconds !== undefined) parts.push(`Max-Age=${opts.maxAgeSeconds}`);
  return parts.join('; ');
}

/** A new per-browser CSRF binding value. */
export function newBrowserNonce(): string {
  return randomToken(16);
}

/**
 * What an interaction stores to name the browser that started it: a hash of the browser's nonce, so a copy of the
 * store cannot be replayed as the cookie.
 */
export function browserBinding(browserNonce: string): string {
  return hashToken(`browser-binding:${browserNonce}`);
}

/** CSRF token for a form of interaction `id`, bound to the browser's nonce cookie. */
export function csrfToken(key: string, browserNonce: string, id: string): string {
  return keyedHash(key, `csrf:${browserNonce}:${id}`);
}

/** Checks a submitted CSRF token in constant time. */
export function checkCsrf(
  key: string,
  browserNonce: string | undefined,
  id: string,
  submitted: string | undefined,
): boolean {
  if (!browserNonce || !submitted) return false;
  return safeEqual(csrfToken(key, browserNonce, id), submitted);
}
