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
import type { Deps, EndpointDeclaration } from '../context.js';
import type { SessionStore } from '../model/ports.js';
import type { SessionRecord, UserRecord } from '../model/records.js';
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

/** Where the account page's sign-in happens: one per browser (its binding). */
export function accountSignInPlace(binding: string): SignInPlace {
  return { key: `account:${binding}`, binding };
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
  'password-changed' | 'totp-added' | 'totp-removed' | 'passkey-added' | 'passkey-removed' | 'recovery-codes';

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
