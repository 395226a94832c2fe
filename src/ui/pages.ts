/** Server-rendered login, consent and error pages (no JavaScript; field names fixed by DESIGN.md). */
import { esc, layout } from './html.js';
import type { ClientRecord, InteractionRecord, UserRecord } from '../model/records.js';
import type { OAuthError } from '../model/errors.js';

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Confirm your identity',
  profile: 'See your name and username',
  email: 'See your email address',
  offline_access: 'Stay connected when you are not using it (refresh tokens)',
};

/**
 * Text a client chose, made safe to show: without control and format characters (Unicode Cc, Cf: bidi overrides and
 * isolates U+202A–U+202E, U+2066–U+2069, marks U+200E/F, zero-width characters, BOM) or line separators, which can
 * reorder or hide what the user reads, and with runs of white space collapsed.
 */
export function displayText(value: string): string {
  return value
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '')
    .replace(/\s+/gu, ' ')
    .trim();
}

/** The name the client gave itself (cleaned), else its id. Never the identity on its own: see clientHost. */
function clientLabel(client: ClientRecord): string {
  return (client.clientName && displayText(client.clientName)) || client.clientId;
}

/**
 * What the user can check the client by, since anyone can register any name: a metadata-document client's URL host,
 * else the host of the redirect URI the browser goes back to (a private-use scheme for native apps). Hosts come from
 * WHATWG URL parsing, so an internationalised host shows in its punycode (xn--) form.
 */
export function clientHost(client: ClientRecord, redirectUri: string): string {
  try {
    if (client.source === 'metadata_document') return new URL(client.clientId).hostname;
    const url = new URL(redirectUri);
    return url.hostname || url.protocol.slice(0, -1);
  } catch {
    return displayText(redirectUri);
  }
}

/** Host first, then the self-chosen name in quotes (omitted when it is just the host or the id again). */
function clientIdentity(client: ClientRecord, redirectUri: string): string {
  const host = clientHost(client, redirectUri);
  const label = clientLabel(client);
  const name =
    label === host || label === client.clientId
      ? ''
      : ` <span class="muted">(calls itself &ldquo;${esc(label)}&rdquo;)</span>`;
  return `<strong>${esc(host)}</strong>${name}`;
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

/**
 * Login form: `username`, `password`, one submit button. Without a client it is the account page's sign-in. With
 * upstream identity providers, one form each below it (hidden `upstream` = its id, button "Sign in with <name>");
 * `passwords: false` leaves the password form out (nobody signs in with one).
 */
export function loginPage(input: {
  action: string;
  csrf: string;
  /** The client asking, with the redirect URI of its request (which names it: clientHost). */
  client?: { record: ClientRecord; redirectUri: string };
  error?: string;
  username?: string;
  /** Where the upstream forms post, and the upstreams to offer (their id and display name). */
  upstreams?: { action: string; options: { id: string; name: string }[] };
  /** Whether to show the password form (default true). */
  passwords?: boolean;
}): string {
  const purpose = input.client
    ? `to continue to ${clientIdentity(input.client.record, input.client.redirectUri)}`
    : 'to manage your account';
  const passwords = input.passwords ?? true;
  const upstreams = (input.upstreams?.options ?? [])
    .map(
      (upstream) => `<form method="post" action="${esc(input.upstreams!.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<input type="hidden" name="upstream" value="${esc(upstream.id)}">
<button type="submit">Sign in with ${esc(displayText(upstream.name))}</button>
</form>`,
    )
    .join('\n');
  const passwordForm = passwords
    ? `<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<label for="username">Username</label><input id="username" type="text" name="username" autocomplete="username" required autofocus value="${esc(input.username ?? '')}">
<label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`
    : '';
  const or = upstreams && passwordForm ? '\n<p class="muted">or</p>\n' : '\n';
  return layout(
    'Sign in',
    `<h1>Sign in</h1><p class="muted">${purpose}</p>
${input.error ? `<p class="error" role="alert">${esc(input.error)}</p>` : ''}
${passwordForm}${or}${upstreams}`,
  );
}

/**
 * Consent form: submit buttons `decision=approve` and `decision=deny`; below it "Not you?", a form that ends the
 * session and returns to the login page of the same request.
 */
export function consentPage(input: {
  action: string;
  /** Where "Sign in as someone else" posts. */
  signOutAction: string;
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
    `<h1>Allow access?</h1>
<p>${clientIdentity(client, interaction.redirectUri)} wants access to your account.</p>
<p class="muted">Signed in as <strong>${esc(input.user.username)}</strong>. After you decide you will be sent to <strong>${esc(redirectHost(interaction.redirectUri))}</strong>.</p>
${warnings}
<p>It asks to:</p>${scopes}${resources}
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<button type="submit" name="decision" value="approve">Allow</button><button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>
<section><form method="post" action="${esc(input.signOutAction)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<p class="muted">Not ${esc(input.user.username)}? <button type="submit" class="secondary" id="sign-out">Sign in as someone else</button></p>
</form></section>`,
  );
}

/**
 * An error that cannot be redirected to the client. Shows the code and a safe description only, and the request id
 * so a user's report can be matched with the server's log line.
 */
export function errorPage(error: OAuthError, requestId?: string): string {
  const reference = requestId ? `<p class="muted">Request id: <code>${esc(requestId)}</code></p>` : '';
  return layout(
    'Authorization error',
    `<h1>Something went wrong</h1><p class="error"><code>${esc(error.code)}</code></p><p>${esc(error.description)}</p>${reference}`,
  );
}

/**
 * Asks whether to sign out (RP-Initiated Logout §2: the OP asks unless it knows the request comes from the signed-in
 * user's own client). The form echoes the checked request, so the confirmation ends exactly what was asked.
 */
export function logoutPage(input: {
  action: string;
  csrf: string;
  username: string;
  client?: ClientRecord;
  params: Record<string, string>;
}): string {
  const from = input.client ? ` <span class="muted">(asked by ${esc(clientLabel(input.client))})</span>` : '';
  const hidden = Object.entries(input.params)
    .map(([name, value]) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`)
    .join('\n');
  return layout(
    'Sign out',
    `<h1>Sign out?</h1>
<p>You are signed in as <strong>${esc(input.username)}</strong>.${from}</p>
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
${hidden}
<button type="submit" name="decision" value="sign_out">Sign out</button><button type="submit" name="decision" value="stay" class="secondary">Stay signed in</button>
</form>`,
  );
}

/** After signing out with nowhere registered to return to. */
export function signedOutPage(signedOut: boolean): string {
  return layout(
    signedOut ? 'Signed out' : 'Still signed in',
    signedOut
      ? '<h1>You are signed out</h1><p class="muted">You can close this window.</p>'
      : '<h1>You are still signed in</h1><p class="muted">Nothing was changed. You can close this window.</p>',
  );
}
