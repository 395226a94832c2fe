/**
 * `gatehouse/resource`: what a resource server (MCP server, API) needs to accept Gatehouse access tokens —
 * RFC 9068 JWT / RFC 7662 introspection verification with RFC 8707 audience binding, RFC 6750 challenges,
 * RFC 9728 protected-resource metadata, Express / Fastify / fetch middleware, and RFC 8693 token exchange (the user's
 * upstream token for a tool, in one call).
 */
export { ResourceAuthError } from './errors.js';
export type { ResourceAuthErrorCode, ResourceAuthErrorOptions } from './errors.js';
export { createResourceVerifier } from './verifier.js';
export type {
  AccessTokenClaims,
  AuthInfo,
  IntrospectionOptions,
  ResourceVerifier,
  ResourceVerifierOptions,
  SingleIssuerResourceVerifier,
  VerifyOptions,
} from './verifier.js';
export { authorizationServerMetadataUrls, discoverAuthorizationServer } from './discovery.js';
export type { AuthorizationServerMetadata, DiscoveryOptions, FetchLike } from './discovery.js';
export {
  dpopWwwAuthenticate,
  extractAccessToken,
  extractBearerToken,
  hasQueryAccessToken,
  wwwAuthenticate,
} from './challenge.js';
export type { BearerChallenge, DpopChallenge } from './challenge.js';
export { DEFAULT_DPOP_ALGORITHMS, dpopAccessTokenHash } from './dpop.js';
export type { DpopNonceOptions, DpopOptions, DpopReplayStore, DpopRequest } from './dpop.js';
export { protectedResourceMetadata, protectedResourceMetadataPath, protectedResourceMetadataUrl } from './metadata.js';
export type { ProtectedResourceMetadata, ProtectedResourceMetadataOptions } from './metadata.js';
export { bearerErrorResponse, toRequestAuth } from './http.js';
export type { BearerAuthOptions, BearerErrorResponse, RequestAuth } from './http.js';
export { expressProtectedResourceMetadata, requireBearerAuth } from './express.js';
export type { NextLike, NodeMiddleware, NodeRequestLike, NodeResponseLike } from './express.js';
export { fastifyBearerAuth, fastifyBearerAuthPlugin, fastifyProtectedResourceMetadata } from './fastify.js';
export type { AuthenticatedFastifyRequest, FastifyBearerAuthHook } from './fastify.js';
export { fetchProtectedResourceMetadata, withBearerAuth } from './fetch.js';
export { createTokenExchangeClient, TokenExchangeError } from './token-exchange.js';
export type {
  ExchangeAuth,
  TokenExchangeClient,
  TokenExchangeClientOptions,
  TokenExchangeErrorCode,
} from './token-exchange.js';
export type { AuthenticatedFetchHandler } from './fetch.js';
