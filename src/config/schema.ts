/**
 * The one typed configuration. This zod schema is the single source of defaults; a bad value stops the start with
 * a message naming the field (config/load.ts). Server settings are camelCase; static `users` and `clients` use the
 * RFC 7591 / DESIGN.md names.
 */
import { z } from 'zod';
// The grant registry, not a list of its own. grants/ imports only types from config/ (erased at build), so this adds
// no runtime cycle.
import { DPOP_ALGORITHMS } from '../core/dpop.js';
import { knownGrantTypes } from '../grants/index.js';
import { upstreamsSchema } from './upstreams.js';

const seconds = (def: number) => z.number().int().positive().default(def);

/** One endpoint's request limits (config `rateLimits`): per client and per address per window; 0 = off. */
const endpointRateLimit = z
  .object({
    /**
     * Requests per client per window: the authenticated client at token, introspection and revocation, the named
     * (registered) client at authorize. 0 = off.
     */
    perClient: z.number().int().min(0).default(0),
    /** Requests per client address (IPv6: its /64) per window; behind a proxy set `trustProxy`. 0 = off. */
    perIp: z.number().int().min(0).default(0),
    /** Length of the fixed window, seconds; windows are aligned to multiples of it since the epoch. */
    windowSeconds: z.number().int().positive().default(60),
  })
  .strict()
  .prefault({});

const encryptionKeySchema = z
  .string()
  .refine((k) => Buffer.from(k, 'base64').length === 32, 'must be 32 random bytes, base64 (openssl rand -base64 32)');

/** A static user declared in the config file. */
export const staticUserSchema = z
  .object({
    username: z.string().min(1).max(200),
    password: z.string().min(1).optional(),
    password_hash: z.string().startsWith('scrypt$', 'must be a hash made by `gatehouse hash-password`').optional(),
    email: z.string().email().optional(),
    name: z.string().max(200).optional(),
    sub: z.string().min(1).max(255).optional(),
  })
  .strict()
  .refine((u) => (u.password === undefined) !== (u.password_hash === undefined), {
    message: 'exactly one of password or password_hash is required',
  });

