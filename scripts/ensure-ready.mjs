#!/usr/bin/env node
// Makes `npm start` and `npm test` work on a fresh clone: installs dependencies from the lockfile when they are
// missing or stale, and compiles TypeScript when dist/ is older than src/. Uses only Node built-ins.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return latest;
}

const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || mtime(join(root, 'package-lock.json')) > mtime(installed)) {
  console.error('gatehouse: installing dependencies (npm ci)…');
  run('npm ci --no-audit --no-fund');
}
const built = join(root, 'dist', '.build-stamp');
if (!existsSync(built) || newest(join(root, 'src')) > mtime(built)) {
  console.error('gatehouse: compiling TypeScript…');
  run('npm run build --silent');
}
