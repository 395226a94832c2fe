/**
 * Config `upstreams`: identity providers users may sign in at (Gatehouse stays the authorization server MCP clients
 * talk to). This is the shape as written; upstream/presets.ts fills in a preset's defaults (an explicit setting wins),
 * so the rules below that name a preset (what it supplies, what it forbids) must agree with that file.
 */
import { z } from 'zod';

const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be a scope token (RFC 6749 §3.3)');

/** http is allowed (an upstream on the LAN, tests) and warned about at start for non-loopback hosts. */
const endpointUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an https (or http) URL')
  .refine(
    (u) => !/^https?:\/\/[^/?#]*@/i.test(u),
    'must not contain credentials (the client secret has its own settings)',
  );

/** An identifier with no query or fragment: compared exactly with the upstream's `iss`. */
const issuerUrl = endpointUrl.refine(
  (u) => !u.includes('?') && !u.includes('#'),
  'must not contain a query or fragment',
);

/**
 * Request parameters Gatehouse sets itself (and their signed or by-reference forms): never taken from
 * `authorizationParams`.
 */
export const RESERVED_AUTHORIZATION_PARAMS = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
  'response_mode',
] as const;
const reserved = new Set<string>(RESERVED_AUTHORIZATION_PARAMS);

/** `registration`: dynamic client registration of Gatehouse at the upstream (RFC 7591). */
const registrationSchema = z
  .object({
    mode: z.literal('dynamic'),
    /** The registration endpoint; default the discovery document's `registration_endpoint` (oidc). */
    endpoint: endpointUrl.optional(),
    /** The environment variable holding an initial access token (sent as a Bearer token), if the upstream wants one. */
    initialAccessTokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
      .optional(),
    /** A file holding the initial access token (surrounding whitespace is ignored). */
    initialAccessTokenFile: z.string().min(1).optional(),
    /** RFC 7591 `software_id`. */
    softwareId: z.string().min(1).max(255).optional(),
    /** RFC 7591 `software_statement` (a JWT the upstream may require). */
    softwareStatement: z
      .string()
      .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/, 'a JWT')
      .optional(),
  })
  .strict();

/** A claim of the userinfo response, or several tried in order (the first present wins). */
const claimNames = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

const common = {
  /** Names the upstream in the sign-in URLs and in every identity it vouches for: keep it stable. */
  id: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'lowercase letters, digits and hyphens'),
  /** Shown on the sign-in page ("Sign in with <name>"). */
  name: z.string().min(1).max(100),
  /** Gatehouse's client_id at the upstream (not with `registration`: the upstream assigns it). */
  clientId: z.string().min(1).max(255).optional(),
  /** The environment variable holding the client secret. */
  clientSecretEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
    .optional(),
  /** A file holding the client secret (surrounding whitespace, e.g. a final newline, is ignored). */
  clientSecretFile: z.string().min(1).optional(),
  /** The client secret inline: accepted with a warning at start; prefer clientSecretEnv or clientSecretFile. */
  clientSecret: z.string().min(1).optional(),
  /** How Gatehouse authenticates at the token endpoint; default client_secret_basic (presets may differ). */
  tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).optional(),
  /** Scopes asked for; default from the preset, else `openid email profile` (oidc; `openid` is always added). */
  scopes: z.array(scopeToken).min(1).optional(),
  /**
   * Extra authorization request parameters (e.g. Google's `hd`, `prompt`), over the preset's; not the ones Gatehouse
   * sets itself (state, nonce, PKCE, ...).
   */
  authorizationParams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.string()).optional(),
  /**
   * Gatehouse registers itself at the upstream (RFC 7591) on first use instead of a configured client: the
   * credentials are kept sealed in the store, shared by the replicas, and registered again when they expire or the
   * upstream no longer knows them (`invalid_client`). Without clientId and client secret.
   */
  registration: registrationSchema.optional(),
  /** Time allowed for each call to the upstream (discovery, JWKS, token, userinfo), ms. */
  timeoutMs: z.number().int().positive().max(60_000).default(5000),
  /**
   * Sign an identity whose email this upstream says is verified in as the one existing local account (a user with a
   * password) with that verified email, instead of a user of its own; the link is remembered. Only for an upstream
   * trusted to verify addresses of that domain. Default false.
   */
  linkByVerifiedEmail: z.boolean().default(false),
};

/** An OpenID Connect provider: endpoints from its discovery document, the identity from its ID token. */
export const oidcUpstreamSchema = z
  .object({
    ...common,
    type: z.literal('oidc'),
    /**
     * `google` (issuer https://accounts.google.com, access_type=offline and prompt=consent for a refresh token),
     * `entra` (issuer from `entraTenant`, no `resource` parameter), `okta` (issuer: the Okta org or authorization
     * server URL), `keycloak` (issuer: the realm URL, `https://<host>/realms/<realm>`).
     */
    preset: z.enum(['google', 'entra', 'okta', 'keycloak']).optional(),
    /** The issuer identifier; discovery is at `<issuer>/.well-known/openid-configuration`. */
    issuer: issuerUrl.optional(),
    /**
     * preset `entra`: the directory (tenant) ID, a GUID. Not a domain name nor `common` / `organizations`: their
     * metadata names an issuer other than the one asked for, which the issuer check refuses.
     */
    entraTenant: z
      .string()
      .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be the tenant ID (a GUID)')
      .optional(),
    /** Ask the userinfo endpoint for email and name when the ID token lacks them; default true (`entra`: false). */
    userinfo: z.boolean().optional(),
  })
  .strict();

