/**
 * How a user signed in, as ID tokens say it: `amr` (RFC 8176 method values) and `acr` (OIDC Core §2, values of our
 * own). The sign-in records the methods in the session; the code and the grant carry them, so an ID token minted at
 * a refresh says what the original sign-in said.
 */

/** RFC 8176 §2 values used here. */
export const AMR = {
  /** Password. */
  password: 'pwd',
  /** One-time password: a TOTP code (RFC 6238) or a single-use recovery code. */
  otp: 'otp',
  /** Proof of possession of a hardware-secured key: a device-bound passkey. */
  hardwareKey: 'hwk',
  /** Proof of possession of a software-secured key: a synced passkey. */
  softwareKey: 'swk',
  /** User presence test: every passkey assertion has it (WebAuthn UP flag). */
  userPresence: 'user',
  /** More than one factor (password plus one of the above). */
  multiFactor: 'mfa',
  /**
   * Signed in at an upstream identity provider (config `upstreams`), which did the authenticating. Not in the RFC 8176
   * registry (which has no value for it); the value Microsoft Entra ID uses for federated sign-ins.
   */
  federated: 'fed',
} as const;

/** The authentication context classes this server asserts (`acr`), advertised as `acr_values_supported`. */
export const ACR = {
  /** A password alone. */
  password: 'urn:gatehouse:acr:pwd',
  /** A password and a second factor (TOTP, passkey or recovery code). */
  multiFactor: 'urn:gatehouse:acr:mfa',
  /** At an upstream identity provider: how strongly is the upstream's to say (advertised only with upstreams). */
  federated: 'urn:gatehouse:acr:fed',
} as const;

export const ACR_VALUES_SUPPORTED: readonly string[] = [ACR.password, ACR.multiFactor];

/** What a record from before second factors existed means: every sign-in then was a password. */
export function amrOf(stored: readonly string[] | undefined): string[] {
  return stored && stored.length > 0 ? [...stored] : [AMR.password];
}

/** Whether the methods include a second factor. */
export function isMultiFactor(amr: readonly string[] | undefined): boolean {
  return amrOf(amr).includes(AMR.multiFactor);
}

/** Whether the sign-in happened at an upstream identity provider. */
export function isFederated(amr: readonly string[] | undefined): boolean {
  return amrOf(amr).includes(AMR.federated);
}

/** The methods of a password followed by a second factor's methods. */
export function withSecondFactor(factor: readonly string[]): string[] {
  return [AMR.password, ...factor, AMR.multiFactor];
}

/** The `amr` and `acr` claims of an ID token for a sign-in by `amr`. */
export function authenticationClaims(amr: readonly string[] | undefined): { amr: string[]; acr: string } {
  const methods = amrOf(amr);
  if (methods.includes(AMR.federated)) return { amr: methods, acr: ACR.federated };
  return { amr: methods, acr: methods.includes(AMR.multiFactor) ? ACR.multiFactor : ACR.password };
}
