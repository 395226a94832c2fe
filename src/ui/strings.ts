/**
 * Every user-visible string of the pages, in one place: English by default. Config `pages.strings` (per tenant too)
 * replaces any of them by key, e.g. a whole translation with `pages.lang` set to its language tag. `{name}` marks a
 * value put in at render time (escaped). Messages the sign-in flow returns (authorization/*, English text) are
 * translated through `pages.strings` too, keyed by their English text (see {@link message}).
 */
export const ENGLISH = {
  // The document
  'page.lang': 'en',
  // Sign-in
  'signIn.title': 'Sign in',
  'signIn.toClient': 'to continue to {client}',
  'signIn.toAccount': 'to manage your account',
  'signIn.username': 'Username',
  'signIn.password': 'Password',
  'signIn.submit': 'Sign in',
  'signIn.or': 'or',
  'signIn.withUpstream': 'Sign in with {name}',
  'signIn.firstRun':
    'No users yet: open the setup link printed in the server log, or run `gatehouse user add <name>`. A new setup link: restart the server or run `gatehouse setup-link`.',
  'client.callsItself': '(calls itself “{name}”)',
  // Consent
  'consent.title': 'Authorize access',
  'consent.heading': 'Allow access?',
  'consent.wants': '{client} wants access to your account.',
  'consent.hostFromRedirect': 'You will be sent back to this host: it is how you can tell the application.',
  'consent.hostFromClientUri': 'The application’s website, as its operator configured it.',
  'consent.hostFromDocument': 'The host that published this application’s details.',
  'consent.hostsDiffer':
    'Check this: the application says its website is {claimed}, but you will be sent back to {actual}.',
  'consent.signedInAs': 'Signed in as {username}. After you decide you will be sent to {host}.',
  'consent.asks': 'It asks to:',
  'consent.noScopes': 'No specific permissions.',
  'consent.resources': 'For use with:',
  'consent.allow': 'Allow',
  'consent.deny': 'Deny',
  'consent.notYou': 'Not {username}?',
  'consent.switchUser': 'Sign in as someone else',
  // Device authorization (RFC 8628): the user-code page, the device's consent, the page it ends on
  'device.title': 'Connect a device',
  'device.heading': 'Connect a device',
  'device.explain': 'Enter the code shown on your device or in your terminal.',
  'device.code': 'Code',
  'device.submit': 'Continue',
  'device.phishing':
    'Only enter a code from a device or program you are setting up yourself, right now. Never enter a code that someone sent you.',
  'device.consentHeading': 'Allow a device?',
  'device.consentWants': 'A device or command-line program, {client}, asks for access to your account.',
  'device.consentCheck':
    'This authorizes a device, not this browser. Allow it only if you started it yourself on a device you control.',
  'device.consentSignedInAs': 'Signed in as {username}.',
  'device.approvedTitle': 'Device connected',
  'device.approved': 'You may now return to your device: it is signed in. You can close this window.',
  'device.deniedTitle': 'Device not connected',
  'device.denied': 'You denied the request: the device gets no access. You can close this window.',
  'device.failedTitle': 'Device not connected',
  'device.failed': 'The sign-in did not complete. Start again on your device to get a new code.',
  // Scope descriptions (config `pages.scopeDescriptions` adds and replaces them)
  'scope.openid': 'Confirm your identity',
  'scope.profile': 'See your name and username',
  'scope.email': 'See your email address',
  'scope.offline_access': 'Stay connected when you are not using it (refresh tokens)',
  // Errors
  'error.title': 'Authorization error',
  'error.heading': 'Something went wrong',
  'error.requestId': 'Request id: {id}',
  'error.reference': 'Reference: {id}',
  // Sign-out
  'logout.title': 'Sign out',
  'logout.heading': 'Sign out?',
  'logout.signedInAs': 'You are signed in as {username}.',
  'logout.askedBy': '(asked by {client})',
  'logout.signOut': 'Sign out',
  'logout.stay': 'Stay signed in',
  'signedOut.title': 'Signed out',
  'signedOut.heading': 'You are signed out',
  'stillSignedIn.title': 'Still signed in',
  'stillSignedIn.heading': 'You are still signed in',
  'signedOut.close': 'You can close this window.',
  'stillSignedIn.close': 'Nothing was changed. You can close this window.',
  // Second step of a sign-in
  'factor.title': 'Verify it is you',
  'factor.signingInAs': 'Signing in as {username}.',
  'factor.totpCode': 'Code from your authenticator app',
  'factor.verify': 'Verify',
  'factor.usePasskey': 'Use your passkey',
  'factor.recoveryCode': 'Or a recovery code',
  'factor.useRecoveryCode': 'Use recovery code',
  'factor.switchUser': 'Sign in as someone else',
  'enrol.title': 'Set up two-step verification',
  'enrol.needs': 'Your account {username} needs a second way to prove it is you.',
  'enrol.app': 'Authenticator app',
  'enrol.addKey': 'Add this key to your authenticator app, then type the code it shows.',
  'enrol.orLink': 'Or open this link on the device with the app:',
  'enrol.code': 'Code from the app',
  'enrol.confirm': 'Confirm',
  'enrol.passkey': 'Passkey',
  'enrol.passkeyName': 'Name for this passkey (optional)',
  'enrol.createPasskey': 'Create a passkey',
  'recovery.title': 'Your recovery codes',
  'recovery.heading': 'Save your recovery codes',
  'recovery.explain':
    'Each code signs you in once if you lose your authenticator app or passkey. Keep them somewhere safe: they are not shown again.',
  'recovery.continue': 'Continue',
  'recovery.backToAccount': 'Back to your account',
  // Account
  'account.title': 'Your account',
  'account.signedInAs': 'Signed in as {username}.',
  'account.mfaRequired': 'Your account must have a second factor: set one up below.',
  'account.password': 'Password',
  'account.currentPassword': 'Current password',
  'account.newPassword': 'New password',
  'account.changePassword': 'Change password',
  'account.app': 'Authenticator app',
  'account.appSince': 'Set up on {date}.',
  'account.removeApp': 'Remove authenticator app',
  'account.setUpApp': 'Set up an authenticator app',
  'account.passkeys': 'Passkeys',
  'account.passkeyAdded': '(added {date})',
  'account.passkeyAddedUsed': '(added {date}, last used {used})',
  'account.remove': 'Remove',
  'account.noPasskeys': 'No passkeys yet.',
  'account.addPasskey': 'Add a passkey',
  'account.recoveryCodes': 'Recovery codes',
  'account.codesLeft': '{count} unused recovery codes.',
  'account.codesLeftOne': '1 unused recovery code.',
  'account.newCodes': 'Make new recovery codes',
  'account.codesLater': 'Recovery codes are made when you set up a second factor.',
  'account.signOut': 'Sign out',
  'account.signOutEverywhere': 'Sign out everywhere',
  'account.back': 'Back to your account',
  'account.apps': 'Applications',
  'account.noApps': 'No application has access to your account.',
  'account.appGranted': 'Allowed on {date}',
  'account.appLastUsed': 'last used {date}',
  'account.appScopes': 'Can:',
  'account.appResources': 'For use with:',
  'account.revoke': 'Remove access for {client}',
  'account.totpTitle': 'Set up an authenticator app',
  'account.passkeyTitle': 'Add a passkey',
  'account.passkeyExplain': 'Your browser or device asks you to create the passkey.',
  'notice.password-changed': 'Your password was changed. Every other session was signed out.',
  'notice.totp-added': 'Your authenticator app is set up.',
  'notice.totp-removed': 'Your authenticator app was removed.',
  'notice.passkey-added': 'Your passkey was added.',
  'notice.passkey-removed': 'The passkey was removed.',
  'notice.recovery-codes': 'New recovery codes were made; the old ones no longer work.',
  'notice.app-revoked': 'The application’s access was removed: it is signed out and must ask again.',
  // First-run setup
  'setup.title': 'Set up Gatehouse',
  'setup.heading': 'Create the first administrator',
  'setup.explain': 'This link works once. Choose the username and password of the first administrator.',
  'setup.username': 'Username',
  'setup.password': 'Password',
  'setup.passwordHint': 'At least {min} characters.',
  'setup.submit': 'Create administrator',
  'setup.deadTitle': 'Setup link not valid',
  'setup.dead':
    'This setup link has expired or was already used. Restart the server or run `gatehouse setup-link` for a new one.',
  'setup.badUsername': 'Choose a username of 1 to 100 characters without spaces.',
  'setup.badPassword': 'The password was not accepted: {problem}.',
  'setup.doneTitle': 'Administrator created',
  'setup.done': 'The administrator {username} was created. The setup link no longer works.',
  'setup.toAccount': 'Sign in to your account',
} as const;

