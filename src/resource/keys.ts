/**
 * The issuer's signing keys: jose's remote JWKS (cached, refetched on an unknown kid at most once per cooldown),
 * fronted by a per-kid memo so the hot path skips jose's key matching and import-cache lookups.
 */
import { createRemoteJWKSet, customFetch } from 'jose';
import type { CryptoKey, JWK, JWTVerifyGetKey, KeyObject } from 'jose';
import type { FetchLike } from './discovery.js';

/** @internal Options of {@link remoteKeys}. */
export interface RemoteKeysOptions {
  fetch: FetchLike | undefined;
  cooldownMs: number;
  cacheMaxAgeMs: number;
  timeoutMs: number;
}

type Key = CryptoKey | KeyObject | JWK | Uint8Array;

/**
 * @internal A key resolver for jwtVerify. A memoised key is only served while jose's JWKS is fresh and no JWKS fetch
 * has started since it was memoised, so rotation, revocation and cache expiry behave exactly as with jose alone.
 */
export function remoteKeys(jwksUri: string, options: RemoteKeysOptions): JWTVerifyGetKey {
  let generation = 0;
  const baseFetch = options.fetch;
  const remote = createRemoteJWKSet(new URL(jwksUri), {
    cooldownDuration: options.cooldownMs,
    cacheMaxAge: options.cacheMaxAgeMs,
    timeoutDuration: options.timeoutMs,
    // Every JWKS fetch bumps the generation (synchronously, when jose starts it), which empties the memo.
    [customFetch]: (url, init) => {
      generation++;
      return baseFetch === undefined ? fetch(url, init) : baseFetch(url, init);
    },
  });
  const memo = new Map<string, { alg: string; key: Key }>();
  let memoGeneration = 0;

  const resolve: JWTVerifyGetKey = (header, token) => {
    const { kid, alg } = header;
    if (typeof kid !== 'string' || !remote.fresh || remote.reloading) return remote(header, token);
    if (memoGeneration !== generation) {
      memo.clear();
      memoGeneration = generation;
    }
    const hit = memo.get(kid);
    if (hit !== undefined && hit.alg === alg) return hit.key;
    const before = generation;
    return remote(header, token).then((key) => {
      // Keep it only if no fetch started or finished while jose resolved it (so it came from the current JWKS).
      if (before === generation && memoGeneration === generation && !remote.reloading && memo.size < 100) {
        memo.set(kid, { alg, key });
      }
      return key;
    });
  };
  return resolve;
}
