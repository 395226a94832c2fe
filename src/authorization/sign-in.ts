/**
 * Signing in, step by step, wherever it happens (an interaction's login page, the account page): the password
 * first; then, for a user with a second factor, one of them (TOTP code, passkey, recovery code); for a user who must
 * have one and has none, the enrolment of TOTP or a passkey. Between the steps a pending sign-in is kept in the
 * store, bound to the browser, so any replica can serve the next step. Guesses of passwords and of codes count on the
 * same login-throttle counters; the username's counter is cleared only once the whole sign-in has succeeded, so a
 * right password does not buy more code guesses.
 */
import { hashToken, safeEqual } from '../core/crypto.js';
import { AMR, withSecondFactor } from '../core/authentication.js';
import {
  parseCredentialJson,
  passkeyAmr,
  type PasskeyCreationOptions,
  type PasskeyRequestOptions,
} from '../core/passkeys.js';
import { verifyPassword, verifyPasswordDummy } from '../core/password.js';
import type { Deps } from '../context.js';
import type { ExpiringRecordStore, UserStore } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { PendingSignInRecord, SessionRecord, UserRecord } from '../model/records.js';
import { admitLogin, type ThrottleDeps } from './login-throttle.js';
import { upgradePasswordHash, type PasswordUpgradeDeps } from './password-upgrade.js';
import {
  checkPasskey,
  checkTotp,
  confirmTotpEnrolment,
  FACTOR_AMR,
  hasSecondFactor,
  needsSecondFactor,
  newRecoveryCodes,
  passkeyRegistration,
  passkeySignInOptions,
  registerPasskey,
  startTotpEnrolment,
  useRecoveryCode,
  type SecondFactorDeps,
  type TotpEnrolment,
} from './second-factor.js';
import { startSession, type SessionStartDeps } from './session.js';
import type { AuditRequestContext } from '../core/audit.js';

/** What the sign-in steps use. */
export type SignInDeps = ThrottleDeps &
  PasswordUpgradeDeps &
  SessionStartDeps &
  SecondFactorDeps &
  Pick<Deps, 'logger' | 'config' | 'clock' | 'audit'> & {
    storage: Pick<UserStore, 'getUserByUsername' | 'getUser' | 'saveUser'> & ExpiringRecordStore;
  };

/**
 * Where a sign-in happens: `key` names it (`interaction:<id>`, `account:<browser binding>`), `binding` is the
 * browser's (http/cookies browserBinding), `expiresAt` an end it must not outlive (the interaction's), `clientId`
 * the client asking, for the log lines, `context` the request being served, for the audit events (core/audit.ts).
 */
export interface SignInPlace {
  key: string;
  binding: string;
  expiresAt?: number;
  clientId?: string;
  /** The flow trace reference of the authorization signing in (its audit events name it). */
  reference?: string;
  /** The request signing in: its audit events carry its id, address and user agent. */
  context?: AuditRequestContext;
}

/** How long the second step may wait after the password. */
const PENDING_TTL_MS = 10 * 60_000;

/** The second step: a factor, or the enrolment of one. Passkey options are handed to the page's script. */
export type SecondStepPrompt =
  | {
      step: 'second_factor';
      user: UserRecord;
      totp: boolean;
      recoveryCodes: boolean;
      passkeyOptions?: PasskeyRequestOptions;
      error?: string;
    }
  | {
      step: 'enrol';
      user: UserRecord;
      totp: TotpEnrolment;
      passkeyOptions: PasskeyCreationOptions;
      error?: string;
    };

/** What the browser is asked for next. */
export type SignInPrompt = { step: 'password'; error?: string; username?: string } | SecondStepPrompt;

export type SignInOutcome =
  /** Signed in: http/ sets the session cookie. `recoveryCodes` are new and must be shown now, once. */
  | { kind: 'signed_in'; session: SessionRecord; recoveryCodes?: string[] }
  /** A step is pending: show the page that asks for it (GET, after a redirect). */
  | { kind: 'continue' }
  | { kind: 'prompt'; prompt: SignInPrompt; status: number; retryAfterSeconds?: number };

const pendingRecords = (deps: SignInDeps) => recordsOf(deps.storage, RECORD_KINDS.pendingSignIn);
const pendingId = (place: SignInPlace) => hashToken(`pending-sign-in:${place.key}`);

/** The audit event of a throttled attempt (the username typed, never the password). */
function auditThrottled(
  deps: Pick<Deps, 'audit'>,
  place: SignInPlace,
  limit: 'username' | 'ip',
  username: string | undefined,
): void {
  deps.audit.emit(
    {
      type: 'signin.throttled',
      key: limit === 'ip' ? 'ip' : 'account',
      ...(username && { username }),
      ...(place.clientId !== undefined && { clientId: place.clientId }),
      ...(place.reference !== undefined && { reference: place.reference }),
    },
    place.context,
  );
}

