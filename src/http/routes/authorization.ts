/** The browser side: /authorize and the login / consent interaction (pages, cookies, CSRF). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequest } from '../../model/errors.js';
import type { RawParams } from '../../core/params.js';
import { authorize, authorizeDeclaration } from '../../authorization/authorize.js';
import {
  interactionDeclaration,
  submitConsent,
  submitLogin,
  viewInteraction,
  type InteractionView,
} from '../../authorization/interaction.js';
import {
  endSession,
  logoutDeclaration,
  logoutNeedsConfirmation,
  planLogout,
  type LogoutPlan,
} from '../../authorization/logout.js';
import { findSession } from '../../authorization/session.js';
import { consentPage, errorPage, loginPage, logoutPage, signedOutPage } from '../../ui/pages.js';
import { PAGE_HEADERS } from '../../ui/html.js';
import {
  browserBinding,
  checkCsrf,
  csrfToken,
  newBrowserNonce,
  parseCookies,
  setCookie,
  signValue,
  unsignValue,
} from '../cookies.js';
import { toOAuthError } from '../errors.js';
import { formParams, queryParams, type RouteContext, type RoutePlugin } from './context.js';

const CSRF_COOKIE = 'gatehouse_csrf';

export const authorizationRoutes: RoutePlugin = {
  endpoints: [authorizeDeclaration, interactionDeclaration, logoutDeclaration],
  routes: authorizationFlow,
};

async function authorizationFlow(app: FastifyInstance, { deps, options, issuerPath }: RouteContext): Promise<void> {
  const { config } = deps;
  const secureCookies = new URL(config.issuer).protocol === 'https:';
  const cookiePath = issuerPath || '/';

  const cookies = (request: FastifyRequest) => parseCookies(request.headers.cookie);
  /** The session id the browser's signed session cookie carries; the flow looks the session up. */
  const sessionId = (request: FastifyRequest): string | undefined =>
    unsignValue(cookies(request)[config.session.cookieName], deps.cookieKey);
  /** The binding of the requesting browser, from its signed nonce cookie; undefined without one. */
  const requestBinding = (request: FastifyRequest): string | undefined => {
    const nonce = unsignValue(cookies(request)[CSRF_COOKIE], deps.cookieKey);
    return nonce ? browserBinding(nonce) : undefined;
  };
  const browserNonce = (request: FastifyRequest, reply: FastifyReply): string => {
    const existing = unsignValue(cookies(request)[CSRF_COOKIE], deps.cookieKey);
    if (existing) return existing;
    const nonce = newBrowserNonce();
    reply.header(
      'set-cookie',
      setCookie(CSRF_COOKIE, signValue(nonce, deps.cookieKey), { secure: secureCookies, path: cookiePath }),
    );
    return nonce;
  };
  const sendPage = (reply: FastifyReply, status: number, html: string) =>
    reply.code(status).headers(PAGE_HEADERS).send(html);
  const pageError = (reply: FastifyReply, err: unknown) => {
    const error = toOAuthError(err, config.retryAfterSeconds);
    if (error.status >= 500) reply.log.error({ err }, 'interaction failed');
    for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
    return sendPage(reply, error.status, errorPage(error, reply.request.id));
  };
  const interactionBase = issuerPath + interactionDeclaration.path;
  const interactionPath = (id: string) => `${interactionBase}/${encodeURIComponent(id)}`;
  const renderView = (request: FastifyRequest, reply: FastifyReply, view: InteractionView, status = 200) => {
    if (view.stage === 'done') return reply.code(303).header('cache-control', 'no-store').redirect(view.location, 303);
    const nonce = browserNonce(request, reply);
    const csrf = csrfToken(deps.cookieKey, nonce, view.interaction.id);
    if (view.stage === 'login') {
      return sendPage(
        reply,
        status,
        loginPage({
          action: `${interactionPath(view.interaction.id)}/login`,
          csrf,
          client: view.client,
          redirectUri: view.interaction.redirectUri,
          error: view.error,
          username: view.username,
        }),
      );
    }
    return sendPage(
      reply,
      status,
      consentPage({
        action: `${interactionPath(view.interaction.id)}/consent`,
        csrf,
        client: view.client,
        interaction: view.interaction,
        user: view.user,
        warnings: options.consentWarnings?.(view.client) ?? [],
      }),
    );
  };

  const handleAuthorize = async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const raw = request.method === 'POST' ? formParams(request) : queryParams(request);
      // The nonce cookie is set here, before the 303 to the interaction: a top-level navigation, so SameSite=Lax
      // cookies come back on every interaction step.
      const bindBrowser = () => browserBinding(browserNonce(request, reply));
      const outcome = await authorize(raw, sessionId(request), deps, bindBrowser);
      if (outcome.kind === 'redirect') return reply.header('cache-control', 'no-store').redirect(outcome.location, 303);
      if (outcome.kind === 'interaction')
        return reply.header('cache-control', 'no-store').redirect(interactionPath(outcome.interactionId), 303);
      return sendPage(reply, outcome.error.status, errorPage(outcome.error, request.id));
    } catch (err) {
      return pageError(reply, err);
    }
  };
  app.get(issuerPath + authorizeDeclaration.path, handleAuthorize);
  app.post(issuerPath + authorizeDeclaration.path, handleAuthorize);

  app.get<{ Params: { id: string } }>(`${interactionBase}/:id`, async (request, reply) => {
    try {
      return renderView(
        request,
        reply,
        await viewInteraction(request.params.id, sessionId(request), requestBinding(request), deps),
      );
    } catch (err) {
      return pageError(reply, err);
    }
  });

  const requireCsrf = (request: FastifyRequest, id: string, form: RawParams) => {
    const nonce = unsignValue(cookies(request)[CSRF_COOKIE], deps.cookieKey);
    const submitted = form.csrf?.length === 1 ? form.csrf[0] : undefined;
    if (!checkCsrf(deps.cookieKey, nonce, id, submitted)) {
      const err = new InvalidRequest('the form has expired or did not come from this site; go back and try again');
      err.redirectable = false;
      throw err;
    }
  };
  const field = (form: RawParams, name: string): string | undefined => {
    const v = form[name];
    if (v && v.length > 1) throw new InvalidRequest(`parameter ${name} must not be included more than once`);
    return v?.[0];
  };

  app.post<{ Params: { id: string } }>(`${interactionBase}/:id/login`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, request.params.id, form);
      const outcome = await submitLogin(
        request.params.id,
        requestBinding(request),
        field(form, 'username') ?? '',
        field(form, 'password') ?? '',
        request.ip,
        deps,
      );
      if (!outcome.ok && outcome.retryAfterSeconds !== undefined) {
        // Throttled: the password was not checked; the form comes back with when to try again.
        reply.header('retry-after', String(outcome.retryAfterSeconds));
        return renderView(request, reply, outcome.view, 429);
      }
      if (!outcome.ok) return renderView(request, reply, outcome.view, 401);
      reply.header(
        'set-cookie',
        setCookie(config.session.cookieName, signValue(outcome.session.id, deps.cookieKey), {
          secure: secureCookies,
          path: cookiePath,
          maxAgeSeconds: config.session.ttl,
        }),
      );
      return reply.header('cache-control', 'no-store').redirect(interactionPath(request.params.id), 303);
    } catch (err) {
      return pageError(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>(`${interactionBase}/:id/consent`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, request.params.id, form);
      const location = await submitConsent(
        request.params.id,
        sessionId(request),
        requestBinding(request),
        field(form, 'decision'),
        deps,
      );
      return reply.header('cache-control', 'no-store').redirect(location, 303);
    } catch (err) {
      return pageError(reply, err);
    }
  });

  // ---- sign-out (RP-Initiated Logout) ----
  const logoutBase = issuerPath + logoutDeclaration.path;
  /** The CSRF context of the sign-out form (interaction forms use their interaction id). */
  const LOGOUT_FORM = 'logout';
  const clearSessionCookie = (reply: FastifyReply) =>
    reply.header(
      'set-cookie',
      setCookie(config.session.cookieName, '', { secure: secureCookies, path: cookiePath, maxAgeSeconds: 0 }),
    );
  /** Where a finished logout goes: the client's registered URI (with state), else a page saying what happened. */
  const finishLogout = (reply: FastifyReply, plan: LogoutPlan, signedOut: boolean) => {
    reply.header('cache-control', 'no-store');
    if (signedOut && plan.returnTo) return reply.redirect(plan.returnTo, 303);
    return sendPage(reply, 200, signedOutPage(signedOut));
  };
  const handleLogout = async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const plan = await planLogout(request.method === 'POST' ? formParams(request) : queryParams(request), deps);
      const id = sessionId(request);
      const session = await findSession(id, deps);
      if (!logoutNeedsConfirmation(plan, session?.userId)) {
        await endSession(id, deps);
        clearSessionCookie(reply);
        return finishLogout(reply, plan, true);
      }
      const user = await deps.storage.getUser(session!.userId);
      const csrf = csrfToken(deps.cookieKey, browserNonce(request, reply), LOGOUT_FORM);
      return sendPage(
        reply,
        200,
        logoutPage({
          action: `${logoutBase}/confirm`,
          csrf,
          username: user?.username ?? '',
          client: plan.client,
          params: plan.params,
        }),
      );
    } catch (err) {
      return pageError(reply, err);
    }
  };
  app.get(logoutBase, handleLogout);
  app.post(logoutBase, handleLogout);
  app.post(`${logoutBase}/confirm`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, LOGOUT_FORM, form);
      const { csrf: _csrf, decision: _decision, ...pushedParams } = form;
      // Checked again: the form echoes the request, and what comes back is held to the same rules.
      const plan = await planLogout(pushedParams, deps);
      const signOut = field(form, 'decision') === 'sign_out';
      if (signOut) {
        await endSession(sessionId(request), deps);
        clearSessionCookie(reply);
      }
      return finishLogout(reply, plan, signOut);
    } catch (err) {
      return pageError(reply, err);
    }
  });
}