/** A static client declared in the config file (RFC 7591 metadata names). */
export const staticClientSchema = z
  .object({
    client_id: z.string().min(1).max(255),
    client_secret: z.string().min(1).optional(),
    redirect_uris: z.array(z.string()).optional(),
    post_logout_redirect_uris: z.array(z.string()).optional(),
    grant_types: z.array(z.enum(knownGrantTypes as [string, ...string[]])).optional(),
    response_types: z.array(z.literal('code')).optional(),
    scope: z.string().optional(),
    /**
     * client_secret_jwt needs `encryptionKey` and a client_secret of 32 characters or more; private_key_jwt needs
     * `jwks` or `jwks_uri` and no client_secret (server.ts).
     */
    token_endpoint_auth_method: z
      .enum(['none', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'])
      .optional(),
    /** The client's public keys for private_key_jwt (RFC 7591 §2), inline or at an https URL. */
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    jwks_uri: z.string().optional(),
    client_name: z.string().max(200).optional(),
    application_type: z.enum(['web', 'native']).optional(),
    /** RFC 9126 §6: /authorize takes only this client's pushed requests. */
    require_pushed_authorization_requests: z.boolean().optional(),
    /** RFC 9449 §5.2: every token request of this client must carry a DPoP proof. */
    dpop_bound_access_tokens: z.boolean().optional(),
  })
  .strict();

/** Where a trusted issuer's signing keys are: an https jwks_uri, fetched SSRF-safely unless told otherwise. */
const issuerKeysSource = {
  /** The `iss` its JWTs carry, compared exactly. */
  issuer: z.string().min(1),
  jwksUri: z
    .string()
    .url()
    .refine((u) => u.startsWith('https://'), 'must be an https URL'),
  /** The jwks_uri is on a private or loopback address (an in-cluster Kubernetes API server, a SPIRE bundle endpoint). */
  allowPrivateAddresses: z.boolean().default(false),
  /** PEM file of extra CAs trusted for the jwks_uri (a private PKI, a cluster CA). */
  trustedCaFile: z.string().min(1).optional(),
};

const regex = z.string().refine((p) => {
  try {
    new RegExp(p, 'u');
    return true;
  } catch {
    return false;
  }
}, 'must be a valid regular expression');

/**
 * An enterprise IdP whose Identity Assertion JWT Authorization Grants (ID-JAG, MCP Enterprise-Managed Authorization)
 * the jwt-bearer grant accepts.
 */
export const enterpriseIdpSchema = z
  .object({
    ...issuerKeysSource,
    /** client_ids that may redeem this IdP's ID-JAGs (each ID-JAG also names its client in `client_id`). */
    allowedClients: z.array(z.string().min(1)).min(1),
    /** The ID-JAG claim (a string) that becomes the access token's `sub`. */
    subjectClaim: z.string().min(1).default('sub'),
    /** Put before it, e.g. `acme|`, to keep this IdP's subjects apart from local users and other IdPs. */
    subjectPrefix: z.string().default(''),
    /** Longest lifetime (exp − iat, and exp − now) of an ID-JAG, seconds. */
    maxLifetimeSeconds: z.number().int().positive().max(3600).default(600),
  })
  .strict();

/** A workload identity issuer (Kubernetes service-account tokens, SPIFFE JWT-SVIDs) for the jwt-bearer grant. */
export const workloadIssuerSchema = z
  .object({
    ...issuerKeysSource,
    /** The `aud` its tokens must carry for this server; default the issuer identifier. */
    audience: z.string().min(1).optional(),
    /** A regular expression the whole `sub` must match, e.g. `system:serviceaccount:agents:[a-z0-9-]+`. */
    subjectPattern: regex.optional(),
    /** Put before the workload's `sub` in the access token's `sub`. */
    subjectPrefix: z.string().default(''),
    /**
     * The client_id of the tokens issued to these workloads when the request authenticates no client (SEP-1933: the
     * workload has no client credentials); default the access token's `sub`. A request that authenticates a client
     * must authenticate this one.
     */
    clientId: z.string().min(1).optional(),
    /** Scopes these workloads may have (their allow-list, as a client's for client_credentials); none by default. */
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/)).default([]),
    /** Longest lifetime of a workload token, seconds (Kubernetes issues at least 600 s, by default 3600 s). */
    maxLifetimeSeconds: z
      .number()
      .int()
      .positive()
      .max(24 * 3600)
      .default(3600),
  })
  .strict();

const colour = z.string().regex(/^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'must be #rgb or #rrggbb');

export const brandingSchema = z
  .object({
    /** Shown beside the logo at the top of every page. */
    name: z.string().min(1).max(100).optional(),
    logoUrl: z
      .string()
      .url()
      .refine((u) => u.startsWith('https://'), 'must be an https URL')
      .optional(),
    primaryColor: colour.optional(),
    backgroundColor: colour.optional(),
  })
  .strict();

/**
 * A tenant in the config file: its id and the settings it overrides (config/tenants.ts TENANT_SETTINGS; checked
 * there, against the merged config).
 */
export const tenantDeclarationSchema = z
  .object({ id: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'lowercase letters, digits and hyphens') })
  .catchall(z.unknown());

