/**
 * The account page (`/account`): a signed-in user changes their password, sets up or removes second factors, makes
 * new recovery codes, and signs out here or everywhere. Without a session it signs the browser in, with the same
 * steps as an interaction (sign-in.ts) and no client involved. Every action takes the browser's session as
 * findSession reads it, so a session that no longer meets the user's policy changes nothing.
 */
import { hashPassword, verifyPassword } from '../core/password.js';
import { passwordProblem } from '../core/password-policy.js';
import { isMultiFactor, withSecondFactor } from '../core/authentication.js';
import { parseCredentialJson, passkeyAmr, type PasskeyCreationOptions } from '../core/passkeys.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { ConsentStore, GrantStore, Page, SessionStore } from '../model/ports.js';
import type { ClientRecord, SessionRecord, UserRecord } from '../model/records.js';
import { admitLogin } from './login-throttle.js';
import {
  confirmTotpEnrolment,
  FACTOR_AMR,
  hasSecondFactor,
  mfaRequiredFor,
  newRecoveryCodes,
  passkeyRegistration,
  registerPasskey,
  removeFactor,
  startTotpEnrolment,
  type TotpEnrolment,
} from './second-factor.js';
import { findSession, type SessionLookupDeps } from './session.js';
import { pendingPrompt, type SignInDeps, type SignInPlace, type SignInPrompt } from './sign-in.js';

/** The account page and its forms (`/account/...`): HTML, its errors included. */
export const accountDeclaration = {
  path: '/account',
  subPaths: true,
  pages: true,
} satisfies EndpointDeclaration;

export type AccountDeps = SignInDeps &
  SessionLookupDeps &
  Pick<Deps, 'passwordPolicy'> & {
    storage: Pick<SessionStore, 'saveSession' | 'deleteSession' | 'deleteSessionsOf'>;
  };

/** Where the account page's sign-in happens: one per browser (its binding); `context` for its audit events. */
export function accountSignInPlace(binding: string, context?: AuditRequestContext): SignInPlace {
  return { key: `account:${binding}`, binding, context };
}

/** The signed-in user of the account page. */
export interface AccountSession {
  session: SessionRecord;
  user: UserRecord;
}

export type AccountView =
  { stage: 'sign_in'; prompt: SignInPrompt } | ({ stage: 'account'; mfaRequired: boolean } & AccountSession);

/** What GET /account shows this browser: its account, or the step of the sign-in it is at. */
export async function viewAccount(
  sessionId: string | undefined,
  binding: string,
  deps: AccountDeps,
): Promise<AccountView> {
  const signedIn = await accountSession(sessionId, deps);
  if (signedIn) return { stage: 'account', mfaRequired: mfaRequiredFor(signedIn.user, deps.config), ...signedIn };
  const prompt = await pendingPrompt(accountSignInPlace(binding), deps);
  return { stage: 'sign_in', prompt: prompt ?? { step: 'password' } };
}

/** The browser's session and its user, if the session is live and meets the user's policy. */
export async function accountSession(
  sessionId: string | undefined,
  deps: AccountDeps,
): Promise<AccountSession | undefined> {
  const session = await findSession(sessionId, deps);
  const user = session && (await deps.storage.getUser(session.userId));
  return session && user ? { session, user } : undefined;
}

/** What an account action did: a notice for the page (and new recovery codes to show once), or an error. */
export type AccountResult =
  | { ok: true; notice: AccountNotice; recoveryCodes?: string[] }
  | { ok: false; error: string; status: number; retryAfterSeconds?: number };

/** The notices the account page knows (a closed list: the page never echoes text from a URL). */
export type AccountNotice =
  | 'password-changed'
  | 'totp-added'
  | 'totp-removed'
  | 'passkey-added'
  | 'passkey-removed'
  | 'recovery-codes'
  | 'app-revoked';

const refused = (error: string, status = 400): AccountResult => ({ ok: false, error, status });

/**
 * Changes the password: the current one is checked (on the login throttle's counters), the new one is held to
 * `passwordPolicy`, and every other session of the user ends (this one stays).
 */
