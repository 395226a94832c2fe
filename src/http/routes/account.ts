/**
 * The account page (`/account`): the signed-in user's password, second factors and sessions; without a session, the
 * sign-in (password, then a second factor or its enrolment). CSRF-protected forms; PRG redirects with a notice key.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  accountDeclaration,
  accountPasskeyOptions,
  accountSession,
  accountSignInPlace,
  accountTotpEnrolment,
  addAccountPasskey,
  changePassword,
  confirmAccountTotp,
  regenerateRecoveryCodes,
  removeAccountFactor,
  signOutEverywhere,
  viewAccount,
  listAccountApplications,
  revokeAccountApplication,
  type AccountResult,
  type AccountSession,
} from '../../authorization/account.js';
import {
  cancelSignIn,
  enrolDuringSignIn,
  signInWithPassword,
  signInWithSecondFactor,
  type SignInOutcome,
  type SignInPrompt,
} from '../../authorization/sign-in.js';
import { awaitingFirstUser } from '../../authorization/setup.js';
import { accountPage, accountPasskeyPage, accountTotpPage } from '../../ui/account-pages.js';
import { PAGE_HEADERS, PASSKEY_PAGE_HEADERS } from '../../ui/html.js';
import { applicationIdentity, loginPage } from '../../ui/pages.js';
import { enrolPage, recoveryCodesPage, secondFactorPage } from '../../ui/sign-in-pages.js';
import { browserPages } from '../browser-pages.js';
import { browserBinding, csrfToken } from '../cookies.js';
import { auditContextOf } from '../request-id.js';
import { formParams, perScope, queryParams, type RouteContext, type RoutePlugin } from './context.js';

export const accountRoutes: RoutePlugin = {
  endpoints: [accountDeclaration],
  routes: accountPages,
};

/** The id the account forms' CSRF tokens are bound to (with the browser's nonce). */
const CSRF_ID = 'account';

type Field = (name: string) => string | undefined;

