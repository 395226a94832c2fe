/** A real, minimal authorization server for the resource-server tests: RFC 8414 metadata, JWKS, RFC 7662 introspection. */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export interface TestIssuerOptions {
  /** Issuer path, e.g. '/tenant1'. */
  path?: string;
  /** Serve this `issuer` value in metadata instead of the real one. */
  metadataIssuer?: string;
  /** Only serve OpenID Connect discovery (no RFC 8414 document). */
  oidcOnly?: boolean;
  /** Answer the first N metadata requests with HTTP 500. */
  failMetadata?: number;
}

export const INTROSPECTION_CLIENT = { clientId: 'rs:api', clientSecret: 's3cr3t/with+chars' };

export interface TestIssuer {
  issuer: string;
  origin: string;
  keys: SigningKey[];
  /** Requests seen, by path. */
  hits: Map<string, number>;
  /** token → introspection response; unknown tokens are `{ active: false }`. */
  introspection: Map<string, Record<string, unknown>>;
  /** Authorization headers the introspection endpoint received. */
  introspectionAuth: string[];
  jwksFetches(): number;
  addKey(alg?: string): Promise<SigningKey>;
  sign(claims?: Record<string, unknown>, header?: Record<string, unknown>, key?: SigningKey): Promise<string>;
  close(): Promise<void>;
}

export async function makeKey(alg = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** An issuer's routes, served by a {@link startIssuerHost} server at `origin()`. */
async function issuerRoutes(
  origin: () => string,
  options: TestIssuerOptions,
): Promise<{
  issuer: Omit<TestIssuer, 'close'>;
  handle(req: IncomingMessage, res: ServerResponse, url: URL): boolean;
}> {
  const path = options.path ?? '';
  const keys: SigningKey[] = [await makeKey('ES256')];
  const hits = new Map<string, number>();
  const introspection = new Map<string, Record<string, unknown>>();
  const introspectionAuth: string[] = [];
  let failures = options.failMetadata ?? 0;
  const issuerOf = () => `${origin()}${path}`;

  const metadata = () => ({
    issuer: options.metadataIssuer ?? issuerOf(),
    authorization_endpoint: `${issuerOf()}/authorize`,
    token_endpoint: `${issuerOf()}/token`,
    jwks_uri: `${issuerOf()}/jwks`,
    introspection_endpoint: `${issuerOf()}/introspect`,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
    scopes_supported: ['mcp', 'read', 'write'],
  });

  const handle = (req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
    const oauthPath = `/.well-known/oauth-authorization-server${path}`;
    const oidcPath = path === '' ? '/.well-known/openid-configuration' : `${path}/.well-known/openid-configuration`;
    const mine =
      url.pathname === oauthPath ||
      url.pathname === oidcPath ||
      url.pathname === `${path}/jwks` ||
      url.pathname === `${path}/introspect`;
    if (!mine) return false;
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    if ((url.pathname === oauthPath && !options.oidcOnly) || url.pathname === oidcPath) {
      if (failures > 0) {
        failures--;
        json(res, 500, { error: 'server_error' });
      } else {
        json(res, 200, metadata());
      }
      return true;
    }
    if (url.pathname === `${path}/jwks`) {
      json(res, 200, { keys: keys.map((k) => k.jwk) });
      return true;
    }
    if (url.pathname === `${path}/introspect` && req.method === 'POST') {
      void readBody(req).then((body) => {
        const auth = req.headers.authorization ?? '';
        introspectionAuth.push(auth);
        const expected = `Basic ${Buffer.from(
          `${encodeURIComponent(INTROSPECTION_CLIENT.clientId)}:${encodeURIComponent(INTROSPECTION_CLIENT.clientSecret)}`,
        ).toString('base64')}`;
        if (auth !== expected) return json(res, 401, { error: 'invalid_client' });
        const params = new URLSearchParams(body);
        const token = params.get('token') ?? '';
        json(res, 200, introspection.get(token) ?? { active: false });
      });
      return true;
    }
    return false;
  };

  const issuer: Omit<TestIssuer, 'close'> = {
    get issuer() {
      return issuerOf();
    },
    get origin() {
      return origin();
    },
    keys,
    hits,
    introspection,
    introspectionAuth,
    jwksFetches: () => hits.get(`${path}/jwks`) ?? 0,
    async addKey(alg = 'ES256') {
      const key = await makeKey(alg);
      keys.push(key);
      return key;
    },
    async sign(claims = {}, header = {}, key = keys[0]!) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: issuerOf(),
        sub: 'user-1',
        aud: 'https://mcp.example.com/mcp',
        client_id: 'client-1',
        scope: 'mcp read',
        jti: randomUUID(),
        iat: now,
        exp: now + 300,
        ...claims,
      };
      for (const name of Object.keys(payload)) if (payload[name] === undefined) delete payload[name];
      const protectedHeader: Record<string, unknown> = { alg: key.alg, typ: 'at+jwt', kid: key.kid, ...header };
      for (const name of Object.keys(protectedHeader))
        if (protectedHeader[name] === undefined) delete protectedHeader[name];
      return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
    },
  };
  return { issuer, handle };
}

/** Several issuers (tenants) on one origin, each under its own path with its own keys and metadata. */
export interface TestIssuerHost {
  origin: string;
  /** Issuers by path ('/a' → the issuer `${origin}/a`). */
  issuers: Record<string, TestIssuer>;
  /** Every request the server saw, by path (including 404s). */
  hits: Map<string, number>;
  /** Total requests seen. */
  requests(): number;
  close(): Promise<void>;
}

/** Starts one server for several issuers, e.g. paths ['/a', '/b'] (RFC 8414 path-inserted discovery for each). */
export async function startIssuerHost(issuers: readonly (string | TestIssuerOptions)[]): Promise<TestIssuerHost> {
  let origin = '';
  const hits = new Map<string, number>();
  const routes = await Promise.all(
    issuers.map((entry) => issuerRoutes(() => origin, typeof entry === 'string' ? { path: entry } : entry)),
  );
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    for (const route of routes) if (route.handle(req, res, url)) return;
    json(res, 404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    });
  const byPath: Record<string, TestIssuer> = {};
  issuers.forEach((entry, i) => {
    byPath[typeof entry === 'string' ? entry : (entry.path ?? '')] = Object.assign(routes[i]!.issuer, { close });
  });
  return {
    origin,
    issuers: byPath,
    hits,
    requests: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close,
  };
}

export async function startIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const host = await startIssuerHost([options]);
  return host.issuers[options.path ?? '']!;
}