export async function changePassword(
  { session, user }: AccountSession,
  current: string,
  next: string,
  clientAddress: string,
  deps: AccountDeps,
): Promise<AccountResult> {
  const admission = await admitLogin(user.username, clientAddress, deps);
  if (!admission.allowed) {
    const error = 'Too many failed attempts. Try again later.';
    return { ok: false, error, status: 429, retryAfterSeconds: admission.retryAfterSeconds };
  }
  if (!(await verifyPassword(current, user.passwordHash))) {
    await admission.failed();
    return refused('Your current password is not right.', 401);
  }
  await admission.succeeded();
  const problem = passwordProblem(next, deps.passwordPolicy, user.username);
  if (problem) return refused(`The new password was not accepted: ${problem}.`);
  const passwordHash = await hashPassword(next, deps.config.passwordHashing.log2N);
  const latest = (await deps.storage.getUser(user.id)) ?? user;
  await deps.storage.saveUser({ ...latest, passwordHash, updatedAt: deps.clock.now() });
  // Every session signed in with the old password ends; this browser's is put back.
  await deps.storage.deleteSessionsOf(user.id);
  await deps.storage.saveSession(session);
  deps.logger.info({ userId: user.id }, 'password changed by the user; other sessions ended');
  return { ok: true, notice: 'password-changed' };
}

/** The TOTP secret being set up from this session (the same until confirmed or expired). */
export function accountTotpEnrolment({ session, user }: AccountSession, deps: AccountDeps): Promise<TotpEnrolment> {
  return startTotpEnrolment(user, `session:${session.id}`, deps);
}

/**
 * After a factor is added: the session proved it (the code, the passkey) on top of its password, so it counts as
 * a two-factor sign-in from now on; a first factor gets its recovery codes.
 */
async function factorAdded(
  { session, user }: AccountSession,
  updated: UserRecord,
  factorAmr: readonly string[],
  notice: AccountNotice,
  deps: AccountDeps,
): Promise<AccountResult> {
  if (!isMultiFactor(session.amr)) await deps.storage.saveSession({ ...session, amr: withSecondFactor(factorAmr) });
  const recoveryCodes = updated.recoveryCodes ? undefined : await newRecoveryCodes(user.id, deps);
  deps.logger.info({ userId: user.id, notice }, 'second factor added');
  return { ok: true, notice, ...(recoveryCodes && { recoveryCodes }) };
}

/** Confirms the TOTP secret being set up with a code from the app. */
export async function confirmAccountTotp(
  signedIn: AccountSession,
  code: string,
  deps: AccountDeps,
): Promise<AccountResult> {
  const updated = await confirmTotpEnrolment(signedIn.user, `session:${signedIn.session.id}`, code, deps);
  if (!updated) return refused('That code is not valid. Check the key in your app and try the next code.');
  return factorAdded(signedIn, updated, FACTOR_AMR.totp, 'totp-added', deps);
}

/** Options for the browser to create a passkey for the signed-in user. */
export function accountPasskeyOptions(
  { user }: AccountSession,
  binding: string,
  deps: AccountDeps,
): Promise<PasskeyCreationOptions> {
  return passkeyRegistration(user, binding, deps);
}

/** Registers the passkey the browser created. */
export async function addAccountPasskey(
  signedIn: AccountSession,
  credentialJson: string | undefined,
  name: string | undefined,
  binding: string,
  deps: AccountDeps,
): Promise<AccountResult> {
  const credential = parseCredentialJson(credentialJson);
  const registered = credential && (await registerPasskey(signedIn.user, credential, name, binding, deps));
  if (!registered) return refused('The passkey was not registered. Try again.');
  return factorAdded(signedIn, registered.user, passkeyAmr(registered.credential.deviceType), 'passkey-added', deps);
}

/** Removes TOTP or a passkey; not the last factor of a user who must have one. */
export async function removeAccountFactor(
  { user }: AccountSession,
  factor: { kind: 'totp' } | { kind: 'passkey'; id: string },
  deps: AccountDeps,
): Promise<AccountResult> {
  const remaining: UserRecord = {
    ...user,
    totp: factor.kind === 'totp' ? undefined : user.totp,
    passkeys: (user.passkeys ?? []).filter((p) => factor.kind !== 'passkey' || p.id !== factor.id),
  };
  if (!hasSecondFactor(remaining) && mfaRequiredFor(user, deps.config)) {
    return refused('Your account must keep a second factor: add another one before you remove this one.');
  }
  await removeFactor(user.id, factor, deps);
  deps.logger.info({ userId: user.id, factor: factor.kind }, 'second factor removed');
  return { ok: true, notice: factor.kind === 'totp' ? 'totp-removed' : 'passkey-removed' };
}

/** A new set of recovery codes (the old set stops working). */
export async function regenerateRecoveryCodes({ user }: AccountSession, deps: AccountDeps): Promise<AccountResult> {
  if (!hasSecondFactor(user)) return refused('Recovery codes back up a second factor: set one up first.');
  return { ok: true, notice: 'recovery-codes', recoveryCodes: await newRecoveryCodes(user.id, deps) };
}

