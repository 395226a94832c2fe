/**
 * The floor: bare Fastify routes doing only the work a request cannot avoid, the way Gatehouse does it, so
 * "Gatehouse ÷ floor" is a ratio measured in the same run. Every route parses the form body as Gatehouse parses it
 * (src/http/app.ts: a string body, URLSearchParams, every value kept) and authenticates the client with
 * client_secret_basic, the secret checked as Gatehouse checks a long secret (src/core/client-auth.ts
 * verifyClientSecret: HMAC-SHA256 with a pepper, compared with timingSafeEqual). Then:
 * - `POST /token` (client_credentials): the grant type, scope and resource checked against the bench client; one
 *   ES256 JWT with the claims of Gatehouse's client_credentials access token (src/core/tokens.ts accessToken: header
 *   alg, kid, typ at+jwt; iss, sub, aud, client_id, iat, exp, jti, scope), signed with node:crypto's callback
 *   `sign` (the libuv threadpool), as Gatehouse signs (src/core/jws.ts); the same JSON answer and cache headers.
 * - `POST /introspect` (RFC 7662, an access token never seen before): the caller checked against the allowed
 *   introspecting clients; the compact JWS decoded and its header checked as src/core/jws.ts and access-token.ts do
 *   (three base64url parts, JSON header with typ at+jwt, no crit, the kid of our key and its alg); the ES256
 *   signature checked with node:crypto's callback `verify` (threadpool); the claims checked (iss, exp, nbf, iat,
 *   required claims and their types); the answer Gatehouse gives (`active`, token_type, client_id, sub, aud, iss,
 *   exp, iat, jti, scope). No revocation lookup (no store) and no verified-token cache.
 * - `POST /revoke` (RFC 7009): a `token` parameter present, 200 with an empty body: what any server must do before
 *   it touches a store.
 * - `POST /http-only/token` and `POST /http-only/introspect`: the same parsing, client authentication and checks,
 *   then a constant answer (a token signed once at start; a constant `active: true` document): the ceiling of HTTP
 *   and client authentication alone, without the signature.
 * No store, no logging, no audit, no hooks. Fastify comes from the root node_modules (Gatehouse's own version).
 *
 * Run as its own process: `node bench/servers/floor.mjs` with PORT, ISSUER and BENCH_CONFIG (the bench identity).
 */
