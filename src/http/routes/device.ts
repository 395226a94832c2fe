/**
 * The device authorization grant (RFC 8628): the device authorization endpoint (JSON, a back channel like /par) and
 * the user-code page, which hands the browser to the interaction (sign-in and consent) and, once the user decided,
 * shows the "return to your device" page.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  deviceAuthorizationDeclaration,
  devicePageDeclaration,
  enterUserCode,
  requestDeviceAuthorization,
} from '../../authorization/device.js';
import { interactionDeclaration } from '../../authorization/interaction.js';
import { deviceCodePage, deviceDonePage } from '../../ui/device-pages.js';
import { limitRequest } from '../../core/rate-limit.js';
import { auditContextOf } from '../request-id.js';
import { browserPages } from '../browser-pages.js';
import { csrfToken } from '../cookies.js';
import { formParams, json, perScope, queryParams, scopeOf, type RouteContext, type RoutePlugin } from './context.js';

export const deviceRoutes: RoutePlugin = {
  endpoints: [deviceAuthorizationDeclaration, devicePageDeclaration],
  routes: deviceFlow,
};

/** The CSRF context of the user-code form (interaction forms use their interaction id). */
const DEVICE_FORM = 'device';

async function deviceFlow(app: FastifyInstance, { issuerPath }: RouteContext): Promise<void> {
  const pagesOf = perScope(({ deps, issuerPath: ownPath }) => ({
    deps,
    pages: browserPages(deps, ownPath),
    action: ownPath + devicePageDeclaration.path,
    interactionPath: (id: string) => `${ownPath + interactionDeclaration.path}/${encodeURIComponent(id)}`,
  }));
  const offered = (request: FastifyRequest) => scopeOf(request).deps.config.deviceAuthorization.enabled;

  app.post(issuerPath + deviceAuthorizationDeclaration.path, async (request, reply) => {
    if (!offered(request)) return reply.callNotFound();
    const { deps } = scopeOf(request);
    const context = auditContextOf(request);
    // Per address (config rateLimits.deviceAuthorization.perIp) before any work; per client after authentication.
    await limitRequest(deps, 'deviceAuthorization', 'ip', request.ip, context);
    const response = await requestDeviceAuthorization(
      formParams(request),
      request.headers.authorization,
      deps,
      context,
    );
    return json(reply, 200, response);
  });

  /** The form, with this browser's CSRF token (the nonce cookie is set now when it has none). */
  const sendForm = (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    form: { userCode?: string; error?: string },
  ) => {
    const { deps, pages, action } = pagesOf(request);
    const csrf = csrfToken(deps.cookieKey, pages.nonce(request, reply), DEVICE_FORM);
    return pages.send(reply, status, deviceCodePage({ action, csrf, ...form, strings: pages.strings }));
  };

  const page = issuerPath + devicePageDeclaration.path;
  app.get(page, async (request, reply) => {
    if (!offered(request)) return reply.callNotFound();
    const { pages } = pagesOf(request);
    try {
      // verification_uri_complete carries the code: the form is prefilled, the user still confirms it.
      const prefill = pages.field(queryParams(request), 'user_code');
      return sendForm(request, reply, 200, { userCode: prefill?.slice(0, 20) });
    } catch (err) {
      return pages.error(reply, err);
    }
  });

  app.post(page, async (request, reply) => {
    if (!offered(request)) return reply.callNotFound();
    const { deps, pages, interactionPath } = pagesOf(request);
    try {
      const form = formParams(request);
      pages.requireCsrf(request, DEVICE_FORM, form);
      // The CSRF check passed, so the browser has its nonce cookie and with it a binding.
      const binding = pages.binding(request)!;
      const outcome = await enterUserCode(
        pages.field(form, 'user_code'),
        binding,
        request.ip,
        deps,
        auditContextOf(request),
      );
      if (outcome.kind === 'interaction') return pages.redirect(reply, interactionPath(outcome.interactionId));
      if (outcome.retryAfterSeconds !== undefined) reply.header('retry-after', String(outcome.retryAfterSeconds));
      return sendForm(request, reply, outcome.status, { userCode: outcome.userCode, error: outcome.error });
    } catch (err) {
      return pages.error(reply, err);
    }
  });

  app.get(`${page}/done`, async (request, reply) => {
    if (!offered(request)) return reply.callNotFound();
    const { pages } = pagesOf(request);
    try {
      const result = pages.field(queryParams(request), 'result');
      const shown = result === 'approved' || result === 'denied' ? result : 'failed';
      return pages.send(reply, 200, deviceDonePage(shown, pages.strings));
    } catch (err) {
      return pages.error(reply, err);
    }
  });
}
