/** Authorization server metadata (RFC 8414, OIDC Discovery) and the JWKS. */
import type { FastifyInstance } from 'fastify';
import { buildMetadata, metadataPaths, PATHS } from '../../endpoints/metadata.js';
import type { RouteContext } from './context.js';

export async function discoveryRoutes(
  app: FastifyInstance,
  { deps, options, issuerPath }: RouteContext,
): Promise<void> {
  const metadataJson = () => JSON.stringify(buildMetadata(deps, options.metadataExtra));
  let metadataCache = metadataJson();
  let metadataAlgs = deps.keys.algorithms().join();
  for (const path of metadataPaths(deps.config.issuer)) {
    app.get(path, async (_request, reply) => {
      // Rebuilt only when the key algorithms change (they appear in id_token_signing_alg_values_supported).
      const algs = deps.keys.algorithms().join();
      if (algs !== metadataAlgs) {
        metadataAlgs = algs;
        metadataCache = metadataJson();
      }
      return reply.header('cache-control', 'public, max-age=300').type('application/json').send(metadataCache);
    });
  }
  app.get(issuerPath + PATHS.jwks, async (_request, reply) =>
    reply
      .header('cache-control', 'public, max-age=300')
      .type('application/jwk-set+json')
      .send(deps.keys.publicJwksJson()),
  );
}
