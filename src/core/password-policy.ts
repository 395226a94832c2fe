/**
 * What a new local password must satisfy (NIST SP 800-63B §3.1.1.2): a minimum length, a generous maximum, not the
 * username, and not on a deny list of known-breached passwords when the operator provides one. No composition rules
 * (they make passwords worse, not stronger). Checked when a password is set, never at sign-in.
 */

export interface PasswordPolicy {
  /** Fewest characters (Unicode code points after NFC), default 12. */
  minLength: number;
  /** Most characters, default 256: scrypt's input stays bounded. */
  maxLength: number;
  /** Known-breached or common passwords, compared case-insensitively. */
  denyList?: ReadonlySet<string>;
}

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = { minLength: 12, maxLength: 256 };

/** Why a password is refused, in words fit for the person choosing it; undefined when it is acceptable. */
export function passwordProblem(password: string, policy: PasswordPolicy, username?: string): string | undefined {
  const normalized = password.normalize('NFC');
  const length = [...normalized].length;
  if (length < policy.minLength) return `use at least ${policy.minLength} characters`;
  if (length > policy.maxLength) return `use at most ${policy.maxLength} characters`;
  if (/^\s|\s$/.test(normalized)) return 'do not start or end the password with a space';
  const folded = normalized.toLowerCase();
  if (username !== undefined && folded === username.normalize('NFC').toLowerCase()) {
    return 'do not use your username as the password';
  }
  if (new Set(normalized).size === 1) return 'do not repeat one character';
  if (policy.denyList?.has(folded)) return 'this password is known from data breaches: choose another';
  return undefined;
}

/** A deny list from a file's text: one password per line, blank lines and `#` comments ignored. */
export function parseDenyList(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const entry = line.trim();
    if (entry && !entry.startsWith('#')) out.add(entry.normalize('NFC').toLowerCase());
  }
  return out;
}

/** The policy of the `passwordPolicy` setting; `readFile` reads the deny list when one is named. */
export function passwordPolicyFrom(
  setting: { minLength: number; maxLength: number; denyListFile?: string },
  readFile: (path: string) => string,
): PasswordPolicy {
  const policy: PasswordPolicy = { minLength: setting.minLength, maxLength: setting.maxLength };
  if (setting.denyListFile !== undefined) policy.denyList = parseDenyList(readFile(setting.denyListFile));
  return policy;
}
