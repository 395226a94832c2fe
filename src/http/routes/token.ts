/** The back-channel endpoints: token, revocation, introspection, userinfo. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequest } from '../../model/errors.js';
import { bearerToken } from '../../core/params.js';
import { introspectDeclaration, introspectEndpoint } from '../../endpoints/introspect.js';
import { revokeDeclaration, revokeEndpoint } from '../../endpoints/revoke.js';
import { tokenDeclaration, tokenEndpoint } from '../../endpoints/token.js';
import { userinfoDeclaration, userinfoEndpoint } from '../../endpoints/userinfo.js';
import { limitRequest } from '../../core/rate-limit.js';
import { currentDpopNonce } from '../../core/dpop.js';
import { auditContextOf } from '../request-id.js';
import { formParams, json, scopeOf, type RouteContext, type RoutePlugin } from './context.js';

export const tokenRoutes: RoutePlugin = {
  endpoints: [tokenDeclaration, revokeDeclaration, introspectDeclaration, userinfoDeclaration],
  routes: backChannel,
};

async function backChannel(app: FastifyInstance, { issuerPath }: RouteContext): Promise<void> {
  // Per-address limits (config rateLimits.<endpoint>.perIp) before any work; the per-client ones follow client
  // authentication in the endpoints. Off: no store call.
  app.post(issuerPath + tokenDeclaration.path, async (request, reply) => {
    const { deps } = scopeOf(request);
    const context = auditContextOf(request);
    await limitRequest(deps, 'token', 'ip', request.ip, context);
    const response = await tokenEndpoint(formParams(request), request.headers.authorization, deps, context, {
      header: dpopHeader(request),
      method: request.method,
    });
    const nonce = currentDpopNonce(deps);
    if (nonce !== undefined) reply.header('dpop-nonce', nonce);
    return json(reply, 200, response);
  });
  app.post(issuerPath + revokeDeclaration.path, async (request, reply) => {
    const { deps } = scopeOf(request);
    const context = auditContextOf(request);
    await limitRequest(deps, 'revoke', 'ip', request.ip, context);
    await revokeEndpoint(formParams(request), request.headers.authorization, deps, context);
    return reply.code(200).header('cache-control', 'no-store').send();
  });
  app.post(issuerPath + introspectDeclaration.path, async (request, reply) => {
    const { deps } = scopeOf(request);
    const context = auditContextOf(request);
    await limitRequest(deps, 'introspect', 'ip', request.ip, context);
    return json(
      reply,
      200,
      await introspectEndpoint(formParams(request), request.headers.authorization, deps, context),
    );
  });
  // RFC 6750 §3: a request without a usable token gets the challenge, here with error="invalid_request" (§3.1).
  const malformedBearer = (description: string) =>
    new InvalidRequest(description, {
      headers: { 'www-authenticate': 'Bearer realm="gatehouse", error="invalid_request"' },
    });
  const userinfo = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers.authorization;
    let token: string | undefined;
    let scheme: 'Bearer' | 'DPoP' = 'Bearer';
    if (header !== undefined) {
      // RFC 9449 §7.1: `Authorization: DPoP <token>` with a proof; Bearer otherwise (RFC 6750 §2.1).
      const dpop = dpopToken(header);
      if (dpop !== undefined) {
        token = dpop;
        scheme = 'DPoP';
      } else {
        token = bearerToken(header);
        if (!token) throw malformedBearer('malformed Authorization header');
      }
    }
    if (request.method === 'POST') {
      const bodyToken = formParams(request).access_token;
      if (bodyToken && token) throw malformedBearer('use only one method to send the access token');
      if (bodyToken) {
        if (bodyToken.length > 1) throw malformedBearer('access_token must not be included more than once');
        token = bodyToken[0];
      }
    }
    return json(
      reply,
      200,
      await userinfoEndpoint(token, scopeOf(request).deps, {
        scheme,
        dpop: { header: dpopHeader(request), method: request.method },
      }),
    );
  };
  app.get(issuerPath + userinfoDeclaration.path, userinfo);
  app.post(issuerPath + userinfoDeclaration.path, userinfo);
}

/** Every value of the `DPoP` header: node joins repeated unknown headers with ", ", so read them apart. */
function dpopHeader(request: FastifyRequest): string | string[] | undefined {
  return request.raw.headersDistinct?.dpop ?? request.headers.dpop;
}

/** The token of an `Authorization: DPoP <token>` header (RFC 9449 §7.1, token68 syntax), else undefined. */
function dpopToken(authorization: string): string | undefined {
  return /^DPoP ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim())?.[1];
}
