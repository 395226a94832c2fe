/**
 * The device authorization grant's front half (RFC 8628): the device authorization endpoint (§3.1–3.2), where a CLI
 * or headless agent gets a device code and a user code; and the user-code page (§3.3, `/device`), where the user types
 * the code and is handed to the normal interaction (interaction.ts: sign-in with password, second factor or upstream,
 * then consent). A device interaction has no redirect: its consent ends by recording the user's decision
 * (finishDeviceInteraction), which the device's poll redeems once at the token endpoint (grants/device-code.ts).
 *
 * Both codes are stored hashed: the device code (256 bits) by SHA-256, the user code (about 34.6 bits) by a keyed hash
 * under the pepper. The user-code page is rate limited per address and per browser, and says the same for a code that
 * is malformed, unknown, used or expired.
 */
import { authenticateClient, formCredentials, presentedCredentials } from '../core/client-auth.js';
import { randomId, randomToken } from '../core/crypto.js';
import {
  DEVICE_CODE_GRANT_TYPE,
  formatUserCode,
  hashDeviceCode,
  hashUserCode,
  newDeviceCode,
  newUserCode,
  normaliseUserCode,
} from '../core/device-codes.js';
import { collapseParams, type RawParams } from '../core/params.js';
import { addressBucket } from '../core/rate-limit-keys.js';
import { hitLimit, limitRequest, reportRateLimitHit } from '../core/rate-limit.js';
import { amrOf } from '../core/authentication.js';
import type { AuditRequestContext } from '../core/audit.js';
import { InvalidClient, InvalidRequest, ServerError, UnauthorizedClient } from '../model/errors.js';
import type { DeviceAuthorizationStore, InteractionStore, RateLimitStore, ReplayGuard } from '../model/ports.js';
import type { ClientRecord, InteractionRecord } from '../model/records.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import { saveUpstreamTokens, type SaveUpstreamTokensDeps } from '../grants/upstream-tokens.js';
import { checkScopeAndResource, type CheckRequestDeps } from './authorize.js';
import { recordConsent, type RecordConsentDeps } from './consent.js';

/** POST /device_authorization: called like the token endpoint (browser-based clients too); advertised when offered. */
export const deviceAuthorizationDeclaration = {
  path: '/device_authorization',
  cors: true,
  metadata: (url, config) => (config.deviceAuthorization.enabled ? { device_authorization_endpoint: url } : {}),
} satisfies EndpointDeclaration;

/** The user-code page (`/device`) and the page a finished device interaction ends on (`/device/done`). */
export const devicePageDeclaration = {
  path: '/device',
  subPaths: true,
  pages: true,
} satisfies EndpointDeclaration;

/** Where the user enters the code (RFC 8628 §3.2 verification_uri) for `issuer`. */
export function verificationUri(issuer: string): string {
  return issuer + devicePageDeclaration.path;
}

/** Where a device interaction ends: the page that tells the user to return to the device. */
export function deviceDoneUrl(issuer: string, result: 'approved' | 'denied' | 'failed'): string {
  return `${issuer}${devicePageDeclaration.path}/done?result=${result}`;
}

/** What a device authorization request uses: client authentication, the scope checks, storing its records. */
export type DeviceAuthorizationDeps = Pick<
  Deps,
  'clients' | 'pepper' | 'clock' | 'verifyAssertion' | 'config' | 'audit'
> &
  CheckRequestDeps & {
    storage: Pick<DeviceAuthorizationStore, 'saveDeviceAuthorization'> &
      Pick<ReplayGuard, 'firstUse'> &
      Pick<RateLimitStore, 'hitRateLimit'>;
  };

/** The §3.2 response. */
export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/** How many fresh user codes to try when one is taken (20^8 codes: a second try is already rare). */
const USER_CODE_TRIES = 5;

/**
 * Handles one device authorization request (§3.1): authenticate the client as at the token endpoint (public clients
 * by client_id), require the grant type, check scope and resource as /authorize does, issue the codes.
 */
