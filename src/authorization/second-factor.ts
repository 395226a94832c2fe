/**
 * A user's second factors: TOTP (RFC 6238), passkeys (WebAuthn) and recovery codes, checked and changed here for the
 * sign-in steps (sign-in.ts) and the account page (account.ts) alike. What must hold across replicas is the store's:
 * each TOTP time step and each recovery code passes once per user (the replay guard), each WebAuthn challenge is
 * taken once (an expiring record). TOTP secrets are sealed with `encryptionKey` when it is set; recovery codes are
 * kept as keyed hashes only.
 */
import { randomBytes } from 'node:crypto';
import { base32Encode, newTotpSecret, otpauthUri, verifyTotp } from '../core/totp.js';
import { hashToken, keyedHash, randomId, safeEqual } from '../core/crypto.js';
import { openStored } from '../core/sealing.js';
import { AMR } from '../core/authentication.js';
import {
  challengeOf,
  PASSKEY_TIMEOUT_MS,
  passkeyAuthenticationOptions,
  passkeyRegistrationOptions,
  relyingPartyOf,
  verifyPasskeyAssertion,
  verifyPasskeyRegistration,
  type PasskeyAssertion,
} from '../core/passkeys.js';
import type { Deps } from '../context.js';
import type { ExpiringRecordStore, ReplayGuard, UserStore } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { PasskeyCredential, UserRecord, WebAuthnChallengeRecord } from '../model/records.js';

/** What checking and changing factors uses. */
export type SecondFactorDeps = Pick<Deps, 'clock' | 'config' | 'pepper' | 'sealer'> & {
  storage: Pick<UserStore, 'getUser' | 'saveUser'> & ReplayGuard & ExpiringRecordStore;
};

/** TOTP: the current step and one either side (RFC 6238 §5.2), 30 s steps. */
const TOTP_WINDOW = 1;
const TOTP_PERIOD_SECONDS = 30;
/** How many recovery codes a set has. */
export const RECOVERY_CODE_COUNT = 10;
/** A used recovery code is remembered this long by the replay guard (its hash also leaves the user record). */
const RECOVERY_CODE_MEMORY_MS = 10 * 365 * 24 * 3600_000;
/** How long a shown TOTP secret waits for its confirming code. */
const TOTP_ENROLMENT_TTL_MS = 15 * 60_000;

/** The user has a factor to sign in with (recovery codes alone are only its backup). */
export function hasSecondFactor(user: UserRecord): boolean {
  return user.totp !== undefined || (user.passkeys?.length ?? 0) > 0;
}

/** The user must sign in with a second factor: they have one, or they (or everyone) must have one. */
export function needsSecondFactor(user: UserRecord, config: Deps['config']): boolean {
  return hasSecondFactor(user) || user.mfaRequired === true || config.mfa.required;
}

/** Whether the user must keep at least one factor (removing the last one is refused then). */
export function mfaRequiredFor(user: UserRecord, config: Deps['config']): boolean {
  return user.mfaRequired === true || config.mfa.required;
}

/** Re-reads the user and saves `change(user)`: narrows lost updates to the read-to-write gap (no compare-and-set). */
async function updateUser(
  userId: string,
  change: (user: UserRecord) => UserRecord,
  deps: SecondFactorDeps,
): Promise<UserRecord | undefined> {
  const current = await deps.storage.getUser(userId);
  if (!current) return undefined;
  const next = { ...change(current), updatedAt: deps.clock.now() };
  await deps.storage.saveUser(next);
  return next;
}

// ---- TOTP ----

const totpAad = (userId: string) => `totp:${userId}`;

function sealTotpSecret(secret: string, userId: string, deps: Pick<Deps, 'sealer'>): string {
  return deps.sealer ? deps.sealer.seal(secret, totpAad(userId)) : secret;
}

function openTotpSecret(stored: string, userId: string, deps: Pick<Deps, 'sealer'>): string {
  return openStored(stored, deps.sealer, totpAad(userId), `the TOTP secret of user ${userId}`).value;
}

/** Checks `code` against `secret` and spends its time step for the user: each step passes once, on any replica. */
async function spendTotpCode(userId: string, secret: string, code: string, deps: SecondFactorDeps): Promise<boolean> {
  const step = verifyTotp(secret, code, deps.clock.now(), { window: TOTP_WINDOW, periodSeconds: TOTP_PERIOD_SECONDS });
  if (step === undefined) return false;
  // Remembered until the step can no longer be accepted (the window's last step has passed).
  const until = (step + TOTP_WINDOW + 1) * TOTP_PERIOD_SECONDS * 1000;
  return deps.storage.firstUse(`totp:${hashToken(`${userId}:${step}`)}`, until);
}

/** A TOTP code from the user's authenticator app, each time step once. */
export async function checkTotp(user: UserRecord, code: string, deps: SecondFactorDeps): Promise<boolean> {
  if (!user.totp) return false;
  return spendTotpCode(user.id, openTotpSecret(user.totp.secret, user.id, deps), code, deps);
}

