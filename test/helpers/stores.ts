/**
 * The four stores an end-to-end test runs on, each with its own isolation (a fresh embedded directory, a PostgreSQL
 * schema, a Redis key prefix) and the cleanup of what the test stored.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.js';
import { dropIsolation } from './services.js';

export interface StoreCase {
  kind: 'memory' | 'embedded' | 'postgres' | 'redis';
  /** The machine service the store needs (see requireService). */
  service?: 'postgres' | 'redis';
  config(isolation: string): Partial<ConfigInput>;
  cleanup?(isolation: string): Promise<void>;
}

export const E2E_STORES: StoreCase[] = [
  { kind: 'memory', config: () => ({ storage: 'memory' }) },
  { kind: 'embedded', config: () => ({ storage: mkdtempSync(join(tmpdir(), 'gh-e2e-')) }) },
  {
    kind: 'postgres',
    service: 'postgres',
    config: (schema) => ({ storage: 'postgres://postgres@127.0.0.1:5432/test', postgres: { schema, poolSize: 4 } }),
    cleanup: (schema) => dropIsolation('postgres', schema),
  },
  {
    kind: 'redis',
    service: 'redis',
    config: (prefix) => ({ storage: 'redis://127.0.0.1:6379', redis: { keyPrefix: `${prefix}:` } }),
    cleanup: (prefix) => dropIsolation('redis', prefix),
  },
];
