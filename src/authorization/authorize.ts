/**
 * Authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1, RFC 7636, RFC 8707, RFC 9207, OIDC Core §3.1.2,
 * RFC 9126 §4). Checks run in order: client and redirect_uri first (errors shown on a page: never redirect to an
 * untrusted URI, RFC 9700 §4.11), then everything else (errors redirected to the client with `iss`). A pushed request
 * (par.ts) is put through the same checks when it is pushed, and again here in place of the query.
 */
import { randomId, randomToken } from '../core/crypto.js';
import {
  InteractionRequired,
  InvalidRequest,
  InvalidRequestUri,
  OAuthError,
  RequestNotSupported,
  UnauthorizedClient,
  UnsupportedResponseType,
} from '../model/errors.js';
import { checkCodeChallenge } from '../core/pkce.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { matchRedirectUri } from '../core/redirect-uri.js';
import { resolveResources } from '../core/resource.js';
import { parseScope, resolveRequestedScopes } from '../core/scope.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { ConsentStore, InteractionStore, PushedRequestStore, RateLimitStore } from '../model/ports.js';
import { limitRequest } from '../core/rate-limit.js';
import type { ClientRecord, InteractionRecord, SessionRecord } from '../model/records.js';
import { errorRedirect, issueCode, type IssueCodeDeps } from './code.js';
import { consentCovers, userGrantAllowList } from './consent.js';
import { findSession, sessionMayStandIn, type SessionLookupDeps } from './session.js';

/** What checking a request's parameters uses (the scope and resource rules). */
export type CheckRequestDeps = Pick<Deps, 'config' | 'scopesSupported'>;

/**
 * What /authorize uses: client lookup, a pushed request, the browser's session, a remembered consent, and a pending
 * interaction or the code it issues at once.
 */
export type AuthorizeDeps = Pick<
  Deps,
  'clients' | 'config' | 'clock' | 'scopesSupported' | 'pepper' | 'logger' | 'audit'
> &
  AuthorizeLimitDeps &
  SessionLookupDeps &
  IssueCodeDeps & {
    storage: Pick<InteractionStore, 'saveInteraction'> &
      Pick<ConsentStore, 'getConsent'> &
      Pick<PushedRequestStore, 'takePushedRequest'>;
  };

/** Counting a request against config `rateLimits.authorize` (nothing while it is off). */
type AuthorizeLimitDeps = { storage: Pick<RateLimitStore, 'hitRateLimit'> };

/** What the HTTP layer should do next. */
export type AuthorizeOutcome =
  | { kind: 'redirect'; location: string }
  | { kind: 'interaction'; interactionId: string }
  /**
   * The client or redirect_uri cannot be trusted: show the error, do not redirect. `reference`: the flow trace
   * reference of the request (core/flow-trace.ts), for a known client.
   */
  | { kind: 'error_page'; error: OAuthError; reference?: string };

const PROMPTS = new Set(['none', 'login', 'consent']);
const MAX_STATE_LENGTH = 2048;
/** A pushed request's request_uri (RFC 9126 §2.2) is this URN prefix and the request's random id. */
export const PUSHED_REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';

/** The authorization endpoint: a browser page; what its requests may carry is advertised. */
export const authorizeDeclaration = {
  path: '/authorize',
  pages: true,
  metadata: (url) => ({
    authorization_endpoint: url,
    response_modes_supported: ['query'],
    authorization_response_iss_parameter_supported: true,
    prompt_values_supported: [...PROMPTS],
    request_parameter_supported: false,
    // Request objects by reference (RFC 9101); pushed requests' request_uris are advertised by par.ts's endpoint.
    request_uri_parameter_supported: false,
    claims_parameter_supported: false,
  }),
} satisfies EndpointDeclaration;

/** Single value of a raw parameter for the pre-trust checks (client_id, redirect_uri). */
function singleRaw(raw: RawParams, name: string): string | undefined | null {
  const values = raw[name]?.filter((v) => v !== '') ?? [];
  if (values.length > 1) return null;
  return values[0];
}

/**
 * Handles GET/POST /authorize. `sessionId` is the id the browser's session cookie carries, if any; `bindBrowser`
 * returns the binding of this browser (http/ sets its nonce cookie when it has none), called only when an
 * interaction is created.
 */
