import { extractWWWAuthenticateParams, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

/**
 * MCP SDK 1.x answers 403 insufficient_scope with a refresh, which cannot add scope (RFC 6749 §6), and then gives up
 * ("Server returned 403 after trying upscoping"). Pass this as the transport's `fetch`: when the challenge names a
 * scope the tokens lack, it drops the refresh token so the SDK starts a new authorization for the challenge's scope.
 */
export function stepUpFetch(provider: OAuthClientProvider, fetchFn: FetchLike = fetch): FetchLike {
  return async (url, init) => {
    const response = await fetchFn(url, init);
    const { error, scope } = response.status === 403 ? extractWWWAuthenticateParams(response) : {};
    const tokens = error === 'insufficient_scope' ? await provider.tokens() : undefined;
    if (tokens?.refresh_token !== undefined) {
      const held = new Set(tokens.scope?.split(' '));
      const missing = (scope ?? '').split(' ').filter((s) => s !== '' && !held.has(s));
      if (missing.length > 0 || tokens.scope === undefined)
        await provider.saveTokens({ ...tokens, refresh_token: undefined });
    }
    return response;
  };
}
