/**
 * The request limits of the endpoints (config `rateLimits`) and of registration, over the store's shared fixed-window
 * counters (model/ports.ts RateLimitStore `hitRateLimit`): every replica counts into the same counter, and a tenant's
 * counters live in its scoped store, so one tenant's traffic never throttles another's. A limit set to 0 is off and
 * costs nothing (no store call); one that is on costs one store round trip per request (one INCR-like hit).
 *
 * A hit is counted before the work it guards, so a burst of parallel requests cannot overshoot the limit.
 */
import { addressBucket, counterKey, type CounterKind, type CounterPurpose } from './rate-limit-keys.js';
import { RateLimited } from '../model/errors.js';
import { secondsUntilWindowEnd, type RateLimitStore } from '../model/ports.js';
import type { AuditRequestContext, Auditor } from './audit.js';
import type { Clock } from './clock.js';

/** One endpoint's limits, as config `rateLimits.<endpoint>` holds them (0 = off). */
export interface EndpointLimits {
  perClient: number;
  perIp: number;
  windowSeconds: number;
}

/** The endpoints config `rateLimits` limits. */
export type LimitedEndpoint = 'token' | 'authorize' | 'introspect' | 'revoke' | 'deviceAuthorization';

/** What counting a request takes (structurally a slice of Deps; core/ cannot name Deps). */
export interface RateLimitDeps {
  config: { rateLimits: Record<LimitedEndpoint, EndpointLimits> };
  pepper: string;
  clock: Clock;
  audit: Pick<Auditor, 'emit'>;
  storage: Pick<RateLimitStore, 'hitRateLimit'>;
}

/**
 * Counts one hit on the counter of (`purpose`, `kind`, `value`) and returns the Retry-After seconds when the count is
 * over `limit`, else undefined. `limit` 0: off, nothing counted.
 */
export async function hitLimit(
  deps: Pick<RateLimitDeps, 'pepper' | 'clock' | 'storage'>,
  purpose: CounterPurpose,
  kind: CounterKind,
  value: string,
  limit: number,
  windowSeconds: number,
): Promise<number | undefined> {
  if (limit <= 0) return undefined;
  const windowMs = windowSeconds * 1000;
  const key = counterKey(deps.pepper, purpose, kind, value);
  const now = deps.clock.now();
  if ((await deps.storage.hitRateLimit(key, windowMs, now)) <= limit) return undefined;
  return secondsUntilWindowEnd(now, windowMs);
}

/**
 * Counts a request to `endpoint` against its per-client (`keyKind` 'client': the client id) or per-address ('ip':
 * request.ip, counted by its address bucket) limit; throws RateLimited (429, Retry-After) over it.
 */
export async function limitRequest(
  deps: RateLimitDeps,
  endpoint: LimitedEndpoint,
  keyKind: 'client' | 'ip',
  value: string,
  context?: AuditRequestContext,
): Promise<void> {
  const limits = deps.config.rateLimits[endpoint];
  const limit = keyKind === 'client' ? limits.perClient : limits.perIp;
  if (limit <= 0) return;
  const bucket = keyKind === 'ip' ? addressBucket(value) : value;
  const retryAfter = await hitLimit(deps, endpoint, keyKind, bucket, limit, limits.windowSeconds);
  if (retryAfter === undefined) return;
  reportRateLimitHit(deps, endpoint, keyKind, retryAfter, context);
  throw new RateLimited(
    keyKind === 'client'
      ? 'too many requests from this client; retry later'
      : 'too many requests from this address; retry later',
    retryAfter,
  );
}

/** The one place a limit hit is reported: the audit event `rate_limit.hit` (the endpoint and what was counted, never the client address or id; the event's common fields carry the request's). */
export function reportRateLimitHit(
  deps: { audit: Pick<Auditor, 'emit'> },
  endpoint: CounterPurpose,
  keyKind: CounterKind,
  retryAfterSeconds: number,
  context?: AuditRequestContext,
): void {
  if (keyKind === 'user') return; // sign-in throttling has events of its own (signin.throttled)
  deps.audit.emit({ type: 'rate_limit.hit', endpoint, keyKind, retryAfterSeconds }, context);
}