export type StringKey = keyof typeof ENGLISH;

/** The strings a page renders with: every key present. */
export type Strings = Readonly<Record<StringKey, string>> & {
  /** Translations of the sign-in flow's English messages, keyed by that text. */
  readonly messages: Readonly<Record<string, string>>;
  /** Scope descriptions beyond the built-in ones (`pages.scopeDescriptions`). */
  readonly scopes: Readonly<Record<string, string>>;
  /** Display names of resources, by URI (`pages.resourceNames`). */
  readonly resources: Readonly<Record<string, string>>;
};

/** The English strings with nothing configured. */
export const DEFAULT_STRINGS: Strings = { ...ENGLISH, messages: {}, scopes: {}, resources: {} };

/**
 * The strings of an issuer: English, with `overrides` by key (an unknown key is ignored: config validation names
 * it), messages of the flow translated by their English text, and the configured scope and resource names.
 */
export function pageStrings(settings?: {
  lang?: string;
  strings?: Record<string, string>;
  scopeDescriptions?: Record<string, string>;
  resourceNames?: Record<string, string>;
}): Strings {
  if (!settings) return DEFAULT_STRINGS;
  const messages: Record<string, string> = {};
  const table: Record<string, string> = { ...ENGLISH };
  for (const [key, value] of Object.entries(settings.strings ?? {})) {
    if (key in ENGLISH) table[key] = value;
    else messages[key] = value;
  }
  if (settings.lang) table['page.lang'] = settings.lang;
  return {
    ...(table as Record<StringKey, string>),
    messages,
    scopes: settings.scopeDescriptions ?? {},
    resources: settings.resourceNames ?? {},
  };
}

/** Whether `key` names a string (config validation: any other key must be a message of the flow). */
export function isStringKey(key: string): key is StringKey {
  return key in ENGLISH;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (value: string) => value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/**
 * The string `key` as HTML: the template escaped, each `{name}` replaced by `values[name]`, which is HTML already
 * (the caller escapes or builds it). An unknown placeholder stays as written.
 */
export function html(t: Strings, key: StringKey, values: Record<string, string> = {}): string {
  return escape(t[key]).replace(/\{([a-zA-Z]+)\}/g, (whole, name: string) => values[name] ?? whole);
}

/** A message of the sign-in flow (English text) in the page's language. */
export function message(t: Strings, text: string): string {
  return t.messages[text] ?? text;
}

/** How scope `scope` is described to the user: configured, built in, else the scope itself. */
export function scopeDescription(t: Strings, scope: string): string {
  const builtIn = `scope.${scope}`;
  return t.scopes[scope] ?? (isStringKey(builtIn) ? t[builtIn] : scope);
}
