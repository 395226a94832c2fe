/** Scope algebra (RFC 6749 §3.3): space-delimited sets, narrowing to what a client may have. */
import { InvalidScope } from '../model/errors.js';

/**
 * The scope that opens the admin API to a client_credentials token (http/routes/admin.ts). Only config-file clients
 * may hold it: dynamic registration refuses it, and the admin API checks the token's client is a config-file one.
 */
export const ADMIN_SCOPE = 'gatehouse:admin';

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
 * A client's scope allow-list: `undefined` = none set (every scope the server supports may be asked for), `[]` = the
 * client may have no scope at all. The two must never be confused: an empty list never widens to "everything".
 */
export type ScopeAllowList = readonly string[] | undefined;

/**
 * Decides the scopes of an authorization or client_credentials request.
 * - `requested` empty: the client's default (its allow-list, minus offline_access which must be asked for).
 * - A scope the server does not know, or one outside the client's allow-list, is refused with invalid_scope
 *   (RFC 6749 §5.2) naming it, unless `strict` is false: then it is narrowed away (RFC 6749 §3.3 lets the AS issue less).
 */
export function resolveRequestedScopes(
  requested: readonly string[],
  clientAllowed: ScopeAllowList,
  serverSupported: readonly string[],
  strict: boolean,
): string[] {
  const allowed = clientAllowed === undefined ? [...serverSupported] : intersectScopes(clientAllowed, serverSupported);
  if (requested.length === 0) return allowed.filter((s) => s !== 'offline_access');
  const granted = intersectScopes(requested, allowed);
  if (strict && granted.length !== requested.length) {
    const known = new Set(serverSupported);
    const unknown = requested.filter((s) => !known.has(s));
    const notAllowed = requested.filter((s) => known.has(s) && !granted.includes(s));
    const problems: string[] = [];
    if (unknown.length > 0) {
      problems.push(
        `scope not known to this server: ${unknown.join(' ')} (the server's "scopes" setting declares the scopes it knows)`,
      );
    }
    if (notAllowed.length > 0) problems.push(`scope not allowed for this client: ${notAllowed.join(' ')}`);
    throw new InvalidScope(problems.join('; '));
  }
  return granted;
}

/** For parameters that must be a single scope string (refresh narrowing). */
export function requireScopeSubset(requested: readonly string[], granted: readonly string[]): void {
  const held = new Set(granted);
  const extra = requested.filter((s) => !held.has(s));
  if (extra.length > 0) {
    // Names what is missing so a client knows to send a new authorization request rather than retry the refresh.
    throw new InvalidScope(
      `requested scope exceeds the scope originally granted (not granted: ${extra.join(' ')}); a refresh cannot add scope, send a new authorization request`,
    );
  }
}
