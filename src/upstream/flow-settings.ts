/**
 * What the sign-in flow reads of an upstream's configuration entry besides its provider: whether it links identities
 * to local accounts by verified email, and which upstream client a token set came from. Read defensively, since the
 * schema of `upstreams` is the relying-party side's (config/upstreams.ts).
 * TODO(merge wt-upstream-rp): read the typed entries of config.upstreams here, and drop the guesses below.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { UpstreamProvider } from './provider.js';

/** The fields of a `upstreams[]` entry the flow reads (unknown until the schema is merged). */
interface UpstreamEntry {
  id?: unknown;
  linkByVerifiedEmail?: unknown;
  clientId?: unknown;
  client_id?: unknown;
}

/** The configured upstream entries; none when the config has no `upstreams`. */
export function upstreamEntries(config: Config): UpstreamEntry[] {
  const list = (config as { upstreams?: unknown }).upstreams;
  return Array.isArray(list)
    ? list.filter((entry): entry is UpstreamEntry => typeof entry === 'object' && entry !== null)
    : [];
}

function upstreamEntry(config: Config, id: string): UpstreamEntry | undefined {
  return upstreamEntries(config).find((entry) => entry.id === id);
}

/** An identity of upstream `id` may be linked to an existing local account by its verified email (default: no). */
export function linksByVerifiedEmail(config: Config, id: string): boolean {
  return upstreamEntry(config, id)?.linkByVerifiedEmail === true;
}

/**
 * Which upstream client obtained a token set: the provider's own `clientGeneration` when it has one, else a digest of
 * the upstream's issuer and the client id Gatehouse has there. Tokens stored under another generation are not served.
 */
export function upstreamClientGeneration(provider: UpstreamProvider, config: Config): string {
  const own = (provider as { clientGeneration?: unknown }).clientGeneration;
  if (typeof own === 'string' || typeof own === 'number') return String(own);
  const entry = upstreamEntry(config, provider.id);
  const clientId = entry?.clientId ?? entry?.client_id;
  return createHash('sha256')
    .update(JSON.stringify([provider.issuer, typeof clientId === 'string' ? clientId : '']))
    .digest('base64url')
    .slice(0, 16);
}
