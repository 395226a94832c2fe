/**
 * What the sign-in flow reads of an upstream's configuration entry (config `upstreams`, config/upstreams.ts) besides
 * its provider: whether it links identities to local accounts by verified email, and which upstream client a token
 * set came from.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { randomId } from '../core/crypto.js';
import type { UpstreamProvider } from './provider.js';

/** The configured upstream entries. */
export function upstreamEntries(config: Config): Config['upstreams'] {
  return config.upstreams;
}

/** An identity of upstream `id` may be linked to an existing local account by its verified email (default: no). */
export function linksByVerifiedEmail(config: Config, id: string): boolean {
  return config.upstreams.find((entry) => entry.id === id)?.linkByVerifiedEmail === true;
}

/**
 * Which upstream client obtained a token set: a digest of the upstream's issuer and the client id Gatehouse has
 * there (with `registration: dynamic`, the registration's generation). Tokens stored under another generation (the upstream or the client replaced under the same id) are not
 * served.
 */
export async function upstreamClientGeneration(provider: UpstreamProvider, config: Config): Promise<string> {
  const clientId = config.upstreams.find((entry) => entry.id === provider.id)?.clientId ?? '';
  // A registered client: its registration's generation (none stored: one that matches nothing).
  const registration = provider.registrationGeneration
    ? ((await provider.registrationGeneration()) ?? randomId())
    : undefined;
  return createHash('sha256')
    .update(JSON.stringify(registration === undefined ? [provider.issuer, clientId] : [provider.issuer, registration]))
    .digest('base64url')
    .slice(0, 16);
}
