/**
 * The second step of a sign-in (a second factor, or the enrolment of one) and the page that shows new recovery codes
 * once. Shared by the interaction and the account page: the caller names the form actions. Every form works without
 * JavaScript except the passkey button (ui/passkey-script.ts).
 */
import { esc, layout, passkeyForm } from './html.js';
import { DEFAULT_STRINGS, html, message, type Strings } from './strings.js';
import type { UserRecord } from '../model/records.js';

/** Where the forms of the second step post. */
export interface SecondStepActions {
  /** The factor or enrolment form: fields `csrf`, `method`, then `code` or `credential` (and `name`). */
  action: string;
  /** "Sign in as someone else": ends the pending sign-in. */
  signOut: string;
  csrf: string;
  strings?: Strings;
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${esc(value)}">`;

function errorLine(t: Strings, error: string | undefined): string {
  return error ? `<p class="error" role="alert">${esc(message(t, error))}</p>` : '';
}

function signOutForm(t: Strings, actions: SecondStepActions): string {
  return `<section><form method="post" action="${esc(actions.signOut)}">${hidden('csrf', actions.csrf)}
<button type="submit" class="secondary">${html(t, 'factor.switchUser')}</button></form></section>`;
}

/** Asks for one of the user's factors: a TOTP code, a passkey, or a recovery code. */
export function secondFactorPage(
  input: SecondStepActions & {
    user: UserRecord;
    totp: boolean;
    recoveryCodes: boolean;
    passkeyOptions?: unknown;
    error?: string;
  },
): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const totp = input.totp
    ? `<form method="post" action="${esc(input.action)}">${hidden('csrf', input.csrf)}${hidden('method', 'totp')}
<label for="code">${html(t, 'factor.totpCode')}</label><input id="code" type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" required autofocus>
<button type="submit">${html(t, 'factor.verify')}</button>
</form>`
    : '';
  const passkey =
    input.passkeyOptions !== undefined
      ? `<section>${passkeyForm({
          action: input.action,
          mode: 'get',
          options: input.passkeyOptions,
          fields: `${hidden('csrf', input.csrf)}${hidden('method', 'passkey')}`,
          label: t['factor.usePasskey'],
        })}</section>`
      : '';
  const recovery = input.recoveryCodes
    ? `<section><form method="post" action="${esc(input.action)}">${hidden('csrf', input.csrf)}${hidden('method', 'recovery')}
<label for="recovery">${html(t, 'factor.recoveryCode')}</label><input id="recovery" type="text" name="code" autocomplete="off" spellcheck="false">
<button type="submit" class="secondary">${html(t, 'factor.useRecoveryCode')}</button>
</form></section>`
    : '';
  return layout(
    t['factor.title'],
    `<h1>${html(t, 'factor.title')}</h1><p class="muted">${html(t, 'factor.signingInAs', { username: `<strong>${esc(input.user.username)}</strong>` })}</p>
${errorLine(t, input.error)}${totp}${passkey}${recovery}${signOutForm(t, input)}`,
    t,
  );
}

/** Asks a user who must have a second factor to set one up: an authenticator app (TOTP) or a passkey. */
export function enrolPage(
  input: SecondStepActions & {
    user: UserRecord;
    totp: { secret: string; uri: string };
    passkeyOptions: unknown;
    error?: string;
  },
): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const grouped = input.totp.secret.match(/.{1,4}/g)?.join(' ') ?? input.totp.secret;
  return layout(
    t['enrol.title'],
    `<h1>${html(t, 'enrol.title')}</h1>
<p>${html(t, 'enrol.needs', { username: `<strong>${esc(input.user.username)}</strong>` })}</p>
${errorLine(t, input.error)}
<h2>${html(t, 'enrol.app')}</h2>
<p>${html(t, 'enrol.addKey')}</p>
<p class="secret" id="totp-secret">${esc(grouped)}</p>
<p class="muted">${html(t, 'enrol.orLink')} <code class="secret" id="totp-uri">${esc(input.totp.uri)}</code></p>
<form method="post" action="${esc(input.action)}">${hidden('csrf', input.csrf)}${hidden('method', 'totp')}
<label for="code">${html(t, 'enrol.code')}</label><input id="code" type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">${html(t, 'enrol.confirm')}</button>
</form>
<section><h2>${html(t, 'enrol.passkey')}</h2>
${passkeyForm({
  action: input.action,
  mode: 'create',
  options: input.passkeyOptions,
  fields: `${hidden('csrf', input.csrf)}${hidden('method', 'passkey')}
<label for="passkey-name">${html(t, 'enrol.passkeyName')}</label><input id="passkey-name" type="text" name="name" maxlength="100">`,
  label: t['enrol.createPasskey'],
})}</section>
${signOutForm(t, input)}`,
    t,
  );
}

/** New recovery codes, shown once: each signs in once when the other factors are lost. */
export function recoveryCodesPage(input: {
  codes: string[];
  continueUrl: string;
  continueLabel: string;
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  return layout(
    t['recovery.title'],
    `<h1>${html(t, 'recovery.heading')}</h1>
<p>${html(t, 'recovery.explain')}</p>
<ol class="codes" id="recovery-codes">${input.codes.map((c) => `<li><code>${esc(c)}</code></li>`).join('')}</ol>
<form method="get" action="${esc(input.continueUrl)}"><button type="submit">${esc(input.continueLabel)}</button></form>`,
    t,
  );
}