/** Ends every session of the user, this one included (sign out everywhere). */
export async function signOutEverywhere({ user }: AccountSession, deps: AccountDeps): Promise<void> {
  await deps.storage.deleteSessionsOf(user.id);
}

/** What the account page's applications list and revoke read and write. */
export type AccountApplicationsDeps = Pick<Deps, 'clock' | 'logger' | 'clients'> & {
  storage: Pick<GrantStore, 'listGrantsOfUser' | 'revokeGrantsFor'> &
    Pick<ConsentStore, 'listConsentsOfUser' | 'deleteConsent'>;
};

/** An application the user allowed: its client (undefined once deleted) and what it was allowed. */
export interface AccountApplication {
  clientId: string;
  client?: ClientRecord;
  scope: string[];
  resource: string[];
  /** The consent's time, else the oldest live grant's. */
  grantedAt: number;
  /** The latest token of its live grants (a refresh, else the code's redemption); absent with no live grant. */
  lastUsedAt?: number;
}

/** Most pages of grants and of consents read for one account page (200 each): a bound, not a limit users meet. */
const MAX_PAGES = 10;

async function allPages<T>(read: (cursor: string | undefined) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await read(cursor);
    items.push(...page.items);
    if (!(cursor = page.nextCursor)) break;
  }
  return items;
}

/**
 * The applications the user allowed, newest first: every client with a live consent or a live (unrevoked, unexpired)
 * grant of theirs, with the scopes and resources of both together.
 */
export async function listAccountApplications(
  { user }: AccountSession,
  deps: AccountApplicationsDeps,
): Promise<AccountApplication[]> {
  const now = deps.clock.now();
  const [consents, grants] = await Promise.all([
    allPages((cursor) => deps.storage.listConsentsOfUser(user.id, { limit: 200, cursor })),
    allPages((cursor) => deps.storage.listGrantsOfUser(user.id, { limit: 200, cursor })),
  ]);
  const byClient = new Map<string, AccountApplication & { scopes: Set<string>; resources: Set<string> }>();
  const entry = (clientId: string, at: number) => {
    let app = byClient.get(clientId);
    if (!app) {
      app = { clientId, scope: [], resource: [], grantedAt: at, scopes: new Set(), resources: new Set() };
      byClient.set(clientId, app);
    }
    return app;
  };
  for (const consent of consents) {
    const app = entry(consent.clientId, consent.createdAt);
    app.grantedAt = consent.createdAt;
    consent.scope.forEach((s) => app.scopes.add(s));
    consent.resource.forEach((r) => app.resources.add(r));
  }
  const consented = new Set(consents.map((c) => c.clientId));
  for (const grant of grants) {
    if (grant.revokedAt !== undefined || grant.expiresAt <= now) continue;
    const app = entry(grant.clientId, grant.createdAt);
    if (!consented.has(grant.clientId)) app.grantedAt = Math.min(app.grantedAt, grant.createdAt);
    grant.scope.forEach((s) => app.scopes.add(s));
    grant.resource.forEach((r) => app.resources.add(r));
    const used = grant.lastUsedAt ?? grant.createdAt;
    app.lastUsedAt = Math.max(app.lastUsedAt ?? 0, used);
  }
  const apps = await Promise.all(
    [...byClient.values()].map(async ({ scopes, resources, ...app }) => ({
      ...app,
      scope: [...scopes],
      resource: [...resources],
      client: await deps.clients.getClient(app.clientId).catch(() => undefined),
    })),
  );
  return apps.sort((a, b) => b.grantedAt - a.grantedAt || (a.clientId < b.clientId ? -1 : 1));
}

/**
 * Withdraws an application's access at once: every grant of the user's for it is revoked (refresh tokens gone,
 * access tokens on the revocation list) and the consent is deleted, so its next authorization asks again.
 */
export async function revokeAccountApplication(
  { user }: AccountSession,
  clientId: string | undefined,
  deps: AccountApplicationsDeps,
): Promise<AccountResult> {
  if (!clientId) return refused('No application was named.');
  const revoked = await deps.storage.revokeGrantsFor(user.id, clientId, deps.clock.now());
  await deps.storage.deleteConsent(user.id, clientId);
  deps.logger.info({ userId: user.id, clientId, grantsRevoked: revoked }, 'application access revoked by the user');
  return { ok: true, notice: 'app-revoked' };
}
