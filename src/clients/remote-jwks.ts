/**
 * JWK Sets fetched from a `jwks_uri`: a private_key_jwt client's, or a trusted enterprise IdP's or workload issuer's
 * (config `enterpriseIdps`, `workloadIssuers`). Fetched SSRF-safely (clients/ssrf.ts) and cached per URI for five
 * minutes, one fetch at a time per URI (concurrent requests share it); a JWT naming a key the cached set lacks fetches
 * the set again, at most every 30 s, so a signer's key rotation is picked up without waiting out the cache.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/schema.js';
import { ExpiringCache } from '../core/expiring-cache.js';
import { OutboundFetchError, safeGet, type OutboundPolicy } from './ssrf.js';

/** A fetched set is reused for five minutes, for at most this many URIs. */
const CACHE_MS = 300_000;
const CACHE_MAX = 1000;
/** A set is fetched again for an unknown key id only when the cached copy is at least this old. */
const REFETCH_AFTER_MS = 30_000;

interface FetchedSet {
  keys: JWTVerifyGetKey;
  fetchedAt: number;
}

/** The key sets of many URIs, each fetched under the policy its caller gives. */
export class RemoteKeySets {
  private readonly cache: ExpiringCache<FetchedSet>;
  private readonly inflight = new Map<string, Promise<FetchedSet>>();

  constructor(private readonly clock: Clock) {
    this.cache = new ExpiringCache(CACHE_MAX, clock);
  }

  /**
   * A key resolver for jose's jwtVerify over the set at `uri`. It throws OutboundFetchError when the set cannot be
   * fetched and a JOSE error when it is not a JWK Set or holds no key for the JWT.
   */
  keysAt(uri: string, policy: OutboundPolicy): JWTVerifyGetKey {
    return async (header, token) => {
      let set = this.cache.get(uri) ?? (await this.fetch(uri, policy));
      try {
        return await set.keys(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey) || this.clock.now() - set.fetchedAt < REFETCH_AFTER_MS)
          throw err;
        set = await this.fetch(uri, policy);
        return set.keys(header, token);
      }
    };
  }

  private fetch(uri: string, policy: OutboundPolicy): Promise<FetchedSet> {
    let pending = this.inflight.get(uri);
    if (!pending) {
      pending = this.download(uri, policy).finally(() => this.inflight.delete(uri));
      this.inflight.set(uri, pending);
    }
    return pending;
  }

  private async download(uri: string, policy: OutboundPolicy): Promise<FetchedSet> {
    const res = await safeGet(new URL(uri), policy, 'application/jwk-set+json, application/json');
    if (res.status !== 200) throw new OutboundFetchError('status', `jwks_uri answered HTTP ${res.status}`);
    // createLocalJWKSet refuses anything that is not a JWK Set (JWKSInvalid); JSON.parse throws SyntaxError.
    const set = { keys: createLocalJWKSet(JSON.parse(res.body) as JSONWebKeySet), fetchedAt: this.clock.now() };
    this.cache.set(uri, set, set.fetchedAt + CACHE_MS);
    return set;
  }
}

/** True for the errors a remote key set or a JWT check throws that mean "not verified" (not a server fault). */
export function isVerificationFailure(err: unknown): boolean {
  return err instanceof errors.JOSEError || err instanceof SyntaxError || err instanceof OutboundFetchError;
}

/**
 * The key sets of the configured enterprise IdPs and workload issuers, by jwksUri: https only, each under its own
 * `allowPrivateAddresses` and `trustedCaFile` (an operator named these URIs, unlike a client's jwks_uri, so an
 * in-cluster issuer may be allowed), with larger size limits than a client document (a JWK Set of RSA keys).
 */
export function trustedIssuerKeySets(
  config: Pick<Config, 'enterpriseIdps' | 'workloadIssuers'>,
  clock: Clock,
): Map<string, JWTVerifyGetKey> {
  const sets = new RemoteKeySets(clock);
  const out = new Map<string, JWTVerifyGetKey>();
  for (const source of [...config.enterpriseIdps, ...config.workloadIssuers]) {
    if (out.has(source.jwksUri)) continue;
    const policy: OutboundPolicy = {
      allowHttp: false,
      allowPrivateAddresses: source.allowPrivateAddresses,
      allowedHosts: [],
      deniedHosts: [],
      maxBytes: 256 * 1024,
      timeoutMs: 5000,
      ca: source.trustedCaFile ? readFileSync(source.trustedCaFile, 'utf8') : undefined,
    };
    out.set(source.jwksUri, sets.keysAt(source.jwksUri, policy));
  }
  return out;
}
