/**
 * Authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1, RFC 7636, RFC 8707, RFC 9207, OIDC Core §3.1.2).
 * Checks run in order: client and redirect_uri first (errors shown on a page: never redirect to an untrusted
 * URI, RFC 9700 §4.11), then everything else (errors redirected to the client with `iss`).
 */
import { randomToken } from '../core/crypto.js';
import {
  InteractionRequired,
  InvalidRequest,
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
import type { ConsentStore, InteractionStore } from '../model/ports.js';
import type { ClientRecord, InteractionRecord, SessionRecord } from '../model/records.js';
import { errorRedirect, issueCode, type IssueCodeDeps } from './code.js';
import { consentCovers, userGrantAllowList } from './consent.js';
import { findSession, sessionMayStandIn, type SessionLookupDeps } from './session.js';

/**
 * What /authorize uses: client lookup, the browser's session, a remembered consent, and a pending interaction or the
 * code it issues at once.
 */
export type AuthorizeDeps = Pick<Deps, 'clients' | 'config' | 'clock' | 'scopesSupported'> &
  SessionLookupDeps &
  IssueCodeDeps & { storage: Pick<InteractionStore, 'saveInteraction'> & Pick<ConsentStore, 'getConsent'> };

/** What the HTTP layer should do next. */
export type AuthorizeOutcome =
  | { kind: 'redirect'; location: string }
  | { kind: 'interaction'; interactionId: string }
  /** The client or redirect_uri cannot be trusted: show the error, do not redirect. */
  | { kind: 'error_page'; error: OAuthError };

const PROMPTS = new Set(['none', 'login', 'consent']);
const MAX_STATE_LENGTH = 2048;

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
): Promise<AuthorizeOutcome> {
  const session = await findSession(sessionId, deps);
  const clientId = singleRaw(raw, 'client_id');
  if (clientId === null) return page(new InvalidRequest('client_id must not be included more than once'));
  if (!clientId) return page(new InvalidRequest('client_id is required'));
  let client: ClientRecord | undefined;
  try {
    client = await deps.clients.getClient(clientId);
  } catch (err) {
    if (err instanceof OAuthError) return page(err);
    throw err;
  }
  if (!client) return page(new InvalidRequest('unknown client_id'));

  const requestedRedirect = singleRaw(raw, 'redirect_uri');
  if (requestedRedirect === null) return page(new InvalidRequest('redirect_uri must not be included more than once'));
  let redirectUri: string | undefined;
  if (requestedRedirect === undefined) {
    // OAuth 2.1 §4.1.1: optional only when exactly one URI is registered.
    if (client.redirectUris.length === 1) redirectUri = client.redirectUris[0];
  } else if (matchRedirectUri(client.redirectUris, requestedRedirect)) {
    redirectUri = requestedRedirect;
  }
  if (!redirectUri) {
    return page(
      new InvalidRequest(
        requestedRedirect === undefined ? 'redirect_uri is required' : 'redirect_uri is not registered for this client',
      ),
    );
  }
  const stateValue = singleRaw(raw, 'state');
  // An over-long state is never echoed: checked before anything can redirect with it, then left out of the redirect.
  const stateTooLong = typeof stateValue === 'string' && stateValue.length > MAX_STATE_LENGTH;
  const state = stateTooLong ? undefined : (stateValue ?? undefined);

  try {
    if (stateValue === null) throw new InvalidRequest('state must not be included more than once');
    if (stateTooLong) throw new InvalidRequest('state is too long');
    return await authorizeTrusted(raw, client, redirectUri, state, session, deps, bindBrowser);
  } catch (err) {
    if (err instanceof OAuthError && err.redirectable) {
      return { kind: 'redirect', location: errorRedirect(redirectUri, err, state, deps.config.issuer) };
    }
    if (err instanceof OAuthError) return page(err);
    throw err;
  }
}

function page(error: OAuthError): AuthorizeOutcome {
  error.redirectable = false;
  return { kind: 'error_page', error };
}

async function authorizeTrusted(
  raw: RawParams,
  client: ClientRecord,
  redirectUri: string,
  state: string | undefined,
  session: SessionRecord | undefined,
  deps: AuthorizeDeps,
  bindBrowser: () => string,
): Promise<AuthorizeOutcome> {
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
  const requestedScope = parseScope(params.scope as string | undefined);
  const scope = resolveRequestedScopes(
    requestedScope,
    userGrantAllowList(client, deps),
    deps.scopesSupported,
    deps.config.strictScopes,
  );
  const resource = resolveResources((params.resource as string[] | undefined) ?? [], deps.config.resources);
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

  const now = deps.clock.now();
  const interaction: Omit<InteractionRecord, 'browserBinding'> = {
    id: randomToken(24),
    clientId: client.clientId,
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
    createdAt: now,
    expiresAt: now + deps.config.interactionTtl * 1000,
  };

  const user = sessionMayStandIn(session, prompt, maxAge, now);
  if (!user) {
    if (prompt.includes('none')) throw new InteractionRequired('login_required', 'the user is not signed in');
    await deps.storage.saveInteraction({ ...interaction, browserBinding: bindBrowser() });
    return { kind: 'interaction', interactionId: interaction.id };
  }
  const consent = await deps.storage.getConsent(user.userId, client.clientId);
  if (!prompt.includes('consent') && consentCovers(consent, scope, resource)) {
    const location = await issueCode(
      { ...interaction, userId: user.userId, authTime: user.authTime, amr: user.amr },
      client,
      consent,
      deps,
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
  return { kind: 'interaction', interactionId: interaction.id };
}
