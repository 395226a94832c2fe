import { describe, expect, it } from 'vitest';
import { Auditor, type AuditRecord } from './audit.js';
import { ManualClock } from './clock.js';
import { limitRequest, type EndpointLimits, type RateLimitDeps } from './rate-limit.js';
import { RateLimited } from '../model/errors.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';

const off: EndpointLimits = { perClient: 0, perIp: 0, windowSeconds: 60 };

function depsWith(token: EndpointLimits) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 30));
  const store = new MemoryStorage({ clock });
  let calls = 0;
  const infos: AuditRecord[] = [];
  const deps: RateLimitDeps = {
    config: { rateLimits: { token, authorize: off, introspect: off, revoke: off, deviceAuthorization: off } },
    pepper: 'pepper',
    clock,
    audit: new Auditor(clock, [(record) => infos.push(record)]),
    storage: {
      hitRateLimit: (key, windowMs, now) => {
        calls++;
        return store.hitRateLimit(key, windowMs, now);
      },
    },
  };
  return { deps, calls: () => calls, infos };
}

describe('limitRequest', () => {
  it('costs no store call while a limit is off', async () => {
    const { deps, calls } = depsWith(off);
    for (let i = 0; i < 1000; i++) {
      await limitRequest(deps, 'token', 'client', 'c');
      await limitRequest(deps, 'token', 'ip', '192.0.2.1');
    }
    expect(calls()).toBe(0);
  });

  it('costs one store call per request while on, and refuses over the limit with Retry-After', async () => {
    const { deps, calls, infos } = depsWith({ perClient: 2, perIp: 0, windowSeconds: 60 });
    await limitRequest(deps, 'token', 'client', 'c');
    await limitRequest(deps, 'token', 'client', 'c');
    expect(calls()).toBe(2);
    const refused = await limitRequest(deps, 'token', 'client', 'c').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimited);
    expect((refused as RateLimited).status).toBe(429);
    expect((refused as RateLimited).headers['retry-after']).toBe('30');
    expect(calls()).toBe(3);
    expect(infos).toMatchObject([
      { type: 'rate_limit.hit', endpoint: 'token', keyKind: 'client', retryAfterSeconds: 30 },
    ]);
    // Another client has its own counter.
    await limitRequest(deps, 'token', 'client', 'd');
  });

  it('counts IPv6 addresses by their /64', async () => {
    const { deps } = depsWith({ perClient: 0, perIp: 1, windowSeconds: 60 });
    await limitRequest(deps, 'token', 'ip', '2001:db8:1:2::1');
    await expect(limitRequest(deps, 'token', 'ip', '2001:db8:1:2:ffff::9')).rejects.toBeInstanceOf(RateLimited);
    await limitRequest(deps, 'token', 'ip', '2001:db8:1:3::1');
  });
});
