/**
 * Presets: the defaults and quirks of well-known upstreams, applied under the configured settings (an explicit setting
 * always wins). config/upstreams.ts checks what a preset needs (e.g. entra's tenant) when the config is read.
 *
 *   google    OIDC, issuer https://accounts.google.com; `access_type=offline` and `prompt=consent`, without which
 *             Google issues no refresh token; its ID tokens may say `iss: accounts.google.com` (no scheme): accepted.
 *   entra     OIDC, issuer https://login.microsoftonline.com/{entraTenant}/v2.0; `offline_access` for a refresh
 *             token; `.default` scopes of an API may be asked for, so its userinfo endpoint (Microsoft Graph only) is
 *             not called; never a `resource` parameter (a v1 endpoint parameter that v2 refuses); client_secret_post,
 *             as Microsoft's own libraries send it.
 *   okta      OIDC, issuer the Okta org (https://<org>.okta.com) or an authorization server
 *             (https://<org>.okta.com/oauth2/default); `offline_access` for a refresh token; its ID tokens from the
 *             code flow are "thin" (no email or name), so userinfo is asked.
 *   keycloak  OIDC, issuer the realm URL (https://<host>/realms/<realm>); refresh tokens by default.
 *   github    OAuth 2.0: github.com/login/oauth/authorize and /login/oauth/access_token (JSON only when asked with
 *             Accept: application/json; errors come as HTTP 200 with `error`), the user from api.github.com/user (a
 *             numeric `id`, `name` or else `login`), the email from /user/emails (the primary verified one);
 *             client_secret_post; OAuth app tokens never expire (no expires_in).
 */
import type { UpstreamConfig } from '../config/upstreams.js';

/** Where the client secret comes from (read once, at start: upstream/client.ts). */
export type SecretSource = { env: string } | { file: string } | { inline: string };

interface ResolvedCommon {
  id: string;
  name: string;
  preset?: string;
  /** The issuer (OIDC) or the configured identifier (oauth2): identities are (issuer, subject). */
  issuer: string;
  /** '' with `registration` (the upstream assigns it: upstream/registration.ts). */
  clientId: string;
  /** Undefined with `registration`. */
  secret: SecretSource | undefined;
  registration?: NonNullable<UpstreamConfig['registration']>;
  tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post';
  scopes: string[];
  /** Extra authorization request parameters, preset's then configured. */
  authorizationParams: Record<string, string>;
  /** Parameters never sent, whatever the config says (entra: `resource`). */
  forbiddenParams: string[];
  timeoutMs: number;
}

export interface ResolvedOidcUpstream extends ResolvedCommon {
  type: 'oidc';
  /** `iss` values an ID token may carry besides the issuer (google: `accounts.google.com`). */
  alternateIdTokenIssuers: string[];
  /** Ask userinfo for email and name when the ID token lacks them. */
  userinfo: boolean;
}

export interface ClaimMapping {
  subject: string[];
  email: string[];
  emailVerified: string[];
  name: string[];
}

export interface ResolvedOAuth2Upstream extends ResolvedCommon {
  type: 'oauth2';
  authorizationEndpoint: string;
  tokenEndpoint: string;
  userinfoEndpoint: string;
  emailsEndpoint?: string;
  claims: ClaimMapping;
  /** Headers of the user endpoint calls (GitHub's API version and media type). */
  userinfoHeaders: Record<string, string>;
}

export type ResolvedUpstream = ResolvedOidcUpstream | ResolvedOAuth2Upstream;

const OIDC_SCOPES = ['openid', 'email', 'profile'];

interface OidcPreset {
  issuer?: (c: Extract<UpstreamConfig, { type: 'oidc' }>) => string | undefined;
  scopes: string[];
  authorizationParams?: Record<string, string>;
  forbiddenParams?: string[];
  tokenEndpointAuthMethod?: ResolvedCommon['tokenEndpointAuthMethod'];
  alternateIdTokenIssuers?: string[];
  userinfo?: boolean;
}

export const OIDC_PRESETS: Record<NonNullable<Extract<UpstreamConfig, { type: 'oidc' }>['preset']>, OidcPreset> = {
  google: {
    issuer: () => 'https://accounts.google.com',
    scopes: OIDC_SCOPES,
    authorizationParams: { access_type: 'offline', prompt: 'consent' },
    alternateIdTokenIssuers: ['accounts.google.com'],
  },
  entra: {
    issuer: (c) => (c.entraTenant ? `https://login.microsoftonline.com/${c.entraTenant}/v2.0` : undefined),
    scopes: [...OIDC_SCOPES, 'offline_access'],
    forbiddenParams: ['resource'],
    tokenEndpointAuthMethod: 'client_secret_post',
    userinfo: false,
  },
  okta: { scopes: [...OIDC_SCOPES, 'offline_access'] },
  keycloak: { scopes: OIDC_SCOPES },
};

