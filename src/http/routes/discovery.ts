/** Authorization server metadata (RFC 8414, OIDC Discovery) and the JWKS. */
import type { FastifyInstance } from 'fastify';
import { jwksDeclaration, jwksDocument } from '../../endpoints/jwks.js';
import { buildMetadata, discoveryDeclaration } from '../../endpoints/metadata.js';
import { perScope, scopeOf, servedPaths, type RouteContext, type RoutePlugin } from './context.js';

export const discoveryRoutes: RoutePlugin = {
  endpoints: [discoveryDeclaration, jwksDeclaration],
  routes: discovery,
};

async function discovery(app: FastifyInstance, { deps, options, issuerPath, endpoints }: RouteContext): Promise<void> {
  // One cached document per issuer, rebuilt only when its key algorithms change (id_token_signing_alg_values_supported).
  const metadataOf = perScope(({ deps }) => {
    const build = () => JSON.stringify(buildMetadata(deps, endpoints, options.metadataExtra));
    let algs = deps.keys.algorithms().join();
    let document = build();
    return () => {
      const now = deps.keys.algorithms().join();
      if (now !== algs) {
        algs = now;
        document = build();
      }
      return document;
    };
  });
  for (const path of servedPaths(discoveryDeclaration, deps.config.issuer)) {
    app.get(path, async (request, reply) =>
      reply.header('cache-control', 'public, max-age=300').type('application/json').send(metadataOf(request)()),
    );
  }
  app.get(issuerPath + jwksDeclaration.path, async (request, reply) =>
    reply
      .header('cache-control', 'public, max-age=300')
      .type('application/jwk-set+json')
      .send(jwksDocument(scopeOf(request).deps)),
  );
}
