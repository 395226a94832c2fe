/**
 * HTTP server limits (config `http`): how long a connection may take to send its request, sit idle, or be reused.
 * Fastify's `requestTimeout` defaults to 0, which turns Node's own 300 s limit off, so without these a client that
 * sends its headers and then trickles (or never sends) the body holds a socket and a file descriptor forever.
 */
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config/schema.js';

/** Status and description for an error Node raises before there is a request (Fastify's clientErrorHandler). */
function clientErrorResponse(code: string | undefined): { status: string; description: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return { status: '408 Request Timeout', description: 'the request was not received in time' };
  if (code === 'HPE_HEADER_OVERFLOW')
    return { status: '431 Request Header Fields Too Large', description: 'the request headers are too large' };
  return { status: '400 Bad Request', description: 'the request is not valid HTTP' };
}

/**
 * Answers connection-level errors (timeouts, unparsable HTTP, oversized headers) as RFC 6749 JSON with no-store, as
 * every other error, then closes the socket. Nothing of the request is echoed.
 */
function oauthClientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, description } = clientErrorResponse(err.code);
  const body = JSON.stringify({ error: 'invalid_request', error_description: description });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/** The Fastify() options that bound connections. */
export function serverLimitOptions(
  limits: Config['http'],
): Pick<
  FastifyServerOptions,
  'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout' | 'maxRequestsPerSocket' | 'clientErrorHandler'
> & { http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } } {
  return {
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    clientErrorHandler: oauthClientErrorHandler,
    // Passed to http.createServer (Fastify has no option for headersTimeout). Node enforces both timeouts only when
    // it sweeps its connections (every 30 s by default), so sweep often enough for the limits to mean what they say.
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(
        30_000,
        Math.max(100, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
      ),
    },
  };
}