interface OAuth2Preset {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  userinfoEndpoint: string;
  emailsEndpoint?: string;
  scopes: string[];
  tokenEndpointAuthMethod: ResolvedCommon['tokenEndpointAuthMethod'];
  claims: ClaimMapping;
  userinfoHeaders: Record<string, string>;
}

export const OAUTH2_PRESETS: Record<
  NonNullable<Extract<UpstreamConfig, { type: 'oauth2' }>['preset']>,
  OAuth2Preset
> = {
  github: {
    issuer: 'https://github.com',
    authorizationEndpoint: 'https://github.com/login/oauth/authorize',
    tokenEndpoint: 'https://github.com/login/oauth/access_token',
    userinfoEndpoint: 'https://api.github.com/user',
    emailsEndpoint: 'https://api.github.com/user/emails',
    scopes: ['read:user', 'user:email'],
    tokenEndpointAuthMethod: 'client_secret_post',
    claims: { subject: ['id'], email: ['email'], emailVerified: [], name: ['name', 'login'] },
    userinfoHeaders: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
  },
};

const DEFAULT_CLAIMS: ClaimMapping = {
  subject: ['sub'],
  email: ['email'],
  emailVerified: ['email_verified'],
  name: ['name'],
};

const list = (names: string | string[] | undefined): string[] | undefined =>
  names === undefined ? undefined : typeof names === 'string' ? [names] : names;

function secretSource(c: UpstreamConfig): SecretSource | undefined {
  if (c.registration !== undefined) return undefined;
  if (c.clientSecretEnv !== undefined) return { env: c.clientSecretEnv };
  if (c.clientSecretFile !== undefined) return { file: c.clientSecretFile };
  // The schema requires exactly one of the three.
  return { inline: c.clientSecret! };
}

/** The upstream's effective settings: its preset's defaults under what is configured. */
export function resolveUpstream(c: UpstreamConfig): ResolvedUpstream {
  const common = {
    id: c.id,
    name: c.name,
    ...(c.preset ? { preset: c.preset } : {}),
    clientId: c.clientId ?? '',
    secret: secretSource(c),
    ...(c.registration ? { registration: c.registration } : {}),
    timeoutMs: c.timeoutMs,
  };
  if (c.type === 'oidc') {
    const preset: OidcPreset = c.preset ? OIDC_PRESETS[c.preset] : { scopes: OIDC_SCOPES };
    const issuer = c.issuer ?? preset.issuer?.(c);
    if (issuer === undefined) throw new TypeError(`upstream ${c.id}: no issuer (the config schema requires one)`);
    const scopes = c.scopes ?? preset.scopes;
    return {
      ...common,
      type: 'oidc',
      issuer,
      // An OpenID Connect request without `openid` would get no ID token.
      scopes: scopes.includes('openid') ? scopes : ['openid', ...scopes],
      tokenEndpointAuthMethod: c.tokenEndpointAuthMethod ?? preset.tokenEndpointAuthMethod ?? 'client_secret_basic',
      authorizationParams: { ...preset.authorizationParams, ...c.authorizationParams },
      forbiddenParams: preset.forbiddenParams ?? [],
      alternateIdTokenIssuers: c.issuer === undefined ? (preset.alternateIdTokenIssuers ?? []) : [],
      userinfo: c.userinfo ?? preset.userinfo ?? true,
    };
  }
  const preset = c.preset ? OAUTH2_PRESETS[c.preset] : undefined;
  const authorizationEndpoint = c.authorizationEndpoint ?? preset?.authorizationEndpoint;
  const tokenEndpoint = c.tokenEndpoint ?? preset?.tokenEndpoint;
  const userinfoEndpoint = c.userinfoEndpoint ?? preset?.userinfoEndpoint;
  if (!authorizationEndpoint || !tokenEndpoint || !userinfoEndpoint) {
    throw new TypeError(`upstream ${c.id}: endpoints missing (the config schema requires them)`);
  }
  const claims = preset?.claims ?? DEFAULT_CLAIMS;
  const emailsEndpoint = c.emailsEndpoint ?? preset?.emailsEndpoint;
  return {
    ...common,
    type: 'oauth2',
    issuer: c.issuer ?? preset?.issuer ?? new URL(authorizationEndpoint).origin,
    scopes: c.scopes ?? preset?.scopes ?? [],
    tokenEndpointAuthMethod: c.tokenEndpointAuthMethod ?? preset?.tokenEndpointAuthMethod ?? 'client_secret_basic',
    authorizationParams: { ...c.authorizationParams },
    forbiddenParams: [],
    authorizationEndpoint,
    tokenEndpoint,
    userinfoEndpoint,
    ...(emailsEndpoint ? { emailsEndpoint } : {}),
    claims: {
      subject: list(c.claims?.subject) ?? claims.subject,
      email: list(c.claims?.email) ?? claims.email,
      emailVerified: list(c.claims?.emailVerified) ?? claims.emailVerified,
      name: list(c.claims?.name) ?? claims.name,
    },
    userinfoHeaders: { accept: 'application/json', ...preset?.userinfoHeaders },
  };
}
