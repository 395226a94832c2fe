/** Client authentication for endpoints other than token (revocation RFC 7009 §2.1, introspection RFC 7662 §2.1). */
import { authenticateClient, formCredentials, presentedCredentials } from '../core/client-auth.js';
import { InvalidClient } from '../model/errors.js';
import { ASSERTION_ALGORITHMS, SECRET_ASSERTION_ALGORITHMS } from '../clients/client-assertion.js';
import type { Config } from '../config/schema.js';
import type { Deps } from '../context.js';
import type { ClientRecord } from '../model/records.js';
import type { RateLimitStore } from '../model/ports.js';

/**
 * What counting a request against config `rateLimits` takes (core/rate-limit.ts limitRequest): nothing when the
 * endpoint's limits are off, one store round trip per limit that is on.
 */
export type RequestLimitDeps = Pick<Deps, 'config' | 'pepper' | 'clock' | 'audit'> & {
  storage: Pick<RateLimitStore, 'hitRateLimit'>;
};

/**
 * The client authentication methods of the endpoints that authenticate clients (RFC 8414 §2 `*_auth_methods`):
 * client_secret_jwt only with an encryptionKey, which keeps those clients' secrets sealed (core/client-auth).
 */
export function clientAuthMethods(config: Pick<Config, 'encryptionKey'>): string[] {
  const secretJwt = config.encryptionKey ? ['client_secret_jwt'] : [];
  return ['client_secret_basic', 'client_secret_post', ...secretJwt, 'private_key_jwt', 'none'];
}

/** The JWS algorithms of client assertions (RFC 8414 §2 `*_auth_signing_alg_values_supported`). */
export function clientAssertionAlgorithms(config: Pick<Config, 'encryptionKey'>): string[] {
  return [...ASSERTION_ALGORITHMS, ...(config.encryptionKey ? SECRET_ASSERTION_ALGORITHMS : [])];
}

/** What authenticating a client uses (core/client-auth): the client lookup, the secret pepper, assertion checks. */
export type ClientAuthDeps = Pick<Deps, 'clients' | 'pepper' | 'clock' | 'verifyAssertion'>;

/** Authenticates the calling client from the Authorization header or the form; fails with invalid_client. */
export async function requireClient(
  params: Record<string, string | string[] | undefined>,
  authorization: string | undefined,
  deps: ClientAuthDeps,
): Promise<ClientRecord> {
  const presented = presentedCredentials(authorization, formCredentials(params));
  if (!presented) throw new InvalidClient('client authentication is required');
  return authenticateClient(presented, deps);
}
