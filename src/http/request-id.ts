/**
 * Request ids: a caller's (or proxy's) `X-Request-Id` is kept when it is short and plain, otherwise a fresh one is
 * made; it is returned on every response, bound to the request's log lines (`reqId`) and shown on error pages, so an
 * operator can find the log line of the error a user reports.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditRequestContext } from '../core/audit.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * What an incoming id may look like. Anything else (CRLF, quotes, markup, non-ASCII, very long) is replaced rather than
 * reflected into headers, logs and pages.
 */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify `genReqId`: the incoming id when it is safe (one header only), else a random UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** `onSend` hook: every response that goes through Fastify carries the id (404s, errors, redirects, preflights). */
export async function sendRequestId(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header(REQUEST_ID_HEADER, request.id);
}

/**
 * What audit events emitted while serving a request carry: its id, address and user agent, read only when an event is
 * emitted. One small object holding the request; the routes pass it explicitly to what they call (core/audit.ts).
 */
class RequestAuditContext implements AuditRequestContext {
  readonly #request: FastifyRequest;

  constructor(request: FastifyRequest) {
    this.#request = request;
  }

  get requestId(): string {
    return this.#request.id;
  }

  get ip(): string {
    return this.#request.ip;
  }

  get userAgent(): string | undefined {
    const ua = this.#request.headers['user-agent'];
    return typeof ua === 'string' ? ua : undefined;
  }
}

/** The audit context of `request`, for what the route calls to emit (core/audit.ts `emit(event, context)`). */
export function auditContextOf(request: FastifyRequest): AuditRequestContext {
  return new RequestAuditContext(request);
}
