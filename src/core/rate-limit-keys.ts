/**
 * Keys of the store's rate-limit counters (login throttle, registration limits, endpoint limits): one keyed-hash scheme per counter
 * family under the server pepper, so the store never holds a username or an address, and the address bucket the
 * per-address limits count.
 */
import ipaddr from 'ipaddr.js';
import { keyedHash } from './crypto.js';

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
  token: { prefix: 'rl-token', label: 'gatehouse token endpoint limit' },
  authorize: { prefix: 'rl-authorize', label: 'gatehouse authorization endpoint limit' },
  introspect: { prefix: 'rl-introspect', label: 'gatehouse introspection endpoint limit' },
  revoke: { prefix: 'rl-revoke', label: 'gatehouse revocation endpoint limit' },
  deviceAuthorization: { prefix: 'rl-device', label: 'gatehouse device authorization endpoint limit' },
  device: { prefix: 'device-code', label: 'gatehouse device user code attempts' },
  deviceSlowDown: { prefix: 'device-slow', label: 'gatehouse device polling slow_down' },
} as const;

/** A counter family (what is limited). */
export type CounterPurpose = keyof typeof COUNTERS;
/**
 * What one counter of a family counts: a username, an address bucket, a client id, a browser (its binding), or
 * everything (`total`).
 */
export type CounterKind = 'user' | 'ip' | 'client' | 'total' | 'browser';

/**
 * The store key of a rate-limit counter: keyed with the pepper, so the store holds no username or address in clear,
 * and one counter family cannot collide with another.
 */
export function counterKey(pepper: string, purpose: CounterPurpose, kind: CounterKind, value: string): string {
  const { prefix, label } = COUNTERS[purpose];
  return `${prefix}:${kind}:${keyedHash(pepper, `${label}\n${kind}\n${value}`)}`;
}
