/**
 * The account page of a signed-in user and its sub-pages: password change, second factors (authenticator app,
 * passkeys, recovery codes), the applications they allowed, sign-out. Script-free except the passkey page
 * (ui/passkey-script.ts).
 */
import { esc, layout, passkeyForm } from './html.js';
import { DEFAULT_STRINGS, html, isStringKey, message, scopeDescription, type Strings } from './strings.js';
import type { UserRecord } from '../model/records.js';

/** An application the user allowed, as the account page lists it. */
export interface AuthorizedApplication {
  clientId: string;
  /** What the user can tell it by: its host (authorization/account.ts says which). */
  host: string;
  /** Its self-chosen name (cleaned), when it differs from the host. */
  name?: string;
  scope: string[];
  resource: string[];
  /** When the user allowed it (the consent, else the oldest live grant). */
  grantedAt: number;
  /** When it last got a token, if known. */
  lastUsedAt?: number;
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${esc(value)}">`;

function post(action: string, csrf: string, body: string, extra = ''): string {
  return `<form method="post" action="${esc(action)}"${extra}>${hidden('csrf', csrf)}${body}</form>`;
}

const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

function applicationList(t: Strings, base: string, csrf: string, apps: AuthorizedApplication[]): string {
  if (apps.length === 0) return `<p class="muted" id="no-apps">${html(t, 'account.noApps')}</p>`;
  const item = (app: AuthorizedApplication) => {
    const label = app.name
      ? `<strong>${esc(app.host)}</strong> <span class="muted">${html(t, 'client.callsItself', { name: esc(app.name) })}</span>`
      : `<strong>${esc(app.host)}</strong>`;
    const when = [
      html(t, 'account.appGranted', { date: esc(date(app.grantedAt)) }),
      app.lastUsedAt !== undefined ? html(t, 'account.appLastUsed', { date: esc(date(app.lastUsedAt)) }) : '',
    ]
      .filter(Boolean)
      .join(', ');
    const scopes = app.scope.length
      ? `<p>${html(t, 'account.appScopes')}</p><ul>${app.scope.map((s) => `<li>${esc(scopeDescription(t, s))} <span class="muted"><code>${esc(s)}</code></span></li>`).join('')}</ul>`
      : '';
    const resources = app.resource.length
      ? `<p>${html(t, 'account.appResources')}</p><ul>${app.resource.map((r) => `<li>${t.resources[r] ? `${esc(t.resources[r])} <span class="muted"><code>${esc(r)}</code></span>` : `<code>${esc(r)}</code>`}</li>`).join('')}</ul>`
      : '';
    const revoke = post(
      `${base}/applications/revoke`,
      csrf,
      `${hidden('client_id', app.clientId)}<button type="submit" class="secondary revoke">${html(t, 'account.revoke', { client: esc(app.name ? `${app.name} (${app.host})` : app.host) })}</button>`,
    );
    return `<li data-client-id="${esc(app.clientId)}"><h3>${label}</h3><p class="muted">${when}</p>${scopes}${resources}${revoke}</li>`;
  };
  return `<ul class="apps" id="applications">${apps.map(item).join('')}</ul>`;
}

/** The account page of a signed-in user. `notice` is a notice key (anything else shows nothing). */
export function accountPage(input: {
  base: string;
  csrf: string;
  user: UserRecord;
  mfaRequired: boolean;
  notice?: string;
  error?: string;
  /** The applications the user allowed (absent: the section is left out). */
  applications?: AuthorizedApplication[];
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const { base, csrf, user } = input;
  const noticeKey = input.notice && `notice.${input.notice}`;
  const notice = noticeKey && isStringKey(noticeKey) ? t[noticeKey] : undefined;
  const passkeys = user.passkeys ?? [];
  const codesLeft = user.recoveryCodes?.hashes.length ?? 0;
  const hasFactor = user.totp !== undefined || passkeys.length > 0;
  const totp = user.totp
    ? `<p>${html(t, 'account.appSince', { date: esc(date(user.totp.createdAt)) })}</p>${post(`${base}/totp/remove`, csrf, `<button type="submit" class="secondary">${html(t, 'account.removeApp')}</button>`)}`
    : post(`${base}/totp`, csrf, `<button type="submit">${html(t, 'account.setUpApp')}</button>`);
  const passkeyList = passkeys.length
    ? `<ul>${passkeys
        .map(
          (p) =>
            `<li>${esc(p.name)} <span class="muted">${
              p.lastUsedAt
                ? html(t, 'account.passkeyAddedUsed', { date: esc(date(p.createdAt)), used: esc(date(p.lastUsedAt)) })
                : html(t, 'account.passkeyAdded', { date: esc(date(p.createdAt)) })
            }</span> ${post(
              `${base}/passkey/remove`,
              csrf,
              `${hidden('id', p.id)}<button type="submit" class="secondary">${html(t, 'account.remove')}</button>`,
              ' class="inline"',
            )}</li>`,
        )
        .join('')}</ul>`
    : `<p class="muted">${html(t, 'account.noPasskeys')}</p>`;
  const recovery = hasFactor
    ? `<p>${codesLeft === 1 ? html(t, 'account.codesLeftOne') : html(t, 'account.codesLeft', { count: String(codesLeft) })}</p>${post(`${base}/recovery-codes`, csrf, `<button type="submit" class="secondary">${html(t, 'account.newCodes')}</button>`)}`
    : `<p class="muted">${html(t, 'account.codesLater')}</p>`;
  const applications = input.applications
    ? `<section><h2>${html(t, 'account.apps')}</h2>${applicationList(t, base, csrf, input.applications)}</section>`
    : '';
  const name = user.name ? ` (${esc(user.name)})` : '';
  return layout(
    t['account.title'],
    `<h1>${html(t, 'account.title')}</h1>
<p>${html(t, 'account.signedInAs', { username: `<strong id="account-username">${esc(user.username)}</strong>${name}` })}</p>
${notice ? `<p class="notice" role="status">${esc(notice)}</p>` : ''}${input.error ? `<p class="error" role="alert">${esc(message(t, input.error))}</p>` : ''}
${input.mfaRequired && !hasFactor ? `<p class="warn">${html(t, 'account.mfaRequired')}</p>` : ''}
${applications}
<section><h2>${html(t, 'account.password')}</h2>
${post(
  `${base}/password`,
  csrf,
  `<label for="current-password">${html(t, 'account.currentPassword')}</label><input id="current-password" type="password" name="current_password" autocomplete="current-password" required>
<label for="new-password">${html(t, 'account.newPassword')}</label><input id="new-password" type="password" name="new_password" autocomplete="new-password" required>
<button type="submit">${html(t, 'account.changePassword')}</button>`,
)}</section>
<section><h2>${html(t, 'account.app')}</h2>${totp}</section>
<section><h2>${html(t, 'account.passkeys')}</h2>${passkeyList}<p><a href="${esc(`${base}/passkey`)}">${html(t, 'account.addPasskey')}</a></p></section>
<section><h2>${html(t, 'account.recoveryCodes')}</h2>${recovery}</section>
<section><h2>${html(t, 'account.signOut')}</h2>
${post(`${base}/sign-out`, csrf, `<button type="submit">${html(t, 'account.signOut')}</button>`, ' class="inline"')}
${post(`${base}/sign-out-everywhere`, csrf, `<button type="submit" class="secondary">${html(t, 'account.signOutEverywhere')}</button>`, ' class="inline"')}
</section>`,
    t,
  );
}

/** Setting up an authenticator app from the account page: the key, and the code that confirms it. */
export function accountTotpPage(input: {
  base: string;
  csrf: string;
  totp: { secret: string; uri: string };
  error?: string;
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const grouped = input.totp.secret.match(/.{1,4}/g)?.join(' ') ?? input.totp.secret;
  return layout(
    t['account.totpTitle'],
    `<h1>${html(t, 'account.totpTitle')}</h1>
${input.error ? `<p class="error" role="alert">${esc(message(t, input.error))}</p>` : ''}
<p>${html(t, 'enrol.addKey')}</p>
<p class="secret" id="totp-secret">${esc(grouped)}</p>
<p class="muted">${html(t, 'enrol.orLink')} <code class="secret" id="totp-uri">${esc(input.totp.uri)}</code></p>
${post(
  `${input.base}/totp/confirm`,
  input.csrf,
  `<label for="code">${html(t, 'enrol.code')}</label><input id="code" type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">${html(t, 'enrol.confirm')}</button>`,
)}
<p><a href="${esc(input.base)}">${html(t, 'account.back')}</a></p>`,
    t,
  );
}

/** Adding a passkey from the account page (the one account page with a script). */
export function accountPasskeyPage(input: {
  base: string;
  csrf: string;
  options: unknown;
  error?: string;
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  return layout(
    t['account.passkeyTitle'],
    `<h1>${html(t, 'account.passkeyTitle')}</h1>
${input.error ? `<p class="error" role="alert">${esc(message(t, input.error))}</p>` : ''}
<p>${html(t, 'account.passkeyExplain')}</p>
${passkeyForm({
  action: `${input.base}/passkey`,
  mode: 'create',
  options: input.options,
  fields: `${hidden('csrf', input.csrf)}
<label for="passkey-name">${html(t, 'enrol.passkeyName')}</label><input id="passkey-name" type="text" name="name" maxlength="100">`,
  label: t['enrol.createPasskey'],
})}
<p><a href="${esc(input.base)}">${html(t, 'account.back')}</a></p>`,
    t,
  );
}
