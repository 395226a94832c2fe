/**
 * Scenario e, in this process: `gatehouse/resource` createResourceVerifier (the built dist/resource/index.js, against
 * the running server, JWKS fetched once and cached) versus the floor, raw `jose` jwtVerify with a local key set and
 * the same checks (iss, aud, typ, algorithms, required claims). Both use the jose that Gatehouse itself depends on.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runLoop } from './load.mjs';
import { clientCredentialsToken } from './scenarios.mjs';
import { RESOURCE, ROOT } from './targets.mjs';

export const RESOURCE_ROWS = [
  { id: 'resource_verifier', label: 'e. gatehouse/resource verify()', unit: 'verifications/s' },
  { id: 'jose_floor', label: 'e. raw jose jwtVerify (floor)', unit: 'verifications/s' },
  {
    id: 'resource_introspection',
    label: "e. gatehouse/resource verify(), mode 'introspection' (revocation-aware, no cache)",
    unit: 'verifications/s',
  },
];

/** Prepares both verifiers against `target`; returns { resource_verifier, jose_floor } functions to time. */
export async function prepareResource(target) {
  const { createResourceVerifier } = await import(pathToFileURL(join(ROOT, 'dist/resource/index.js')).href);
  const jose = await import(pathToFileURL(createRequire(join(ROOT, 'package.json')).resolve('jose')).href);
  const tokens = [];
  for (let i = 0; i < 8; i++) tokens.push(await clientCredentialsToken(target, RESOURCE));
  const verifier = createResourceVerifier({ issuer: target.issuer, resource: RESOURCE });
  for (const t of tokens) await verifier.verify(t); // discovery + JWKS, then cached
  const jwks = jose.createLocalJWKSet(await (await fetch(target.meta.jwks_uri)).json());
  const options = {
    issuer: target.issuer,
    audience: [RESOURCE, RESOURCE.replace(/\/$/, '')],
    typ: 'at+jwt',
    algorithms: ['ES256', 'RS256', 'EdDSA'],
    requiredClaims: ['exp', 'iat', 'sub', 'client_id', 'jti'],
    clockTolerance: 0,
  };
  for (const t of tokens) await jose.jwtVerify(t, jwks, options);
  // RFC 7662 mode: every verify() asks the server's introspection endpoint (no cache: cacheTtlSeconds 0, the
  // default), so a revoked token is refused at once. The bench client is allowed to introspect.
  const introspecting = createResourceVerifier({
    issuer: target.issuer,
    resource: RESOURCE,
    mode: 'introspection',
    introspection: {
      clientId: target.identity.client.client_id,
      clientSecret: target.identity.client.client_secret,
    },
  });
  for (const t of tokens) await introspecting.verify(t);
  let i = 0;
  const next = () => tokens[i++ & 7];
  return {
    resource_verifier: () => verifier.verify(next()),
    jose_floor: () => jose.jwtVerify(next(), jwks, options),
    resource_introspection: () => introspecting.verify(next()),
  };
}

/** Times `fn` with `concurrency` callers in flight, like the HTTP scenarios. */
export function runInProcess(fn, s) {
  const vus = Array.from({ length: s.concurrency }, () => ({}));
  return runLoop({ vus, iterate: fn, durationMs: s.durationMs, warmupMs: s.warmupMs });
}
