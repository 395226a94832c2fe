/**
 * Pushed Authorization Requests (RFC 9126): a client POSTs the parameters of its authorization request, authenticated
 * as at the token endpoint (§2: confidential clients with their credentials, public clients by client_id), and gets a
 * request_uri that /authorize takes once in place of the parameters (authorize.ts). The request is checked here as
 * /authorize checks it (§2.1), so its errors reach the client as JSON (§2.3) rather than the user's browser.
 */
import { authenticateClient, formCredentials, presentedCredentials } from '../core/client-auth.js';
import { randomToken } from '../core/crypto.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { InvalidClient, InvalidDpopProof, InvalidRequest } from '../model/errors.js';
import { endpointProof, type EndpointDpopDeps, type DpopInput } from '../core/dpop.js';
import type { PushedRequestStore } from '../model/ports.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import { checkAuthorizationRequest, PUSHED_REQUEST_URI_PREFIX, type CheckRequestDeps } from './authorize.js';

/** What a push uses: client authentication, the checks of an authorization request, and storing the request. */
export type PushAuthorizationDeps = Pick<Deps, 'clients' | 'pepper' | 'clock' | 'verifyAssertion' | 'config'> &
  CheckRequestDeps &
  EndpointDpopDeps & { storage: Pick<PushedRequestStore, 'savePushedRequest'> };

/**
 * POST /par, called like the token endpoint (browser-based clients included); discovery names it and, when every
 * client must push, says so (§5).
 */
export const parDeclaration = {
  path: '/par',
  cors: true,
  metadata: (url, config) => ({
    pushed_authorization_request_endpoint: url,
    ...(config.pushedAuthorizationRequests.required ? { require_pushed_authorization_requests: true } : {}),
  }),
} satisfies EndpointDeclaration;

/** The §2.2 response (sent with 201 Created). */
export interface PushedAuthorizationResponse {
  request_uri: string;
  expires_in: number;
}

/** §2.1: client authentication parameters serve authentication only and are not part of the request stored. */
const CLIENT_AUTHENTICATION = new Set(['client_id', 'client_secret', 'client_assertion', 'client_assertion_type']);

/** Handles one push: authenticate the client, refuse a request_uri, check the request, store it (§2.1, in order). */
export async function pushAuthorizationRequest(
  raw: RawParams,
  authorization: string | undefined,
  deps: PushAuthorizationDeps,
  dpop?: DpopInput,
): Promise<PushedAuthorizationResponse> {
  const params = collapseParams(raw, ['resource']);
  const presented = presentedCredentials(authorization, formCredentials(params));
  if (!presented) throw new InvalidClient('client authentication is required', { detail: 'no client credentials' });
  const client = await authenticateClient(presented, deps);
  if (params.request_uri !== undefined) throw new InvalidRequest('request_uri must not be pushed (RFC 9126 §2.1)');

  const pushed = Object.fromEntries(Object.entries(raw).filter(([name]) => !CLIENT_AUTHENTICATION.has(name)));
  // RFC 9449 §10.1: a proof on the push binds the code to its key, as dpop_jkt does; with both, they must agree.
  const proof = await endpointProof(dpop, parDeclaration.path, deps);
  if (proof) {
    const named = pushed.dpop_jkt;
    if (named !== undefined && (named.length !== 1 || named[0] !== proof.jkt))
      throw new InvalidDpopProof('dpop_jkt does not match the key of the DPoP proof');
    pushed.dpop_jkt = [proof.jkt];
  }
  checkAuthorizationRequest(pushed, client, deps);
  const now = deps.clock.now();
  const ttl = deps.config.pushedAuthorizationRequests.requestUriTtl;
  // The random part is what makes a request_uri unguessable (§2.2, RFC 6749 §10.10); the store sees only its hash.
  const id = randomToken(32);
  await deps.storage.savePushedRequest({
    id,
    clientId: client.clientId,
    params: pushed,
    createdAt: now,
    expiresAt: now + ttl * 1000,
  });
  return { request_uri: PUSHED_REQUEST_URI_PREFIX + id, expires_in: ttl };
}
