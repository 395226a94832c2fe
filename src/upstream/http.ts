/**
 * Calls to an upstream: every one under a deadline (the whole exchange, body included), bodies read up to a size
 * limit, no redirects followed, and failures as UpstreamError naming the upstream and the endpoint (its URL without
 * query, fragment or userinfo). An operator configured the upstream, so private and loopback addresses are allowed.
 */
import { UpstreamError } from './provider.js';

/** Largest answer read (metadata, JWKS, tokens, userinfo), and largest error answer (only its `error` is wanted). */
export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_ERROR_BODY_BYTES = 8 * 1024;

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** A URL fit for messages and logs: scheme, host and path only (a query may carry a code or a token). */
export function safeUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/** Upstream-chosen text for a message: printable, short. */
export function upstreamText(value: unknown, max = 200): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const clean = (text ?? '').replace(/[^\x20-\x7E]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

export interface UpstreamCaller {
  /** `upstream "<id>"`, the start of every message. */
  label: string;
  fetch: FetchLike;
  timeoutMs: number;
}

export interface UpstreamAnswer {
  status: number;
  headers: Headers;
  /** The body as text; for an error status at most MAX_ERROR_BODY_BYTES of it. */
  text: string;
}

const isTimeout = (err: unknown) => err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');

/** The network-level reason, e.g. ECONNREFUSED, without anything the request carried. */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return upstreamText(cause.message, 120);
  return err instanceof Error ? upstreamText(err.message, 120) : 'network error';
}

async function readLimited(res: Response, limit: number, truncate: boolean): Promise<string | undefined> {
  const declared = Number(res.headers.get('content-length'));
  if (!truncate && Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      if (!truncate) return undefined;
      chunks.push(value.subarray(0, value.byteLength - (size - limit)));
      break;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * One call to `url` (`what` names the endpoint in messages). Throws UpstreamError('unavailable') when the upstream
 * cannot be reached, does not answer within the deadline, or sends more than the limit; any HTTP status is returned.
 * `signal` replaces the deadline (jose's JWKS fetch brings its own).
 */
export async function callUpstream(
  caller: UpstreamCaller,
  what: string,
  url: string,
  init: RequestInit = {},
): Promise<UpstreamAnswer> {
  const where = `${caller.label}: ${what} ${safeUrl(url)}`;
  const signal = init.signal ?? AbortSignal.timeout(caller.timeoutMs);
  try {
    const res = await caller.fetch(url, { ...init, signal, redirect: 'manual' });
    const ok = res.status >= 200 && res.status < 300;
    const text = await readLimited(res, ok ? MAX_BODY_BYTES : MAX_ERROR_BODY_BYTES, !ok);
    if (text === undefined) {
      throw new UpstreamError('unavailable', `${where} answered more than ${MAX_BODY_BYTES / 1024} KiB`);
    }
    return { status: res.status, headers: res.headers, text };
  } catch (err) {
    if (err instanceof UpstreamError) throw err;
    if (isTimeout(err)) {
      throw new UpstreamError('unavailable', `${where} did not answer within ${caller.timeoutMs} ms`, { cause: err });
    }
    throw new UpstreamError('unavailable', `${where} cannot be reached (${networkReason(err)})`, { cause: err });
  }
}

/** The answer's body as a JSON object, or undefined when it is not one. */
export function jsonObject(answer: UpstreamAnswer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(answer.text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The JSON body of a successful answer, whatever it is; UpstreamError('unavailable') when it is not JSON. */
export function jsonBody(caller: UpstreamCaller, what: string, url: string, answer: UpstreamAnswer): unknown {
  try {
    return JSON.parse(answer.text) as unknown;
  } catch (err) {
    throw new UpstreamError('unavailable', `${caller.label}: ${what} ${safeUrl(url)} answered malformed JSON`, {
      cause: err,
    });
  }
}

/** `error` (and `error_description`) of an OAuth error answer, for a message: ` (invalid_grant: ...)` or ''. */
export function oauthErrorOf(body: Record<string, unknown> | undefined, redact: string[] = []): string {
  if (!body || typeof body.error !== 'string') return '';
  let description = typeof body.error_description === 'string' ? upstreamText(body.error_description) : '';
  for (const secret of redact) if (secret) description = description.split(secret).join('[redacted]');
  return ` (${upstreamText(body.error, 60)}${description ? `: ${description}` : ''})`;
}
