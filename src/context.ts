/**
 * The dependencies endpoints, grants and the authorization flow receive: a typed object, built once at start (no ctx
 * bag, no service locator). Each handler declares exactly the slice it uses: `Pick<Deps, ...>` for the services, and
 * for the store only the port methods it calls (`{ storage: Pick<GrantStore, 'revokeGrant'> }`, ports in
 * model/ports.ts), so tsc refuses a call beyond them. Only the composition root (server.ts, http/) holds the whole.
 */
import type { Logger } from 'pino';
import type { Clock } from './core/clock.js';
import type { AssertionVerifier, ClientResolver } from './core/client-auth.js';
import type { KeyManager } from './core/keys.js';
import type { TokenMinter } from './core/tokens.js';
import type { Config } from './config/schema.js';
import type { Storage } from './model/ports.js';

export interface Deps {
  config: Config;
  storage: Storage;
  clock: Clock;
  keys: KeyManager;
  minter: TokenMinter;
  /** Client lookup: the store, plus Client ID Metadata Documents when enabled. */
  clients: ClientResolver;
  /** Server-wide pepper for keyed hashes of client secrets (shared by replicas through the store). */
  pepper: string;
  /** Key for signing cookies and CSRF tokens (shared by replicas through the store). */
  cookieKey: string;
  logger: Logger;
  /** RFC 7523 private_key_jwt assertion check (signature, iss/sub/aud/exp, single use). */
  verifyAssertion: AssertionVerifier;
  /** Every scope the server knows (config + standard + static clients' scopes). */
  scopesSupported: string[];
}
