/** Resource indicators, RFC 8707: absolute URIs without a fragment, optionally mapped to configured resources. */
import { InvalidTarget } from '../model/errors.js';

/**
 * Validates `resource` values (RFC 8707 §2) and maps each to its configured canonical form when it differs from
 * one only by a trailing slash (clients disagree on `https://mcp.example.com` vs `https://mcp.example.com/`) or by the
 * case of its scheme and host.
 * When `allowed` is non-empty, any other resource is refused with invalid_target.
 */
export function resolveResources(values: readonly string[], allowed: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new InvalidTarget('resource must be an absolute URI');
    }
    if (value.includes('#')) throw new InvalidTarget('resource must not contain a fragment');
    if (url.protocol !== 'https:' && url.protocol !== 'http:' && !value.includes(':')) {
      throw new InvalidTarget('resource must be an absolute URI');
    }
    const canonical = canonicalResource(value, allowed);
    if (canonical === undefined)
      throw new InvalidTarget(`resource is not served by this authorization server: ${value}`);
    if (!out.includes(canonical)) out.push(canonical);
  }
  return out;
}

function canonicalResource(value: string, allowed: readonly string[]): string | undefined {
  if (allowed.length === 0) return value;
  // MCP (canonical server URI): scheme and host are case-insensitive, so an upper-case spelling maps too.
  for (const candidate of new Set([value, lowerSchemeAndHost(value)])) {
    if (allowed.includes(candidate)) return candidate;
    const alt = candidate.endsWith('/') ? candidate.slice(0, -1) : `${candidate}/`;
    if (allowed.includes(alt)) return alt;
  }
  return undefined;
}

/** `HTTPS://MCP.Example.COM/Path` -> `https://mcp.example.com/Path`: only the scheme and authority (no userinfo). */
function lowerSchemeAndHost(value: string): string {
  return value.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#@]*(?=[/?#]|$)/i, (prefix) => prefix.toLowerCase());
}