/** The audit event of a completed sign-in. */
function auditSignedIn(deps: Pick<Deps, 'audit'>, place: SignInPlace, user: UserRecord, amr: string[]): void {
  deps.audit.emit(
    {
      type: 'signin.succeeded',
      subject: user.id,
      method: 'password',
      amr,
      ...(place.clientId !== undefined && { clientId: place.clientId }),
      ...(place.reference !== undefined && { reference: place.reference }),
    },
    place.context,
  );
}

function throttled(retryAfterSeconds: number, prompt: SignInPrompt): SignInOutcome {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  const error = `Too many failed sign-in attempts. Wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`;
  return { kind: 'prompt', prompt: { ...prompt, error }, status: 429, retryAfterSeconds };
}

const EXPIRED: SignInOutcome = {
  kind: 'prompt',
  prompt: { step: 'password', error: 'Your sign-in took too long. Sign in again.' },
  status: 400,
};

/** The pending sign-in of this place and browser, with its user. */
async function loadPending(
  place: SignInPlace,
  deps: SignInDeps,
): Promise<{ pending: PendingSignInRecord; user: UserRecord } | undefined> {
  const pending = await pendingRecords(deps).get(pendingId(place));
  if (!pending || !safeEqual(pending.browserBinding, place.binding)) return undefined;
  const user = await deps.storage.getUser(pending.userId);
  return user ? { pending, user } : undefined;
}

/**
 * The password step. A user without a second factor (and not required to have one) is signed in at once; anyone
 * else gets a pending sign-in and `continue`.
 */
export async function signInWithPassword(
  place: SignInPlace,
  username: string,
  password: string,
  clientAddress: string,
  deps: SignInDeps,
): Promise<SignInOutcome> {
  // Before any lookup or hashing: a throttled attempt costs no scrypt, and reads the same for every username.
  const admission = await admitLogin(username, clientAddress, deps);
  if (!admission.allowed) {
    deps.logger.warn({ clientId: place.clientId, limit: admission.limit }, 'sign-in throttled');
    auditThrottled(deps, place, admission.limit, username);
    return throttled(admission.retryAfterSeconds, { step: 'password', username });
  }
  const user = username ? await deps.storage.getUserByUsername(username) : undefined;
  // Burn the same time for unknown users (and users of upstreams, who have no password) so usernames cannot be
  // enumerated by timing.
  const valid = user?.passwordHash
    ? await verifyPassword(password, user.passwordHash)
    : (await verifyPasswordDummy(password, deps.config.passwordHashing.log2N), false);
  // A disabled user reads as a wrong password (after the same hashing), so the page tells nobody it exists.
  if (!user || !valid || user.disabled === true) {
    await admission.failed();
    deps.logger.info({ clientId: place.clientId }, 'sign-in failed');
    deps.audit.emit(
      {
        type: 'signin.failed',
        reason: 'invalid_credentials',
        ...(username && { username }),
        ...(place.clientId !== undefined && { clientId: place.clientId }),
        ...(place.reference !== undefined && { reference: place.reference }),
      },
      place.context,
    );
    return {
      kind: 'prompt',
      prompt: { step: 'password', error: 'Invalid username or password.', username },
      status: 401,
    };
  }
  await upgradePasswordHash(user, password, deps);
  if (!needsSecondFactor(user, deps.config)) {
    await admission.succeeded();
    const session = await startSession(user.id, [AMR.password], deps);
    auditSignedIn(deps, place, user, [AMR.password]);
    return { kind: 'signed_in', session };
  }
  // The username's counter keeps this attempt until the second step succeeds.
  const now = deps.clock.now();
  await pendingRecords(deps).put({
    id: pendingId(place),
    userId: user.id,
    browserBinding: place.binding,
    createdAt: now,
    expiresAt: Math.min(now + PENDING_TTL_MS, place.expiresAt ?? Infinity),
  });
  return { kind: 'continue' };
}

/** What a pending sign-in asks for now (undefined: none is pending, ask for the password). */
export async function pendingPrompt(
  place: SignInPlace,
  deps: SignInDeps,
  error?: string,
): Promise<SecondStepPrompt | undefined> {
  const found = await loadPending(place, deps);
  if (!found) return undefined;
  const { pending, user } = found;
  if (hasSecondFactor(user)) {
    const hasPasskeys = (user.passkeys?.length ?? 0) > 0;
    return {
      step: 'second_factor',
      user,
      totp: user.totp !== undefined,
      recoveryCodes: (user.recoveryCodes?.hashes.length ?? 0) > 0,
      ...(hasPasskeys && { passkeyOptions: await passkeySignInOptions(user, place.binding, deps) }),
      ...(error !== undefined && { error }),
    };
  }
  return {
    step: 'enrol',
    user,
    totp: await startTotpEnrolment(user, pending.id, deps),
    passkeyOptions: await passkeyRegistration(user, place.binding, deps),
    ...(error !== undefined && { error }),
  };
}

/** Ends the pending sign-in and starts the session; undefined when another request finished it first. */
async function complete(
  place: SignInPlace,
  user: UserRecord,
  amr: string[],
  deps: SignInDeps,
): Promise<SessionRecord | undefined> {
  if (!(await pendingRecords(deps).take(pendingId(place)))) return undefined;
  return startSession(user.id, amr, deps);
}

