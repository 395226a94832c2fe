/** The first-run setup page (authorization/setup.ts): the first administrator's username and password. */
import { esc, layout } from './html.js';
import { DEFAULT_STRINGS, html, type Strings } from './strings.js';

/** The setup form (`token` carried in a hidden field), with the error of the last try. */
export function setupPage(input: {
  action: string;
  csrf: string;
  token: string;
  username?: string;
  error?: string;
  minPasswordLength: number;
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const error = input.error ? `<p id="form-error" class="error" role="alert">${esc(input.error)}</p>` : '';
  const describedBy = input.error ? ' aria-describedby="form-error"' : '';
  return layout(
    t['setup.title'],
    `<h1>${html(t, 'setup.heading')}</h1>
<p>${html(t, 'setup.explain')}</p>
${error}
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<input type="hidden" name="token" value="${esc(input.token)}">
<label for="username">${html(t, 'setup.username')}</label><input id="username" type="text" name="username" autocomplete="username" required autofocus maxlength="100"${describedBy} value="${esc(input.username ?? '')}">
<label for="password">${html(t, 'setup.password')}</label><input id="password" type="password" name="password" autocomplete="new-password" required aria-describedby="password-hint${input.error ? ' form-error' : ''}">
<p class="muted" id="password-hint">${html(t, 'setup.passwordHint', { min: String(input.minPasswordLength) })}</p>
<button type="submit">${html(t, 'setup.submit')}</button>
</form>`,
    t,
  );
}

/** The setup link is expired, used, or not needed any more. */
export function setupDeadPage(t: Strings = DEFAULT_STRINGS): string {
  return layout(
    t['setup.deadTitle'],
    `<h1>${html(t, 'setup.deadTitle')}</h1><p class="error" role="alert">${html(t, 'setup.dead')}</p>`,
    t,
  );
}

/** The administrator exists: where to sign in. */
export function setupDonePage(input: { username: string; accountUrl: string; strings?: Strings }): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  return layout(
    t['setup.doneTitle'],
    `<h1>${html(t, 'setup.doneTitle')}</h1><p role="status">${html(t, 'setup.done', { username: `<strong>${esc(input.username)}</strong>` })}</p>
<p><a href="${esc(input.accountUrl)}" id="to-account">${html(t, 'setup.toAccount')}</a></p>`,
    t,
  );
}