/** A TOTP secret being enrolled, as shown to the user. */
export interface TotpEnrolment {
  secret: string;
  /** otpauth:// URI (Key Uri Format): what an app scans or is given. */
  uri: string;
}

/** The id a TOTP enrolment is kept under for `context` (a pending sign-in's id, or `session:<id>`). */
function enrolmentId(context: string): string {
  return hashToken(`totp-enrolment:${context}`);
}

/** The secret being enrolled in `context`, the same on every reload until it is confirmed or expires. */
export async function startTotpEnrolment(
  user: UserRecord,
  context: string,
  deps: SecondFactorDeps,
): Promise<TotpEnrolment> {
  const records = recordsOf(deps.storage, RECORD_KINDS.totpEnrolment);
  const id = enrolmentId(context);
  const existing = await records.get(id);
  let secret: string;
  if (existing && existing.userId === user.id) {
    secret = openTotpSecret(existing.secret, user.id, deps);
  } else {
    secret = newTotpSecret();
    const expiresAt = deps.clock.now() + TOTP_ENROLMENT_TTL_MS;
    await records.put({ id, userId: user.id, secret: sealTotpSecret(secret, user.id, deps), expiresAt });
  }
  return { secret, uri: otpauthUri(secret, new URL(deps.config.issuer).host, user.username) };
}

/**
 * Finishes the enrolment of `context` when `code` is right for its secret: the user's TOTP factor is (re)placed.
 * Returns the updated user, or undefined for a wrong code or no enrolment.
 */
export async function confirmTotpEnrolment(
  user: UserRecord,
  context: string,
  code: string,
  deps: SecondFactorDeps,
): Promise<UserRecord | undefined> {
  const records = recordsOf(deps.storage, RECORD_KINDS.totpEnrolment);
  const id = enrolmentId(context);
  const enrolment = await records.get(id);
  if (!enrolment || enrolment.userId !== user.id) return undefined;
  const secret = openTotpSecret(enrolment.secret, user.id, deps);
  if (!(await spendTotpCode(user.id, secret, code, deps))) return undefined;
  // Taken once: two confirmations racing enrol one secret.
  if (!(await records.take(id))) return undefined;
  const now = deps.clock.now();
  return updateUser(
    user.id,
    (u) => ({ ...u, totp: { secret: sealTotpSecret(secret, u.id, deps), createdAt: now } }),
    deps,
  );
}

// ---- recovery codes ----

/** Recovery codes as typed: case, spaces and dashes do not matter. */
function normalizeRecoveryCode(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

function recoveryCodeHash(pepper: string, userId: string, batch: string, code: string): string {
  return keyedHash(pepper, `recovery-code:${userId}:${batch}:${normalizeRecoveryCode(code)}`);
}

/**
 * A new set of recovery codes for the user, replacing any earlier set. The codes are returned to be shown once; the
 * store keeps keyed hashes. Each is 80 random bits, base32, as XXXX-XXXX-XXXX-XXXX.
 */
export async function newRecoveryCodes(userId: string, deps: SecondFactorDeps): Promise<string[]> {
  const batch = randomId();
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () =>
    base32Encode(randomBytes(10)).match(/.{4}/g)!.join('-'),
  );
  const hashes = codes.map((c) => recoveryCodeHash(deps.pepper, userId, batch, c));
  const saved = await updateUser(
    userId,
    (u) => ({ ...u, recoveryCodes: { batch, hashes, createdAt: deps.clock.now() } }),
    deps,
  );
  return saved ? codes : [];
}

/**
 * Uses one recovery code. It passes once even when two replicas race (the replay guard decides), and its hash then
 * leaves the user record.
 */
export async function useRecoveryCode(user: UserRecord, code: string, deps: SecondFactorDeps): Promise<boolean> {
  const set = user.recoveryCodes;
  if (!set || !normalizeRecoveryCode(code)) return false;
  const hash = recoveryCodeHash(deps.pepper, user.id, set.batch, code);
  let known = false;
  for (const h of set.hashes) if (safeEqual(h, hash)) known = true;
  if (!known) return false;
  if (!(await deps.storage.firstUse(`recovery-code:${hash}`, deps.clock.now() + RECOVERY_CODE_MEMORY_MS))) return false;
  await updateUser(
    user.id,
    (u) =>
      u.recoveryCodes?.batch === set.batch
        ? { ...u, recoveryCodes: { ...u.recoveryCodes, hashes: u.recoveryCodes.hashes.filter((h) => h !== hash) } }
        : u,
    deps,
  );
  return true;
}

// ---- passkeys ----

const challenges = (deps: SecondFactorDeps) => recordsOf(deps.storage, RECORD_KINDS.webauthnChallenge);

