/** Authorization server metadata (RFC 8414, OIDC Discovery) and the JWKS. */
import type { FastifyInstance } from 'fastify';
import { jwksDeclaration, jwksDocument } from '../../endpoints/jwks.js';
import { buildMetadata, discoveryDeclaration } from '../../endpoints/metadata.js';
import { servedPaths, type RouteContext, type RoutePlugin } from './context.js';

export const discoveryRoutes: RoutePlugin = {
  endpoints: [discoveryDeclaration, jwksDeclaration],
  routes: discovery,
};

async function discovery(app: FastifyInstance, { deps, options, issuerPath, endpoints }: RouteContext): Promise<void> {
  const metadataJson = () => JSON.stringify(buildMetadata(deps, endpoints, options.metadataExtra));
  let metadataCache = metadataJson();
  let metadataAlgs = deps.keys.algorithms().join();
  for (const path of servedPaths(discoveryDeclaration, deps.config.issuer)) {
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
  app.get(issuerPath + jwksDeclaration.path, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('application/jwk-set+json').send(jwksDocument(deps)),
  );
}