export async function authorize(
  raw: RawParams,
  sessionId: string | undefined,
  deps: AuthorizeDeps,
  bindBrowser: () => string,
  context?: AuditRequestContext,
): Promise<AuthorizeOutcome> {
  const session = await findSession(sessionId, deps);
  const clientId = singleRaw(raw, 'client_id');
  // Refusals before a known client are audited but not traced: made-up client ids must not make store writes.
  const untraced = (error: OAuthError, reason: string) => {
    deps.audit.emit({ type: 'authorize.refused', error: error.code, reason, shown: 'page' }, context);
    return page(error);
  };
  if (clientId === null) {
    return untraced(new InvalidRequest('client_id must not be included more than once'), 'client_id sent twice');
  }
  if (!clientId) return untraced(new InvalidRequest('client_id is required'), 'no client_id');
  let client: ClientRecord | undefined;
  try {
    client = await deps.clients.getClient(clientId);
  } catch (err) {
    if (err instanceof OAuthError)
      return untraced(err, `client ${clip(clientId)} could not be loaded: ${err.description}`);
    throw err;
  }
  if (!client) return untraced(new InvalidRequest('unknown client_id'), `unknown client_id ${clip(clientId)}`);
  // The flow trace reference of this authorization, and the grant id of its code (interaction.grantId).
  const reference = randomId();
  const known = client.clientId;
  const refused = (error: OAuthError, reason?: string): AuthorizeOutcome => {
    deps.audit.emit(
      {
        type: 'authorize.refused',
        clientId: known,
        reference,
        error: error.code,
        reason: reason ?? error.description ?? error.code,
        shown: 'page',
      },
      context,
    );
    return { ...page(error), reference };
  };
  // Per registered client (config rateLimits.authorize.perClient), so made-up ids make no counters. Shown as a page
  // (429, Retry-After), as every error is until the redirect URI is trusted: a person is waiting, not a program.
  try {
    await limitRequest(deps, 'authorize', 'client', client.clientId, context);
  } catch (err) {
    if (err instanceof OAuthError) return refused(err, 'rate limit of /authorize for this client');
    throw err;
  }

  // RFC 9126 §4: a pushed request's parameters replace the query's (client_id aside); its request_uri is used once.
  const requestUri = singleRaw(raw, 'request_uri');
  if (requestUri?.startsWith(PUSHED_REQUEST_URI_PREFIX)) {
    const pushed = await deps.storage.takePushedRequest(requestUri.slice(PUSHED_REQUEST_URI_PREFIX.length));
    if (!pushed || pushed.clientId !== client.clientId) {
      return refused(
        new InvalidRequestUri("the request_uri is unknown, expired, already used, or not this client's"),
        'pushed request_uri refused: unknown, expired, already used, or pushed by another client',
      );
    }
    raw = { ...pushed.params, client_id: [client.clientId] };
  } else if (client.requirePushedAuthorizationRequests || deps.config.pushedAuthorizationRequests.required) {
    return refused(new InvalidRequest('this client must push its authorization request first (RFC 9126 request_uri)'));
  }

  const redirectUri = trustedRedirectUri(raw, client);
  if (redirectUri instanceof OAuthError) return refused(redirectUri, redirectRefusal(raw, client));
  const { state, stateError } = checkedState(raw);

  try {
    if (stateError) throw stateError;
    return await authorizeTrusted(raw, client, redirectUri, state, session, deps, bindBrowser, reference, context);
  } catch (err) {
    if (err instanceof OAuthError && err.redirectable) {
      deps.audit.emit(
        {
          type: 'authorize.refused',
          clientId: known,
          reference,
          error: err.code,
          reason: err.description ?? err.code,
          shown: 'redirect',
        },
        context,
      );
      return { kind: 'redirect', location: errorRedirect(redirectUri, err, state, deps.config.issuer) };
    }
    if (err instanceof OAuthError) return refused(err);
    throw err;
  }
}

/** At most this much of a value sent by the browser goes into a trace's words. */
const MAX_TRACED_VALUE = 300;
const clip = (value: string) => (value.length > MAX_TRACED_VALUE ? `${value.slice(0, MAX_TRACED_VALUE)}…` : value);

