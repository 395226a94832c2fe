/**
 * The authorization response (RFC 6749 §4.1.2): the code issued for a completed request, and the redirects back to
 * the client, success and error alike, each with RFC 9207 `iss`.
 */
import { amrOf } from '../core/authentication.js';
import { hashToken, randomId, randomToken } from '../core/crypto.js';
import { resolveRequestedScopes, unionScopes } from '../core/scope.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { Deps } from '../context.js';
import type { OAuthError } from '../model/errors.js';
import type { AuthorizationCodeStore } from '../model/ports.js';
import type { ClientRecord, ConsentRecord, InteractionRecord } from '../model/records.js';
import { saveUpstreamTokens, type SaveUpstreamTokensDeps } from '../grants/upstream-tokens.js';
import { userGrantAllowList } from './consent.js';

export type IssueCodeDeps = Pick<Deps, 'clock' | 'config' | 'scopesSupported' | 'audit'> &
  SaveUpstreamTokensDeps & {
    storage: Pick<AuthorizationCodeStore, 'saveAuthorizationCode'>;
  };

/** Builds the redirect back to the client with RFC 9207 `iss` on every response. */
export function clientRedirect(
  redirectUri: string,
  params: Record<string, string | undefined>,
  issuer: string,
): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  url.searchParams.append('iss', issuer);
  return url.href;
}

/** Redirect carrying an OAuth error (RFC 6749 §4.1.2.1). */
export function errorRedirect(
  redirectUri: string,
  error: OAuthError,
  state: string | undefined,
  issuer: string,
): string {
  return clientRedirect(redirectUri, { error: error.code, error_description: error.description, state }, issuer);
}

/**
 * Issues the authorization code for a completed interaction and returns the redirect to the client.
 * Incremental authorization: the code carries the union of what the user approved before for this client and
 * what is asked now (a step-up request does not lose earlier scopes); resources are never widened. After an
 * upstream sign-in, the upstream's tokens are stored for the code's grant (grants/upstream-tokens.ts).
 */
export async function issueCode(
  interaction: Omit<InteractionRecord, 'browserBinding'> & { userId: string; authTime: number; amr?: string[] },
  client: ClientRecord,
  consent: ConsentRecord | undefined,
  deps: IssueCodeDeps,
  context?: AuditRequestContext,
): Promise<string> {
  const now = deps.clock.now();
  const code = randomToken();
  // Earlier consent may name scopes the server or the client's allow-list has dropped since: re-check them.
  const earlier = consent?.scope.length
    ? resolveRequestedScopes(consent.scope, userGrantAllowList(client, deps), deps.scopesSupported, false)
    : [];
  const scope = unionScopes(interaction.scope, earlier);
  // An upstream sign-in's tokens were sealed for the grant this code starts, for this user only.
  const upstream = interaction.upstream?.subject === interaction.userId ? interaction.upstream : undefined;
  if (upstream) await saveUpstreamTokens(upstream, interaction.clientId, deps);
  // The grant id was fixed at /authorize (the flow trace reference, shown on its error pages); an upstream sign-in's
  // grant id is that same one (upstream-sign-in.ts).
  const grantId = upstream?.grantId ?? interaction.grantId ?? randomId();
  await deps.storage.saveAuthorizationCode({
    codeHash: hashToken(code),
    grantId,
    clientId: interaction.clientId,
    userId: interaction.userId,
    redirectUri: interaction.redirectUri,
    redirectUriSent: interaction.redirectUriSent,
    scope,
    resource: interaction.resource,
    codeChallenge: interaction.codeChallenge,
    nonce: interaction.nonce,
    authTime: interaction.authTime,
    amr: amrOf(interaction.amr),
    ...(interaction.dpopJkt !== undefined && { dpopJkt: interaction.dpopJkt }),
    createdAt: now,
    expiresAt: now + deps.config.tokens.authorizationCodeTtl * 1000,
  });
  deps.audit.emit(
    {
      type: 'code.issued',
      clientId: interaction.clientId,
      subject: interaction.userId,
      grantId,
      scopes: scope,
      resources: interaction.resource,
    },
    context,
  );
  return clientRedirect(interaction.redirectUri, { code, state: interaction.state }, deps.config.issuer);
}
