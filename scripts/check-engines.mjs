#!/usr/bin/env node
// Fails when an installed package claims a Node engine the project does not run on (what `npm ci` only warns about
// as EBADENGINE). Reads the `engines` npm records per package in package-lock.json, so it needs no install of its own;
// `semver` comes from the dependency tree (fastify depends on it).
//   - every package (dev included) must accept the running Node;
//   - every runtime package must also accept the lowest Node that package.json `engines.node` promises.
// Usage: node scripts/check-engines.mjs [path/to/project]   (exit 1 and one line per offender on failure)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const root = resolve(process.argv[2] ?? new URL('..', import.meta.url).pathname);
const require = createRequire(resolve(root, 'package.json'));
const semver = require('semver');

const manifest = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(resolve(root, 'package-lock.json'), 'utf8'));
const promised = manifest.engines?.node;
const lowest = promised ? semver.minVersion(promised)?.version : undefined;
const running = process.versions.node;

const problems = [];
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  const wanted = entry.engines?.node;
  if (path === '' || typeof wanted !== 'string') continue;
  const name = path.replace(/^.*node_modules\//, '');
  const label = `${name}@${entry.version}${entry.dev ? ' (dev)' : ''}`;
  if (!semver.satisfies(running, wanted, { includePrerelease: true })) {
    problems.push(`${label} wants node ${wanted}, this is node ${running}`);
  } else if (lowest && !entry.dev && !semver.satisfies(lowest, wanted)) {
    problems.push(`${label} wants node ${wanted}, but package.json promises node ${promised}`);
  }
}
if (problems.length > 0) {
  for (const p of problems) console.error(`engine check: ${p}`);
  console.error('engine check: pin or override these in package.json (see "overrides"), then npm install');
  process.exit(1);
}
console.log(
  `engine check: every package accepts node ${running}${lowest ? ` and runtime packages node ${lowest}` : ''}`,
);
