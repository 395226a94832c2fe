/**
 * Rehash on sign-in: after a password verified, a stored hash at another cost than `passwordHashing.log2N` is
 * replaced by one at the configured cost. Costs then converge on the configured one, which is what the dummy check
 * for unknown usernames spends, so a user's sign-in time does not give away that the username exists.
 */
import { hashPassword, needsRehash } from '../core/password.js';
import type { Deps } from '../context.js';
import type { UserStore } from '../model/ports.js';
import type { UserRecord } from '../model/records.js';

export type PasswordUpgradeDeps = Pick<Deps, 'config' | 'clock' | 'logger'> & {
  storage: Pick<UserStore, 'getUser' | 'saveUser'>;
};

/** Rehashes `user`'s password at the configured cost when needed. Never fails the sign-in: errors are logged. */
export async function upgradePasswordHash(
  user: UserRecord,
  password: string,
  deps: PasswordUpgradeDeps,
): Promise<void> {
  const log2N = deps.config.passwordHashing.log2N;
  if (!needsRehash(user.passwordHash, log2N)) return;
  try {
    const passwordHash = await hashPassword(password, log2N);
    // Re-read first: a password set meanwhile (`gatehouse user add`, a config restart) must not be overwritten by
    // the old one. The store has no compare-and-set, so this narrows the window to the read-to-write gap.
    const current = await deps.storage.getUser(user.id);
    if (!current || current.passwordHash !== user.passwordHash) return;
    await deps.storage.saveUser({ ...current, passwordHash, updatedAt: deps.clock.now() });
    deps.logger.info({ userId: user.id, log2N }, 'password rehashed at the configured cost');
  } catch (err) {
    deps.logger.warn({ userId: user.id, err: (err as Error).message }, 'password rehash failed');
  }
}
