/** Server-rendered login, consent and error pages (no JavaScript; field names fixed by DESIGN.md). */
import { esc, layout } from './html.js';
import { DEFAULT_STRINGS, html, message, scopeDescription, type Strings } from './strings.js';
import type { ClientRecord, InteractionRecord, UserRecord } from '../model/records.js';
import type { OAuthError } from '../model/errors.js';

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
export function clientLabel(client: ClientRecord): string {
  return (client.clientName && displayText(client.clientName)) || client.clientId;
}

/** Where the host shown for a client comes from (the consent page says which). */
export type HostSource = 'metadata_document' | 'client_uri' | 'redirect_uri';

const hostOf = (uri: string | undefined): string | undefined => {
  if (!uri) return undefined;
  try {
    const url = new URL(uri);
    return url.hostname || url.protocol.slice(0, -1);
  } catch {
    return undefined;
  }
};

/**
 * What the user can check the client by, since anyone can register any name: a metadata-document client's URL host;
 * for a client the operator configured (config file, admin), the host of its `client_uri` when it has one; else (a
 * dynamically registered client, whose client_uri is self-asserted) the host of the redirect URI the browser goes
 * back to (a private-use scheme for native apps). `claimed` is the client_uri's host when it differs from the host
 * shown: the page flags it. Hosts come from WHATWG URL parsing, so an internationalised host shows in punycode.
 */
export function clientHost(
  client: ClientRecord,
  redirectUri: string,
): { host: string; source: HostSource; claimed?: string } {
  const claimed = hostOf(client.clientUri);
  const differs = (host: string) => (claimed !== undefined && claimed !== host ? { claimed } : {});
  if (client.source === 'metadata_document') {
    const host = hostOf(client.clientId) ?? client.clientId;
    return { host, source: 'metadata_document', ...differs(host) };
  }
  const redirect = hostOf(redirectUri) ?? displayText(redirectUri);
  if (client.source !== 'dynamic' && claimed !== undefined) {
    return { host: claimed, source: 'client_uri', ...(claimed !== redirect ? { claimed: redirect } : {}) };
  }
  return { host: redirect, source: 'redirect_uri', ...differs(redirect) };
}

/**
 * How the account page names an application it has no request of: the host as on the consent page, with the
 * client's first registered redirect URI standing for the request's; the cleaned name when it is not that host again.
 */
export function applicationIdentity(
  client: ClientRecord | undefined,
  clientId: string,
): { host: string; name?: string } {
  if (!client) return { host: clientId };
  const { host } = clientHost(client, client.redirectUris[0] ?? '');
  const label = clientLabel(client);
  return label === host || label === client.clientId ? { host } : { host, name: label };
}

