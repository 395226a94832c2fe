/**
 * The second step of a sign-in (a second factor, or the enrolment of one) and the page that shows new recovery codes
 * once. Shared by the interaction and the account page: the caller names the form actions. Every form works without
 * JavaScript except the passkey button (ui/passkey-script.ts).
 */
import { esc, layout, passkeyForm } from './html.js';
import type { UserRecord } from '../model/records.js';

/** Where the forms of the second step post. */
export interface SecondStepActions {
  /** The factor or enrolment form: fields `csrf`, `method`, then `code` or `credential` (and `name`). */
  action: string;
  /** "Sign in as someone else": ends the pending sign-in. */
  signOut: string;
  csrf: string;
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${esc(value)}">`;

function errorLine(error: string | undefined): string {
  return error ? `<p class="error" role="alert">${esc(error)}</p>` : '';
}

function signOutForm(actions: SecondStepActions): string {
  return `<section><form method="post" action="${esc(actions.signOut)}">${hidden('csrf', actions.csrf)}
<button type="submit" class="secondary">Sign in as someone else</button></form></section>`;
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
  const totp = input.totp
    ? `<form method="post" action="${esc(input.action)}">${hidden('csrf', input.csrf)}${hidden('method', 'totp')}
<label for="code">Code from your authenticator app</label><input id="code" type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" required autofocus>
<button type="submit">Verify</button>
</form>`
    : '';
  const passkey =
    input.passkeyOptions !== undefined
      ? `<section>${passkeyForm({
          action: input.action,
          mode: 'get',
          options: input.passkeyOptions,
          fields: `${hidden('csrf', input.csrf)}${hidden('method', 'passkey')}`,
          label: 'Use your passkey',
        })}</section>`
      : '';
  const recovery = input.recoveryCodes
    ? `<section><form method="post" action="${esc(input.action)}">${hidden('csrf', input.csrf)}${hidden('method', 'recovery')}
<label for="recovery">Or a recovery code</label><input id="recovery" type="text" name="code" autocomplete="off" spellcheck="false">
<button type="submit" class="secondary">Use recovery code</button>
</form></section>`
    : '';
  return layout(
    'Verify it is you',
    `<h1>Verify it is you</h1><p class="muted">Signing in as <strong>${esc(input.user.username)}</strong>.</p>
${errorLine(input.error)}${totp}${passkey}${recovery}${signOutForm(input)}`,
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
  const grouped = input.totp.secret.match(/.{1,4}/g)?.join(' ') ?? input.totp.secret;
  return layout(
    'Set up two-step verification',
    `<h1>Set up two-step verification</h1>
<p>Your account <strong>${esc(input.user.username)}</strong> needs a second way to prove it is you.</p>
${errorLine(input.error)}
<h2>Authenticator app</h2>
<p>Add this key to your authenticator app, then type the code it shows.</p>
<p class="secret" id="totp-secret">${esc(grouped)}</p>
<p class="muted">Or open this link on the device with the app: <code class="secret" id="totp-uri">${esc(input.totp.uri)}</code></p>
<form method="post" action="${esc(input.action)}">${hidden('csrf', input.csrf)}${hidden('method', 'totp')}
<label for="code">Code from the app</label><input id="code" type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Confirm</button>
</form>
<section><h2>Passkey</h2>
${passkeyForm({
  action: input.action,
  mode: 'create',
  options: input.passkeyOptions,
  fields: `${hidden('csrf', input.csrf)}${hidden('method', 'passkey')}
<label for="passkey-name">Name for this passkey (optional)</label><input id="passkey-name" type="text" name="name" maxlength="100">`,
  label: 'Create a passkey',
})}</section>
${signOutForm(input)}`,
  );
}

/** New recovery codes, shown once: each signs in once when the other factors are lost. */
export function recoveryCodesPage(input: { codes: string[]; continueUrl: string; continueLabel: string }): string {
  return layout(
    'Your recovery codes',
    `<h1>Save your recovery codes</h1>
<p>Each code signs you in once if you lose your authenticator app or passkey. Keep them somewhere safe: they are not shown again.</p>
<ol class="codes" id="recovery-codes">${input.codes.map((c) => `<li><code>${esc(c)}</code></li>`).join('')}</ol>
<form method="get" action="${esc(input.continueUrl)}"><button type="submit">${esc(input.continueLabel)}</button></form>`,
  );
}
