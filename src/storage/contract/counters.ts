/**
 * Contract tests for the rate-limit counters (RateLimitStore): fixed windows shared by replicas.
 * Registered inside {@link describeStorageContract}, so every backend runs them.
 */
import { describe, expect, it } from 'vitest';
import { rateLimitWindowEnd } from '../../model/ports.js';
import { HOUR, MINUTE, rateLimitKeyFixture } from './fixtures.js';
import type { CurrentStore } from './support.js';

/** Registers the section; `current` returns the test's store and clock. */
export function describeCountersContract(current: CurrentStore): void {
  describe('rate limits', () => {
    const WINDOW = 15 * MINUTE;
    const hit = (key: string, windowMs = WINDOW): Promise<number> => {
      const { store, clock } = current();
      return store.hitRateLimit(key, windowMs, clock.now());
    };
    const peek = (key: string): Promise<number> => {
      const { store, clock } = current();
      return store.peekRateLimit(key, clock.now());
    };
    /** Moves the clock to `offset` ms into the next window of `windowMs`; returns that window's start. */
    function enterWindow(offset: number, windowMs = WINDOW): number {
      const { clock } = current();
      const start = rateLimitWindowEnd(clock.now(), windowMs);
      clock.set(start + offset);
      return start;
    }

    it('counts hits per key and peeks without counting', async () => {
      const a = rateLimitKeyFixture();
      const b = rateLimitKeyFixture('login:ip');
      expect(await peek(a)).toBe(0);
      expect(await hit(a)).toBe(1);
      expect(await hit(a)).toBe(2);
      expect(await hit(a)).toBe(3);
      expect(await hit(b)).toBe(1);
      expect(await peek(a)).toBe(3);
      expect(await peek(a)).toBe(3);
      expect(await peek(b)).toBe(1);
      expect(await peek(rateLimitKeyFixture())).toBe(0);
    });

    it('a window ends at the next multiple of windowMs: the counter then reads as gone and starts over', async () => {
      const { clock } = current();
      const start = enterWindow(5 * MINUTE);
      const end = start + WINDOW;
      const key = rateLimitKeyFixture();
      expect(await hit(key)).toBe(1);
      clock.set(end - 1);
      expect(await hit(key)).toBe(2);
      expect(await peek(key)).toBe(2);
      clock.set(end);
      expect(await peek(key)).toBe(0);
      expect(await hit(key)).toBe(1);
      clock.set(end + WINDOW - 1);
      expect(await hit(key)).toBe(2);
      clock.set(end + WINDOW);
      expect(await peek(key)).toBe(0);
    });

    it('a counter keeps the window it was created in, whatever windowMs later hits pass', async () => {
      const { clock } = current();
      const start = enterWindow(0);
      const key = rateLimitKeyFixture();
      expect(await hit(key, WINDOW)).toBe(1);
      clock.set(start + 2 * MINUTE);
      // A one-minute window would have ended; the counter's own 15-minute window has not.
      expect(await hit(key, MINUTE)).toBe(2);
      clock.set(start + WINDOW);
      expect(await peek(key)).toBe(0);
    });

    it('reset clears one counter, so the next hit counts 1; resetting an unknown key is fine', async () => {
      const { store } = current();
      const a = rateLimitKeyFixture();
      const b = rateLimitKeyFixture();
      await hit(a);
      await hit(a);
      await hit(b);
      await store.resetRateLimit(a);
      expect(await peek(a)).toBe(0);
      expect(await peek(b)).toBe(1);
      expect(await hit(a)).toBe(1);
      await expect(store.resetRateLimit(rateLimitKeyFixture())).resolves.toBeUndefined();
    });

    it('cleanup() keeps live counters, and expired ones stay gone', async () => {
      const { store, clock } = current();
      enterWindow(0, HOUR);
      const brief = rateLimitKeyFixture();
      const long = rateLimitKeyFixture();
      expect(await hit(brief, MINUTE)).toBe(1);
      expect(await hit(long, HOUR)).toBe(1);
      clock.advance(2 * MINUTE);
      await store.cleanup();
      expect(await peek(brief)).toBe(0);
      expect(await peek(long)).toBe(1);
      expect(await hit(brief, MINUTE)).toBe(1);
      expect(await hit(long, HOUR)).toBe(2);
    });

    it('refuses a window that is not a positive integer', async () => {
      const { store, clock } = current();
      const key = rateLimitKeyFixture();
      for (const windowMs of [0, -MINUTE, 1.5, Number.NaN]) {
        await expect(store.hitRateLimit(key, windowMs, clock.now())).rejects.toThrow(RangeError);
      }
      expect(await peek(key)).toBe(0);
    });

    it('50 parallel hits on one key return exactly 1..50', async () => {
      enterWindow(MINUTE);
      const key = rateLimitKeyFixture();
      const counts = await Promise.all(Array.from({ length: 50 }, () => hit(key)));
      expect(counts.sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(await peek(key)).toBe(50);
    });
  });
}
