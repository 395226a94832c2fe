/** Server-rendered login, consent and error pages (no JavaScript; field names fixed by DESIGN.md). */
import { esc, layout } from './html.js';
import type { ClientRecord, InteractionRecord, UserRecord } from '../storage/types.js';
import type { OAuthError } from '../core/errors.js';

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Confirm your identity',
  profile: 'See your name and username',
  email: 'See your email address',
  offline_access: 'Stay connected when you are not using it (refresh tokens)',
};

function clientLabel(client: ClientRecord): string {
  return client.clientName ?? client.clientId;
}

/** The host users should recognise: where the browser will be sent back to. */
function redirectHost(uri: string): string {
  try {
    const url = new URL(uri);
    return url.host || `${url.protocol}${url.pathname}`;
  } catch {
    return uri;
  }
}

/** Login form: `username`, `password`, one submit button. */
export function loginPage(input: {
  action: string;
  csrf: string;
  client: ClientRecord;
  error?: string;
  username?: string;
}): string {
  return layout(
    'Sign in',
    `<h1>Sign in</h1><p class="muted">to continue to <strong>${esc(clientLabel(input.client))}</strong></p>
${input.error ? `<p class="error" role="alert">${esc(input.error)}</p>` : ''}
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<label for="username">Username</label><input id="username" type="text" name="username" autocomplete="username" required autofocus value="${esc(input.username ?? '')}">
<label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** Consent form: submit buttons `decision=approve` and `decision=deny`. */
export function consentPage(input: {
  action: string;
  csrf: string;
  client: ClientRecord;
  interaction: InteractionRecord;
  user: UserRecord;
  warnings: string[];
}): string {
  const { client, interaction } = input;
  const scopes = interaction.scope.length
    ? `<ul>${interaction.scope.map((s) => `<li>${esc(SCOPE_TEXT[s] ?? s)} <span class="muted"><code>${esc(s)}</code></span></li>`).join('')}</ul>`
    : '<p class="muted">No specific permissions.</p>';
  const resources = interaction.resource.length
    ? `<p>For use with:</p><ul>${interaction.resource.map((r) => `<li><code>${esc(r)}</code></li>`).join('')}</ul>`
    : '';
  const warnings = input.warnings.map((w) => `<p class="warn">${esc(w)}</p>`).join('');
  return layout(
    'Authorize access',
    `<h1>Allow ${esc(clientLabel(client))}?</h1>
<p class="muted">Signed in as <strong>${esc(input.user.username)}</strong>. After you decide you will be sent to <strong>${esc(redirectHost(interaction.redirectUri))}</strong>.</p>
${warnings}
<p><strong>${esc(clientLabel(client))}</strong> asks to:</p>${scopes}${resources}
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<button type="submit" name="decision" value="approve">Allow</button><button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
  );
}

/** An error that cannot be redirected to the client. Shows the code and a safe description only. */
export function errorPage(error: OAuthError): string {
  return layout(
    'Authorization error',
    `<h1>Something went wrong</h1><p class="error"><code>${esc(error.code)}</code></p><p>${esc(error.description)}</p>`,
  );
}
