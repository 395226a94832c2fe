/** Upstream identity providers: the contract (provider.ts), the relying-party implementation and the presets. */
export * from './provider.js';
export {
  createUpstreamProvider,
  createUpstreamProviders,
  type UpstreamLogger,
  type UpstreamProviderOptions,
} from './client.js';
export { safeUrl, type FetchLike } from './http.js';
export {
  OAUTH2_PRESETS,
  OIDC_PRESETS,
  resolveUpstream,
  type ResolvedOAuth2Upstream,
  type ResolvedOidcUpstream,
  type ResolvedUpstream,
} from './presets.js';
