/** Every installed package accepts the Node the project runs on (no EBADENGINE on `npm ci`). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;

describe('dependency engines', () => {
  it('no package in the lockfile claims a Node engine this project does not run on', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/check-engines.mjs'), ROOT], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`accepts node ${process.versions.node}`);
  });
});