/** Why the redirect_uri was refused, in plain words: what is registered and what came (URIs are not secrets). */
function redirectRefusal(raw: RawParams, client: ClientRecord): string {
  const requested = singleRaw(raw, 'redirect_uri');
  const registered = client.redirectUris.length > 0 ? client.redirectUris.join(' ') : 'none';
  if (requested === null) return 'redirect_uri refused: sent more than once';
  if (requested === undefined) {
    return `redirect_uri refused: none sent, and the client registered ${client.redirectUris.length} (${registered})`;
  }
  return `redirect_uri refused: registered ${registered}, got ${clip(requested)}`;
}

function page(error: OAuthError): Extract<AuthorizeOutcome, { kind: 'error_page' }> {
  error.redirectable = false;
  return { kind: 'error_page', error };
}

/**
 * Every check of a request that does not look at the browser, each failure thrown: what POST /par runs on a pushed
 * request (RFC 9126 §2.1) before it stores it, for the client that pushed it.
 */
export function checkAuthorizationRequest(raw: RawParams, client: ClientRecord, deps: CheckRequestDeps): void {
  const redirectUri = trustedRedirectUri(raw, client);
  if (redirectUri instanceof OAuthError) throw redirectUri;
  const { stateError } = checkedState(raw);
  if (stateError) throw stateError;
  checkTrustedRequest(raw, client, deps);
}

/** The redirect URI to answer, or the error to show: the client cannot be answered at an untrusted URI. */
function trustedRedirectUri(raw: RawParams, client: ClientRecord): string | InvalidRequest {
  const requestedRedirect = singleRaw(raw, 'redirect_uri');
  if (requestedRedirect === null) return new InvalidRequest('redirect_uri must not be included more than once');
  let redirectUri: string | undefined;
  if (requestedRedirect === undefined) {
    // OAuth 2.1 §4.1.1: optional only when exactly one URI is registered.
    if (client.redirectUris.length === 1) redirectUri = client.redirectUris[0];
  } else if (matchRedirectUri(client.redirectUris, requestedRedirect)) {
    redirectUri = requestedRedirect;
  }
  return (
    redirectUri ??
    new InvalidRequest(
      requestedRedirect === undefined ? 'redirect_uri is required' : 'redirect_uri is not registered for this client',
    )
  );
}

/** The state to echo, and the error of a repeated or over-long one. */
function checkedState(raw: RawParams): { state?: string; stateError?: InvalidRequest } {
  const stateValue = singleRaw(raw, 'state');
  if (stateValue === null) return { stateError: new InvalidRequest('state must not be included more than once') };
  // An over-long state is never echoed: checked before anything can redirect with it, then left out of the redirect.
  if (stateValue !== undefined && stateValue.length > MAX_STATE_LENGTH) {
    return { stateError: new InvalidRequest('state is too long') };
  }
  return { state: stateValue };
}

/**
 * The scopes and resources a user may be asked to grant `client` (RFC 6749 §3.3, RFC 8707 §2): what /authorize checks,
 * and what a device authorization request (RFC 8628 §3.1, device.ts) is held to.
 */
export function checkScopeAndResource(
  params: Record<string, string | string[] | undefined>,
  client: ClientRecord,
  deps: CheckRequestDeps,
): { scope: string[]; resource: string[] } {
  const scope = resolveRequestedScopes(
    parseScope(params.scope as string | undefined),
    userGrantAllowList(client, deps),
    deps.scopesSupported,
    deps.config.strictScopes,
  );
  const resource = resolveResources((params.resource as string[] | undefined) ?? [], deps.config.resources);
  return { scope, resource };
}

