/** The JWKS (RFC 7517, RFC 8414 `jwks_uri`): the public signing keys, with those of retiring keys until they expire. */
import type { Deps, EndpointDeclaration } from '../context.js';

export const jwksDeclaration = {
  path: '/jwks.json',
  cors: true,
  metadata: (url) => ({ jwks_uri: url }),
} satisfies EndpointDeclaration;

/** The JWK Set as served: serialized once per key change by the key manager. */
export function jwksDocument(deps: Pick<Deps, 'keys'>): string {
  return deps.keys.publicJwksJson();
}
