/**
 * The storage contract suite: one set of vitest tests every backend (memory, embedded PGlite, PostgreSQL, Redis)
 * runs unchanged. It uses only the Storage interface, and drives expiry with a ManualClock (backends compare
 * `expiresAt` with their injected clock), so it never sleeps. Each port's tests live in a file of their own; this
 * file only creates the store for each test and registers the sections.
 */
import { afterEach, beforeEach, describe } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import type { Storage } from '../../model/ports.js';
import { describeCascadeContract } from './cascade.js';
import { describeClientsContract } from './clients.js';
import { describeCodesContract } from './codes.js';
import { describeConsentsContract } from './consents.js';
import { describeCountersContract } from './counters.js';
import { describeGrantsContract } from './grants.js';
import { describeLifecycleContract } from './lifecycle.js';
import { describeListingsContract } from './listings.js';
import { describeNulValuesContract } from './nul-values.js';
import { describeRecordKindsContract } from './record-kinds.js';
import { describeRecordsContract } from './records.js';
import { describeReplayGuardContract } from './replay-guard.js';
import { describeRevocationContract } from './revocation.js';
import { describeSigningKeysContract } from './signing-keys.js';
import type { CurrentStore } from './support.js';
import { describeTenantsContract } from './tenants.js';
import { describeUsersContract } from './users.js';

/** Options for {@link describeStorageContract}. */
export interface StorageContractOptions {
  /** Disposes a store after each test (e.g. drop its schema, then close). Default: `store.close()`. */
  teardown?: (store: Storage) => Promise<void>;
}

/**
 * Registers the contract tests for one backend. `factory` must return an initialised store, isolated from every
 * other store it returned (unique schema or key prefix), whose clock is the given ManualClock.
 */
export function describeStorageContract(
  name: string,
  factory: (clock: ManualClock) => Promise<Storage>,
  options: StorageContractOptions = {},
): void {
  describe(`Storage contract: ${name}`, () => {
    let clock: ManualClock;
    let store: Storage;

    beforeEach(async () => {
      clock = new ManualClock(Date.now());
      store = await factory(clock);
    });

    afterEach(async () => {
      if (options.teardown) await options.teardown(store);
      else await store.close();
    });

    const current: CurrentStore = () => ({ store, clock });
    describeLifecycleContract(current);
    describeNulValuesContract(current);
    describeClientsContract(current);
    describeUsersContract(current);
    describeSigningKeysContract(current);
    describeRecordKindsContract(current);
    describeCodesContract(current);
    describeGrantsContract(current);
    describeRevocationContract(current);
    describeConsentsContract(current);
    describeCountersContract(current);
    describeRecordsContract(current);
    describeReplayGuardContract(current);
    describeCascadeContract(current);
    describeTenantsContract(current);
    describeListingsContract(current);
  });
}
