/**
 * The dependencies endpoints and grants receive: a typed object, built once at start (no ctx bag, no service
 * locator). Each handler declares the slice it uses with `Pick<Deps, ...>`.
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
