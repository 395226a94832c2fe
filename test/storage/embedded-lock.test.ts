/** The embedded store's directory lock: PGlite would be corrupted by two writers, so a second opener is refused. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createEmbeddedStorage } from '../../src/storage/sql/embedded.js';

const options = () => ({ clock: new ManualClock(), cleanupIntervalMs: 0 });

describe('embedded store directory lock', () => {
  it('refuses a directory locked by another live process, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-lock-'));
    const other = spawn('sleep', ['30']);
    try {
      writeFileSync(join(dir, 'gatehouse.lock'), String(other.pid));
      expect(() => createEmbeddedStorage(dir, options())).toThrow(`in use by process ${other.pid}`);
    } finally {
      other.kill();
    }
  });

  it('takes over a stale lock, refuses a second open in the same process, and releases on close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-lock-'));
    writeFileSync(join(dir, 'gatehouse.lock'), '999999'); // no such process
    const store = createEmbeddedStorage(dir, options());
    try {
      expect(() => createEmbeddedStorage(dir, options())).toThrow('already open in this process');
    } finally {
      await store.close();
    }
    expect(existsSync(join(dir, 'gatehouse.lock'))).toBe(false);
  }, 60_000);
});
