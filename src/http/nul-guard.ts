/**
 * Refuses U+0000 anywhere in a request before a handler sees it. No OAuth value may contain it, PostgreSQL cannot
 * store it (a NUL reaching a query is an error there, while other stores would keep it), and C-string consumers of
 * logs and tokens truncate at it. Checked once after body parsing: path and query (raw or %00), form and JSON bodies
 * (decoded values and keys), and the decoded parts of a Basic header (RFC 6749 §2.3.1 form-encodes them).
 */
import type { FastifyRequest } from 'fastify';
import { parseBasicAuth } from '../core/client-auth.js';
import { InvalidRequest } from '../model/errors.js';

/** Throws invalid_request (400, never redirected) when the request carries a NUL character. */
export function refuseNulCharacters(request: FastifyRequest): void {
  if (!hasNul(request)) return;
  const err = new InvalidRequest('the request contains a NUL character (U+0000), which no parameter may hold');
  err.redirectable = false;
  throw err;
}

function hasNul(request: FastifyRequest): boolean {
  // In the raw URL a NUL is %00 (or, if a client sent it raw, itself); %2500 is a literal "%00" and stays allowed.
  if (request.url.includes('%00') || request.url.includes('\0')) return true;
  const authorization = request.headers.authorization;
  if (authorization !== undefined && /^basic /i.test(authorization)) {
    try {
      const { clientId, clientSecret } = parseBasicAuth(authorization);
      if (clientId.includes('\0') || clientSecret.includes('\0')) return true;
    } catch {
      // A malformed header is the endpoint's to refuse, with its own error.
    }
  }
  return valueHasNul(request.body);
}

/** Walks a parsed body (form params or JSON) without recursion, so deeply nested JSON cannot overflow the stack. */
function valueHasNul(body: unknown): boolean {
  const pending: unknown[] = [body];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\0')) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\0')) return true;
        pending.push(item);
      }
    }
  }
  return false;
}
