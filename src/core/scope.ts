/** Scope algebra (RFC 6749 §3.3): space-delimited sets, narrowing to what a client may have. */
import { InvalidScope } from './errors.js';

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Parses a scope string into a de-duplicated list in request order. Throws on illegal characters. */
export function parseScope(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const out: string[] = [];
  for (const token of raw.split(' ')) {
    if (token === '') continue;
    if (!SCOPE_TOKEN.test(token)) throw new InvalidScope(`scope contains an illegal character`);
    if (!out.includes(token)) out.push(token);
  }
  return out;
}

/** Serializes a scope list. */
export function formatScope(scopes: readonly string[]): string {
  return scopes.join(' ');
}

/** Elements of `requested` that are in `allowed`. */
export function intersectScopes(requested: readonly string[], allowed: readonly string[]): string[] {
  const allow = new Set(allowed);
  return requested.filter((s) => allow.has(s));
}

/** True when every element of `subset` is in `superset`. */
export function isSubset(subset: readonly string[], superset: readonly string[]): boolean {
  const sup = new Set(superset);
  return subset.every((s) => sup.has(s));
}

/** Union preserving order of first appearance. */
export function unionScopes(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}

/**
 * Decides the scopes of an authorization request.
 * - `requested` empty: the client's default (its allow-list, minus offline_access which must be asked for).
 * - Unknown or not-allowed scopes are narrowed away (RFC 6749 §3.3 lets the AS issue less), unless `strict`.
 */
export function resolveRequestedScopes(
  requested: readonly string[],
  clientAllowed: readonly string[],
  serverSupported: readonly string[],
  strict: boolean,
): string[] {
  const allowed = clientAllowed.length > 0 ? intersectScopes(clientAllowed, serverSupported) : [...serverSupported];
  if (requested.length === 0) return allowed.filter((s) => s !== 'offline_access');
  const granted = intersectScopes(requested, allowed);
  if (strict && granted.length !== requested.length) {
    const refused = requested.filter((s) => !granted.includes(s));
    throw new InvalidScope(`scope not allowed for this client: ${refused.join(' ')}`);
  }
  return granted;
}

/** For parameters that must be a single scope string (refresh narrowing). */
export function requireScopeSubset(requested: readonly string[], granted: readonly string[]): void {
  if (!isSubset(requested, granted)) {
    throw new InvalidScope('requested scope exceeds the scope originally granted');
  }
}
