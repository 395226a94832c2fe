/** The browser side: /authorize and the login / consent interaction (pages, cookies, CSRF). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequest } from '../../model/errors.js';
import type { RawParams } from '../../core/params.js';
import { authorize, authorizeDeclaration } from '../../authorization/authorize.js';
import {
  interactionDeclaration,
  signOutOfInteraction,
  submitConsent,
  submitEnrolment,
  submitLogin,
  submitSecondFactor,
  viewInteraction,
  type InteractionView,
  type LoginOutcome,
} from '../../authorization/interaction.js';
import { consentPage, errorPage, loginPage } from '../../ui/pages.js';
import { enrolPage, recoveryCodesPage, secondFactorPage } from '../../ui/sign-in-pages.js';
import { PAGE_HEADERS, PASSKEY_PAGE_HEADERS } from '../../ui/html.js';
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
  endpoints: [authorizeDeclaration, interactionDeclaration],
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
  const sendPage = (reply: FastifyReply, status: number, html: string, headers = PAGE_HEADERS) =>
    reply.code(status).headers(headers).send(html);
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
    const base = interactionPath(view.interaction.id);
    if (view.stage === 'login') {
      return sendPage(
        reply,
        status,
        loginPage({
          action: `${base}/login`,
          csrf,
          client: { record: view.client, redirectUri: view.interaction.redirectUri },
          error: view.error,
          username: view.username,
        }),
      );
    }
    if (view.stage === 'second_step') {
      const { prompt } = view;
      const actions = { signOut: `${base}/sign-out`, csrf };
      if (prompt.step === 'enrol') {
        return sendPage(reply, status, enrolPage({ ...prompt, ...actions, action: `${base}/enrol` }), PASSKEY_PAGE_HEADERS);
      }
      const headers = prompt.passkeyOptions ? PASSKEY_PAGE_HEADERS : PAGE_HEADERS;
      return sendPage(reply, status, secondFactorPage({ ...prompt, ...actions, action: `${base}/factor` }), headers);
    }
    return sendPage(
      reply,
      status,
      consentPage({
        action: `${base}/consent`,
        signOutAction: `${base}/sign-out`,
        csrf,
        client: view.client,
        interaction: view.interaction,
        user: view.user,
        warnings: options.consentWarnings?.(view.client) ?? [],
      }),
    );
  };
  const sessionCookie = (id: string, maxAgeSeconds: number) =>
    setCookie(config.session.cookieName, maxAgeSeconds > 0 ? signValue(id, deps.cookieKey) : '', {
      secure: secureCookies,
      path: cookiePath,
      maxAgeSeconds,
    });
  /** Renders a sign-in step's outcome: the session cookie once signed in, new recovery codes shown once. */
  const sendSignIn = (request: FastifyRequest, reply: FastifyReply, id: string, outcome: LoginOutcome) => {
    if (outcome.kind === 'view') {
      // Throttled: nothing was checked; the form comes back with when to try again.
      if (outcome.retryAfterSeconds !== undefined) reply.header('retry-after', String(outcome.retryAfterSeconds));
      return renderView(request, reply, outcome.view, outcome.status);
    }
    if (outcome.kind === 'signed_in') {
      reply.header('set-cookie', sessionCookie(outcome.session.id, config.session.ttl));
      if (outcome.recoveryCodes) {
        const page = recoveryCodesPage({
          codes: outcome.recoveryCodes,
          continueUrl: interactionPath(id),
          continueLabel: 'Continue',
        });
        return sendPage(reply, 200, page);
      }
    }
    return reply.header('cache-control', 'no-store').redirect(interactionPath(id), 303);
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
      return sendSignIn(request, reply, request.params.id, outcome);
    } catch (err) {
      return pageError(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>(`${interactionBase}/:id/factor`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, request.params.id, form);
      const factor = { method: field(form, 'method'), code: field(form, 'code'), credential: field(form, 'credential') };
      const outcome = await submitSecondFactor(request.params.id, requestBinding(request), factor, request.ip, deps);
      return sendSignIn(request, reply, request.params.id, outcome);
    } catch (err) {
      return pageError(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>(`${interactionBase}/:id/enrol`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, request.params.id, form);
      const enrolment = {
        method: field(form, 'method'),
        code: field(form, 'code'),
        credential: field(form, 'credential'),
        name: field(form, 'name'),
      };
      const outcome = await submitEnrolment(request.params.id, requestBinding(request), enrolment, deps);
      return sendSignIn(request, reply, request.params.id, outcome);
    } catch (err) {
      return pageError(reply, err);
    }
  });

  // "Not you?": the session ends, and the same request asks who is signing in.
  app.post<{ Params: { id: string } }>(`${interactionBase}/:id/sign-out`, async (request, reply) => {
    try {
      const form = formParams(request);
      requireCsrf(request, request.params.id, form);
      await signOutOfInteraction(request.params.id, sessionId(request), requestBinding(request), deps);
      reply.header('set-cookie', sessionCookie('', 0));
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
}
