/**
 * Passkeys (WebAuthn Level 3) through @simplewebauthn/server: the options a browser passes to
 * navigator.credentials.create / get, and the checks of what it answers. The relying party is the issuer: its host
 * is the RP ID and its origin the only accepted origin. Challenges are the caller's to keep single-use (a record
 * taken once); this module only says which challenge an answer signed.
 */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { AMR } from './authentication.js';
import type { PasskeyCredential } from '../model/records.js';

/** The relying party a Gatehouse is: named after, and bound to, its issuer. */
export interface RelyingParty {
  /** RP ID: the issuer's host name. */
  id: string;
  /** The issuer's origin: the one origin a browser may answer from. */
  origin: string;
  name: string;
}

/** What navigator.credentials.get is given, as JSON (WebAuthn Level 3 PublicKeyCredentialRequestOptionsJSON). */
export type PasskeyRequestOptions = PublicKeyCredentialRequestOptionsJSON;
/** What navigator.credentials.create is given, as JSON. */
export type PasskeyCreationOptions = PublicKeyCredentialCreationOptionsJSON;

/** How long a browser may take to answer, ms (the challenge record lives as long). */
export const PASSKEY_TIMEOUT_MS = 5 * 60_000;

export function relyingPartyOf(issuer: string): RelyingParty {
  const url = new URL(issuer);
  return { id: url.hostname, origin: url.origin, name: `Gatehouse (${url.host})` };
}

const TRANSPORTS = new Set<string>(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

function transportsOf(credential: PasskeyCredential): AuthenticatorTransportFuture[] | undefined {
  const known = (credential.transports ?? []).filter((t) => TRANSPORTS.has(t)) as AuthenticatorTransportFuture[];
  return known.length > 0 ? known : undefined;
}

/** Options for navigator.credentials.create: a new passkey for `user`, none of those it already has. */
export function passkeyRegistrationOptions(
  rp: RelyingParty,
  user: { id: string; username: string; name?: string },
  existing: readonly PasskeyCredential[],
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: user.username,
    userDisplayName: user.name ?? user.username,
    userID: new TextEncoder().encode(user.id),
    timeout: PASSKEY_TIMEOUT_MS,
    attestationType: 'none',
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: transportsOf(c) })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
}

/** Options for navigator.credentials.get: an assertion by one of `credentials`. */
export function passkeyAuthenticationOptions(
  rp: RelyingParty,
  credentials: readonly PasskeyCredential[],
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  return generateAuthenticationOptions({
    rpID: rp.id,
    timeout: PASSKEY_TIMEOUT_MS,
    allowCredentials: credentials.map((c) => ({ id: c.id, transports: transportsOf(c) })),
    userVerification: 'preferred',
  });
}

/** The answer a browser posted, if it is a JSON object (what the passkey page's script sends). */
export function parseCredentialJson(text: string | undefined): Record<string, unknown> | undefined {
  if (!text || text.length > 64 * 1024) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The challenge a browser's answer signed (from its clientDataJSON), to find the record that issued it. */
export function challengeOf(response: Record<string, unknown>): string | undefined {
  const inner = response.response;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const clientData = (inner as Record<string, unknown>).clientDataJSON;
  if (typeof clientData !== 'string') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(clientData, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof parsed.challenge === 'string' ? parsed.challenge : undefined;
  } catch {
    return undefined;
  }
}

/** Checks a registration answer against `challenge`; the new credential, or undefined when it does not verify. */
export async function verifyPasskeyRegistration(
  rp: RelyingParty,
  response: Record<string, unknown>,
  challenge: string,
  name: string,
  now: number,
): Promise<PasskeyCredential | undefined> {
  try {
    const result = await verifyRegistrationResponse({
      response: response as unknown as RegistrationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      requireUserVerification: false,
    });
    if (!result.verified) return undefined;
    const info = result.registrationInfo;
    return {
      id: info.credential.id,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      ...(info.credential.transports?.length && { transports: [...info.credential.transports] }),
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      name,
      createdAt: now,
    };
  } catch {
    // Malformed, wrong origin, wrong RP, wrong challenge: all one answer.
    return undefined;
  }
}

/** What a verified assertion says about the passkey: its new counter and backup state, and the amr it earns. */
export interface PasskeyAssertion {
  credentialId: string;
  newCounter: number;
  deviceType: PasskeyCredential['deviceType'];
  backedUp: boolean;
  amr: string[];
}

/** Checks an assertion by one of `credentials` against `challenge`; undefined when it does not verify. */
export async function verifyPasskeyAssertion(
  rp: RelyingParty,
  response: Record<string, unknown>,
  challenge: string,
  credentials: readonly PasskeyCredential[],
): Promise<PasskeyAssertion | undefined> {
  const credential = credentials.find((c) => c.id === response.id);
  if (!credential) return undefined;
  try {
    const result = await verifyAuthenticationResponse({
      response: response as unknown as AuthenticationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      credential: {
        id: credential.id,
        publicKey: Buffer.from(credential.publicKey, 'base64url'),
        counter: credential.counter,
        transports: transportsOf(credential),
      },
      requireUserVerification: false,
    });
    if (!result.verified) return undefined;
    const info = result.authenticationInfo;
    return {
      credentialId: credential.id,
      newCounter: info.newCounter,
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      amr: passkeyAmr(info.credentialDeviceType),
    };
  } catch {
    // Includes a counter that went backwards (a cloned authenticator): refused like a bad signature.
    return undefined;
  }
}

/**
 * RFC 8176 values of a passkey assertion: a synced passkey's key is held in software (`swk`), a device-bound one in
 * hardware (`hwk`); every assertion proves user presence (`user`, WebAuthn requires the UP flag).
 */
export function passkeyAmr(deviceType: PasskeyCredential['deviceType']): string[] {
  return [deviceType === 'multiDevice' ? AMR.softwareKey : AMR.hardwareKey, AMR.userPresence];
}
