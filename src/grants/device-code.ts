/**
 * Device authorization grant at the token endpoint (RFC 8628 §3.4–3.5): the device polls with its device code until
 * the user has decided at /device (authorization/device.ts). Answers, in order: invalid_grant (unknown, redeemed, or
 * another client's code), expired_token, slow_down (a poll within the interval; the interval then grows by 5 s),
 * authorization_pending, access_denied, or the tokens, as the code grant issues them (resource-bound access token,
 * refresh token under the same rule, ID token with `openid`). An approval is taken once from the store, so a device
 * code is redeemed exactly once even when replicas race.
 */
import { DEVICE_CODE_GRANT_TYPE, hashDeviceCode } from '../core/device-codes.js';
import { requiredParam } from '../core/params.js';
import { counterKey } from '../core/rate-limit-keys.js';
import { AuthorizationPending, DeviceAccessDenied, ExpiredToken, InvalidGrant, SlowDown } from '../model/errors.js';
import type { DeviceAuthorizationStore, GrantStore, RateLimitStore, ReplayGuard, UserStore } from '../model/ports.js';
import type { Deps } from '../context.js';
import { issueUserGrant, noteFacts } from './issue.js';
import type { GrantHandler } from './types.js';

/** What a poll uses: the device records, the replay guard and a counter for its speed, the grant it starts. */
export type DeviceCodeDeps = Pick<Deps, 'clock' | 'config' | 'minter' | 'pepper'> & {
  storage: Pick<
    DeviceAuthorizationStore,
    'getDeviceAuthorization' | 'deleteDeviceAuthorization' | 'getDeviceDecision' | 'takeDeviceDecision'
  > &
    Pick<ReplayGuard, 'firstUse'> &
    Pick<RateLimitStore, 'hitRateLimit' | 'peekRateLimit'> &
    Pick<GrantStore, 'createGrant'> &
    Pick<UserStore, 'getUser'>;
};

/** RFC 8628 §3.5: each slow_down adds 5 seconds to the interval the device must keep. */
export const SLOW_DOWN_SECONDS = 5;
/**
 * How much earlier than a full interval a poll still counts as on time: the replicas' clocks and the device's timer
 * are not exact. A device that waits the interval after each answer never comes this close.
 */
const POLL_TOLERANCE_MS = 250;

/**
 * Whether this poll keeps the interval: one atomic `firstUse` per device code whose mark lasts the current interval
 * (the base plus 5 s per slow_down so far, counted in the store), so of polls racing on any replicas within one
 * interval only one passes. A refused poll counts one more slow_down and leaves the mark as it was.
 */
async function pollOnTime(
  deviceCodeHash: string,
  baseInterval: number,
  windowMs: number,
  deps: DeviceCodeDeps,
): Promise<boolean> {
  const now = deps.clock.now();
  // The slow_down count lives in a fixed window at least as long as the code lives (aligned windows: one that ends
  // early only makes the server more lenient, never stricter than the device has been told).
  const slowKey = counterKey(deps.pepper, 'deviceSlowDown', 'client', deviceCodeHash);
  const slowDowns = await deps.storage.peekRateLimit(slowKey, now);
  const intervalMs = (baseInterval + SLOW_DOWN_SECONDS * slowDowns) * 1000;
  if (await deps.storage.firstUse(`device-poll:${deviceCodeHash}`, now + intervalMs - POLL_TOLERANCE_MS)) return true;
  await deps.storage.hitRateLimit(slowKey, windowMs, now);
  return false;
}

export const deviceCodeGrant: GrantHandler<DeviceCodeDeps> = {
  grantType: DEVICE_CODE_GRANT_TYPE,
  repeatableParams: [],
  // CLIs and headless agents are usually public clients (RFC 8628 §5.6); confidential ones authenticate as usual.
  allowsPublicClients: true,
  enabled: (config) => config.deviceAuthorization.enabled,
  errorCodes: [
    'invalid_request',
    'invalid_client',
    'invalid_grant',
    'unauthorized_client',
    'authorization_pending',
    'slow_down',
    'access_denied',
    'expired_token',
  ],
  async handle(params, client, deps, _context, dpop) {
    const deviceCodeHash = hashDeviceCode(requiredParam(params, 'device_code'));
    const authorization = await deps.storage.getDeviceAuthorization(deviceCodeHash);
    // Unknown, already redeemed, or another client's: the same answer, so a code's existence is not revealed.
    if (!authorization || authorization.clientId !== client.clientId) {
      throw new InvalidGrant('the device code is invalid, expired or already used');
    }
    const now = deps.clock.now();
    if (now >= authorization.codeExpiresAt) throw new ExpiredToken();
    const windowMs = Math.max(authorization.expiresAt - authorization.createdAt, 60_000);
    if (!(await pollOnTime(deviceCodeHash, authorization.interval, windowMs, deps))) throw new SlowDown();

    const decision = await deps.storage.getDeviceDecision(deviceCodeHash);
    if (!decision || decision.clientId !== client.clientId) throw new AuthorizationPending();
    if (!decision.approved) throw noteFacts(new DeviceAccessDenied(), { subject: decision.userId });
    // Exactly one poll takes the approval; a racing one finds nothing and the code is used up for it.
    const approval = await deps.storage.takeDeviceDecision(deviceCodeHash);
    if (!approval) throw new InvalidGrant('the device code is invalid, expired or already used');
    await deps.storage.deleteDeviceAuthorization(deviceCodeHash);

    const user = await deps.storage.getUser(approval.userId);
    if (!user) throw new InvalidGrant('the user no longer exists');
    if (user.disabled === true) throw new InvalidGrant('the user is disabled');

    return issueUserGrant(
      { ...approval, audienceResources: approval.resource },
      user,
      client,
      dpop,
      deps,
      'the device code is invalid, expired or already used',
    );
  },
};