export async function requestDeviceAuthorization(
  raw: RawParams,
  authorization: string | undefined,
  deps: DeviceAuthorizationDeps,
  context?: AuditRequestContext,
): Promise<DeviceAuthorizationResponse> {
  const params = collapseParams(raw, ['resource']);
  const presented = presentedCredentials(authorization, formCredentials(params));
  if (!presented) throw new InvalidClient('client authentication is required', { detail: 'no client credentials' });
  const client = await authenticateClient(presented, deps);
  // Counted once authenticated (config rateLimits.deviceAuthorization.perClient), as at the token endpoint.
  await limitRequest(deps, 'deviceAuthorization', 'client', client.clientId, context);
  if (!client.grantTypes.includes(DEVICE_CODE_GRANT_TYPE)) {
    throw new UnauthorizedClient(`the client is not allowed to use ${DEVICE_CODE_GRANT_TYPE}`);
  }
  const { scope, resource } = checkScopeAndResource(params, client, deps);

  const now = deps.clock.now();
  const { expiresInSeconds, intervalSeconds } = deps.config.deviceAuthorization;
  const codeExpiresAt = now + expiresInSeconds * 1000;
  const deviceCode = newDeviceCode();
  const deviceCodeHash = hashDeviceCode(deviceCode);
  // A user code is unique among the live ones: reserved atomically in the replay guard (across replicas too).
  let userCode: string | undefined;
  let userCodeHash = '';
  for (let i = 0; i < USER_CODE_TRIES && userCode === undefined; i++) {
    const candidate = newUserCode();
    userCodeHash = hashUserCode(deps.pepper, candidate);
    if (await deps.storage.firstUse(`device-user-code:${userCodeHash}`, codeExpiresAt)) userCode = candidate;
  }
  if (userCode === undefined) throw new ServerError('no free user code');
  const reference = randomId();
  await deps.storage.saveDeviceAuthorization(
    {
      id: deviceCodeHash,
      clientId: client.clientId,
      userCodeHash,
      scope,
      resource,
      grantId: reference,
      interval: intervalSeconds,
      createdAt: now,
      codeExpiresAt,
      // Kept one lifetime longer, so a late poll learns expired_token rather than invalid_grant.
      expiresAt: codeExpiresAt + expiresInSeconds * 1000,
    },
    { id: userCodeHash, deviceCodeHash, clientId: client.clientId, expiresAt: codeExpiresAt },
  );
  deps.audit.emit(
    { type: 'device.requested', clientId: client.clientId, reference, scopes: scope, resources: resource },
    context,
  );
  const shown = formatUserCode(userCode);
  const page = verificationUri(deps.config.issuer);
  return {
    device_code: deviceCode,
    user_code: shown,
    verification_uri: page,
    verification_uri_complete: `${page}?user_code=${encodeURIComponent(shown)}`,
    expires_in: expiresInSeconds,
    interval: intervalSeconds,
  };
}

/** What entering a user code uses: its limits, the device records, the interaction it starts. */
export type EnterUserCodeDeps = Pick<Deps, 'clock' | 'config' | 'pepper' | 'clients' | 'audit'> & {
  storage: Pick<DeviceAuthorizationStore, 'takeDeviceUserCode' | 'getDeviceAuthorization' | 'getDeviceDecision'> &
    Pick<InteractionStore, 'saveInteraction'> &
    Pick<RateLimitStore, 'hitRateLimit'>;
};

/** The one message for a code that is malformed, unknown, used or expired: nothing tells them apart. */
export const USER_CODE_NOT_RECOGNISED =
  'That code was not recognised. Check the code your device shows (it expires after a few minutes) and try again.';
/** Over the attempt limits. */
export const USER_CODE_THROTTLED = 'Too many attempts. Wait a few minutes, then try again.';

/** What the user-code form leads to: the interaction of the device's request, or the form again with an error. */
export type EnterUserCodeOutcome =
  | { kind: 'interaction'; interactionId: string }
  | { kind: 'retry'; error: string; status: number; retryAfterSeconds?: number; userCode?: string };

/**
 * POST /device: the user typed `input`. Counted per address and per browser (config
 * `deviceAuthorization.userCodeAttempts`) before anything is looked up; a code that names a live, undecided
 * authorization is taken (once: no second browser can use it) and becomes an interaction bound to this browser,
 * which always asks for consent (RFC 8628 §5.4: the user confirms the device).
 */
