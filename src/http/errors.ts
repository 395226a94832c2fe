/**
 * The one mapper from thrown errors to HTTP responses: OAuth errors become RFC 6749 §5.2 JSON with no-store (or the
 * error page on the browser-facing paths); an unreachable store becomes 503 temporarily_unavailable with Retry-After;
 * anything else is a server_error that reveals nothing (the cause goes to the log). Fastify's own routing errors
 * (malformed URL, over-long path parameter) come here too, via the `frameworkErrors` option.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  InvalidRequest,
  OAuthError,
  ServerError,
  StorageUnavailableError,
  TemporarilyUnavailable,
} from '../model/errors.js';
import { PAGE_HEADERS } from '../ui/html.js';
import { errorPage } from '../ui/pages.js';
import { REQUEST_ID_HEADER } from './request-id.js';

/** Tracks the store's reachability so a failure is logged once per state change, not once per request. */
export class StoreStatus {
  private down = false;
  constructor(private readonly logger: Logger) {}
  failed(err: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger.error({ err: describe(err) }, 'storage unreachable; answering 503 until it recovers');
  }
  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    this.logger.info('storage reachable again');
  }
  get isDown(): boolean {
    return this.down;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Converts framework errors (bad body, wrong media type, too large) to OAuth errors. */
export function toOAuthError(err: unknown, retryAfterSeconds: number): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof StorageUnavailableError) return new TemporarilyUnavailable(retryAfterSeconds, { cause: err });
  const code = (err as { code?: string }).code;
  const status = (err as { statusCode?: number }).statusCode;
  // Descriptions never echo the URL or body: they may carry codes or tokens, and the client knows what it sent.
  switch (code) {
    case 'FST_ERR_BAD_URL':
      return new InvalidRequest('the request URL is malformed');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return withStatus(new InvalidRequest('a path segment of the request URL is too long'), 414);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return withStatus(new InvalidRequest('the request body is too large'), 413);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return withStatus(new InvalidRequest('unsupported content type'), 415);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new InvalidRequest('the request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new InvalidRequest('invalid content length');
  }
  if (err instanceof SyntaxError && status === 400) return new InvalidRequest('the request body is not valid JSON');
  if (status !== undefined && status >= 400 && status < 500)
    return withStatus(new InvalidRequest('malformed request'), status);
  return new ServerError(describe(err), { cause: err });
}

function withStatus(error: OAuthError, status: number): OAuthError {
  Object.defineProperty(error, 'status', { value: status });
  return error;
}

/** Sends an OAuth error as JSON (never a stack trace). */
export function sendOAuthError(reply: FastifyReply, error: OAuthError): FastifyReply {
  reply.code(error.status).header('cache-control', 'no-store').header('pragma', 'no-cache');
  for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
  return reply.type('application/json').send(JSON.stringify(error.toJSON()));
}

/**
 * Fastify error handler (also its `frameworkErrors`): logs unexpected errors with their cause, maps everything to
 * OAuth JSON, or to the error page when `isPage` says the request came from a browser page (authorize, interaction).
 */
export function makeErrorHandler(
  storeStatus: StoreStatus,
  retryAfterSeconds: number,
  isPage: (request: FastifyRequest) => boolean = () => false,
  /** The issuer's branded, localised error page; default the plain one. */
  renderPage: (request: FastifyRequest, error: OAuthError) => { html: string; headers: Record<string, string> } = (
    request,
    error,
  ) => ({ html: errorPage(error, request.id), headers: PAGE_HEADERS }),
) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const error = toOAuthError(err, retryAfterSeconds);
    // Also here for replies that skip the onSend hooks (Fastify's frameworkErrors).
    reply.header(REQUEST_ID_HEADER, request.id);
    if (err instanceof StorageUnavailableError) storeStatus.failed(err);
    // A deliberate refusal with a 5xx status (e.g. a full client registry) is not a failure worth a stack trace.
    else if (error.code === 'server_error')
      request.log.error({ err, url: request.routeOptions?.url, detail: error.detail }, 'request failed');
    if (isPage(request)) {
      const page = renderPage(request, error);
      reply.code(error.status).headers({ ...page.headers, ...error.headers });
      return reply.send(page.html);
    }
    return sendOAuthError(reply, error);
  };
}
