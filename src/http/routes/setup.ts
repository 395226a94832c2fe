/**
 * The first-run setup page (`/setup?token=...`, authorization/setup.ts): the first administrator's username and
 * password, from the one-time link the server printed. The deployment's only: a tenant's `/setup` is not found.
 */
import type { FastifyInstance } from 'fastify';
import { completeSetup, setupDeclaration, setupLinkLive } from '../../authorization/setup.js';
import { accountDeclaration } from '../../authorization/account.js';
import { setupDeadPage, setupDonePage, setupPage } from '../../ui/setup-pages.js';
import { browserPages } from '../browser-pages.js';
import { csrfToken } from '../cookies.js';
import { formParams, perScope, queryParams, type RouteContext, type RoutePlugin } from './context.js';

export const setupRoutes: RoutePlugin = {
  endpoints: [setupDeclaration],
  routes: setupPages,
};

/** The id the setup form's CSRF token is bound to (with the browser's nonce). */
const CSRF_ID = 'setup';

async function setupPages(app: FastifyInstance, { issuerPath }: RouteContext): Promise<void> {
  const setupOf = perScope(({ deps, issuerPath: ownPath }) => ({
    deps,
    pages: browserPages(deps, ownPath),
    action: ownPath + setupDeclaration.path,
    accountUrl: ownPath + accountDeclaration.path,
  }));
  const route = issuerPath + setupDeclaration.path;

  app.get(route, async (request, reply) => {
    const { deps, pages, action } = setupOf(request);
    try {
      const tokens = queryParams(request).token;
      const token = tokens?.length === 1 ? tokens[0] : undefined;
      if (deps.tenant !== undefined || !(await setupLinkLive(token, deps))) {
        return pages.send(reply, 404, setupDeadPage(pages.strings));
      }
      const csrf = csrfToken(deps.cookieKey, pages.nonce(request, reply), CSRF_ID);
      const page = setupPage({
        action,
        csrf,
        token: token!,
        minPasswordLength: deps.passwordPolicy.minLength,
        strings: pages.strings,
      });
      return pages.send(reply, 200, page);
    } catch (err) {
      return pages.error(reply, err);
    }
  });

  app.post(route, async (request, reply) => {
    const { deps, pages, action, accountUrl } = setupOf(request);
    try {
      if (deps.tenant !== undefined) return pages.send(reply, 404, setupDeadPage(pages.strings));
      const form = formParams(request);
      pages.requireCsrf(request, CSRF_ID, form);
      const token = pages.field(form, 'token');
      const username = pages.field(form, 'username');
      const result = await completeSetup({ token, username, password: pages.field(form, 'password') }, deps);
      const t = pages.strings;
      if (result.ok) {
        return pages.send(reply, 200, setupDonePage({ username: result.username, accountUrl, strings: t }));
      }
      if (result.dead) return pages.send(reply, 404, setupDeadPage(t));
      // Plain text: the page escapes its error.
      const error =
        result.error === 'username'
          ? t['setup.badUsername']
          : t['setup.badPassword'].replace('{problem}', result.detail ?? '');
      const csrf = csrfToken(deps.cookieKey, pages.nonce(request, reply), CSRF_ID);
      const page = setupPage({
        action,
        csrf,
        token: token!,
        username,
        error,
        minPasswordLength: deps.passwordPolicy.minLength,
        strings: t,
      });
      return pages.send(reply, 400, page);
    } catch (err) {
      return pages.error(reply, err);
    }
  });
}
