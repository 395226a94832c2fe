/** Injectable time source, so expiry is testable without sleeping. All times are epoch milliseconds. */
export interface Clock {
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private current = Date.now()) {}
  now(): number {
    return this.current;
  }
  /** Moves time forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.current += ms;
  }
  set(ms: number): void {
    this.current = ms;
  }
}

/** Seconds since the epoch, for JWT claims. */
export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}
