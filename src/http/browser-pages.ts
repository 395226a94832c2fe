/**
 * What the browser-facing route plugins (the interaction, the account page) share: the signed session and nonce
 * cookies, CSRF checks, single form fields, and sending pages and error pages.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Deps } from '../context.js';
import type { RawParams } from '../core/params.js';
import { InvalidRequest } from '../model/errors.js';
import { PAGE_HEADERS, pageBranding } from '../ui/html.js';
import { errorPage } from '../ui/pages.js';
import { pageStrings, type Strings } from '../ui/strings.js';
import {
  browserBinding,
  checkCsrf,
  newBrowserNonce,
  parseCookies,
  setCookie,
  signValue,
  unsignValue,
} from './cookies.js';
import { toOAuthError } from './errors.js';

/** The per-browser nonce cookie: CSRF tokens and browser bindings derive from it. */
export const CSRF_COOKIE = 'gatehouse_csrf';

export type BrowserPages = ReturnType<typeof browserPages>;

/** The helpers for `deps`' cookies under the issuer's path. */
export function browserPages(deps: Pick<Deps, 'config' | 'cookieKey' | 'tenant'>, issuerPath: string) {
  const { config, cookieKey } = deps;
  const branding = pageBranding(config.branding);
  const strings: Strings = pageStrings(config.pages);
  const secure = new URL(config.issuer).protocol === 'https:';
  const path = issuerPath || '/';
  const cookies = (request: FastifyRequest) => parseCookies(request.headers.cookie);
  // A tenant's cookies have names of their own as well as its path: a browser signed in at one issuer sends nothing
  // another issuer's cookies would be read as (its keys differ too).
  const suffix = deps.tenant === undefined ? '' : `-${deps.tenant}`;
  const csrfCookie = CSRF_COOKIE + suffix;
  const sessionCookie = config.session.cookieName + suffix;
  const nonceOf = (request: FastifyRequest) => unsignValue(cookies(request)[csrfCookie], cookieKey);

  return {
    /** The issuer's page strings (config `pages`): every page is rendered with them. */
    strings,
    /** The session id the browser's signed session cookie carries; the flow looks the session up. */
    sessionId: (request: FastifyRequest): string | undefined => unsignValue(cookies(request)[sessionCookie], cookieKey),
    /** The binding of the requesting browser, from its signed nonce cookie; undefined without one. */
    binding(request: FastifyRequest): string | undefined {
      const nonce = nonceOf(request);
      return nonce ? browserBinding(nonce) : undefined;
    },
    /** The browser's nonce, set as a cookie now when it has none. */
    nonce(request: FastifyRequest, reply: FastifyReply): string {
      const existing = nonceOf(request);
      if (existing) return existing;
      const nonce = newBrowserNonce();
      reply.header('set-cookie', setCookie(csrfCookie, signValue(nonce, cookieKey), { secure, path }));
      return nonce;
    },
    /** Set-Cookie for a new session, or (maxAgeSeconds 0) for ending it. */
    sessionCookie: (id: string, maxAgeSeconds: number) =>
      setCookie(sessionCookie, maxAgeSeconds > 0 ? signValue(id, cookieKey) : '', {
        secure,
        path,
        maxAgeSeconds,
      }),
    /** Refuses a form whose CSRF token is not this browser's for `id` (a page error, never a redirect). */
    requireCsrf(request: FastifyRequest, id: string, form: RawParams): void {
      const submitted = form.csrf?.length === 1 ? form.csrf[0] : undefined;
      if (!checkCsrf(cookieKey, nonceOf(request), id, submitted)) {
        const err = new InvalidRequest('the form has expired or did not come from this site; go back and try again');
        err.redirectable = false;
        throw err;
      }
    },
    /** One form field; a repeated one is invalid_request. */
    field(form: RawParams, name: string): string | undefined {
      const v = form[name];
      if (v && v.length > 1) throw new InvalidRequest(`parameter ${name} must not be included more than once`);
      return v?.[0];
    },
    send: (reply: FastifyReply, status: number, html: string, headers = PAGE_HEADERS) =>
      reply.code(status).headers(branding.headers(headers)).send(branding.html(html)),
    /** A 303 to `location` that no cache keeps. */
    redirect: (reply: FastifyReply, location: string) =>
      reply.header('cache-control', 'no-store').redirect(location, 303),
    /** The branded error page of `error` and its headers (for the app's error handler, which has no reply helper). */
    errorDocument: (error: ReturnType<typeof toOAuthError>, requestId: string) => ({
      html: branding.html(errorPage(error, requestId, strings)),
      headers: branding.headers(PAGE_HEADERS),
    }),
    /** Any failure as an error page with the request id (stack traces only in the log). */
    error(reply: FastifyReply, err: unknown) {
      const error = toOAuthError(err, config.retryAfterSeconds);
      if (error.status >= 500) reply.log.error({ err }, 'page failed');
      for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
      return reply
        .code(error.status)
        .headers(branding.headers(PAGE_HEADERS))
        .send(branding.html(errorPage(error, reply.request.id, strings)));
    },
  };
}