export async function enterUserCode(
  input: string | undefined,
  binding: string,
  clientAddress: string,
  deps: EnterUserCodeDeps,
  context?: AuditRequestContext,
): Promise<EnterUserCodeOutcome> {
  const limits = deps.config.deviceAuthorization.userCodeAttempts;
  // The address first: a browser over its own limit still counts against its address.
  let keyKind: 'ip' | 'browser' = 'ip';
  let retryAfter = await hitLimit(
    deps,
    'device',
    'ip',
    addressBucket(clientAddress),
    limits.perIp,
    limits.windowSeconds,
  );
  if (retryAfter === undefined) {
    keyKind = 'browser';
    retryAfter = await hitLimit(deps, 'device', 'browser', binding, limits.perBrowser, limits.windowSeconds);
  }
  if (retryAfter !== undefined) {
    reportRateLimitHit(deps, 'device', keyKind, retryAfter, context);
    deps.audit.emit({ type: 'device.code_refused', reason: 'throttled' }, context);
    return { kind: 'retry', error: USER_CODE_THROTTLED, status: 429, retryAfterSeconds: retryAfter };
  }
  const refused = (reason: 'malformed' | 'unknown'): EnterUserCodeOutcome => {
    deps.audit.emit({ type: 'device.code_refused', reason }, context);
    return { kind: 'retry', error: USER_CODE_NOT_RECOGNISED, status: 400, userCode: input?.slice(0, 64) };
  };
  const code = normaliseUserCode(input);
  if (!code) return refused('malformed');
  const entry = await deps.storage.takeDeviceUserCode(hashUserCode(deps.pepper, code));
  if (!entry) return refused('unknown');
  const now = deps.clock.now();
  const authorization = await deps.storage.getDeviceAuthorization(entry.deviceCodeHash);
  if (!authorization || authorization.clientId !== entry.clientId || now >= authorization.codeExpiresAt) {
    return refused('unknown');
  }
  if (await deps.storage.getDeviceDecision(entry.deviceCodeHash)) return refused('unknown');
  const client = await deps.clients.getClient(authorization.clientId);
  if (!client) return refused('unknown');

  const interaction: InteractionRecord = {
    id: randomToken(24),
    clientId: client.clientId,
    grantId: authorization.grantId,
    // No redirect: a device interaction ends on the "return to your device" page.
    redirectUri: '',
    redirectUriSent: false,
    scope: authorization.scope,
    resource: authorization.resource,
    codeChallenge: '',
    codeChallengeMethod: 'S256',
    // Always the consent page, even when an earlier consent covers the request: the user confirms this device.
    prompt: ['consent'],
    responseMode: 'query',
    browserBinding: binding,
    deviceCodeHash: entry.deviceCodeHash,
    createdAt: now,
    expiresAt: Math.min(authorization.codeExpiresAt, now + deps.config.interactionTtl * 1000),
  };
  await deps.storage.saveInteraction(interaction);
  deps.audit.emit(
    { type: 'device.code_accepted', clientId: client.clientId, reference: authorization.grantId },
    context,
  );
  return { kind: 'interaction', interactionId: interaction.id };
}

/** What recording the user's decision for a device uses. */
export type FinishDeviceDeps = RecordConsentDeps &
  SaveUpstreamTokensDeps &
  Pick<Deps, 'clock' | 'config' | 'audit'> & {
    storage: Pick<DeviceAuthorizationStore, 'getDeviceAuthorization' | 'saveDeviceDecision'>;
  };

/** The device's request expired (or was redeemed) while the user was deciding: a page, never a redirect. */
export class DeviceRequestExpired extends InvalidRequest {
  constructor() {
    super('this device request has expired or was already completed; start again on your device');
    this.redirectable = false;
  }
}

/**
 * The consent of a device interaction (already taken from the store, so this runs once): records the user's approval
 * or denial for the device's poll, and returns where the browser goes (the "return to your device" page). An approval
 * remembers the consent, and keeps an upstream sign-in's tokens for the grant the device code will start.
 */
export async function finishDeviceInteraction(
  interaction: InteractionRecord & { deviceCodeHash: string },
  client: ClientRecord,
  signedIn: { userId: string; authTime: number; amr?: string[] },
  approved: boolean,
  deps: FinishDeviceDeps,
  context?: AuditRequestContext,
): Promise<string> {
  const now = deps.clock.now();
  const authorization = await deps.storage.getDeviceAuthorization(interaction.deviceCodeHash);
  if (!authorization || authorization.clientId !== client.clientId || now >= authorization.codeExpiresAt) {
    throw new DeviceRequestExpired();
  }
  const { userId } = signedIn;
  const reference = authorization.grantId;
  let grantId = reference;
  if (approved) {
    await recordConsent(userId, interaction, deps, context);
    const upstream = interaction.upstream?.subject === userId ? interaction.upstream : undefined;
    if (upstream) {
      await saveUpstreamTokens(upstream, client.clientId, deps);
      grantId = upstream.grantId;
    }
  }
  await deps.storage.saveDeviceDecision({
    id: interaction.deviceCodeHash,
    clientId: client.clientId,
    approved,
    userId,
    authTime: signedIn.authTime,
    amr: amrOf(signedIn.amr),
    scope: authorization.scope,
    resource: authorization.resource,
    grantId,
    createdAt: now,
    expiresAt: authorization.expiresAt,
  });
  if (approved) {
    deps.audit.emit(
      {
        type: 'device.authorized',
        clientId: client.clientId,
        subject: userId,
        reference,
        scopes: authorization.scope,
        resources: authorization.resource,
      },
      context,
    );
  } else {
    deps.audit.emit({ type: 'device.denied', clientId: client.clientId, subject: userId, reference }, context);
  }
  return deviceDoneUrl(deps.config.issuer, approved ? 'approved' : 'denied');
}