/** The checks that follow a trusted client and redirect URI (their failures are redirected), and what they yield. */
function checkTrustedRequest(raw: RawParams, client: ClientRecord, deps: CheckRequestDeps) {
  const params = collapseParams(raw, ['resource']);
  const responseType = params.response_type as string | undefined;
  if (!responseType) throw new InvalidRequest('response_type is required');
  if (responseType !== 'code') throw new UnsupportedResponseType();
  if (!client.grantTypes.includes('authorization_code') || !client.responseTypes.includes('code')) {
    throw new UnauthorizedClient('the client is not allowed to use the authorization code flow');
  }
  if (params.request !== undefined)
    throw new RequestNotSupported('request_not_supported', 'request objects are not supported');
  if (params.request_uri !== undefined)
    throw new RequestNotSupported('request_uri_not_supported', 'request_uri is not supported');
  if (params.response_mode !== undefined && params.response_mode !== 'query') {
    throw new InvalidRequest('only response_mode=query is supported');
  }
  const codeChallenge = checkCodeChallenge(
    params.code_challenge as string | undefined,
    params.code_challenge_method as string | undefined,
  );
  const { scope, resource } = checkScopeAndResource(params, client, deps);
  const prompt = ((params.prompt as string | undefined) ?? '').split(' ').filter(Boolean);
  for (const p of prompt) if (!PROMPTS.has(p)) throw new InvalidRequest(`unsupported prompt value ${p}`);
  if (prompt.includes('none') && prompt.length > 1) throw new InvalidRequest('prompt=none cannot be combined');
  let maxAge: number | undefined;
  if (params.max_age !== undefined) {
    maxAge = Number(params.max_age);
    if (!Number.isInteger(maxAge) || maxAge < 0) throw new InvalidRequest('max_age must be a non-negative integer');
  }
  const nonce = params.nonce as string | undefined;
  if (nonce !== undefined && nonce.length > 512) throw new InvalidRequest('nonce is too long');
  // RFC 9449 §10: the code is bound to this key thumbprint (RFC 7638, SHA-256: 43 base64url characters).
  const dpopJkt = params.dpop_jkt as string | undefined;
  if (dpopJkt !== undefined && (!deps.config.dpop.enabled || !/^[A-Za-z0-9_-]{43}$/.test(dpopJkt)))
    throw new InvalidRequest(
      deps.config.dpop.enabled ? 'dpop_jkt is not a JWK SHA-256 thumbprint' : 'dpop_jkt is not supported',
    );
  return { scope, resource, codeChallenge, prompt, maxAge, nonce, dpopJkt };
}

async function authorizeTrusted(
  raw: RawParams,
  client: ClientRecord,
  redirectUri: string,
  state: string | undefined,
  session: SessionRecord | undefined,
  deps: AuthorizeDeps,
  bindBrowser: () => string,
  reference: string,
  context: AuditRequestContext | undefined,
): Promise<AuthorizeOutcome> {
  const { scope, resource, codeChallenge, prompt, maxAge, nonce, dpopJkt } = checkTrustedRequest(raw, client, deps);
  const now = deps.clock.now();
  const interaction: Omit<InteractionRecord, 'browserBinding'> = {
    id: randomToken(24),
    clientId: client.clientId,
    grantId: reference,
    redirectUri,
    redirectUriSent: singleRaw(raw, 'redirect_uri') !== undefined,
    state,
    nonce,
    scope,
    resource,
    codeChallenge,
    codeChallengeMethod: 'S256',
    prompt,
    maxAge,
    responseMode: 'query',
    ...(dpopJkt !== undefined && { dpopJkt }),
    createdAt: now,
    expiresAt: now + deps.config.interactionTtl * 1000,
  };

  const accepted = (next: 'login' | 'consent' | 'code') =>
    deps.audit.emit(
      {
        type: 'authorize.accepted',
        clientId: client.clientId,
        reference,
        scopes: scope,
        resources: resource,
        next,
      },
      context,
    );
  const user = sessionMayStandIn(session, prompt, maxAge, now);
  if (!user) {
    if (prompt.includes('none')) throw new InteractionRequired('login_required', 'the user is not signed in');
    await deps.storage.saveInteraction({ ...interaction, browserBinding: bindBrowser() });
    accepted('login');
    return { kind: 'interaction', interactionId: interaction.id };
  }
  const consent = await deps.storage.getConsent(user.userId, client.clientId);
  if (!prompt.includes('consent') && consentCovers(consent, scope, resource)) {
    accepted('code');
    const location = await issueCode(
      { ...interaction, userId: user.userId, authTime: user.authTime, amr: user.amr },
      client,
      consent,
      deps,
      context,
    );
    return { kind: 'redirect', location };
  }
  if (prompt.includes('none'))
    throw new InteractionRequired('consent_required', 'the user has not approved this client');
  await deps.storage.saveInteraction({
    ...interaction,
    browserBinding: bindBrowser(),
    userId: user.userId,
    authTime: user.authTime,
    amr: user.amr,
  });
  accepted('consent');
  return { kind: 'interaction', interactionId: interaction.id };
}
