/**
 * The browser side: /authorize, the interaction (login, second factor, consent, "Not you?") and RP-Initiated Logout
 * (pages, cookies, CSRF).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorize, authorizeDeclaration } from '../../authorization/authorize.js';
import {
  interactionDeclaration,
  signOutOfInteraction,
  submitConsent,
  submitEnrolment,
  submitLogin,
  submitSecondFactor,
  submitUpstream,
  viewInteraction,
  type InteractionView,
  type LoginOutcome,
} from '../../authorization/interaction.js';
import {
  endSession,
  logoutDeclaration,
  logoutNeedsConfirmation,
  planLogout,
  type LogoutPlan,
} from '../../authorization/logout.js';
import { findSignedIn } from '../../authorization/session.js';
import { awaitingFirstUser } from '../../authorization/setup.js';
import { limitRequest } from '../../core/rate-limit.js';
import { auditContextOf } from '../request-id.js';
import { completeUpstreamSignIn, upstreamCallbackDeclaration } from '../../authorization/upstream-sign-in.js';
import { consentPage, errorPage, loginPage, logoutPage, signedOutPage } from '../../ui/pages.js';
import { enrolPage, recoveryCodesPage, secondFactorPage } from '../../ui/sign-in-pages.js';
import { PAGE_HEADERS, PASSKEY_PAGE_HEADERS } from '../../ui/html.js';
import { browserPages, type BrowserPages } from '../browser-pages.js';
import { browserBinding, csrfToken } from '../cookies.js';
import { formParams, perScope, queryParams, type RouteContext, type RoutePlugin } from './context.js';

export const authorizationRoutes: RoutePlugin = {
  endpoints: [authorizeDeclaration, interactionDeclaration, upstreamCallbackDeclaration, logoutDeclaration],
  routes: authorizationFlow,
};

async function authorizationFlow(app: FastifyInstance, { options, issuerPath }: RouteContext): Promise<void> {
  /** What every handler derives from its issuer: its cookies, the URLs of its pages, how a view is sent. */
  const flowOf = perScope(({ deps, issuerPath: ownPath }) => {
    const { config } = deps;
    const pages = browserPages(deps, ownPath);
    const interactionPath = (id: string) => `${ownPath + interactionDeclaration.path}/${encodeURIComponent(id)}`;

    const strings = pages.strings;
    const renderView = async (request: FastifyRequest, reply: FastifyReply, view: InteractionView, status = 200) => {
      if (view.stage === 'done' || view.stage === 'upstream')
        return reply.code(303).header('cache-control', 'no-store').redirect(view.location, 303);
      const csrf = csrfToken(deps.cookieKey, pages.nonce(request, reply), view.interaction.id);
      const base = interactionPath(view.interaction.id);
      if (view.stage === 'login') {
        const page = loginPage({
          action: `${base}/login`,
          csrf,
          client: { record: view.client, redirectUri: view.interaction.redirectUri },
          error: view.error,
          username: view.username,
          upstreams: { action: `${base}/upstream`, options: view.options.upstreams },
          passwords: view.options.passwords,
          firstRun: await awaitingFirstUser(deps),
          strings,
        });
        return pages.send(reply, status, page);
      }
      if (view.stage === 'second_step') {
        const { prompt } = view;
        const actions = { signOut: `${base}/sign-out`, csrf, strings };
        if (prompt.step === 'enrol') {
          const page = enrolPage({ ...prompt, ...actions, action: `${base}/enrol` });
          return pages.send(reply, status, page, PASSKEY_PAGE_HEADERS);
        }
        const page = secondFactorPage({ ...prompt, ...actions, action: `${base}/factor` });
        return pages.send(reply, status, page, prompt.passkeyOptions ? PASSKEY_PAGE_HEADERS : PAGE_HEADERS);
      }
      const page = consentPage({
        action: `${base}/consent`,
        signOutAction: `${base}/sign-out`,
        csrf,
        client: view.client,
        interaction: view.interaction,
        user: view.user,
        warnings: options.consentWarnings?.(view.client) ?? [],
        strings,
      });
      return pages.send(reply, status, page);
    };

    /** A sign-in step's outcome: the session cookie once signed in (new recovery codes shown once), else a page. */
    const sendSignIn = (request: FastifyRequest, reply: FastifyReply, id: string, outcome: LoginOutcome) => {
      if (outcome.kind === 'view') {
        // Throttled: nothing was checked; the form comes back with when to try again.
        if (outcome.retryAfterSeconds !== undefined) reply.header('retry-after', String(outcome.retryAfterSeconds));
        return renderView(request, reply, outcome.view, outcome.status);
      }
      if (outcome.kind === 'signed_in') {
        reply.header('set-cookie', pages.sessionCookie(outcome.session.id, config.session.ttl));
        if (outcome.recoveryCodes) {
          const page = recoveryCodesPage({
            codes: outcome.recoveryCodes,
            continueUrl: interactionPath(id),
            continueLabel: strings['recovery.continue'],
            strings,
          });
          return pages.send(reply, 200, page);
        }
      }
      return pages.redirect(reply, interactionPath(id));
    };
    return { deps, pages, interactionPath, renderView, sendSignIn, logoutBase: ownPath + logoutDeclaration.path };
  });
  const interactionBase = issuerPath + interactionDeclaration.path;

  const handleAuthorize = async (request: FastifyRequest, reply: FastifyReply) => {
    const { deps, pages, interactionPath } = flowOf(request);
    try {
      // Per address (config rateLimits.authorize.perIp) before any work; over it, a 429 page with Retry-After.
      const context = auditContextOf(request);
      await limitRequest(deps, 'authorize', 'ip', request.ip, context);
      const raw = request.method === 'POST' ? formParams(request) : queryParams(request);
      // The nonce cookie is set here, before the 303 to the interaction: a top-level navigation, so SameSite=Lax
      // cookies come back on every interaction step.
      const bindBrowser = () => browserBinding(pages.nonce(request, reply));
      const outcome = await authorize(raw, pages.sessionId(request), deps, bindBrowser, context);
      if (outcome.kind === 'redirect') return pages.redirect(reply, outcome.location);
      if (outcome.kind === 'interaction') return pages.redirect(reply, interactionPath(outcome.interactionId));
      return pages.send(
        reply,
        outcome.error.status,
        errorPage(outcome.error, request.id, pages.strings, outcome.reference),
        {
          ...PAGE_HEADERS,
          ...outcome.error.headers,
        },
      );
    } catch (err) {
      return pages.error(reply, err);
    }
  };
  app.get(issuerPath + authorizeDeclaration.path, handleAuthorize);
  app.post(issuerPath + authorizeDeclaration.path, handleAuthorize);

  app.get<{ Params: { id: string } }>(`${interactionBase}/:id`, async (request, reply) => {
    const { deps, pages, renderView } = flowOf(request);
    try {
      const view = await viewInteraction(
        request.params.id,
        pages.sessionId(request),
        pages.binding(request),
        deps,
        auditContextOf(request),
      );
      return renderView(request, reply, view);
    } catch (err) {
      return pages.error(reply, err);
    }
  });

  /** A POST to a form of interaction `id`: CSRF checked, then `handle` with the form's fields. */
  const formRoute = (
    step: string,
    handle: (
      request: FastifyRequest<{ Params: { id: string } }>,
      reply: FastifyReply,
      field: (name: string) => string | undefined,
    ) => Promise<unknown>,
  ) =>
    app.post<{ Params: { id: string } }>(`${interactionBase}/:id/${step}`, async (request, reply) => {
      const { pages } = flowOf(request);
      try {
        const form = formParams(request);
        pages.requireCsrf(request, request.params.id, form);
        return await handle(request, reply, (name) => pages.field(form, name));
      } catch (err) {
        return pages.error(reply, err);
      }
    });

  formRoute('login', async (request, reply, field) => {
    const { deps, pages, sendSignIn } = flowOf(request);
    const { id } = request.params;
    const username = field('username') ?? '';
    const password = field('password') ?? '';
    const context = auditContextOf(request);
    const outcome = await submitLogin(id, pages.binding(request), username, password, request.ip, deps, context);
    return sendSignIn(request, reply, id, outcome);
  });

  formRoute('factor', async (request, reply, field) => {
    const { deps, pages, sendSignIn } = flowOf(request);
    const { id } = request.params;
    const factor = { method: field('method'), code: field('code'), credential: field('credential') };
    const context = auditContextOf(request);
    const outcome = await submitSecondFactor(id, pages.binding(request), factor, request.ip, deps, context);
    return sendSignIn(request, reply, id, outcome);
  });

  formRoute('enrol', async (request, reply, field) => {
    const { deps, pages, sendSignIn } = flowOf(request);
    const { id } = request.params;
    const enrolment = {
      method: field('method'),
      code: field('code'),
      credential: field('credential'),
      name: field('name'),
    };
    const outcome = await submitEnrolment(id, pages.binding(request), enrolment, deps, auditContextOf(request));
    return sendSignIn(request, reply, id, outcome);
  });

  // "Sign in with <upstream>": the browser goes upstream (303) with a pending upstream authorization kept.
  formRoute('upstream', async (request, reply, field) => {
    const { deps, pages } = flowOf(request);
    const context = auditContextOf(request);
    const location = await submitUpstream(request.params.id, pages.binding(request), field('upstream'), deps, context);
    return pages.redirect(reply, location);
  });

  // The upstream's answer: signed in, on to the interaction (consent, then the code); or the client's error redirect.
  app.get(issuerPath + upstreamCallbackDeclaration.path, async (request, reply) => {
    const { deps, pages, interactionPath } = flowOf(request);
    try {
      const q = request.url.indexOf('?');
      const query = new URLSearchParams(q < 0 ? '' : request.url.slice(q + 1));
      const outcome = await completeUpstreamSignIn(query, pages.binding(request), deps, auditContextOf(request));
      if (outcome.kind === 'redirect') return pages.redirect(reply, outcome.location);
      reply.header('set-cookie', pages.sessionCookie(outcome.session.id, deps.config.session.ttl));
      return pages.redirect(reply, interactionPath(outcome.interactionId));
    } catch (err) {
      return pages.error(reply, err);
    }
  });

  // "Not you?": the session ends, and the same request asks again who is signing in.
  formRoute('sign-out', async (request, reply) => {
    const { deps, pages, interactionPath } = flowOf(request);
    const { id } = request.params;
    await signOutOfInteraction(id, pages.sessionId(request), pages.binding(request), deps);
    reply.header('set-cookie', pages.sessionCookie('', 0));
    return pages.redirect(reply, interactionPath(id));
  });

  formRoute('consent', async (request, reply, field) => {
    const { deps, pages } = flowOf(request);
    const { id } = request.params;
    const decision = field('decision');
    const context = auditContextOf(request);
    const location = await submitConsent(id, pages.sessionId(request), pages.binding(request), decision, deps, context);
    return pages.redirect(reply, location);
  });

  // ---- sign-out (RP-Initiated Logout) ----
  const logoutRoute = issuerPath + logoutDeclaration.path;
  /** The CSRF context of the sign-out form (interaction forms use their interaction id). */
  const LOGOUT_FORM = 'logout';
  const clearSessionCookie = (pages: BrowserPages, reply: FastifyReply) =>
    reply.header('set-cookie', pages.sessionCookie('', 0));
  /** Where a finished logout goes: the client's registered URI (with state), else a page saying what happened. */
  const finishLogout = (pages: BrowserPages, reply: FastifyReply, plan: LogoutPlan, signedOut: boolean) => {
    reply.header('cache-control', 'no-store');
    if (signedOut && plan.returnTo) return reply.redirect(plan.returnTo, 303);
    return pages.send(reply, 200, signedOutPage(signedOut, pages.strings));
  };
  const handleLogout = async (request: FastifyRequest, reply: FastifyReply) => {
    const { deps, pages, logoutBase } = flowOf(request);
    try {
      const plan = await planLogout(request.method === 'POST' ? formParams(request) : queryParams(request), deps);
      const id = pages.sessionId(request);
      const signedIn = await findSignedIn(id, deps);
      if (!signedIn || !logoutNeedsConfirmation(plan, signedIn.user.id)) {
        await endSession(id, deps);
        clearSessionCookie(pages, reply);
        return finishLogout(pages, reply, plan, true);
      }
      const csrf = csrfToken(deps.cookieKey, pages.nonce(request, reply), LOGOUT_FORM);
      const page = logoutPage({
        action: `${logoutBase}/confirm`,
        csrf,
        username: signedIn.user.username,
        client: plan.client,
        params: plan.params,
        strings: pages.strings,
      });
      return pages.send(reply, 200, page);
    } catch (err) {
      return pages.error(reply, err);
    }
  };
  app.get(logoutRoute, handleLogout);
  app.post(logoutRoute, handleLogout);
  app.post(`${logoutRoute}/confirm`, async (request, reply) => {
    const { deps, pages } = flowOf(request);
    try {
      const form = formParams(request);
      pages.requireCsrf(request, LOGOUT_FORM, form);
      const { csrf: _csrf, decision: _decision, ...echoedParams } = form;
      // Checked again: the form echoes the request, and what comes back is held to the same rules.
      const plan = await planLogout(echoedParams, deps);
      const signOut = pages.field(form, 'decision') === 'sign_out';
      if (signOut) {
        await endSession(pages.sessionId(request), deps);
        clearSessionCookie(pages, reply);
      }
      return finishLogout(pages, reply, plan, signOut);
    } catch (err) {
      return pages.error(reply, err);
    }
  });
}
