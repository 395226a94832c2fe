/**
 * Examples and README snippets import `gatehouse` / `gatehouse/resource` through the package exports (dist/), as a
 * user would: build once before any test file runs when dist/ is older than src/ (also under a bare `npx vitest`).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../scripts/ensure-ready.mjs', import.meta.url));
  execFileSync(process.execPath, [script], { stdio: 'inherit' });
}
