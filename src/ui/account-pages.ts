/**
 * The account page of a signed-in user and its sub-pages: password change, second factors (authenticator app,
 * passkeys, recovery codes), sign-out. Script-free except the passkey page (ui/passkey-script.ts).
 */
import { esc, layout, passkeyForm } from './html.js';
import type { UserRecord } from '../model/records.js';

/** What the notices of the account page say (keys from authorization/account.ts AccountNotice). */
const NOTICES: Record<string, string> = {
  'password-changed': 'Your password was changed. Every other session was signed out.',
  'totp-added': 'Your authenticator app is set up.',
  'totp-removed': 'Your authenticator app was removed.',
  'passkey-added': 'Your passkey was added.',
  'passkey-removed': 'The passkey was removed.',
  'recovery-codes': 'New recovery codes were made; the old ones no longer work.',
};

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${esc(value)}">`;

function post(action: string, csrf: string, body: string, extra = ''): string {
  return `<form method="post" action="${esc(action)}"${extra}>${hidden('csrf', csrf)}${body}</form>`;
}

const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The account page of a signed-in user. `notice` is a key of NOTICES (anything else shows nothing). */
export function accountPage(input: {
  base: string;
  csrf: string;
  user: UserRecord;
  mfaRequired: boolean;
  notice?: string;
  error?: string;
}): string {
  const { base, csrf, user } = input;
  const notice = input.notice && NOTICES[input.notice];
  const passkeys = user.passkeys ?? [];
  const codesLeft = user.recoveryCodes?.hashes.length ?? 0;
  const hasFactor = user.totp !== undefined || passkeys.length > 0;
  const totp = user.totp
    ? `<p>Set up on ${esc(date(user.totp.createdAt))}.</p>${post(`${base}/totp/remove`, csrf, '<button type="submit" class="secondary">Remove authenticator app</button>')}`
    : post(`${base}/totp`, csrf, '<button type="submit">Set up an authenticator app</button>');
  const passkeyList = passkeys.length
    ? `<ul>${passkeys
        .map(
          (p) =>
            `<li>${esc(p.name)} <span class="muted">(added ${esc(date(p.createdAt))}${p.lastUsedAt ? `, last used ${esc(date(p.lastUsedAt))}` : ''})</span> ${post(
              `${base}/passkey/remove`,
              csrf,
              `${hidden('id', p.id)}<button type="submit" class="secondary">Remove</button>`,
              ' class="inline"',
            )}</li>`,
        )
        .join('')}</ul>`
    : '<p class="muted">No passkeys yet.</p>';
  const recovery = hasFactor
    ? `<p>${codesLeft} unused recovery code${codesLeft === 1 ? '' : 's'}.</p>${post(`${base}/recovery-codes`, csrf, '<button type="submit" class="secondary">Make new recovery codes</button>')}`
    : '<p class="muted">Recovery codes are made when you set up a second factor.</p>';
  return layout(
    'Your account',
    `<h1>Your account</h1>
<p>Signed in as <strong id="account-username">${esc(user.username)}</strong>${user.name ? ` (${esc(user.name)})` : ''}.</p>
${notice ? `<p class="notice" role="status">${esc(notice)}</p>` : ''}${input.error ? `<p class="error" role="alert">${esc(input.error)}</p>` : ''}
${input.mfaRequired && !hasFactor ? '<p class="warn">Your account must have a second factor: set one up below.</p>' : ''}
<section><h2>Password</h2>
${post(
  `${base}/password`,
  csrf,
  `<label for="current-password">Current password</label><input id="current-password" type="password" name="current_password" autocomplete="current-password" required>
<label for="new-password">New password</label><input id="new-password" type="password" name="new_password" autocomplete="new-password" required>
<button type="submit">Change password</button>`,
)}</section>
<section><h2>Authenticator app</h2>${totp}</section>
<section><h2>Passkeys</h2>${passkeyList}<p><a href="${esc(`${base}/passkey`)}">Add a passkey</a></p></section>
<section><h2>Recovery codes</h2>${recovery}</section>
<section><h2>Sign out</h2>
${post(`${base}/sign-out`, csrf, '<button type="submit">Sign out</button>', ' class="inline"')}
${post(`${base}/sign-out-everywhere`, csrf, '<button type="submit" class="secondary">Sign out everywhere</button>', ' class="inline"')}
</section>`,
  );
}

/** Setting up an authenticator app from the account page: the key, and the code that confirms it. */
export function accountTotpPage(input: {
  base: string;
  csrf: string;
  totp: { secret: string; uri: string };
  error?: string;
}): string {
  const grouped = input.totp.secret.match(/.{1,4}/g)?.join(' ') ?? input.totp.secret;
  return layout(
    'Set up an authenticator app',
    `<h1>Set up an authenticator app</h1>
${input.error ? `<p class="error" role="alert">${esc(input.error)}</p>` : ''}
<p>Add this key to your authenticator app, then type the code it shows.</p>
<p class="secret" id="totp-secret">${esc(grouped)}</p>
<p class="muted">Or open this link on the device with the app: <code class="secret" id="totp-uri">${esc(input.totp.uri)}</code></p>
${post(
  `${input.base}/totp/confirm`,
  input.csrf,
  `<label for="code">Code from the app</label><input id="code" type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">Confirm</button>`,
)}
<p><a href="${esc(input.base)}">Back to your account</a></p>`,
  );
}

/** Adding a passkey from the account page (the one account page with a script). */
export function accountPasskeyPage(input: { base: string; csrf: string; options: unknown; error?: string }): string {
  return layout(
    'Add a passkey',
    `<h1>Add a passkey</h1>
${input.error ? `<p class="error" role="alert">${esc(input.error)}</p>` : ''}
<p>Your browser or device asks you to create the passkey.</p>
${passkeyForm({
  action: `${input.base}/passkey`,
  mode: 'create',
  options: input.options,
  fields: `${hidden('csrf', input.csrf)}
<label for="passkey-name">Name for this passkey (optional)</label><input id="passkey-name" type="text" name="name" maxlength="100">`,
  label: 'Create a passkey',
})}
<p><a href="${esc(input.base)}">Back to your account</a></p>`,
  );
}
