/**
 * Password-guessing throttle for the login form (config `loginRateLimit`). Failures are counted per username and per
 * client address in the store's fixed-window counters, so every replica enforces one shared limit. Keys are keyed
 * hashes under the server pepper: the store never holds a username or an address.
 *
 * Per username the attempt is counted *before* the password is checked, so a burst of parallel guesses cannot all
 * pass the check before the first failure lands; a successful sign-in resets the counter, so in the end only failures
 * count. Per address only failures are counted (after the check), so the successful sign-ins of many users behind one
 * NAT never add up; the price is that a burst of parallel requests can overshoot that limit by its own size.
 */
import { addressBucket, counterKey } from '../core/rate-limit-keys.js';
import type { Deps } from '../context.js';
import { secondsUntilWindowEnd, type RateLimitStore } from '../model/ports.js';

export type ThrottleDeps = Pick<Deps, 'config' | 'clock' | 'pepper'> & { storage: RateLimitStore };

/** What {@link admitLogin} decided. */
export type LoginAdmission =
  | {
      allowed: true;
      /** Call after a wrong password (or unknown user): counts the failure against the address. */
      failed(): Promise<void>;
      /** Call after a successful sign-in: clears the username's counter. */
      succeeded(): Promise<void>;
    }
  /** Over a limit: refuse without checking the password, and tell the browser when the window ends. */
  | { allowed: false; limit: 'username' | 'ip'; retryAfterSeconds: number };

/**
 * Decides whether a sign-in attempt for `username` from `address` may check its password, counting the attempt
 * against the username (see the module comment). Throws StorageUnavailableError when the store is down: the login
 * then fails closed with 503, as it would without the throttle.
 */
export async function admitLogin(username: string, address: string, deps: ThrottleDeps): Promise<LoginAdmission> {
  const { maxFailuresPerUsername, maxFailuresPerIp, windowSeconds } = deps.config.loginRateLimit;
  const { storage, clock } = deps;
  const windowMs = windowSeconds * 1000;
  const userKey = counterKey(deps.pepper, 'login', 'user', username.toLowerCase());
  const ipKey = counterKey(deps.pepper, 'login', 'ip', addressBucket(address));
  const refuse = (limit: 'username' | 'ip'): LoginAdmission => ({
    allowed: false,
    limit,
    retryAfterSeconds: secondsUntilWindowEnd(clock.now(), windowMs),
  });

  if (maxFailuresPerIp > 0 && (await storage.peekRateLimit(ipKey, clock.now())) >= maxFailuresPerIp)
    return refuse('ip');
  if (
    maxFailuresPerUsername > 0 &&
    (await storage.hitRateLimit(userKey, windowMs, clock.now())) > maxFailuresPerUsername
  ) {
    return refuse('username');
  }
  return {
    allowed: true,
    async failed() {
      if (maxFailuresPerIp > 0) await storage.hitRateLimit(ipKey, windowMs, clock.now());
    },
    async succeeded() {
      if (maxFailuresPerUsername > 0) await storage.resetRateLimit(userKey);
    },
  };
}
