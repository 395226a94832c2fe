/**
 * A real upstream identity provider for tests: oidc-provider on a loopback port with one client for Gatehouse (the
 * redirect URIs a test gives), PKCE S256 required, RFC 9207 `iss` on every authorization response, and its development
 * interactions (a login form taking any password, then a consent form) for {@link signInUpstream} to walk.
 *
 * `mode: 'oauth2'` makes the same provider a plain OAuth 2.0 server shaped like GitHub for the `type: oauth2` path:
 * requests without `openid`, client_secret_post, and GitHub's user endpoints added as a Koa route: GET /user
 * (`{ id, login, name, email }`) and /user/emails (`[{ email, primary, verified }]`), from the access token.
 */
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';
import { FormBrowser } from './browser.js';

export interface UpstreamAccount {
  sub: string;
  email: string;
  email_verified: boolean;
  name: string;
  /** GitHub-shaped /user and /user/emails (mode oauth2). */
  github?: {
    id: number;
    login: string;
    name: string | null;
    emails: { email: string; primary: boolean; verified: boolean }[];
  };
}

export const ALICE: UpstreamAccount = {
  sub: 'alice',
  email: 'alice@example.com',
  email_verified: true,
  name: 'Alice Example',
  github: {
    id: 583231,
    login: 'alice-gh',
    name: null,
    emails: [
      { email: 'alice.old@example.com', primary: false, verified: true },
      { email: 'alice@users.example.com', primary: true, verified: true },
    ],
  },
};

export interface OidcUpstreamOptions {
  redirectUris: string[];
  mode?: 'oidc' | 'oauth2';
  clientId?: string;
  clientSecret?: string;
  /** Default client_secret_basic (oidc), client_secret_post (oauth2, as GitHub). */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  accounts?: UpstreamAccount[];
  /** Put the scopes' claims (email, name) in the ID token too; by default they are only at userinfo. */
  idTokenClaims?: boolean;
  /** Issue a refresh token at every code exchange (not only with offline_access and consent). */
  refreshTokens?: boolean;
  /** Rotate refresh tokens at every refresh (true), never (false), or oidc-provider's default (undefined). */
  rotateRefreshToken?: boolean | (() => boolean);
  /** Access token lifetime, seconds (default 3600). */
  accessTokenTtl?: number;
  /**
   * Dynamic client registration (RFC 7591) at POST /reg, only with this initial access token when one is given, and
   * its management (RFC 7592: GET / DELETE at the registration_client_uri).
   * `secretExpiresAt` overrides the client_secret_expires_at answered (epoch seconds; default oidc-provider's 0).
   */
  registration?: { initialAccessToken?: string; secretExpiresAt?: () => number | undefined };
}

