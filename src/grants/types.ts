/** What every grant module exports, and what the token endpoint returns (RFC 6749 §5.1). */
import type { Deps } from '../context.js';
import type { ClientRecord } from '../storage/types.js';

/** RFC 6749 §5.1 successful token response. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
}

/** Form parameters after the HTTP edge rejected duplicates: single values, or lists for repeatable ones. */
export type TokenParams = Record<string, string | string[] | undefined>;

/** A grant type handler: parses its own parameters and returns a token response; writes no HTTP. */
export interface GrantHandler {
  grantType: string;
  /** Parameters that may appear more than once (e.g. RFC 8707 `resource`). */
  repeatableParams: readonly string[];
  /** True if public clients (auth method `none`) may use it. */
  allowsPublicClients: boolean;
  handle(params: TokenParams, client: ClientRecord, deps: Deps): Promise<TokenResponse>;
}

/** Reads a single-valued parameter. */
export function single(params: TokenParams, name: string): string | undefined {
  const v = params[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a repeatable parameter as a list. */
export function list(params: TokenParams, name: string): string[] {
  const v = params[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}
