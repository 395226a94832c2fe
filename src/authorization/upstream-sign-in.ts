/**
 * Signing in at an upstream identity provider (config `upstreams`, upstream/provider.ts) for a pending interaction:
 * Gatehouse sends the browser upstream with its own state, nonce and PKCE, keeps a pending upstream authorization
 * (10 minutes, under the hash of that state), and its callback (`<issuer>/upstream/callback`, one per issuer, so per
 * tenant) takes the record once (any replica; a replay finds nothing), checks that it is the same browser and that
 * the provider completing it is the one the record names (mix-up defence), lets the provider exchange the code and
 * validate the identity, maps it to the Gatehouse user (upstream-users.ts), starts a session (amr `fed`) and keeps
 * the upstream's tokens sealed on the interaction for the grant its code will start. Consent (per client) and the
 * code follow as for any sign-in (interaction.ts).
 *
 * Failures after the client's request was validated end on its redirect_uri with an OAuth error (RFC 6749 §4.1.2.1):
 * access_denied when the user refused upstream, temporarily_unavailable when the upstream did not answer in time,
 * server_error when it answered something that does not validate. An unknown, used or expired state, or another
 * browser's, is an error page: it names no request whose redirect_uri could be trusted.
 */
import { safeEqual, hashToken, randomId } from '../core/crypto.js';
import { AMR } from '../core/authentication.js';
import { openStored } from '../core/sealing.js';
import { AccessDenied, InvalidRequest, OAuthError, ServerError, TemporarilyUnavailable } from '../model/errors.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { ExpiringRecordStore, InteractionStore } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { InteractionRecord, SessionRecord, UpstreamAuthorizationRecord } from '../model/records.js';
import { UpstreamError, type UpstreamProvider } from '../upstream/provider.js';
import { upstreamClientGeneration } from '../upstream/flow-settings.js';
import { sealUpstreamTokens } from '../grants/upstream-tokens.js';
import { deviceDoneUrl } from './device.js';
import { errorRedirect } from './code.js';
import { startSession, type SessionStartDeps } from './session.js';
import { upstreamUser, type UpstreamUserDeps } from './upstream-users.js';

/** The callback every upstream returns the browser to: a page (its errors are pages too). */
export const upstreamCallbackDeclaration = {
  path: '/upstream/callback',
  pages: true,
} satisfies EndpointDeclaration;

/** The redirect URI registered at every upstream for this issuer (a tenant's is below the tenant's issuer). */
export function upstreamCallbackUrl(issuer: string): string {
  return issuer + upstreamCallbackDeclaration.path;
}

/** How long a sign-in may stay upstream. */
export const UPSTREAM_PENDING_TTL_MS = 10 * 60_000;
/**
 * The longest a call to a provider may take here, whatever the provider's own timeouts: past it the sign-in ends as
 * temporarily_unavailable rather than leaving the browser waiting.
 */
export const UPSTREAM_CALL_DEADLINE_MS = 30_000;

/**
 * The callback's state is unknown, used, expired, or another browser's: a page, never a redirect. One message for
 * all, so a stranger's callback learns nothing about whether a state is live.
 */
export class UpstreamSignInExpired extends InvalidRequest {
  constructor() {
    super(
      'this sign-in has expired, was already completed, or was started in another browser; return to the application and start again',
    );
    this.redirectable = false;
  }
}

export type GoUpstreamDeps = Pick<Deps, 'clock' | 'config' | 'logger' | 'audit' | 'sealer' | 'upstreams'> & {
  storage: ExpiringRecordStore & Pick<InteractionStore, 'saveInteraction' | 'takeInteraction'>;
};

export type CompleteUpstreamDeps = GoUpstreamDeps &
  SessionStartDeps &
  UpstreamUserDeps & {
    storage: Pick<InteractionStore, 'getInteraction'>;
  };

const pendingRecords = (deps: { storage: ExpiringRecordStore }) =>
  recordsOf(deps.storage, RECORD_KINDS.upstreamAuthorization);
/** The state is a bearer value in URLs: the record is kept under its hash. */
const pendingId = (state: string) => hashToken(`upstream-state:${state}`);
/** What the record keeps sealed (with `encryptionKey`, which upstreams require): the verifier and the interaction id. */
const sealedAad = (id: string, field: string) => `upstream-authorization:${id}:${field}`;
const sealField = (deps: Pick<Deps, 'sealer'>, id: string, field: string, value: string) =>
  deps.sealer ? deps.sealer.seal(value, sealedAad(id, field)) : value;
