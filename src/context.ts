/**
 * The dependencies endpoints, grants and the authorization flow receive: a typed object, built once at start (no ctx
 * bag, no service locator). Each handler declares exactly the slice it uses: `Pick<Deps, ...>` for the services, and
 * for the store only the port methods it calls (`{ storage: Pick<GrantStore, 'revokeGrant'> }`, ports in
 * model/ports.ts), so tsc refuses a call beyond them. Only the composition root (server.ts, http/) holds the whole.
 */
import type { JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { Auditor } from './core/audit.js';
import type { Clock } from './core/clock.js';
import type { AssertionVerifier, ClientResolver } from './core/client-auth.js';
import type { ClientActivity } from './clients/client-activity.js';
import type { KeyManager } from './core/keys.js';
import type { PasswordPolicy } from './core/password-policy.js';
import type { Sealer } from './core/sealing.js';
import type { TokenMinter } from './core/tokens.js';
import type { Config } from './config/schema.js';
import type { Storage } from './model/ports.js';
import type { UpstreamProvider } from './upstream/provider.js';

export interface Deps {
  config: Config;
  /** The tenant these deps serve (its issuer is `config.issuer`); undefined for the deployment's own issuer. */
  tenant?: string;
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
  /** What a new password must satisfy (config `passwordPolicy`, its deny list read at start). */
  passwordPolicy: PasswordPolicy;
  logger: Logger;
  /**
   * Audit events (core/audit.ts: the schema): `audit.emit({ type: 'client.registered', ... }, context)`. This issuer's
   * emitter: its events carry `tenant`, and, from `context` (passed explicitly), the request's id, address, user agent.
   */
  audit: Auditor;
  /** RFC 7523 client assertion check, private_key_jwt and client_secret_jwt (signature, iss/sub/aud/exp, single use). */
  verifyAssertion: AssertionVerifier;
  /** Seals what the store must not reveal (`encryptionKey`: client secrets for client_secret_jwt, TOTP secrets). */
  sealer: Sealer | undefined;
  /**
   * The signing keys of the configured enterprise IdPs and workload issuers, by their `jwksUri` (fetched SSRF-safely
   * under each one's settings, cached: clients/remote-jwks.ts).
   */
  trustedIssuerKeys: ReadonlyMap<string, JWTVerifyGetKey>;
  /** Every scope the server knows (config + standard + static clients' scopes). */
  scopesSupported: string[];
  /**
   * The upstream identity providers users may sign in with (config `upstreams`), by id, in the order of the config;
   * empty without. When there are any, `sealer` is set (their tokens are kept sealed: server.ts refuses to start
   * otherwise).
   */
  upstreams: ReadonlyMap<string, UpstreamProvider>;
  /** The "last token issued" marks of dynamic clients, written at most once a day per client and replica. */
  clientActivity: ClientActivity;
}

/**
 * What an endpoint module declares besides its handler, as grants declare theirs (grants/types.ts). Each route plugin
 * (http/routes) names the declarations of the endpoints it serves, and that is the one list of endpoints: discovery
 * (endpoints/metadata.ts buildMetadata), the CORS hook and the page-or-JSON error rule (http/app.ts) read it.
 */
export interface EndpointDeclaration {
  /**
   * Where it is served: a path below the issuer's path (`'/token'` is served at `<issuer path>/token`), or, for what
   * is found from the issuer alone (the RFC 8414 §3.1 well-known metadata), the absolute paths for an issuer.
   */
  path: string | ((issuer: string) => string[]);
  /** Every path below `path` is the endpoint's too (`/register/:id`, `/interaction/:id/login`). */
  subPaths?: boolean;
  /**
   * Browser-based clients call it from other origins: the CORS contract (any origin, no credentials, see http/app.ts)
   * applies to it. No undeclared path gets CORS headers.
   */
  cors?: boolean;
  /** It answers with HTML pages (ui/pages.ts), its errors included, rather than OAuth JSON. */
  pages?: boolean;
  /**
   * Its fields in the discovery document (RFC 8414, OIDC Discovery), e.g. its `*_endpoint` URL and auth methods.
   * `url` is its absolute URL: the issuer plus `path` (the issuer itself for absolute paths).
   */
  metadata?(url: string, config: Config): Record<string, unknown>;
}