export const configSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(8080),
    host: z.string().default('127.0.0.1'),
    /** Default `http://localhost:$PORT` (filled in by the loader). */
    issuer: z.string().url().optional(),
    /** `memory`, `redis(s)://…`, `postgres(ql)://…`, or a directory for the embedded store. */
    storage: z.string().min(1).default('./data'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Scopes the server knows, besides openid, profile, email, offline_access and every static client's scopes. */
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/)).default([]),
    /**
     * Refuse (invalid_scope / invalid_client_metadata) a scope the server does not know or the client may not have, at
     * /authorize and /register. `false` is the lenient mode: such scopes are narrowed away silently (an MCP client that
     * asked for a scope and did not get it may then loop on step-up). client_credentials and refresh never narrow.
     */
    strictScopes: z.boolean().default(true),
    /** Resource servers (RFC 8707) tokens may be bound to; empty = any absolute URI the client asks for. */
    resources: z.array(z.string().url()).default([]),
    /** Resource used when a request names none; absent = the token's aud is the client_id (RFC 9068 §3). */
    defaultResource: z.string().url().optional(),
    tokens: z
      .object({
        accessTokenTtl: seconds(3600),
        refreshTokenTtl: seconds(30 * 24 * 3600),
        /** Absolute lifetime of a grant (refresh chain). */
        grantTtl: seconds(90 * 24 * 3600),
        authorizationCodeTtl: z.number().int().positive().max(600).default(60),
        idTokenTtl: seconds(3600),
        /** A retry of a rotated refresh token within this window, by the same client with identical parameters, gets the same new pair (logged); anything else is reuse. */
        refreshGraceSeconds: z.number().int().min(0).max(300).default(2),
        /** Issue refresh tokens only when offline_access is granted (false: always for clients with the grant). */
        refreshRequiresOfflineAccess: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    signing: z
      .object({
        /** Algorithm of the key that signs access and ID tokens. */
        alg: z.enum(['ES256', 'RS256', 'EdDSA']).default('ES256'),
        /** Other algorithms to keep a key for and publish (clients that need them may ask via registration). */
        additionalAlgs: z.array(z.enum(['ES256', 'RS256', 'EdDSA'])).default(['RS256']),
        /** How often a replica re-reads keys from the store (picks up `gatehouse key rotate`). */
        keyRefreshSeconds: seconds(60),
      })
      .strict()
      .prefault({}),
    registration: z
      .object({
        /** Allow RFC 7591 dynamic client registration. */
        enabled: z.boolean().default(true),
        /** If set, registration requires `Authorization: Bearer <this>` (closes open registration). */
        initialAccessToken: z.string().min(16).optional(),
        /**
         * Let dynamically registered clients use client_credentials. Off by default: with open registration anyone
         * could mint machine tokens. Always allowed when registration requires an initial access token.
         */
        allowClientCredentials: z.boolean().default(false),
        /**
         * Treat a dynamic client's registered `scope` as a hard allow-list for user-delegated grants. Off by default:
         * MCP clients register with the first scope they see and later need step-up; user consent is the gate.
         * (Static clients' scope is always an allow-list; client_credentials always honours the registered scope.)
         */
        enforceRegisteredScope: z.boolean().default(false),
        /** Lifetime of client secrets issued by registration; 0 = never expire. */
        clientSecretTtl: z.number().int().min(0).default(0),
        /**
         * Registrations per client address (IPv6: per /64) per window, counted in the store so every replica shares
         * one limit; over it POST /register answers 429 with Retry-After. Not applied when registration requires an
         * initial access token. Behind a reverse proxy set `trustProxy`, or every client shares the proxy's address.
         */
        rateLimit: z
          .object({
            /** Registration requests (refused ones too, counted before any work) per address per window; 0 = no limit. */
            perIp: z.number().int().min(0).default(100),
            /**
             * Registration requests from all addresses together per window (429 with Retry-After over it); 0 = no
             * limit. Off by default: one abuser could then lock everyone out of registration; maxClients caps the
             * registry's size, and dedupe keeps re-registrations from piling up.
             */
            total: z.number().int().min(0).default(0),
            /** Length of the fixed window, seconds; windows are aligned to multiples of it since the epoch. */
            windowSeconds: seconds(3600),
          })
          .strict()
          .prefault({}),
        /**
         * Most clients the store may hold (all sources); at this many, open registration answers 503
         * temporarily_unavailable until clients are deleted. 0 = no cap. Parallel registrations may overshoot by their
         * number. Keep it below the memory store's `memory.maxEntries` (records per map).
         */
        maxClients: z.number().int().min(0).default(50_000),
        /**
         * A re-registration whose normalized metadata is identical to that of a dynamic client registered within the
         * window, from the same software (it names a software_id or a client_name), gets that client back instead of
         * a new one (endpoints/register.ts explains what the response holds and why).
         */
        dedupe: z
          .object({
            /** How long after its last (re-)registration a client is handed out again, seconds; 0 = never dedupe. */
            windowSeconds: z.number().int().min(0).default(86_400),
            /**
             * Also deduplicate confidential clients: the re-registration replaces the client under the same id (new
             * secret and registration access token, everything issued under the old ones revoked). Off by default:
             * whoever knows a confidential client's metadata could then void its secret.
             */
            confidentialClients: z.boolean().default(false),
          })
          .strict()
          .prefault({}),
        /**
         * Garbage collection of dynamically registered clients (static and metadata-document clients are never
         * deleted), run every `intervalSeconds` by one replica: a client deleted is removed with everything issued to
         * it, as RFC 7592 DELETE does.
         */
        cleanup: z
          .object({
            /** Delete a client that obtained no token within this many days of its registration; 0 = never. */
            unusedDays: z.number().int().min(0).default(7),
            /**
             * Delete a client whose last token is this many days old; 0 = never. The mark is written once a day per
             * client and replica, so this is exact to a day. A client idle this long is deleted once it is also
             * `unusedDays` old.
             */
            idleDays: z.number().int().min(0).default(90),
            /** How often the collection runs, seconds (one replica per round). */
            intervalSeconds: seconds(3600),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /**
     * Request limits per endpoint, per authenticated client and per client address (IPv6: per /64), in fixed windows
     * counted in the store, so every replica (and only the request's tenant) shares them; over a limit the endpoint
     * answers 429 with Retry-After. 0 = off, the default for each: a limit that is off costs nothing, one that is on
     * one store round trip per request. Registration's own limits are `registration.rateLimit`.
     */
    rateLimits: z
      .object({
        token: endpointRateLimit,
        authorize: endpointRateLimit,
        introspect: endpointRateLimit,
        revoke: endpointRateLimit,
        /** POST /device_authorization (RFC 8628): each accepted request stores a device authorization. */
        deviceAuthorization: endpointRateLimit,
      })
      .strict()
      .prefault({}),
    introspection: z
      .object({
        /**
         * client_ids of the resource servers that may introspect any access token (RFC 7662). Any other confidential
         * client only learns about tokens whose `aud` names its client_id, and about its own refresh tokens.
         */
        allowedClients: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .prefault({}),
    session: z
      .object({
        ttl: seconds(24 * 3600),
        cookieName: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/)
          .default('gatehouse_session'),
      })
      .strict()
      .prefault({}),
    consent: z
      .object({
        /** How long an approved consent is remembered for (user, client). */
        ttl: seconds(30 * 24 * 3600),
      })
      .strict()
      .prefault({}),
    interactionTtl: z.number().int().positive().max(3600).default(600),
    /** Pushed Authorization Requests (RFC 9126): POST /par, and /authorize?client_id=…&request_uri=…. */
    pushedAuthorizationRequests: z
      .object({
        /** Lifetime of a request_uri, seconds (the `expires_in` of RFC 9126 §2.2); it is used at most once. */
        requestUriTtl: z.number().int().positive().max(600).default(60),
        /**
         * Every client must push its authorization requests: /authorize without a request_uri from POST /par is
         * refused (RFC 9126 §5 `require_pushed_authorization_requests`, advertised). Per client: the client metadata
         * field of the same name.
         */
        required: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /**
     * DPoP (RFC 9449): a token request with a valid `DPoP` proof gets sender-constrained tokens (`cnf.jkt`,
     * `token_type: DPoP`), a public client's refresh tokens bound to the key; `dpop_jkt` at /authorize and /par binds
     * the code. Proofs are single use through the store's replay guard (every replica).
     */
    dpop: z
      .object({
        /** Accept proofs and issue DPoP-bound tokens (advertised as dpop_signing_alg_values_supported). */
        enabled: z.boolean().default(true),
        /** Proof algorithms accepted (asymmetric only). */
        algorithms: z
          .array(z.enum(DPOP_ALGORITHMS))
          .min(1)
          .default([...DPOP_ALGORITHMS]),
        /** How old a proof's `iat` may be, seconds; its `jti` is remembered that long. */
        iatWindowSeconds: z.number().int().min(1).max(600).default(60),
        /** How far ahead of this server's clock a proof's `iat` may be, seconds (client clock drift). */
        iatFutureSkewSeconds: z.number().int().min(0).max(300).default(5),
        /**
         * Server nonces (RFC 9449 §8): a proof must carry the nonce of the `DPoP-Nonce` header (a first request gets
         * `use_dpop_nonce`). Stateless (an HMAC of the time window under the cookie key), so every replica accepts them.
         */
        nonce: z.boolean().default(false),
        /** Lifetime of a nonce window, seconds; the previous window's nonce is still accepted. */
        nonceWindowSeconds: z.number().int().min(10).max(3600).default(300),
        /** Refuse token requests of public clients without a proof (per client: `dpop_bound_access_tokens`). */
        requireForPublicClients: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /**
     * The device authorization grant (RFC 8628): POST /device_authorization, the user-code page /device, and the
     * grant `urn:ietf:params:oauth:grant-type:device_code` at the token endpoint, for clients that register it.
     */
    deviceAuthorization: z
      .object({
        /** Offer it (advertised in discovery; clients still need the grant type registered). */
        enabled: z.boolean().default(true),
        /** Lifetime of a device code and its user code, seconds (the `expires_in` of RFC 8628 §3.2). */
        expiresInSeconds: z.number().int().min(60).max(1800).default(600),
        /** The polling interval given to devices, seconds (§3.2 `interval`); each slow_down adds 5. */
        intervalSeconds: z.number().int().min(1).max(60).default(5),
        /**
         * Attempts at the user-code page per window, per client address (IPv6: its /64) and per browser: user codes
         * are short (RFC 8628 §5.1), so guessing is limited here. 0 = off.
         */
        userCodeAttempts: z
          .object({
            perIp: z.number().int().min(0).default(20),
            perBrowser: z.number().int().min(0).default(10),
            windowSeconds: z.number().int().positive().default(600),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Maximum request body, bytes. */
    /**
     * Behind a reverse proxy: which hops to trust for X-Forwarded-For (client address for login throttling and logs).
     * `false` (default) trusts none; `true` trusts all; or a list of proxy addresses / CIDRs; or a hop count.
     */
    trustProxy: z.union([z.boolean(), z.array(z.string()), z.number().int().min(0)]).default(false),
    bodyLimit: z
      .number()
      .int()
      .positive()
      .max(10 * 1024 * 1024)
      .default(64 * 1024),
    /** scrypt cost for user passwords (N = 2^log2N). */
    passwordHashing: z
      .object({ log2N: z.number().int().min(14).max(20).default(15) })
      .strict()
      .prefault({}),
    /**
     * What a new local password must satisfy when it is set (CLI, password change): length bounds and, with
     * `denyListFile`, not one of the listed passwords (one per line; e.g. a list of breached passwords). Passwords
     * already stored and config-file users are not re-checked.
     */
    passwordPolicy: z
      .object({
        minLength: z.number().int().min(8).max(128).default(12),
        maxLength: z.number().int().min(64).max(1024).default(256),
        denyListFile: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Second factors (TOTP, passkeys, recovery codes). `required`: every user must sign in with one; a user without
     * one enrols TOTP or a passkey during their next sign-in. Per user: `gatehouse user mfa <name> --require`.
     */
    mfa: z
      .object({ required: z.boolean().default(false) })
      .strict()
      .prefault({}),
    /**
     * Throttling of password guessing on the login form, and of second-factor codes (on the same counters). Counters
     * live in the store, so every replica shares them. Over a limit the form answers 429 with Retry-After until the
     * window ends, without checking the password.
     */
    loginRateLimit: z
      .object({
        /**
         * Failed sign-ins per username (case-insensitive, known or not) per window; the next attempt is refused even
         * with the right password. A successful sign-in resets it. 0 = no per-username limit.
         */
        maxFailuresPerUsername: z.number().int().min(0).default(10),
        /**
         * Failed sign-ins per client address (IPv6: per /64) per window, across all usernames. This is the TCP peer
         * address: behind a reverse proxy every user shares the proxy's, so raise this or set 0 (= no limit).
         */
        maxFailuresPerIp: z.number().int().min(0).default(50),
        /** Length of the fixed window, seconds; windows are aligned to multiples of it since the epoch. */
        windowSeconds: seconds(900),
      })
      .strict()
      .prefault({}),
    /**
     * HTTP server limits, so slow or idle connections cannot hold sockets (file descriptors) forever. Fastify's own
     * defaults turn Node's request timeout off.
     */
    http: z
      .object({
        /** Time to receive a whole request (headers and body), ms; over it the server answers 408 and closes. */
        requestTimeoutMs: z.number().int().positive().default(30_000),
        /** Time to receive the request headers, ms; at most requestTimeoutMs. */
        headersTimeoutMs: z.number().int().positive().default(10_000),
        /** How long an idle keep-alive connection stays open, ms (behind a load balancer: above its idle timeout). */
        keepAliveTimeoutMs: z.number().int().positive().default(5_000),
        /** A socket with no traffic either way for this long is destroyed, ms; 0 = never. */
        connectionTimeoutMs: z.number().int().min(0).default(60_000),
        /**
         * Requests served on one keep-alive connection before it is closed; 0 = unlimited. 10000, not less: under load
         * a reconnect every 1000 requests cost ~20 % of client_credentials throughput in `npm run bench`.
         */
        maxRequestsPerSocket: z.number().int().min(0).default(10_000),
      })
      .strict()
      .refine((h) => h.headersTimeoutMs <= h.requestTimeoutMs, {
        message: 'headersTimeoutMs must not exceed requestTimeoutMs',
        path: ['headersTimeoutMs'],
      })
      .prefault({}),
    /** Seconds a replica answers 503 with Retry-After while its store is unreachable. */
    retryAfterSeconds: z.number().int().positive().default(5),
    /**
     * Key sealing what the store must not reveal (signing private keys, cookie key, client-secret pepper): base64 of
     * 32 random bytes. Without it a reader of the store can mint tokens and forge session cookies.
     */
    encryptionKey: encryptionKeySchema.optional(),
    /** Former encryption keys: they only open what they sealed; new values are sealed with `encryptionKey`. */
    encryptionKeysPrevious: z.array(encryptionKeySchema).default([]),
    redis: z
      .object({
        keyPrefix: z.string().default('gatehouse:'),
        sentinel: z
          .object({ name: z.string(), sentinels: z.array(z.object({ host: z.string(), port: z.number().int() })) })
          .optional(),
        cluster: z.object({ nodes: z.array(z.object({ host: z.string(), port: z.number().int() })) }).optional(),
      })
      .strict()
      .prefault({}),
    /** Client ID Metadata Documents (MCP 2025-11-25): https client_ids resolved by fetching the document. */
    clientIdMetadataDocuments: z
      .object({
        enabled: z.boolean().default(true),
        /** Development only: allow http:// client_ids. */
        allowHttp: z.boolean().default(false),
        /** Development only: allow documents on loopback, private, link-local addresses. */
        allowPrivateAddresses: z.boolean().default(false),
        /** If non-empty, only these hosts (`example.com`, `*.example.com`) may serve documents. */
        allowedHosts: z.array(z.string()).default([]),
        /** Hosts that may never serve documents. */
        deniedHosts: z.array(z.string()).default([]),
        /** PEM file of extra CAs trusted for https fetches (private PKI; tests). */
        trustedCaFile: z.string().optional(),
        maxBytes: z
          .number()
          .int()
          .positive()
          .max(1024 * 1024)
          .default(5 * 1024),
        timeoutMs: z.number().int().positive().max(30_000).default(5000),
        cacheMaxEntries: z.number().int().positive().default(1000),
        /** Bounds applied to the document's HTTP caching headers. */
        minCacheSeconds: z.number().int().min(0).default(60),
        maxCacheSeconds: z
          .number()
          .int()
          .positive()
          .default(24 * 3600),
      })
      .strict()
      .prefault({}),
    postgres: z
      .object({
        /** Schema for Gatehouse's tables (created if missing), so it can share a database. */
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]*$/, 'a lowercase SQL identifier')
          .default('public'),
        poolSize: z.number().int().positive().max(200).default(10),
        /** Named prepared statements (faster). Turn off behind PgBouncer < 1.21 in transaction pooling mode. */
        preparedStatements: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /**
     * Seconds a replica may reuse a client record it read (saves a store round trip per token request). Changes made
     * on this replica apply at once; on other replicas within this time. 0 disables the cache.
     */
    clientCacheSeconds: z.number().int().min(0).max(300).default(5),
    /** How often expired rows / records are deleted (SQL, memory), seconds; 0 disables. */
    cleanupIntervalSeconds: z.number().int().min(0).default(60),
    /**
     * The memory store (`storage: memory`). `maxEntries`: the most records any one of its maps may hold (grants,
     * refresh tokens, access token ids, revocations, codes, sessions, …, each map on its own, and each tenant's scope
     * on its own). A full map sweeps its expired records, then evicts the live ones closest to expiry, 1% of the bound
     * at once (those sessions, grants and tokens stop working early); clients, users and keys are never evicted: a map
     * full of them refuses new ones (503). Ignored by the other stores.
     */
    memory: z
      .object({ maxEntries: z.number().int().positive().max(100_000_000).default(100_000) })
      .strict()
      .prefault({}),
    /** Enterprise IdPs whose ID-JAGs the jwt-bearer grant accepts (MCP Enterprise-Managed Authorization). */
    enterpriseIdps: z.array(enterpriseIdpSchema).default([]),
    /** Workload identity issuers whose tokens the jwt-bearer grant accepts (MCP SEP-1933, RFC 7523 §2.1). */
    workloadIssuers: z.array(workloadIssuerSchema).default([]),
    /**
     * Identity providers users may sign in at instead of (or besides) a local password: OpenID Connect (`type: oidc`,
     * presets google, entra, okta, keycloak) or plain OAuth 2.0 (`type: oauth2`, preset github). config/upstreams.ts.
     */
    upstreams: upstreamsSchema,
    /**
     * RFC 8693 token exchange at the token endpoint (grants/token-exchange.ts): which confidential clients, as resource
     * servers, may trade a Gatehouse access token sent to them for the user's upstream access token or for a Gatehouse
     * token for another audience. None listed = the grant is not offered.
     */
    tokenExchange: z
      .object({
        resourceServers: z
          .array(
            z
              .object({
                /** The resource server's confidential client (a config-file or registered client with a secret or keys). */
                clientId: z.string().min(1),
                /** The audiences (resource URIs, RFC 8707) of the subject tokens it may exchange: the tokens sent to it. */
                audiences: z.array(z.string().min(1)).min(1),
                /** Ids of the `upstreams` whose access token it may get for the token's user and grant. */
                upstreams: z.array(z.string().min(1)).default([]),
                /** Gatehouse audiences (resource URIs) it may get a new access token for, same user, scope narrowed. */
                audiencesOut: z.array(z.string().min(1)).default([]),
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .prefault({}),
    users: z.array(staticUserSchema).default([]),
    clients: z.array(staticClientSchema).default([]),
    /** The sign-in, consent and account pages' look (a tenant sets its own). */
    branding: brandingSchema.optional(),
    /** The pages' language and words (ui/strings.ts; a tenant sets its own). */
    pages: z
      .object({
        /** The pages' `lang` (a BCP 47 tag): set it with a translation in `strings`. */
        lang: z
          .string()
          .regex(/^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$/, 'a language tag such as en or de-CH')
          .optional(),
        /**
         * Replacements of the pages' strings by key (ui/strings.ts ENGLISH, `{name}` placeholders kept); a key that
         * is not one is the English text of a sign-in message (e.g. `Invalid username or password.`) to translate.
         */
        strings: z.record(z.string().min(1), z.string().max(2000)).default({}),
        /** What the consent and account pages say a scope lets the application do, by scope (beside the scope). */
        scopeDescriptions: z.record(z.string().min(1), z.string().min(1).max(300)).default({}),
        /** Display names of resources (RFC 8707 URIs) on the consent and account pages (the URI stays beside it). */
        resourceNames: z.record(z.string().url(), z.string().min(1).max(100)).default({}),
      })
      .strict()
      .prefault({}),
    /** Tenants declared here (more are added at run time: admin API, `gatehouse tenant add`). */
    tenants: z.array(tenantDeclarationSchema).default([]),
    /** Most tenants whose keys and settings are kept loaded; the least recently used is unloaded (and reloaded lazily). */
    tenantCacheSize: z.number().int().positive().default(1000),
    /** How long a replica serves a tenant's cached settings before re-reading them: the bound on an update's delay. */
    tenantRefreshSeconds: z.number().int().min(0).max(300).default(5),
    /**
     * Prometheus metrics (http/metrics.ts): off unless `port` or a token is set. With `port`, served at
     * `http://<host>:<port>/metrics` by a listener of its own (the token, if set, is required there too); without, at
     * `<issuer>/metrics` on the main port, which then requires the token (Bearer).
     */
    metrics: z
      .object({
        /** A listener of its own for `/metrics`; unset = the main port (token required). */
        port: z.number().int().min(0).max(65535).optional(),
        /** Where that listener binds: loopback by default, so only the host (or a sidecar) can scrape. */
        host: z.string().min(1).default('127.0.0.1'),
        /** Bearer token scrapers send; or its SHA-256 hex as `tokenSha256`, so the config holds no usable secret. */
        token: z.string().min(32).optional(),
        tokenSha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/)
          .optional(),
        /** Label request and event series with the tenant (one series per tenant: mind the cardinality). */
        tenantLabel: z.boolean().default(false),
        /** Also the process and Node.js runtime metrics (prom-client's defaults: CPU, memory, event-loop lag, GC). */
        defaultMetrics: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /**
     * Audit events (core/audit.ts lists every type and field): where they are written and, optionally, a webhook.
     * `destination`: `log` (default: the main log, as `info` lines with `audit: true`, so nothing is lost by
     * default), `stdout`, `stderr`, a file path (appended, one JSON line per event), or `off`.
     */
    audit: z
      .object({
        destination: z.string().min(1).default('log'),
        /** Events POSTed as JSON arrays to an operator-run collector, batched; never blocks a request. */
        webhook: z
          .object({
            /** https, or http to a loopback host only. */
            url: z
              .string()
              .url()
              .refine(
                (u) => {
                  const url = new URL(u);
                  return (
                    url.protocol === 'https:' ||
                    (url.protocol === 'http:' &&
                      ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname.toLowerCase()))
                  );
                },
                { message: 'must be https (http only to localhost / 127.0.0.1 / [::1])' },
              ),
            /** Sent as `Authorization: Bearer <token>`. */
            bearerToken: z.string().min(1).optional(),
            /** Signs each body: `X-Gatehouse-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
            hmacSecret: z.string().min(16).optional(),
            /** Most events per POST. */
            batchSize: z.number().int().min(1).max(10000).default(100),
            /** How often the queue is sent (also sent as soon as a batch is full). */
            flushIntervalMs: z.number().int().min(10).max(60000).default(1000),
            /** Most events waiting; beyond it new events are dropped and counted (`droppedEvents`, metrics). */
            queueSize: z.number().int().min(1).max(1000000).default(10000),
            /** Per POST; a timed-out or failed batch is put back once if the queue has room, else dropped. */
            timeoutMs: z.number().int().min(100).max(60000).default(5000),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Flow traces (core/flow-trace.ts): the steps of each browser authorization (authorize, sign-in, consent, code,
     * token, refresh) kept in the store under a reference id shown on error pages; read with `gatehouse trace <id>`
     * or `GET /admin/traces/<id>`. On by default: a step costs a store write off the request's path, and only the
     * authorization-code flow and its refreshes write one (client_credentials and other machine grants never do).
     */
    trace: z
      .object({
        enabled: z.boolean().default(true),
        /** How long a trace is kept after its first step (one day). */
        ttlSeconds: z.number().int().min(60).max(2592000).default(86400),
        /** Most steps kept per trace (later ones are counted, not kept): a long-lived grant's refreshes stop there. */
        maxSteps: z.number().int().min(1).max(1000).default(50),
        /**
         * How long a trace's steps wait to be written together (one store write per trace per window): a client
         * refreshing in a tight loop costs one write per window, not one per refresh. 0 writes after each request.
         */
        coalesceMilliseconds: z.number().int().min(0).max(10000).default(1000),
      })
      .strict()
      .prefault({}),
    /**
     * Bearer token of the admin API (`/admin/...`); unset = no admin API. A SHA-256 hex of the token may be given
     * instead (`adminTokenSha256`), so the config holds no usable secret.
     */
    adminToken: z.string().min(32).optional(),
    adminTokenSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
  })
  .strict();

/** The validated configuration (with the issuer always filled in). */
export type Config = z.output<typeof configSchema> & { issuer: string };
/** What a config file may contain. */
export type ConfigInput = z.input<typeof configSchema>;
