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

const AUDIT_CONTEXT = Symbol('gatehouse.auditContext');

/** What audit events emitted while serving `request` carry (read when an event is emitted; one object per request). */
export function auditContextOf(request: FastifyRequest): AuditRequestContext {
  const holder = request as unknown as Record<symbol, AuditRequestContext | undefined>;
  let context = holder[AUDIT_CONTEXT];
  if (!context) {
    context = {
      requestId: request.id,
      get ip() {
        return request.ip;
      },
      get userAgent() {
        const ua = request.headers['user-agent'];
        return typeof ua === 'string' ? ua : undefined;
      },
    };
    holder[AUDIT_CONTEXT] = context;
  }
  return context;
}
