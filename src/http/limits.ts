/**
 * HTTP server limits (config `http`): how long a connection may take to send its request, sit idle, or be reused.
 * Fastify's `requestTimeout` defaults to 0, which turns Node's own 300 s limit off, so without these a client that
 * sends its headers and then trickles (or never sends) the body holds a socket and a file descriptor forever.
 */
import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config/schema.js';

/** The Fastify() options that bound connections. */
export function serverLimitOptions(limits: Config['http']): Pick<
  FastifyServerOptions,
  'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout' | 'maxRequestsPerSocket'
> & { http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } } {
  return {
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    // Passed to http.createServer (Fastify has no option for headersTimeout). Node enforces both timeouts only when
    // it sweeps its connections (every 30 s by default), so sweep often enough for the limits to mean what they say.
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4))),
    },
  };
}
