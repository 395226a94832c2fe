/**
 * Request parameter rules shared by every endpoint (RFC 6749 §3.1, §3.2): parameters without a value are treated
 * as omitted, and parameters must not be included more than once unless the spec says they repeat.
 */
import { InvalidRequest } from '../model/errors.js';

/** Raw parameters: every name with all of its values, as parsed at the HTTP edge. */
export type RawParams = Record<string, string[]>;

/** Collapses raw parameters to single values, keeping lists for `repeatable` names. Refuses duplicates. */
export function collapseParams(
  raw: RawParams,
  repeatable: readonly string[] = [],
): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = Object.create(null) as Record<
    string,
    string | string[] | undefined
  >;
  for (const [name, values] of Object.entries(raw)) {
    const present = values.filter((v) => v !== '');
    if (present.length === 0) continue;
    if (repeatable.includes(name)) {
      out[name] = present;
    } else if (present.length > 1) {
      throw new InvalidRequest(`parameter ${name} must not be included more than once`);
    } else {
      out[name] = present[0];
    }
  }
  return out;
}

/**
 * A required single-valued parameter of collapsed parameters (RFC 6749 §5.2, OAuth 2.1 §3.2.4): missing (or empty,
 * which collapseParams drops) is invalid_request, not invalid_grant — the grant was never presented.
 */
export function requiredParam(params: Record<string, string | string[] | undefined>, name: string): string {
  const value = params[name];
  if (Array.isArray(value) && value.length > 1)
    throw new InvalidRequest(`parameter ${name} must not be included more than once`);
  const one = Array.isArray(value) ? value[0] : value;
  if (one === undefined || one === '') throw new InvalidRequest(`${name} is required`);
  return one;
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1 b64token syntax), else undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = authorization ? /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim()) : null;
  return m ? m[1] : undefined;
}

/** Parses an application/x-www-form-urlencoded string or a query string into raw parameters. */
export function parseRawParams(text: string): RawParams {
  const out: RawParams = Object.create(null) as RawParams;
  for (const [k, v] of new URLSearchParams(text)) {
    (out[k] ??= []).push(v);
  }
  return out;
}
