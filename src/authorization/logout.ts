/**
 * Signing out: the end_session endpoint (OpenID Connect RP-Initiated Logout 1.0). A logout request is checked before
 * anything happens. The browser is only ever sent back to a post_logout_redirect_uri the client registered, compared
 * exactly; with no client to vouch for it (no valid id_token_hint, no client_id) there is no redirect at all, so the
 * endpoint is no open redirector. Ending the session needs the user's confirmation unless the hint names the very
 * user who is signed in (a forged cross-site logout then costs one click, never a silent sign-out).
 */
import { readIdTokenHint, type IdTokenHint } from '../core/id-token-hint.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { InvalidRequest } from '../model/errors.js';
import type { ClientRecord } from '../model/records.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { SessionStore } from '../model/ports.js';

export const logoutDeclaration = {
  path: '/end_session',
  // `/end_session/confirm` takes the confirmation form.
  subPaths: true,
  pages: true,
  metadata: (url) => ({ end_session_endpoint: url }),
} satisfies EndpointDeclaration;

/** A checked logout request. */
export interface LogoutPlan {
  /** The ID token's user and client, when a valid id_token_hint came. */
  hint?: IdTokenHint;
  /** The client asking (from the hint or client_id), for the confirmation page. */
  client?: ClientRecord;
  /** Where to send the browser once done: a registered post_logout_redirect_uri with `state`. */
  returnTo?: string;
  /** The request's parameters as checked, to carry through the confirmation form. */
  params: Record<string, string>;
}

const PARAMS = ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state', 'logout_hint', 'ui_locales'];

export async function planLogout(raw: RawParams, deps: Pick<Deps, 'keys' | 'config' | 'clients'>): Promise<LogoutPlan> {
  const collapsed = collapseParams(raw);
  const params: Record<string, string> = {};
  for (const name of PARAMS) {
    const value = collapsed[name];
    if (typeof value === 'string') params[name] = value;
  }
  let hint: IdTokenHint | undefined;
  if (params.id_token_hint !== undefined) {
    hint = await readIdTokenHint(params.id_token_hint, deps);
    if (!hint) throw new InvalidRequest('id_token_hint is not an ID token issued by this server');
  }
  if (hint && params.client_id !== undefined && params.client_id !== hint.clientId) {
    throw new InvalidRequest('client_id does not match the audience of id_token_hint');
  }
  const clientId = hint?.clientId ?? params.client_id;
  const client = clientId === undefined ? undefined : await deps.clients.getClient(clientId);
  if (params.client_id !== undefined && !client) throw new InvalidRequest('unknown client_id');

  let returnTo: string | undefined;
  const uri = params.post_logout_redirect_uri;
  if (uri !== undefined) {
    if (!client) {
      throw new InvalidRequest('post_logout_redirect_uri needs id_token_hint or client_id to say whose it is');
    }
    if (!(client.postLogoutRedirectUris ?? []).includes(uri)) {
      throw new InvalidRequest('post_logout_redirect_uri is not registered for this client');
    }
    const url = new URL(uri);
    if (params.state !== undefined) url.searchParams.append('state', params.state);
    returnTo = url.toString();
  }
  return { hint, client, returnTo, params };
}

/** Whether the session may end without asking: the hint names the user who is signed in. */
export function logoutNeedsConfirmation(plan: LogoutPlan, sessionUserId: string | undefined): boolean {
  return sessionUserId !== undefined && plan.hint?.sub !== sessionUserId;
}

/** Ends the browser session (idempotent); http/ clears its cookie. */
export async function endSession(
  sessionId: string | undefined,
  deps: { storage: Pick<SessionStore, 'deleteSession'> },
): Promise<void> {
  if (sessionId !== undefined) await deps.storage.deleteSession(sessionId);
}
