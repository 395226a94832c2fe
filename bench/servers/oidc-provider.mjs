/**
 * oidc-provider configured like the Gatehouse under test, for the comparison rows: ES256 JWT access tokens for the
 * bench resource (resource indicators), client_credentials, introspection, revocation, PKCE required, always-rotating
 * refresh tokens, the built-in in-memory adapter, and a tiny headless interaction: a login form whose POST checks the
 * password with the same scrypt hash Gatehouse stores, and a consent form whose approval records a Grant.
 *
 * Run as its own process: `node bench/servers/oidc-provider.mjs` with PORT, ISSUER and BENCH_CONFIG (the same JSON
 * the Gatehouse config was generated from). Answers GET /health with 200 once listening.
 */
import { scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';
import { setStorage } from 'oidc-provider/lib/adapters/memory_adapter.js';
import QuickLRU from 'quick-lru';

// The built-in in-memory adapter keeps an LRU of 1,000 entries: the distinct-token rows introspect and revoke tens of
// thousands of never-seen tokens minted just before, which that LRU would have evicted (an evicted token answers
// `active: false`, a cheaper path). The same adapter, with room for 1,000,000 entries.
setStorage(new QuickLRU({ maxSize: 1_000_000 }));

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER;
const bench = JSON.parse(readFileSync(process.env.BENCH_CONFIG, 'utf8'));
const { client, user, resource, opaqueResource, scopes } = bench;

/** Same check as Gatehouse's core/password.ts verifyPassword (scrypt$log2N$r$p$salt$hash). */
function verifyPassword(password, encoded) {
  const [, log2N, r, p, salt, hash] = encoded.split('$');
  const expected = Buffer.from(hash, 'base64url');
  const N = 2 ** Number(log2N);
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFC'),
      Buffer.from(salt, 'base64url'),
      expected.length,
      { N, r: Number(r), p: Number(p), maxmem: 128 * N * Number(r) * 2 + 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(timingSafeEqual(key, expected))),
    );
  });
}

async function signingKey(alg) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `bench-${alg.toLowerCase()}` };
}

const resourceServers = {
  [resource]: {
    scope: scopes.join(' '),
    accessTokenFormat: 'jwt',
    accessTokenTTL: 3600,
    jwt: { sign: { alg: 'ES256' } },
  },
  // Only opaque access tokens can be introspected by oidc-provider (it refuses JWTs at /token/introspection).
  [opaqueResource]: { scope: scopes.join(' '), accessTokenFormat: 'opaque', accessTokenTTL: 3600 },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      grant_types: client.grant_types,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: client.scope,
    },
  ],
  jwks: { keys: [await signingKey('ES256'), await signingKey('RS256')] },
  cookies: { keys: [bench.cookieKey] },
  // The client's `scope` (its allow-list) may only name scopes listed here.
  scopes: ['openid', 'offline_access', ...scopes],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
    // RFC 9449, as Gatehouse: proofs single use (its in-memory replay store), no nonce, ES256 among the algorithms.
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        const info = resourceServers[indicator];
        if (!info) throw new errors.InvalidTarget();
        return info;
      },
    },
  },
  // Gatehouse always rotates and issues a refresh token to a client holding the grant; match it.
  rotateRefreshToken: () => true,
  issueRefreshToken: async (_ctx, c) => c.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    AuthorizationCode: 60,
    RefreshToken: 30 * 24 * 3600,
    Grant: 90 * 24 * 3600,
    Session: 24 * 3600,
    Interaction: 600,
    IdToken: 3600,
  },
  findAccount: async (_ctx, sub) => (sub === user.sub ? { accountId: sub, claims: async () => ({ sub }) } : undefined),
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});
provider.proxy = false;

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (res, status, html) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
};

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (data += chunk));
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

/** GET /interaction/:uid shows a login or consent form; the POSTs complete it through the interaction API. */
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, 'interaction mismatch');
  const { prompt, params, session } = details;
  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') {
      return page(
        res,
        200,
        `<!doctype html><form method="post" action="/interaction/${escapeHtml(uid)}/login"><input name="username"><input type="password" name="password"><button>Sign in</button></form>`,
      );
    }
    return page(
      res,
      200,
      `<!doctype html><p>${escapeHtml(params.client_id)} asks for ${escapeHtml(params.scope ?? '')}</p><form method="post" action="/interaction/${escapeHtml(uid)}/consent"><button name="decision" value="approve">Allow</button><button name="decision" value="deny">Deny</button></form>`,
    );
  }
  const form = await readBody(req);
  if (action === 'login') {
    const ok =
      form.get('username') === user.username && (await verifyPassword(form.get('password') ?? '', user.password_hash));
    if (!ok) return page(res, 401, 'Invalid username or password.');
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub } },
      { mergeWithLastSubmission: false },
    );
  }
  if (action === 'consent') {
    if (form.get('decision') !== 'approve') {
      return provider.interactionFinished(req, res, { error: 'access_denied' }, { mergeWithLastSubmission: false });
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, s] of Object.entries(missing.missingResourceScopes ?? {}))
      grant.addResourceScope(indicator, s.join(' '));
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return page(res, 404, 'not found');
}

const callback = provider.callback();
const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{"status":"ok"}');
  }
  const m = /^\/interaction\/([^/?]+)(?:\/(login|consent))?(?:\?.*)?$/.exec(req.url);
  if (m) {
    return interaction(req, res, m[1], m[2]).catch((err) => {
      if (!res.headersSent) page(res, 500, escapeHtml(err.message));
      else res.destroy();
    });
  }
  return callback(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