/** A plain OAuth 2.0 provider (GitHub-style): explicit endpoints, the identity from its user endpoint. */
export const oauth2UpstreamSchema = z
  .object({
    ...common,
    type: z.literal('oauth2'),
    /** `github`: github.com's endpoints, api.github.com/user and /user/emails, client_secret_post. */
    preset: z.enum(['github']).optional(),
    /** What identifies this upstream in identities (with the subject); default the authorization endpoint's origin. */
    issuer: issuerUrl.optional(),
    authorizationEndpoint: endpointUrl.optional(),
    tokenEndpoint: endpointUrl.optional(),
    /** GET with the access token; answers a JSON object the `claims` mapping reads. */
    userinfoEndpoint: endpointUrl.optional(),
    /**
     * GitHub-style list of the user's addresses (`[{ email, primary, verified }]`): the primary verified one becomes
     * the email, verified.
     */
    emailsEndpoint: endpointUrl.optional(),
    /** Which userinfo members hold the identity; default sub, email, email_verified, name. */
    claims: z
      .object({
        subject: claimNames.optional(),
        email: claimNames.optional(),
        emailVerified: claimNames.optional(),
        name: claimNames.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const upstreamSchema = z
  .discriminatedUnion('type', [oidcUpstreamSchema, oauth2UpstreamSchema])
  .superRefine((u, ctx) => {
    const secrets = [u.clientSecretEnv, u.clientSecretFile, u.clientSecret].filter((s) => s !== undefined);
    if (u.registration !== undefined) {
      for (const key of ['clientId', 'clientSecretEnv', 'clientSecretFile', 'clientSecret'] as const) {
        if (u[key] !== undefined) {
          ctx.addIssue({ code: 'custom', message: 'not with registration (the upstream assigns it)', path: [key] });
        }
      }
      if (u.registration.initialAccessTokenEnv !== undefined && u.registration.initialAccessTokenFile !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'at most one of initialAccessTokenEnv or initialAccessTokenFile',
          path: ['registration', 'initialAccessTokenEnv'],
        });
      }
      if (u.type === 'oauth2' && u.registration.endpoint === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'required (no discovery for oauth2)',
          path: ['registration', 'endpoint'],
        });
      }
    } else if (u.clientId === undefined) {
      ctx.addIssue({ code: 'custom', message: 'required (or registration: dynamic)', path: ['clientId'] });
    }
    if (u.registration === undefined && secrets.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'exactly one of clientSecretEnv, clientSecretFile or clientSecret is required',
        path: ['clientSecretEnv'],
      });
    }
    for (const key of Object.keys(u.authorizationParams ?? {})) {
      if (reserved.has(key)) {
        ctx.addIssue({ code: 'custom', message: 'set by Gatehouse itself', path: ['authorizationParams', key] });
      }
    }
    if (u.type === 'oidc') {
      if (u.entraTenant !== undefined && u.preset !== 'entra') {
        ctx.addIssue({ code: 'custom', message: 'only with preset entra', path: ['entraTenant'] });
      }
      const issuerSupplied = u.preset === 'google' || (u.preset === 'entra' && u.entraTenant !== undefined);
      if (u.issuer === undefined && !issuerSupplied) {
        ctx.addIssue({
          code: 'custom',
          message: u.preset === 'entra' ? 'entraTenant (or issuer) is required' : 'required',
          path: [u.preset === 'entra' ? 'entraTenant' : 'issuer'],
        });
      }
      // Entra v2 refuses `resource` (a v1 parameter) and the scopes already name the API.
      if (u.preset === 'entra' && u.authorizationParams?.resource !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'never sent to Entra: name the API in scopes (`api://<app>/.default`)',
          path: ['authorizationParams', 'resource'],
        });
      }
      if (u.preset === 'keycloak' && u.issuer !== undefined && !/\/realms\/[^/]+$/.test(u.issuer)) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be the realm URL, https://<host>/realms/<realm>',
          path: ['issuer'],
        });
      }
    } else if (u.preset === undefined) {
      for (const key of ['authorizationEndpoint', 'tokenEndpoint', 'userinfoEndpoint'] as const) {
        if (u[key] === undefined) ctx.addIssue({ code: 'custom', message: 'required', path: [key] });
      }
    }
  });

/** One upstream as configured (before its preset is applied: upstream/presets.ts resolveUpstream). */
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type UpstreamConfigInput = z.input<typeof upstreamSchema>;

/** `upstreams`: any number, ids unique. */
export const upstreamsSchema = z
  .array(upstreamSchema)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((u, i) => {
      if (seen.has(u.id)) ctx.addIssue({ code: 'custom', message: `duplicate upstream id "${u.id}"`, path: [i, 'id'] });
      seen.add(u.id);
    });
  })
  .default([]);