import { createHmac, generateKeyPairSync, randomBytes, sign, timingSafeEqual, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER;
const { client, resource } = JSON.parse(readFileSync(process.env.BENCH_CONFIG, 'utf8'));
const TTL = 3600;

const pepper = randomBytes(32);
const keyedHash = (value) => createHmac('sha256', pepper).update(value).digest('base64url');
const storedSecret = `hmac:${keyedHash(client.client_secret)}`;
const allowedScopes = new Set(client.scope.split(' '));

function safeEqual(a, b) {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const kid = randomBytes(16).toString('base64url');
// Clients allowed to introspect (Gatehouse: `introspection.allowedClients`; the bench config names the bench client).
const introspectors = new Set([client.client_id]);
const IAT_FUTURE_SKEW_SECONDS = 60;

function signJws(header, payload) {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return new Promise((resolve, reject) => {
    sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }, (err, sig) =>
      err ? reject(err) : resolve(`${input}.${sig.toString('base64url')}`),
    );
  });
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The claims of `token` when it is one of this floor's access tokens, signature and claims checked; else undefined. */
async function verifyAccessToken(token) {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return undefined;
  const headerB64 = token.slice(0, first);
  const payloadB64 = token.slice(first + 1, second);
  const signatureB64 = token.slice(second + 1);
  if (!B64URL.test(headerB64) || !B64URL.test(payloadB64) || !B64URL.test(signatureB64)) return undefined;
  let header;
  let p;
  try {
    header = JSON.parse(Buffer.from(headerB64, 'base64url').toString('utf8'));
    p = JSON.parse(Buffer.from(payloadB64, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(header) || header.typ !== 'at+jwt' || header.crit !== undefined || header.kid !== kid) return undefined;
  if (header.alg !== 'ES256' || !isObject(p)) return undefined;
  const signature = Buffer.from(signatureB64, 'base64url');
  if (signature.length !== 64) return undefined;
  const valid = await new Promise((resolve) =>
    verify(
      'sha256',
      Buffer.from(token.slice(0, second)),
      { key: publicKey, dsaEncoding: 'ieee-p1363' },
      signature,
      (err, ok) => resolve(err === null && ok),
    ),
  );
  if (!valid) return undefined;
  const now = Date.now() / 1000;
  if (p.iss !== issuer || typeof p.exp !== 'number' || !(p.exp > now)) return undefined;
  if (p.nbf !== undefined && (typeof p.nbf !== 'number' || p.nbf > now)) return undefined;
  if (typeof p.iat !== 'number' || p.iat > now + IAT_FUTURE_SKEW_SECONDS) return undefined;
  const wellFormed =
    typeof p.sub === 'string' &&
    typeof p.client_id === 'string' &&
    typeof p.jti === 'string' &&
    (p.scope === undefined || typeof p.scope === 'string') &&
    (p.aud === undefined ||
      typeof p.aud === 'string' ||
      (Array.isArray(p.aud) && p.aud.every((a) => typeof a === 'string')));
  return wellFormed ? p : undefined;
}

const oauthError = (reply, status, error, description) =>
  reply.code(status).header('cache-control', 'no-store').send({ error, error_description: description });
const json = (reply, body) =>
  reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .type('application/json')
    .send(typeof body === 'string' ? body : JSON.stringify(body));

/** client_secret_basic: the client id when the Authorization header carries the bench client's secret. */
function authenticate(request) {
  const auth = request.headers.authorization;
  if (!auth?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(auth.slice(6), 'base64').toString();
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const id = decodeURIComponent(decoded.slice(0, colon));
  const secret = decodeURIComponent(decoded.slice(colon + 1));
  return id === client.client_id && safeEqual(`hmac:${keyedHash(secret)}`, storedSecret) ? id : undefined;
}

/** A client_credentials request's checks; its claims (without iat, exp, jti) or an error already sent. */
function clientCredentials(request, reply) {
  if (!authenticate(request)) return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
  const params = request.body ?? {};
  if (params.grant_type?.[0] !== 'client_credentials')
    return oauthError(reply, 400, 'unsupported_grant_type', 'grant_type');
  const scope = (params.scope?.[0] ?? '').split(' ').filter(Boolean);
  if (scope.some((s) => !allowedScopes.has(s))) return oauthError(reply, 400, 'invalid_scope', 'scope');
  const aud = params.resource?.[0] ?? resource;
  if (aud !== resource) return oauthError(reply, 400, 'invalid_target', 'resource');
  return { aud, scope };
}

async function mint({ aud, scope }) {
  const iat = Math.floor(Date.now() / 1000);
  const payload = {
    iss: issuer,
    sub: client.client_id,
    aud,
    client_id: client.client_id,
    iat,
    exp: iat + TTL,
    jti: randomBytes(16).toString('base64url'),
  };
  if (scope.length > 0) payload.scope = scope.join(' ');
  const token = await signJws({ alg: 'ES256', kid, typ: 'at+jwt' }, payload);
  return { access_token: token, token_type: 'Bearer', expires_in: TTL, scope: payload.scope };
}

/** Introspection's answer for verified claims, the members Gatehouse sends (src/endpoints/introspect.ts). */
function introspection(claims) {
  const out = {
    active: true,
    token_type: 'Bearer',
    client_id: claims.client_id,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
  };
  if (claims.scope) out.scope = claims.scope;
  return out;
}

// The HTTP-only routes' constant answers: one token signed at start (its claims as any other), and its introspection.
const constantToken = await mint({ aud: resource, scope: ['bench:read'] });
const [, constantPayload] = constantToken.access_token.split('.');
const constantIntrospection = JSON.stringify(
  introspection(JSON.parse(Buffer.from(constantPayload, 'base64url').toString('utf8'))),
);

const app = Fastify({ logger: false });
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
  const out = Object.create(null);
  for (const [k, v] of new URLSearchParams(body)) (out[k] ??= []).push(v);
  done(null, out);
});
app.get('/health', async () => ({ status: 'ok' }));
app.post('/token', async (request, reply) => {
  const checked = clientCredentials(request, reply);
  if (checked === reply) return reply;
  return json(reply, await mint(checked));
});
app.post('/http-only/token', async (request, reply) => {
  const checked = clientCredentials(request, reply);
  if (checked === reply) return reply;
  return json(reply, constantToken);
});
app.post('/introspect', async (request, reply) => {
  const id = authenticate(request);
  if (!id) return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
  const token = request.body?.token?.[0];
  if (!token) return oauthError(reply, 400, 'invalid_request', 'token is required');
  const claims = token.includes('.') ? await verifyAccessToken(token) : undefined;
  if (!claims || !introspectors.has(id)) return json(reply, '{"active":false}');
  return json(reply, introspection(claims));
});
app.post('/http-only/introspect', async (request, reply) => {
  if (!authenticate(request)) return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
  if (!request.body?.token?.[0]) return oauthError(reply, 400, 'invalid_request', 'token is required');
  return json(reply, constantIntrospection);
});
app.post('/revoke', async (request, reply) => {
  if (!authenticate(request)) return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
  if (!request.body?.token?.[0]) return oauthError(reply, 400, 'invalid_request', 'token is required');
  return reply.code(200).header('cache-control', 'no-store').send();
});

await app.listen({ port, host: '127.0.0.1' });
const stop = () => app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