/** A second-factor form: `method` totp (with `code`), recovery (with `code`) or passkey (with `credential` JSON). */
export interface FactorForm {
  method?: string;
  code?: string;
  credential?: string;
}

/** The second step for a user who has a factor. */
export async function signInWithSecondFactor(
  place: SignInPlace,
  form: FactorForm,
  clientAddress: string,
  deps: SignInDeps,
): Promise<SignInOutcome> {
  const found = await loadPending(place, deps);
  if (!found || !hasSecondFactor(found.user)) return EXPIRED;
  const { user } = found;
  const again = async (error: string, status: number): Promise<SignInOutcome> => {
    const prompt = await pendingPrompt(place, deps, error);
    return prompt ? { kind: 'prompt', prompt, status } : EXPIRED;
  };
  const admission = await admitLogin(user.username, clientAddress, deps);
  if (!admission.allowed) {
    deps.logger.warn({ clientId: place.clientId, limit: admission.limit }, 'second factor throttled');
    auditThrottled(deps, place, admission.limit, user.username);
    const prompt = await pendingPrompt(place, deps);
    return throttled(admission.retryAfterSeconds, prompt ?? { step: 'password' });
  }
  let amr: string[] | undefined;
  if (form.method === 'totp' && form.code) {
    if (await checkTotp(user, form.code, deps)) amr = withSecondFactor(FACTOR_AMR.totp);
  } else if (form.method === 'recovery' && form.code) {
    if (await useRecoveryCode(user, form.code, deps)) amr = withSecondFactor(FACTOR_AMR.recoveryCode);
  } else if (form.method === 'passkey') {
    const credential = parseCredentialJson(form.credential);
    const assertion = credential && (await checkPasskey(user, credential, place.binding, deps));
    if (assertion) amr = withSecondFactor(assertion.amr);
  } else {
    return again('Enter a code, or use your passkey.', 400);
  }
  if (!amr) {
    await admission.failed();
    deps.logger.info({ clientId: place.clientId, userId: user.id, method: form.method }, 'second factor failed');
    deps.audit.emit(
      {
        type: 'signin.failed',
        reason: 'second_factor',
        subject: user.id,
        username: user.username,
        ...(place.clientId !== undefined && { clientId: place.clientId }),
        ...(place.reference !== undefined && { reference: place.reference }),
      },
      place.context,
    );
    return again(form.method === 'passkey' ? 'That passkey was not accepted.' : 'That code is not valid.', 401);
  }
  const session = await complete(place, user, amr, deps);
  if (!session) return EXPIRED;
  await admission.succeeded();
  auditSignedIn(deps, place, user, amr);
  return { kind: 'signed_in', session };
}

/** An enrolment form: `method` totp (with the confirming `code`) or passkey (with `credential` JSON, `name`). */
export interface EnrolForm extends FactorForm {
  name?: string;
}

/** The second step for a user who must have a factor and has none: enrol one, and be signed in with it. */
export async function enrolDuringSignIn(place: SignInPlace, form: EnrolForm, deps: SignInDeps): Promise<SignInOutcome> {
  const found = await loadPending(place, deps);
  if (!found || hasSecondFactor(found.user)) return EXPIRED;
  const { pending, user } = found;
  let enrolled: { user: UserRecord; amr: string[] } | undefined;
  if (form.method === 'totp' && form.code) {
    const saved = await confirmTotpEnrolment(user, pending.id, form.code, deps);
    if (saved) enrolled = { user: saved, amr: withSecondFactor(FACTOR_AMR.totp) };
  } else if (form.method === 'passkey') {
    const credential = parseCredentialJson(form.credential);
    const registered = credential && (await registerPasskey(user, credential, form.name, place.binding, deps));
    if (registered) {
      enrolled = { user: registered.user, amr: withSecondFactor(passkeyAmr(registered.credential.deviceType)) };
    }
  }
  if (!enrolled) {
    const error = form.method === 'passkey' ? 'The passkey was not registered.' : 'That code is not valid.';
    const prompt = await pendingPrompt(place, deps, error);
    return prompt ? { kind: 'prompt', prompt, status: 400 } : EXPIRED;
  }
  const session = await complete(place, enrolled.user, enrolled.amr, deps);
  if (!session) return EXPIRED;
  auditSignedIn(deps, place, enrolled.user, enrolled.amr);
  const recoveryCodes = enrolled.user.recoveryCodes ? undefined : await newRecoveryCodes(user.id, deps);
  deps.logger.info({ userId: user.id, method: form.method }, 'second factor enrolled during sign-in');
  return { kind: 'signed_in', session, ...(recoveryCodes && { recoveryCodes }) };
}

/** Forgets the pending sign-in (sign in as someone else, start over). */
export async function cancelSignIn(place: SignInPlace, deps: Pick<SignInDeps, 'storage'>): Promise<void> {
  await recordsOf(deps.storage, RECORD_KINDS.pendingSignIn).delete(pendingId(place));
}
