/**
 * The floor of the client_credentials row: a bare Fastify route doing only the work that request cannot avoid, the
 * way Gatehouse does it, so "% of floor" is a ratio measured in the same run. `POST /token`:
 * - the form body parsed as Gatehouse parses it (src/http/app.ts: a string body, URLSearchParams, every value kept);
 * - client_secret_basic: the Authorization header decoded and the secret checked as Gatehouse checks a long secret
 *   (src/core/client-auth.ts verifyClientSecret: HMAC-SHA256 with a pepper, compared with timingSafeEqual);
 * - the grant type, scope and resource checked against the bench client;
 * - one ES256 JWT with the claims of Gatehouse's client_credentials access token (src/core/tokens.ts accessToken:
 *   header alg, kid, typ at+jwt; iss, sub, aud, client_id, iat, exp, jti, scope), signed with node:crypto's callback
 *   `sign` (the libuv threadpool), as Gatehouse signs;
 * - the same JSON answer and cache headers.
 * No store, no logging, no audit, no hooks. Fastify comes from the root node_modules (Gatehouse's own version).
 *
 * Run as its own process: `node bench/servers/floor.mjs` with PORT, ISSUER and BENCH_CONFIG (the bench identity).
 */
import { createHmac, generateKeyPairSync, randomBytes, sign, timingSafeEqual } from 'node:crypto';
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

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const kid = randomBytes(16).toString('base64url');

function signJws(header, payload) {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return new Promise((resolve, reject) => {
    sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }, (err, sig) =>
      err ? reject(err) : resolve(`${input}.${sig.toString('base64url')}`),
    );
  });
}

const oauthError = (reply, status, error, description) =>
  reply.code(status).header('cache-control', 'no-store').send({ error, error_description: description });

const app = Fastify({ logger: false });
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
  const out = Object.create(null);
  for (const [k, v] of new URLSearchParams(body)) (out[k] ??= []).push(v);
  done(null, out);
});
app.get('/health', async () => ({ status: 'ok' }));
app.post('/token', async (request, reply) => {
  const auth = request.headers.authorization;
  if (!auth?.startsWith('Basic ')) return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
  const decoded = Buffer.from(auth.slice(6), 'base64').toString();
  const colon = decoded.indexOf(':');
  const id = decodeURIComponent(decoded.slice(0, colon));
  const secret = decodeURIComponent(decoded.slice(colon + 1));
  if (id !== client.client_id || !safeEqual(`hmac:${keyedHash(secret)}`, storedSecret))
    return oauthError(reply, 401, 'invalid_client', 'client authentication failed');
  const params = request.body ?? {};
  if (params.grant_type?.[0] !== 'client_credentials')
    return oauthError(reply, 400, 'unsupported_grant_type', 'grant_type');
  const scope = (params.scope?.[0] ?? '').split(' ').filter(Boolean);
  if (scope.some((s) => !allowedScopes.has(s))) return oauthError(reply, 400, 'invalid_scope', 'scope');
  const aud = params.resource?.[0] ?? resource;
  if (aud !== resource) return oauthError(reply, 400, 'invalid_target', 'resource');
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
  return reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .send({ access_token: token, token_type: 'Bearer', expires_in: TTL, scope: payload.scope });
});

await app.listen({ port, host: '127.0.0.1' });
const stop = () => app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
