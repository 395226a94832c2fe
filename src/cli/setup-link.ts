/**
 * The first-run setup link on the command line (authorization/setup.ts): printed by `gatehouse serve` at a first
 * start, and made anew by `gatehouse setup-link` (when the printed one expired). Written to stderr, never to the log:
 * the link is a secret until it is used.
 */
import type { Config } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import type { Storage } from '../model/ports.js';
import { anyUser, issueSetupLink, SETUP_LINK_TTL_MS } from '../authorization/setup.js';

/** The banner around a setup link, for a terminal or `docker logs`. */
export function setupLinkBanner(link: { url: string; expiresAt: number }): string {
  const minutes = Math.round(SETUP_LINK_TTL_MS / 60_000);
  return `
  No users yet. Create the first administrator (this link works once, for ${minutes} minutes, until ${new Date(link.expiresAt).toISOString()}):

    ${link.url}

  Expired? Restart the server or run \`gatehouse setup-link\`.

`;
}

/** Prints the link a starting server made, if it made one. */
export function printSetupLink(gatehouse: { setupLink?: { url: string; expiresAt: number } }): void {
  if (gatehouse.setupLink) process.stderr.write(setupLinkBanner(gatehouse.setupLink));
}

/**
 * `gatehouse setup-link`: a new one-time setup link for the deployment's store, while it has no user (exit 1 and a
 * line saying so otherwise: `gatehouse user add` or the account page are the ways then).
 */
export async function setupLinkCommand(config: Config, storage: Storage): Promise<number> {
  if (await anyUser(storage)) {
    process.stderr.write('gatehouse: users exist already: no setup link (add more with `gatehouse user add`)\n');
    return 1;
  }
  process.stderr.write(setupLinkBanner(await issueSetupLink({ config, clock: systemClock, storage })));
  return 0;
}