/** Host first, then the self-chosen name in quotes (omitted when it is just the host or the id again). */
function clientIdentity(t: Strings, client: ClientRecord, redirectUri: string): string {
  const { host } = clientHost(client, redirectUri);
  const label = clientLabel(client);
  // No host to name it by (a device's request has no redirect URI, and the client no client_uri): its name.
  if (!host) return `<strong>${esc(label)}</strong>`;
  const name =
    label === host || label === client.clientId
      ? ''
      : ` <span class="muted">${html(t, 'client.callsItself', { name: esc(label) })}</span>`;
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

const errorLine = (t: Strings, error: string | undefined) =>
  error ? `<p id="form-error" class="error" role="alert">${esc(message(t, error))}</p>` : '';

/**
 * Login form: `username`, `password`, one submit button. Without a client it is the account page's sign-in. With
 * upstream identity providers, one form each below it (hidden `upstream` = its id, button "Sign in with <name>");
 * `passwords: false` leaves the password form out (nobody signs in with one). `firstRun`: no user exists yet, so the
 * page says how to make the first one.
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
  firstRun?: boolean;
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const purpose = input.client
    ? html(t, 'signIn.toClient', { client: clientIdentity(t, input.client.record, input.client.redirectUri) })
    : html(t, 'signIn.toAccount');
  const passwords = input.passwords ?? true;
  const upstreams = (input.upstreams?.options ?? [])
    .map(
      (upstream) => `<form method="post" action="${esc(input.upstreams!.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<input type="hidden" name="upstream" value="${esc(upstream.id)}">
<button type="submit">${html(t, 'signIn.withUpstream', { name: esc(displayText(upstream.name)) })}</button>
</form>`,
    )
    .join('\n');
  const describedBy = input.error ? ' aria-describedby="form-error"' : '';
  const passwordForm = passwords
    ? `<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<label for="username">${html(t, 'signIn.username')}</label><input id="username" type="text" name="username" autocomplete="username" required autofocus${describedBy} value="${esc(input.username ?? '')}">
<label for="password">${html(t, 'signIn.password')}</label><input id="password" type="password" name="password" autocomplete="current-password" required${describedBy}>
<button type="submit">${html(t, 'signIn.submit')}</button>
</form>`
    : '';
  const or = upstreams && passwordForm ? `\n<p class="muted">${html(t, 'signIn.or')}</p>\n` : '\n';
  const firstRun = input.firstRun
    ? `<p class="warn" role="status" id="first-run">${html(t, 'signIn.firstRun')}</p>`
    : '';
  return layout(
    t['signIn.title'],
    `<h1>${html(t, 'signIn.title')}</h1><p class="muted">${purpose}</p>
${firstRun}${errorLine(t, input.error)}
${passwordForm}${or}${upstreams}`,
    t,
  );
}

/** A resource as the user reads it: its configured display name (the URI below it), else the URI. */
function resourceItem(t: Strings, uri: string): string {
  const name = t.resources[uri];
  return name
    ? `<li>${esc(name)} <span class="muted"><code>${esc(uri)}</code></span></li>`
    : `<li><code>${esc(uri)}</code></li>`;
}

/** A scope as the user reads it: its description, the scope itself beside it. */
function scopeItem(t: Strings, scope: string): string {
  return `<li>${esc(scopeDescription(t, scope))} <span class="muted"><code>${esc(scope)}</code></span></li>`;
}

/**
 * Consent form: submit buttons `decision=approve` and `decision=deny`; below it "Not you?", a form that ends the
 * session and returns to the login page of the same request. Names the client by host (and where that host comes
 * from), flags a client_uri whose host is not the one shown, the resources by name and the scopes by description.
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
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const { client, interaction } = input;
  const shown = clientHost(client, interaction.redirectUri);
  const hostNote =
    shown.source === 'client_uri'
      ? 'consent.hostFromClientUri'
      : shown.source === 'metadata_document'
        ? 'consent.hostFromDocument'
        : 'consent.hostFromRedirect';
  const differ = shown.claimed
    ? `<p class="warn" id="host-mismatch">${html(t, 'consent.hostsDiffer', {
        claimed: `<strong>${esc(shown.source === 'client_uri' ? shown.host : shown.claimed)}</strong>`,
        actual: `<strong>${esc(shown.source === 'client_uri' ? shown.claimed : shown.host)}</strong>`,
      })}</p>`
    : '';
  const scopes = interaction.scope.length
    ? `<ul>${interaction.scope.map((s) => scopeItem(t, s)).join('')}</ul>`
    : `<p class="muted">${html(t, 'consent.noScopes')}</p>`;
  const resources = interaction.resource.length
    ? `<p>${html(t, 'consent.resources')}</p><ul>${interaction.resource.map((r) => resourceItem(t, r)).join('')}</ul>`
    : '';
  const warnings = input.warnings.map((w) => `<p class="warn">${esc(message(t, w))}</p>`).join('');
  // A device's request (RFC 8628): no redirect to name it by, and the user is told it is a device they authorize.
  const intro =
    interaction.deviceCodeHash !== undefined
      ? `<h1>${html(t, 'device.consentHeading')}</h1>
<p id="consent-client">${html(t, 'device.consentWants', { client: clientIdentity(t, client, '') })}</p>
<p class="warn" id="device-notice">${html(t, 'device.consentCheck')}</p>
<p class="muted">${html(t, 'device.consentSignedInAs', { username: `<strong>${esc(input.user.username)}</strong>` })}</p>`
      : `<h1>${html(t, 'consent.heading')}</h1>
<p id="consent-client">${html(t, 'consent.wants', { client: clientIdentity(t, client, interaction.redirectUri) })}</p>
<p class="muted" id="host-source">${html(t, hostNote)}</p>
${differ}<p class="muted">${html(t, 'consent.signedInAs', {
          username: `<strong>${esc(input.user.username)}</strong>`,
          host: `<strong>${esc(redirectHost(interaction.redirectUri))}</strong>`,
        })}</p>`;
  return layout(
    t['consent.title'],
    `${intro}
${warnings}
<p>${html(t, 'consent.asks')}</p>${scopes}${resources}
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<button type="submit" name="decision" value="approve">${html(t, 'consent.allow')}</button><button type="submit" name="decision" value="deny" class="secondary">${html(t, 'consent.deny')}</button>
</form>
<section><form method="post" action="${esc(input.signOutAction)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<p class="muted">${html(t, 'consent.notYou', { username: esc(input.user.username) })} <button type="submit" class="secondary" id="sign-out">${html(t, 'consent.switchUser')}</button></p>
</form></section>`,
    t,
  );
}

/**
 * An error that cannot be redirected to the client. Shows the code and a safe description only, and the request id
 * so a user's report can be matched with the server's log line; `traceReference`, when the request belongs to an
 * authorization, names its flow trace (`gatehouse trace <id>`).
 */
export function errorPage(
  error: OAuthError,
  requestId?: string,
  t: Strings = DEFAULT_STRINGS,
  traceReference?: string,
): string {
  const reference =
    (traceReference
      ? `<p class="muted">${html(t, 'error.reference', { id: `<code>${esc(traceReference)}</code>` })}</p>`
      : '') +
    (requestId ? `<p class="muted">${html(t, 'error.requestId', { id: `<code>${esc(requestId)}</code>` })}</p>` : '');
  return layout(
    t['error.title'],
    `<h1>${html(t, 'error.heading')}</h1><div role="alert"><p class="error"><code>${esc(error.code)}</code></p><p>${esc(message(t, error.description))}</p></div>${reference}`,
    t,
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
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const from = input.client
    ? ` <span class="muted">${html(t, 'logout.askedBy', { client: esc(clientLabel(input.client)) })}</span>`
    : '';
  const hidden = Object.entries(input.params)
    .map(([name, value]) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`)
    .join('\n');
  return layout(
    t['logout.title'],
    `<h1>${html(t, 'logout.heading')}</h1>
<p>${html(t, 'logout.signedInAs', { username: `<strong>${esc(input.username)}</strong>` })}${from}</p>
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
${hidden}
<button type="submit" name="decision" value="sign_out">${html(t, 'logout.signOut')}</button><button type="submit" name="decision" value="stay" class="secondary">${html(t, 'logout.stay')}</button>
</form>`,
    t,
  );
}

/** After signing out with nowhere registered to return to. */
export function signedOutPage(signedOut: boolean, t: Strings = DEFAULT_STRINGS): string {
  return layout(
    signedOut ? t['signedOut.title'] : t['stillSignedIn.title'],
    signedOut
      ? `<h1>${html(t, 'signedOut.heading')}</h1><p class="muted">${html(t, 'signedOut.close')}</p>`
      : `<h1>${html(t, 'stillSignedIn.heading')}</h1><p class="muted">${html(t, 'stillSignedIn.close')}</p>`,
    t,
  );
}