async function accountPages(app: FastifyInstance, { issuerPath }: RouteContext): Promise<void> {
  /** What every handler derives from its issuer: its cookies, the page's URL, how each outcome is sent. */
  const accountOf = perScope(({ deps, issuerPath: ownPath }) => {
    const { config } = deps;
    const pages = browserPages(deps, ownPath);
    const base = ownPath + accountDeclaration.path;
    const csrfOf = (request: FastifyRequest, reply: FastifyReply) =>
      csrfToken(deps.cookieKey, pages.nonce(request, reply), CSRF_ID);

    const { strings } = pages;
    const sendPrompt = async (request: FastifyRequest, reply: FastifyReply, prompt: SignInPrompt, status = 200) => {
      const csrf = csrfOf(request, reply);
      if (prompt.step === 'password') {
        const firstRun = await awaitingFirstUser(deps);
        return pages.send(reply, status, loginPage({ action: `${base}/login`, csrf, ...prompt, firstRun, strings }));
      }
      const actions = { signOut: `${base}/cancel`, csrf, strings };
      if (prompt.step === 'enrol') {
        return pages.send(
          reply,
          status,
          enrolPage({ ...prompt, ...actions, action: `${base}/enrol` }),
          PASSKEY_PAGE_HEADERS,
        );
      }
      const page = secondFactorPage({ ...prompt, ...actions, action: `${base}/factor` });
      return pages.send(reply, status, page, prompt.passkeyOptions ? PASSKEY_PAGE_HEADERS : PAGE_HEADERS);
    };

    const sendAccount = async (
      request: FastifyRequest,
      reply: FastifyReply,
      extra: { notice?: string; error?: string; status?: number } = {},
    ) => {
      const nonce = pages.nonce(request, reply);
      const view = await viewAccount(pages.sessionId(request), browserBinding(nonce), deps);
      if (view.stage === 'sign_in') return sendPrompt(request, reply, view.prompt);
      const applications = (await listAccountApplications(view, deps)).map((app) => ({
        ...app,
        ...applicationIdentity(app.client, app.clientId),
      }));
      const page = accountPage({ base, csrf: csrfOf(request, reply), ...view, ...extra, applications, strings });
      return pages.send(reply, extra.status ?? 200, page);
    };

    /** The result of an account action: new recovery codes shown once, a notice after a redirect, or the error. */
    const sendResult = (request: FastifyRequest, reply: FastifyReply, result: AccountResult) => {
      if (!result.ok) {
        if (result.retryAfterSeconds !== undefined) reply.header('retry-after', String(result.retryAfterSeconds));
        return sendAccount(request, reply, { error: result.error, status: result.status });
      }
      if (result.recoveryCodes) {
        const page = recoveryCodesPage({
          codes: result.recoveryCodes,
          continueUrl: base,
          continueLabel: strings['recovery.backToAccount'],
          strings,
        });
        return pages.send(reply, 200, page);
      }
      return pages.redirect(reply, `${base}?notice=${result.notice}`);
    };

    const sendSignIn = (request: FastifyRequest, reply: FastifyReply, outcome: SignInOutcome) => {
      if (outcome.kind === 'prompt') {
        if (outcome.retryAfterSeconds !== undefined) reply.header('retry-after', String(outcome.retryAfterSeconds));
        return sendPrompt(request, reply, outcome.prompt, outcome.status);
      }
      if (outcome.kind === 'signed_in') {
        reply.header('set-cookie', pages.sessionCookie(outcome.session.id, config.session.ttl));
        if (outcome.recoveryCodes) {
          const page = recoveryCodesPage({
            codes: outcome.recoveryCodes,
            continueUrl: base,
            continueLabel: strings['recovery.continue'],
            strings,
          });
          return pages.send(reply, 200, page);
        }
      }
      return pages.redirect(reply, base);
    };
    const sendTotpPage = async (
      signedIn: AccountSession,
      request: FastifyRequest,
      reply: FastifyReply,
      error?: string,
    ) => {
      const totp = await accountTotpEnrolment(signedIn, deps);
      const page = accountTotpPage({ base, csrf: csrfOf(request, reply), totp, error, strings });
      return pages.send(reply, error ? 400 : 200, page);
    };
    const sendPasskeyPage = async (
      signedIn: AccountSession,
      request: FastifyRequest,
      reply: FastifyReply,
      binding: string,
      error?: string,
    ) => {
      const options = await accountPasskeyOptions(signedIn, binding, deps);
      const page = accountPasskeyPage({ base, csrf: csrfOf(request, reply), options, error, strings });
      return pages.send(reply, error ? 400 : 200, page, PASSKEY_PAGE_HEADERS);
    };
    return { deps, pages, base, sendAccount, sendResult, sendSignIn, sendTotpPage, sendPasskeyPage };
  });
  const route = issuerPath + accountDeclaration.path;

  app.get(route, async (request, reply) => {
    const { pages, sendAccount } = accountOf(request);
    try {
      const notice = queryParams(request).notice;
      return await sendAccount(request, reply, notice?.length === 1 ? { notice: notice[0] } : {});
    } catch (err) {
      return pages.error(reply, err);
    }
  });

  type Account = ReturnType<typeof accountOf>;
  /** A POST form of the account page: CSRF checked, then `handle` with the form's fields and the browser binding. */
  const formRoute = (
    path: string,
    handle: (
      account: Account,
      request: FastifyRequest,
      reply: FastifyReply,
      field: Field,
      binding: string,
    ) => Promise<unknown>,
  ) =>
    app.post(`${route}/${path}`, async (request, reply) => {
      const account = accountOf(request);
      const { pages } = account;
      try {
        const form = formParams(request);
        pages.requireCsrf(request, CSRF_ID, form);
        // The CSRF check passed, so the browser has its nonce cookie and thus a binding.
        return await handle(account, request, reply, (name) => pages.field(form, name), pages.binding(request)!);
      } catch (err) {
        return pages.error(reply, err);
      }
    });

  /** A form that needs the signed-in user; without a session it goes back to the sign-in. */
  const signedInRoute = (
    path: string,
    handle: (
      signedIn: AccountSession,
      account: Account,
      request: FastifyRequest,
      reply: FastifyReply,
      field: Field,
      binding: string,
    ) => Promise<unknown>,
  ) =>
    formRoute(path, async (account, request, reply, field, binding) => {
      const signedIn = await accountSession(account.pages.sessionId(request), account.deps);
      if (!signedIn) return account.pages.redirect(reply, account.base);
      return handle(signedIn, account, request, reply, field, binding);
    });

  // ---- signing in ----
  formRoute('login', async ({ deps, sendSignIn }, request, reply, field, binding) => {
    const username = field('username') ?? '';
    const password = field('password') ?? '';
    const place = accountSignInPlace(binding, auditContextOf(request));
    return sendSignIn(request, reply, await signInWithPassword(place, username, password, request.ip, deps));
  });
  formRoute('factor', async ({ deps, sendSignIn }, request, reply, field, binding) => {
    const form = { method: field('method'), code: field('code'), credential: field('credential') };
    const place = accountSignInPlace(binding, auditContextOf(request));
    return sendSignIn(request, reply, await signInWithSecondFactor(place, form, request.ip, deps));
  });
  formRoute('enrol', async ({ deps, sendSignIn }, request, reply, field, binding) => {
    const form = { method: field('method'), code: field('code'), credential: field('credential'), name: field('name') };
    return sendSignIn(
      request,
      reply,
      await enrolDuringSignIn(accountSignInPlace(binding, auditContextOf(request)), form, deps),
    );
  });
  formRoute('cancel', async ({ deps, pages, base }, _request, reply, _field, binding) => {
    await cancelSignIn(accountSignInPlace(binding), deps);
    return pages.redirect(reply, base);
  });

  // ---- the signed-in user's settings ----
  signedInRoute('password', async (signedIn, { deps, sendResult }, request, reply, field) => {
    const current = field('current_password') ?? '';
    const next = field('new_password') ?? '';
    return sendResult(request, reply, await changePassword(signedIn, current, next, request.ip, deps));
  });

  signedInRoute('totp', (signedIn, { sendTotpPage }, request, reply) => sendTotpPage(signedIn, request, reply));
  signedInRoute('totp/confirm', async (signedIn, { deps, sendResult, sendTotpPage }, request, reply, field) => {
    const result = await confirmAccountTotp(signedIn, field('code') ?? '', deps);
    return result.ok ? sendResult(request, reply, result) : sendTotpPage(signedIn, request, reply, result.error);
  });
  signedInRoute('totp/remove', async (signedIn, { deps, sendResult }, request, reply) =>
    sendResult(request, reply, await removeAccountFactor(signedIn, { kind: 'totp' }, deps)),
  );

  app.get(`${route}/passkey`, async (request, reply) => {
    const { deps, pages, base, sendPasskeyPage } = accountOf(request);
    try {
      const signedIn = await accountSession(pages.sessionId(request), deps);
      if (!signedIn) return pages.redirect(reply, base);
      return await sendPasskeyPage(signedIn, request, reply, browserBinding(pages.nonce(request, reply)));
    } catch (err) {
      return pages.error(reply, err);
    }
  });
  signedInRoute('passkey', async (signedIn, { deps, sendResult, sendPasskeyPage }, request, reply, field, binding) => {
    const result = await addAccountPasskey(signedIn, field('credential'), field('name'), binding, deps);
    return result.ok
      ? sendResult(request, reply, result)
      : sendPasskeyPage(signedIn, request, reply, binding, result.error);
  });
  signedInRoute('passkey/remove', async (signedIn, { deps, sendResult }, request, reply, field) =>
    sendResult(request, reply, await removeAccountFactor(signedIn, { kind: 'passkey', id: field('id') ?? '' }, deps)),
  );

  signedInRoute('recovery-codes', async (signedIn, { deps, sendResult }, request, reply) =>
    sendResult(request, reply, await regenerateRecoveryCodes(signedIn, deps)),
  );

  // ---- the applications the user allowed ----
  signedInRoute('applications/revoke', async (signedIn, { deps, sendResult }, request, reply, field) =>
    sendResult(request, reply, await revokeAccountApplication(signedIn, field('client_id'), deps)),
  );

  // ---- signing out ----
  formRoute('sign-out', async ({ deps, pages, base }, request, reply) => {
    const id = pages.sessionId(request);
    if (id) await deps.storage.deleteSession(id);
    reply.header('set-cookie', pages.sessionCookie('', 0));
    return pages.redirect(reply, base);
  });
  signedInRoute('sign-out-everywhere', async (signedIn, { deps, pages, base }, _request, reply) => {
    await signOutEverywhere(signedIn, deps);
    reply.header('set-cookie', pages.sessionCookie('', 0));
    return pages.redirect(reply, base);
  });
}