/** Keeps a challenge handed to `binding`'s browser for `user` until the browser answers (or it expires). */
async function keepChallenge(
  user: UserRecord,
  purpose: WebAuthnChallengeRecord['purpose'],
  challenge: string,
  binding: string,
  deps: SecondFactorDeps,
): Promise<void> {
  await challenges(deps).put({
    id: hashToken(challenge),
    userId: user.id,
    purpose,
    challenge,
    browserBinding: binding,
    expiresAt: deps.clock.now() + PASSKEY_TIMEOUT_MS,
  });
}

/** Takes the challenge an answer signed: once, and only for the user, purpose and browser it was handed to. */
async function takeChallenge(
  user: UserRecord,
  purpose: WebAuthnChallengeRecord['purpose'],
  response: Record<string, unknown>,
  binding: string,
  deps: SecondFactorDeps,
): Promise<string | undefined> {
  const challenge = challengeOf(response);
  if (!challenge) return undefined;
  const record = await challenges(deps).take(hashToken(challenge));
  if (!record || record.userId !== user.id || record.purpose !== purpose) return undefined;
  if (!safeEqual(record.browserBinding, binding)) return undefined;
  return record.challenge;
}

/** Options for signing in with one of the user's passkeys (navigator.credentials.get). */
export async function passkeySignInOptions(user: UserRecord, binding: string, deps: SecondFactorDeps) {
  const options = await passkeyAuthenticationOptions(relyingPartyOf(deps.config.issuer), user.passkeys ?? []);
  await keepChallenge(user, 'authenticate', options.challenge, binding, deps);
  return options;
}

/** Checks a passkey assertion of the user; its counter is recorded. Undefined when it does not verify. */
export async function checkPasskey(
  user: UserRecord,
  response: Record<string, unknown>,
  binding: string,
  deps: SecondFactorDeps,
): Promise<PasskeyAssertion | undefined> {
  const challenge = await takeChallenge(user, 'authenticate', response, binding, deps);
  if (!challenge) return undefined;
  const rp = relyingPartyOf(deps.config.issuer);
  const assertion = await verifyPasskeyAssertion(rp, response, challenge, user.passkeys ?? []);
  if (!assertion) return undefined;
  const now = deps.clock.now();
  await updateUser(
    user.id,
    (u) => ({
      ...u,
      passkeys: (u.passkeys ?? []).map((p) =>
        p.id === assertion.credentialId
          ? { ...p, counter: assertion.newCounter, backedUp: assertion.backedUp, lastUsedAt: now }
          : p,
      ),
    }),
    deps,
  );
  return assertion;
}

/** Options for registering a new passkey (navigator.credentials.create). */
export async function passkeyRegistration(user: UserRecord, binding: string, deps: SecondFactorDeps) {
  const options = await passkeyRegistrationOptions(relyingPartyOf(deps.config.issuer), user, user.passkeys ?? []);
  await keepChallenge(user, 'register', options.challenge, binding, deps);
  return options;
}

/** Registers the passkey a browser created; returns the updated user, or undefined when it does not verify. */
export async function registerPasskey(
  user: UserRecord,
  response: Record<string, unknown>,
  name: string | undefined,
  binding: string,
  deps: SecondFactorDeps,
): Promise<{ user: UserRecord; credential: PasskeyCredential } | undefined> {
  const challenge = await takeChallenge(user, 'register', response, binding, deps);
  if (!challenge) return undefined;
  const now = deps.clock.now();
  const label = name?.trim().slice(0, 100) || `Passkey added ${new Date(now).toISOString().slice(0, 10)}`;
  const credential = await verifyPasskeyRegistration(
    relyingPartyOf(deps.config.issuer),
    response,
    challenge,
    label,
    now,
  );
  if (!credential) return undefined;
  const saved = await updateUser(
    user.id,
    (u) => ({ ...u, passkeys: [...(u.passkeys ?? []).filter((p) => p.id !== credential.id), credential] }),
    deps,
  );
  return saved && { user: saved, credential };
}

// ---- removal ----

/** Removes the TOTP factor or one passkey; with no factor left, the recovery codes go too (they back up factors). */
export async function removeFactor(
  userId: string,
  factor: { kind: 'totp' } | { kind: 'passkey'; id: string },
  deps: SecondFactorDeps,
): Promise<UserRecord | undefined> {
  return updateUser(
    userId,
    (u) => {
      const { totp, passkeys, recoveryCodes, ...rest } = u;
      const keptTotp = factor.kind === 'totp' ? undefined : totp;
      const keptPasskeys = (passkeys ?? []).filter((p) => factor.kind !== 'passkey' || p.id !== factor.id);
      const next: UserRecord = { ...rest };
      if (keptTotp) next.totp = keptTotp;
      if (keptPasskeys.length > 0) next.passkeys = keptPasskeys;
      if (recoveryCodes && hasSecondFactor(next)) next.recoveryCodes = recoveryCodes;
      return next;
    },
    deps,
  );
}

/** The amr of a second factor of each kind (the passkey's own depends on the credential: core/passkeys). */
export const FACTOR_AMR = { totp: [AMR.otp], recoveryCode: [AMR.otp] } as const;
