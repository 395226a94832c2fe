/**
 * Deletion of expired rows: `cleanup()` on demand, and the periodic run each replica schedules, of which one replica
 * at a time does the work (transaction-scoped advisory lock). Reads already ignore expired rows; this reclaims space.
 * The deployment's store sweeps every tenant at once (the expires_at indexes lead with no tenant for this); a tenant's
 * view sweeps its own rows only.
 */
import type { StoreLogger } from '../options.js';
import { DEFAULT_TENANT, type SqlContext } from './context.js';
import type { SqlQueryable } from './driver.js';
import { lockKey } from './migrations.js';

/** Default period of the background cleanup, ms. */
export const DEFAULT_CLEANUP_INTERVAL_MS = 60_000;

/** Deletes every expired row in one transaction (of every tenant, or of the view's); returns how many. */
export async function cleanup(ctx: SqlContext): Promise<number> {
  return ctx.tx((tx) => deleteExpired(ctx, tx));
}

async function deleteExpired(ctx: SqlContext, tx: SqlQueryable): Promise<number> {
  const now = ctx.clock.now();
  const all = ctx.tenant === DEFAULT_TENANT;
  const scope = all ? '' : ' AND tenant = $2';
  const params = all ? [now] : [now, ctx.tenant];
  let total = 0;
  // Children before grants so their rows are counted (ON DELETE CASCADE would remove them silently).
  for (const table of [
    'records',
    'authorization_codes',
    'refresh_tokens',
    'access_token_refs',
    'revoked_jtis',
    'consents',
    'grants',
    'rate_limits',
    'replay_guard',
  ] as const) {
    total += (await tx.query(`DELETE FROM ${ctx.t[table]} WHERE expires_at <= $1${scope}`, params)).rowCount;
  }
  total += (
    await tx.query(`DELETE FROM ${ctx.t.signing_keys} WHERE status = 'retired' AND expires_at <= $1${scope}`, params)
  ).rowCount;
  return total;
}

/** The background cleanup of one store: started by init(), stopped for good by close(). */
export class PeriodicCleanup {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  constructor(
    private readonly ctx: SqlContext,
    private readonly intervalMs: number,
    private readonly logger: StoreLogger | undefined,
  ) {}

  start(): void {
    if (this.timer || this.intervalMs <= 0 || this.stopped) return;
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref(); // never keeps the process alive
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One replica at a time: the others find the advisory lock taken and skip this round. */
  private async run(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      const removed = await this.ctx.tx(async (tx) => {
        const { rows } = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [
          lockKey('cleanup', this.ctx.schema),
        ]);
        return rows[0]?.ok ? deleteExpired(this.ctx, tx) : 0;
      });
      if (removed > 0) this.logger?.info({ removed, schema: this.ctx.schema }, 'storage cleanup removed expired rows');
    } catch (err) {
      if (!this.stopped) this.logger?.warn({ err }, 'storage cleanup failed');
    } finally {
      this.running = false;
    }
  }
}