const openField = (deps: Pick<Deps, 'sealer'>, id: string, field: string, value: string) =>
  openStored(value, deps.sealer, sealedAad(id, field), 'an upstream sign-in').value;

/** `call`, or UpstreamError `unavailable` once the deadline has passed. */
async function withDeadline<T>(call: () => Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new UpstreamError('unavailable', `${what}: no answer in ${UPSTREAM_CALL_DEADLINE_MS} ms`)),
      UPSTREAM_CALL_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([call(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The OAuth error a failed upstream call ends the client's request with (RFC 6749 §4.1.2.1). */
function clientErrorFor(err: unknown, provider: Pick<UpstreamProvider, 'name'>): OAuthError {
  if (err instanceof UpstreamError) {
    if (err.failure === 'access_denied') {
      return new AccessDenied(`the sign-in at ${provider.name} was refused`);
    }
    if (err.failure === 'unavailable') return new TemporarilyUnavailable();
  }
  return new ServerError(err instanceof Error ? err.message : String(err));
}

/**
 * Ends the interaction on the client's redirect_uri with `error` (its request was validated), or, when another step
 * has finished it meanwhile, with the expired page.
 */
async function endWithError(
  interaction: InteractionRecord,
  error: OAuthError,
  upstreamId: string,
  deps: GoUpstreamDeps,
  context: AuditRequestContext | undefined,
): Promise<string> {
  const taken = await deps.storage.takeInteraction(interaction.id);
  if (!taken) throw new UpstreamSignInExpired();
  const log = { clientId: taken.clientId, upstreamId, error: error.code, detail: error.detail };
  if (error instanceof ServerError) deps.logger.error(log, 'upstream sign-in failed');
  else deps.logger.warn(log, 'upstream sign-in failed');
  deps.audit.emit(
    {
      type: 'upstream.signin',
      upstream: upstreamId,
      clientId: taken.clientId,
      outcome: error instanceof AccessDenied ? 'denied' : 'failure',
      error: error.code,
      ...(taken.grantId !== undefined && { reference: taken.grantId }),
    },
    context,
  );
  // A device's interaction has no redirect: the browser learns it failed; the device's poll stays pending until expiry.
  if (taken.deviceCodeHash !== undefined) return deviceDoneUrl(deps.config.issuer, 'failed');
  return errorRedirect(taken.redirectUri, error, taken.state, deps.config.issuer);
}

/**
 * Sends the browser of `interaction` (its binding `binding`, already checked) to upstream `upstreamId`: the pending
 * record is stored, and the location returned is the upstream's authorization URL. When the upstream cannot be
 * reached, the request ends on the client's redirect_uri instead (temporarily_unavailable) and that is returned.
 */
export async function goUpstream(
  interaction: InteractionRecord,
  upstreamId: string,
  binding: string,
  deps: GoUpstreamDeps,
  context?: AuditRequestContext,
): Promise<string> {
  const provider = deps.upstreams.get(upstreamId);
  if (!provider) {
    const err = new InvalidRequest('unknown upstream');
    err.redirectable = false;
    throw err;
  }
  const redirectUri = upstreamCallbackUrl(deps.config.issuer);
  let request;
  try {
    request = await withDeadline(() => provider.begin(redirectUri), `upstream ${upstreamId}`);
  } catch (err) {
    return endWithError(interaction, clientErrorFor(err, provider), upstreamId, deps, context);
  }
  const now = deps.clock.now();
  const id = pendingId(request.state);
  const expiresAt = now + UPSTREAM_PENDING_TTL_MS;
  const pending: UpstreamAuthorizationRecord = {
    id,
    // The interaction id is a bearer value (its URL): the store does not get it in clear.
    interactionId: sealField(deps, id, 'interaction', interaction.id),
    clientId: interaction.clientId,
    upstreamId,
    upstreamIssuer: provider.issuer,
    browserBinding: binding,
    nonce: request.nonce,
    codeVerifier: sealField(deps, id, 'code_verifier', request.codeVerifier),
    redirectUri,
    createdAt: now,
    expiresAt,
  };
  await pendingRecords(deps).put(pending);
  // The interaction must outlive the time the user may spend upstream, but not by more than that.
  const latest = interaction.createdAt + deps.config.interactionTtl * 1000 + UPSTREAM_PENDING_TTL_MS;
  const needed = Math.min(expiresAt, latest);
  if (interaction.expiresAt < needed) await deps.storage.saveInteraction({ ...interaction, expiresAt: needed });
  deps.logger.info({ clientId: interaction.clientId, upstreamId }, 'sign-in sent upstream');
  return request.url;
}

/** What the callback did: signed in (http/ sets the cookie, the interaction goes on), or ended the request. */
export type UpstreamCallbackOutcome =
  { kind: 'signed_in'; session: SessionRecord; interactionId: string } | { kind: 'redirect'; location: string };

/**
 * GET /upstream/callback: `query` is the callback's query (every parameter as sent: the provider reads code, iss,
 * error), `binding` the requesting browser's (http/cookies browserBinding). Throws UpstreamSignInExpired for a page.
 */
export async function completeUpstreamSignIn(
  query: URLSearchParams,
  binding: string | undefined,
  deps: CompleteUpstreamDeps,
  context?: AuditRequestContext,
): Promise<UpstreamCallbackOutcome> {
  const states = query.getAll('state');
  if (states.length !== 1 || !states[0]) throw new UpstreamSignInExpired();
  // Taken once: a replayed callback (or a racing replica) finds nothing.
  const pending = await pendingRecords(deps).take(pendingId(states[0]));
  if (!pending || !binding || !safeEqual(binding, pending.browserBinding)) throw new UpstreamSignInExpired();
  let interactionId: string;
  try {
    interactionId = openField(deps, pending.id, 'interaction', pending.interactionId);
  } catch {
    // Sealed with a key no longer configured, or altered: nothing to continue.
    throw new UpstreamSignInExpired();
  }
  const interaction = await deps.storage.getInteraction(interactionId);
  if (
    !interaction ||
    interaction.clientId !== pending.clientId ||
    !interaction.browserBinding ||
    !safeEqual(interaction.browserBinding, binding)
  ) {
    throw new UpstreamSignInExpired();
  }
  const fail = async (error: OAuthError): Promise<UpstreamCallbackOutcome> => ({
    kind: 'redirect',
    location: await endWithError(interaction, error, pending.upstreamId, deps, context),
  });

  // Mix-up defence: only the upstream the record names completes it, and only while it is the same issuer.
  const provider = deps.upstreams.get(pending.upstreamId);
  if (!provider || provider.issuer !== pending.upstreamIssuer) {
    return fail(
      new ServerError(`upstream ${pending.upstreamId} is gone or has another issuer since the sign-in began`),
    );
  }
  let result;
  try {
    const codeVerifier = openField(deps, pending.id, 'code_verifier', pending.codeVerifier);
    result = await withDeadline(
      () => provider.complete(query, { nonce: pending.nonce, codeVerifier, redirectUri: pending.redirectUri }),
      `upstream ${provider.id}`,
    );
  } catch (err) {
    return fail(clientErrorFor(err, provider));
  }
  const { identity, tokens } = result;
  if (identity.upstreamId !== provider.id || identity.issuer !== provider.issuer || !identity.subject) {
    return fail(new ServerError(`upstream ${provider.id} returned an identity of another upstream or without subject`));
  }

  const user = await upstreamUser(identity, deps);
  const session = await startSession(user.id, [AMR.federated], deps);
  // The grant id fixed at /authorize (the flow trace reference), so the trace follows the upstream sign-in too.
  const grantId = interaction.grantId ?? randomId();
  const clientGeneration = await upstreamClientGeneration(provider, deps.config);
  const tokenBinding = {
    grantId,
    subject: user.id,
    clientId: interaction.clientId,
    upstreamId: provider.id,
    clientGeneration,
  };
  await deps.storage.saveInteraction({
    ...interaction,
    userId: user.id,
    authTime: session.authTime,
    amr: session.amr,
    upstream: {
      upstreamId: provider.id,
      upstreamIssuer: provider.issuer,
      subject: user.id,
      grantId,
      clientGeneration,
      sealedTokens: sealUpstreamTokens(tokens, tokenBinding, deps.sealer),
    },
  });
  deps.logger.info({ clientId: interaction.clientId, upstreamId: provider.id, userId: user.id }, 'signed in upstream');
  deps.audit.emit(
    {
      type: 'upstream.signin',
      upstream: provider.id,
      clientId: interaction.clientId,
      subject: user.id,
      ...(interaction.grantId !== undefined && { reference: interaction.grantId }),
    },
    context,
  );
  deps.audit.emit(
    {
      type: 'signin.succeeded',
      ...(interaction.grantId !== undefined && { reference: interaction.grantId }),
      subject: user.id,
      method: 'upstream',
      upstream: provider.id,
      amr: session.amr,
      clientId: interaction.clientId,
    },
    context,
  );
  return { kind: 'signed_in', session, interactionId: interaction.id };
}