export interface OidcUpstream {
  issuer: string;
  clientId: string;
  clientSecret: string;
  provider: Provider;
  /** Every token request it answered, in order: `<grant_type>:ok` or `<grant_type>:<error>`. */
  tokenRequests: string[];
  /** Every registration request (option `registration`): its status, Authorization header and JSON body. */
  registrations: { status: number; authorization: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

/** Starts oidc-provider; `close()` stops it. */
export async function startOidcUpstream(options: OidcUpstreamOptions): Promise<OidcUpstream> {
  const mode = options.mode ?? 'oidc';
  const clientId = options.clientId ?? 'gatehouse';
  const clientSecret = options.clientSecret ?? 'upstream-client-secret-of-some-length';
  const accounts = new Map((options.accounts ?? [ALICE]).map((a) => [a.sub, a]));
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method:
          options.tokenEndpointAuthMethod ?? (mode === 'oauth2' ? 'client_secret_post' : 'client_secret_basic'),
      },
    ],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'upstream-rs256' }] },
    cookies: { keys: ['an-upstream-cookie-key-for-tests'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    scopes: ['openid', 'offline_access', ...(mode === 'oauth2' ? ['read:user', 'user:email'] : [])],
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: true },
      ...(options.registration
        ? {
            registration: {
              enabled: true,
              ...(options.registration.initialAccessToken
                ? { initialAccessToken: options.registration.initialAccessToken }
                : {}),
            },
            registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
          }
        : {}),
    },
    conformIdTokenClaims: !options.idTokenClaims,
    ...(options.refreshTokens ? { issueRefreshToken: () => true } : {}),
    ...(options.rotateRefreshToken !== undefined
      ? {
          rotateRefreshToken: () =>
            typeof options.rotateRefreshToken === 'function'
              ? options.rotateRefreshToken()
              : options.rotateRefreshToken!,
        }
      : {}),
    // Set, so oidc-provider does not print a notice for each default it uses.
    ttl: {
      AccessToken: options.accessTokenTtl ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Grant: 24 * 3600,
      Session: 3600,
      Interaction: 600,
    },
    findAccount: (_ctx, id) => {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: account.sub,
          email: account.email,
          email_verified: account.email_verified,
          name: account.name,
        }),
      };
    },
    renderError: (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
  // The development-interactions notice is expected here.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).startsWith('oidc-provider WARNING')) warn(...args);
  };
  let provider: Provider;
  try {
    provider = new Provider(issuer, configuration);
  } finally {
    console.warn = warn;
  }
  provider.proxy = false;
  const tokenRequests: string[] = [];
  const grantType = (ctx: { oidc?: { params?: Record<string, unknown> } }) => String(ctx.oidc?.params?.grant_type);
  provider.on('grant.success', (ctx) => tokenRequests.push(`${grantType(ctx)}:ok`));
  provider.on('grant.error', (ctx, err: { error?: string }) => tokenRequests.push(`${grantType(ctx)}:${err.error}`));

  const registrations: OidcUpstream['registrations'] = [];
  if (options.registration) {
    const { secretExpiresAt } = options.registration;
    provider.use(async (ctx, next) => {
      if (ctx.method !== 'POST' || ctx.path !== '/reg') return next();
      await next();
      const body = (ctx as unknown as { oidc?: { body?: Record<string, unknown> } }).oidc?.body ?? {};
      registrations.push({ status: ctx.status, authorization: ctx.get('authorization'), body });
      const expiresAt = secretExpiresAt?.();
      if (ctx.status === 201 && expiresAt !== undefined) {
        ctx.body = { ...(ctx.body as Record<string, unknown>), client_secret_expires_at: expiresAt };
      }
    });
  }

  if (mode === 'oauth2') {
    // GitHub's API, answered from oidc-provider's own access tokens.
    provider.use(async (ctx, next) => {
      if (ctx.method !== 'GET' || (ctx.path !== '/user' && ctx.path !== '/user/emails')) return next();
      const bearer = /^Bearer (\S+)$/i.exec(ctx.get('authorization'))?.[1];
      const token = bearer ? await provider.AccessToken.find(bearer) : undefined;
      const account = token?.accountId ? accounts.get(token.accountId) : undefined;
      ctx.type = 'json';
      if (!account?.github) {
        ctx.status = 401;
        ctx.body = { message: 'Bad credentials' };
        return;
      }
      const { github } = account;
      ctx.body =
        ctx.path === '/user'
          ? { id: github.id, login: github.login, name: github.name, email: null }
          : github.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null }));
    });
  }
  const callback = provider.callback();
  server.on('request', (req, res) => void callback(req, res));
  return {
    issuer,
    clientId,
    clientSecret,
    provider,
    tokenRequests,
    registrations,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A form on one of oidc-provider's interaction pages: its action and hidden fields. */
function interactionForm(html: string, pageUrl: string): { action: string; fields: Record<string, string> } {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`no form on the upstream page: ${html.slice(0, 300)}`);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)) fields[m[1]!] = m[2]!;
  return { action: new URL(action, pageUrl).href, fields };
}

/**
 * Walks the upstream's pages like a user without JavaScript: opens `authorizationUrl`, signs in as `login` (any
 * password), then allows (or, with `decision: 'deny'`, cancels) at consent. Returns the URL the upstream redirected
 * back to (not fetched): the callback to give to `complete()`.
 */
export async function signInUpstream(
  authorizationUrl: string,
  options: { login?: string; decision?: 'approve' | 'deny'; browser?: FormBrowser } = {},
): Promise<URL> {
  const browser = options.browser ?? new FormBrowser();
  const origin = new URL(authorizationUrl).origin;
  let step = await browser.follow(authorizationUrl, origin);
  for (let i = 0; i < 4 && !step.callback; i++) {
    const html = await step.res.text();
    if (step.res.status !== 200) throw new Error(`upstream page ${step.res.status}: ${html.slice(0, 300)}`);
    const { action, fields } = interactionForm(html, step.url);
    if (options.decision === 'deny' && fields.prompt === 'consent') {
      const abort = /<a href="([^"]+\/abort)"/.exec(html)?.[1];
      if (!abort) throw new Error('no cancel link on the consent page');
      step = await browser.follow(new URL(abort, step.url).href, origin);
      continue;
    }
    const extra: Record<string, string> =
      fields.prompt === 'login' ? { login: options.login ?? ALICE.sub, password: 'any password' } : {};
    step = await browser.follow(action, origin, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, ...extra }).toString(),
    });
  }
  if (!step.callback) throw new Error('the upstream did not redirect back');
  return new URL(step.callback);
}
