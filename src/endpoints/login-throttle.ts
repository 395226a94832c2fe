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
import ipaddr from 'ipaddr.js';
import { keyedHash } from '../core/crypto.js';
import type { Deps } from '../context.js';
import { secondsUntilWindowEnd } from '../model/ports.js';

type ThrottleDeps = Pick<Deps, 'storage' | 'config' | 'clock' | 'pepper'>;

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
 * The address a per-address limit counts: IPv4 as is (also IPv4-mapped IPv6), IPv6 by its /64, which a single
 * subscriber usually holds whole (counting single IPv6 addresses would give one attacker 2^64 of them).
 */
export function addressBucket(address: string): string {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // process(): any IPv6 spelling (compressed, zone id, dotted tail), and IPv4-mapped IPv6 turned into its IPv4.
    parsed = ipaddr.process(address);
  } catch {
    return address;
  }
  if (parsed.kind() === 'ipv4') return parsed.toString();
  // Same spelling as before ipaddr.js, so counters keep their keys across an upgrade.
  return `${(parsed as ipaddr.IPv6).parts
    .slice(0, 4)
    .map((part) => part.toString(16))
    .join(':')}::/64`;
}

/** What a rate-limit counter limits: its key prefix and the label that keeps its keyed hashes apart from others'. */
const COUNTERS = {
  login: { prefix: 'login', label: 'gatehouse login throttle' },
  register: { prefix: 'register', label: 'gatehouse registration limit' },
} as const;

/**
 * The store key of a rate-limit counter: keyed with the pepper, so the store holds no username or address in clear,
 * and one counter family cannot collide with another.
 */
export function counterKey(pepper: string, purpose: keyof typeof COUNTERS, kind: 'user' | 'ip', value: string): string {
  const { prefix, label } = COUNTERS[purpose];
  return `${prefix}:${kind}:${keyedHash(pepper, `${label}\n${kind}\n${value}`)}`;
}

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
