import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import {
  authorizationServerMetadataUrls,
  createResourceVerifier,
  ResourceAuthError,
} from '../../src/resource/index.js';
import type { ResourceVerifierOptions } from '../../src/resource/index.js';
import { INTROSPECTION_CLIENT, makeKey, startIssuer } from './issuer.js';
import type { TestIssuer, TestIssuerOptions } from './issuer.js';
import { startServer } from '../helpers/server.js';

const RESOURCE = 'https://mcp.example.com/mcp';
const issuers: TestIssuer[] = [];

async function issuerFor(options?: TestIssuerOptions): Promise<TestIssuer> {
  const issuer = await startIssuer(options);
  issuers.push(issuer);
  return issuer;
}

afterEach(async () => {
  await Promise.all(issuers.splice(0).map((i) => i.close()));
});

function verifierFor(issuer: TestIssuer, options: Partial<ResourceVerifierOptions> = {}) {
  return createResourceVerifier({ issuer: issuer.issuer, resource: RESOURCE, ...options });
}

async function rejection(promise: Promise<unknown>): Promise<ResourceAuthError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ResourceAuthError);
  return error as ResourceAuthError;
}

describe('createResourceVerifier: JWT access tokens (RFC 9068)', () => {
  it('verifies a valid token and returns typed AuthInfo', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as);
    const token = await as.sign({ sub: 'alice', client_id: 'cli', scope: 'mcp read write', jti: 'j-1' });
    const info = await verifier.verify(token);
    expect(info).toMatchObject({
      token,
      subject: 'alice',
      clientId: 'cli',
      scopes: ['mcp', 'read', 'write'],
      audience: [RESOURCE],
      jti: 'j-1',
    });
    expect(info.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect(info.claims.iss).toBe(as.issuer);
    expect('tenant' in info).toBe(false);
    expect(verifier).toMatchObject({ issuer: as.issuer, issuers: [as.issuer], authorizationServers: [as.issuer] });
    expect(verifier.issuerTemplate).toBeUndefined();
    expect(verifier.resourceMetadataUrl).toBe('https://mcp.example.com/.well-known/oauth-protected-resource/mcp');
  });

  it('accepts RS256 and EdDSA keys and typ application/at+jwt', async () => {
    const as = await issuerFor();
    const rsa = await as.addKey('RS256');
    const ed = await as.addKey('EdDSA');
    const verifier = verifierFor(as);
    await expect(verifier.verify(await as.sign({}, {}, rsa))).resolves.toMatchObject({ subject: 'user-1' });
    await expect(verifier.verify(await as.sign({}, {}, ed))).resolves.toMatchObject({ subject: 'user-1' });
    await expect(verifier.verify(await as.sign({}, { typ: 'application/at+jwt' }))).resolves.toBeDefined();
  });

  it('discovers once and shares the JWKS across calls', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as);
    const tokens = await Promise.all(Array.from({ length: 5 }, () => as.sign()));
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    for (const t of tokens) await verifier.verify(t);
    expect(as.hits.get('/.well-known/oauth-authorization-server')).toBe(1);
    expect(as.jwksFetches()).toBe(1);
  });

  it('refuses a token for another audience (RFC 8707)', async () => {
    const as = await issuerFor();
    const e = await rejection(verifierFor(as).verify(await as.sign({ aud: 'https://other.example.com/mcp' })));
    expect(e).toMatchObject({ code: 'invalid_token', status: 401 });
    expect(e.description).toMatch(/not issued for this resource/);
  });

  it('treats a trailing-slash difference in the resource as the same resource', async () => {
    const as = await issuerFor();
    await expect(verifierFor(as).verify(await as.sign({ aud: `${RESOURCE}/` }))).resolves.toBeDefined();
    const slashed = verifierFor(as, { resource: `${RESOURCE}/` });
    await expect(slashed.verify(await as.sign({ aud: RESOURCE }))).resolves.toBeDefined();
    await expect(slashed.verify(await as.sign({ aud: ['https://a.example', RESOURCE] }))).resolves.toMatchObject({
      audience: ['https://a.example', RESOURCE],
    });
    // Only a trailing slash: a different path is a different resource.
    await rejection(verifierFor(as).verify(await as.sign({ aud: `${RESOURCE}/x` })));
  });

  it('refuses an expired token, honouring clockToleranceSeconds', async () => {
    const as = await issuerFor();
    const now = Math.floor(Date.now() / 1000);
    const token = await as.sign({ iat: now - 100, exp: now - 10 });
    const e = await rejection(verifierFor(as).verify(token));
    expect(e).toMatchObject({ code: 'invalid_token', description: 'the access token has expired' });
    await expect(verifierFor(as, { clockToleranceSeconds: 60 }).verify(token)).resolves.toBeDefined();
    await rejection(verifierFor(as).verify(await as.sign({ nbf: now + 120 })));
  });

  it('refuses a token whose iat lies beyond the clock skew in the future, accepting small skew', async () => {
    const as = await issuerFor();
    const now = Math.floor(Date.now() / 1000);
    const future = await as.sign({ iat: now + 3600, exp: now + 7200 });
    const e = await rejection(verifierFor(as).verify(future));
    expect(e).toMatchObject({ code: 'invalid_token', description: 'the access token iat claim is in the future' });
    // A resource server whose clock lags the issuer's by a few seconds still accepts fresh tokens.
    await expect(verifierFor(as).verify(await as.sign({ iat: now + 5, exp: now + 300 }))).resolves.toBeDefined();
    // A larger clockToleranceSeconds widens the allowance.
    await expect(verifierFor(as, { clockToleranceSeconds: 7200 }).verify(future)).resolves.toBeDefined();
  });

  it('refuses a token whose typ is not at+jwt (RFC 9068 §4)', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as);
    for (const typ of ['JWT', 'application/jwt', undefined]) {
      const e = await rejection(verifier.verify(await as.sign({}, { typ })));
      expect(e.code).toBe('invalid_token');
      expect(e.description).toMatch(/typ/);
    }
  });

  it('refuses a token from another issuer', async () => {
    const as = await issuerFor();
    const e = await rejection(verifierFor(as).verify(await as.sign({ iss: 'https://evil.example.com' })));
    expect(e.description).toMatch(/untrusted issuer/);
  });

  it('refuses missing required claims, bad signatures, HS256 and garbage', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as);
    for (const claim of ['client_id', 'jti', 'sub', 'exp', 'iat']) {
      const e = await rejection(verifier.verify(await as.sign({ [claim]: undefined })));
      expect(e.description).toContain(`"${claim}"`);
    }
    const token = await as.sign();
    const [h, p] = token.split('.');
    const forged = `${h}.${p}.${(await as.sign({ sub: 'x' })).split('.')[2]}`;
    expect((await rejection(verifier.verify(forged))).description).toMatch(/signature/);
    const hs = await new SignJWT({ iss: as.issuer, aud: RESOURCE })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(new TextEncoder().encode('x'.repeat(32)));
    expect((await rejection(verifier.verify(hs))).description).toMatch(/algorithm/);
    expect((await rejection(verifier.verify('not-a-jwt'))).code).toBe('invalid_token');
    expect((await rejection(verifier.verify(''))).code).toBe('invalid_request');
  });

  it('tries each candidate key for a token without kid', async () => {
    const as = await issuerFor();
    const second = await as.addKey('ES256');
    const verifier = verifierFor(as);
    await expect(verifier.verify(await as.sign({ sub: 'k1' }, { kid: undefined }))).resolves.toMatchObject({
      subject: 'k1',
    });
    await expect(verifier.verify(await as.sign({ sub: 'k2' }, { kid: undefined }, second))).resolves.toMatchObject({
      subject: 'k2',
    });
    const stranger = await makeKey('ES256');
    expect((await rejection(verifier.verify(await as.sign({}, { kid: undefined }, stranger)))).description).toMatch(
      /signature/,
    );
    // The typ/aud checks still apply on this path.
    expect(
      (await rejection(verifier.verify(await as.sign({ aud: 'https://x' }, { kid: undefined }, second)))).description,
    ).toMatch(/not issued for this resource/);
  });

  it('refetches the JWKS once for an unknown kid (key rotation)', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as, { jwksCooldownSeconds: 0.1 });
    await verifier.verify(await as.sign());
    expect(as.jwksFetches()).toBe(1);
    const rotated = await as.addKey('ES256');
    await new Promise((r) => setTimeout(r, 150));
    await expect(verifier.verify(await as.sign({}, {}, rotated))).resolves.toBeDefined();
    expect(as.jwksFetches()).toBe(2);
    await verifier.verify(await as.sign({}, {}, rotated));
    expect(as.jwksFetches()).toBe(2);
  });

  it('stops accepting a key removed from the JWKS once the cache expires (revocation)', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as, { jwksCacheMaxAgeSeconds: 0.1, jwksCooldownSeconds: 0.1 });
    const old = as.keys[0]!;
    const token = await as.sign();
    await verifier.verify(token);
    await verifier.verify(token); // served from the key memo
    expect(as.jwksFetches()).toBe(1);
    const next = await as.addKey('ES256');
    as.keys.splice(as.keys.indexOf(old), 1);
    await new Promise((r) => setTimeout(r, 150));
    expect((await rejection(verifier.verify(token))).description).toMatch(/no signing key/);
    await expect(verifier.verify(await as.sign({}, {}, next))).resolves.toBeDefined();
    expect(as.jwksFetches()).toBe(2);
  });

  it('remembers a verified token by its whole string: a copy with a changed signature or payload is still refused', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as);
    const token = await as.sign();
    const first = await verifier.verify(token);
    // Served from the verified-token cache: the same answer, a fresh AuthInfo.
    const again = await verifier.verify(token);
    expect(again).toEqual(first);
    const [h, p, sig] = token.split('.') as [string, string, string];
    const bytes = Buffer.from(sig, 'base64url');
    bytes[5] = bytes[5]! ^ 0x01;
    expect((await rejection(verifier.verify(`${h}.${p}.${bytes.toString('base64url')}`))).code).toBe('invalid_token');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const edited = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url');
    expect((await rejection(verifier.verify(`${h}.${edited}.${sig}`))).code).toBe('invalid_token');
    // Scopes are checked on every call, cached or not.
    expect((await rejection(verifier.verify(token, { requiredScopes: ['not-granted'] }))).code).toBe(
      'insufficient_scope',
    );
  });

  it('does not let a flood of unknown kids cause a fetch storm', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as, { jwksCooldownSeconds: 0.2 });
    await verifier.verify(await as.sign());
    const stranger = await makeKey('ES256'); // never published
    const forged = await Promise.all(
      Array.from({ length: 50 }, (_, i) => as.sign({}, { kid: `${stranger.kid}-${i}` }, stranger)),
    );
    // Inside the cooldown: no refetch at all.
    for (const e of await Promise.all(forged.map((t) => rejection(verifier.verify(t))))) {
      expect(e.code).toBe('invalid_token');
    }
    expect(as.jwksFetches()).toBe(1);
    // After the cooldown: a concurrent burst shares a single refetch, and the cooldown restarts.
    await new Promise((r) => setTimeout(r, 250));
    await Promise.all(forged.map((t) => rejection(verifier.verify(t))));
    for (const t of forged) await rejection(verifier.verify(t));
    expect(as.jwksFetches()).toBe(2);
  });

  it('raises insufficient_scope (403) naming the required scopes', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as, { requiredScopes: ['mcp'] });
    const e = await rejection(verifier.verify(await as.sign({ scope: 'read' })));
    expect(e).toMatchObject({ code: 'insufficient_scope', status: 403, requiredScopes: ['mcp'] });
    const token = await as.sign({ scope: 'mcp read' });
    await expect(verifier.verify(token)).resolves.toBeDefined();
    const step = await rejection(verifier.verify(token, { requiredScopes: ['write'] }));
    expect(step.requiredScopes).toEqual(['mcp', 'write']);
    await expect(
      verifier.verify(await as.sign({ scope: 'mcp  write ' }), { requiredScopes: ['write'] }),
    ).resolves.toMatchObject({
      scopes: ['mcp', 'write'],
    });
    expect((await rejection(verifier.verify(await as.sign({ scope: undefined })))).code).toBe('insufficient_scope');
  });
});

describe('authorization-server discovery', () => {
  it('refuses metadata whose issuer differs from the configured one (RFC 8414 §3.3)', async () => {
    const as = await issuerFor({ metadataIssuer: 'https://evil.example.com' });
    const e = await rejection(verifierFor(as).verify(await as.sign()));
    expect(e).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
    expect(e.description).toBe(
      `the metadata issuer "https://evil.example.com" differs from the configured issuer "${as.issuer}"`,
    );
    expect(as.jwksFetches()).toBe(0);
  });

  it('a trailing-slash difference from a real Gatehouse is named as such, and the exact spelling works', async () => {
    const server = await startServer({
      clients: [
        { client_id: 'svc', client_secret: 'svc-secret-that-is-long-enough', grant_types: ['client_credentials'] },
      ],
    });
    try {
      const res = await fetch(`${server.origin}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${btoa('svc:svc-secret-that-is-long-enough')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE }),
      });
      expect(res.status).toBe(200);
      const token = ((await res.json()) as { access_token: string }).access_token;
      const slashed = createResourceVerifier({ issuer: `${server.issuer}/`, resource: RESOURCE });
      const e = await rejection(slashed.verify(token));
      expect(e).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
      expect(e.description).toBe(
        `the metadata issuer "${server.issuer}" differs from the configured issuer "${server.issuer}/" ` +
          "(only by a trailing slash: RFC 8414 §3.3 compares them exactly; configure the metadata's spelling)",
      );
      const exact = createResourceVerifier({ issuer: server.issuer, resource: RESOURCE });
      await expect(exact.verify(token)).resolves.toMatchObject({ clientId: 'svc', audience: [RESOURCE] });
    } finally {
      await server.close();
    }
  });

  it('uses the path-inserted metadata URL for an issuer with a path', async () => {
    const as = await issuerFor({ path: '/tenant1' });
    expect(as.issuer).toMatch(/\/tenant1$/);
    await verifierFor(as).verify(await as.sign());
    expect(as.hits.get('/.well-known/oauth-authorization-server/tenant1')).toBe(1);
    expect(as.hits.get('/tenant1/jwks')).toBe(1);
  });

  it('falls back to OpenID Connect discovery', async () => {
    const as = await issuerFor({ oidcOnly: true });
    await verifierFor(as).verify(await as.sign());
    expect(as.hits.get('/.well-known/oauth-authorization-server')).toBe(1);
    expect(as.hits.get('/.well-known/openid-configuration')).toBe(1);
    const tenant = await issuerFor({ oidcOnly: true, path: '/t2' });
    await verifierFor(tenant).verify(await tenant.sign());
    expect(tenant.hits.get('/t2/.well-known/openid-configuration')).toBe(1);
  });

  it('retries a failed discovery on the next call', async () => {
    const as = await issuerFor({ failMetadata: 1 });
    const verifier = verifierFor(as);
    const token = await as.sign();
    expect((await rejection(verifier.verify(token))).code).toBe('temporarily_unavailable');
    await expect(verifier.verify(token)).resolves.toBeDefined();
    await verifier.verify(token);
    expect(as.hits.get('/.well-known/oauth-authorization-server')).toBe(2);
  });

  it('lists the well-known URLs in MCP order', () => {
    expect(authorizationServerMetadataUrls('https://as.example.com')).toEqual([
      'https://as.example.com/.well-known/oauth-authorization-server',
      'https://as.example.com/.well-known/openid-configuration',
    ]);
    expect(authorizationServerMetadataUrls('https://as.example.com/tenant1')).toEqual([
      'https://as.example.com/.well-known/oauth-authorization-server/tenant1',
      'https://as.example.com/.well-known/openid-configuration/tenant1',
      'https://as.example.com/tenant1/.well-known/openid-configuration',
    ]);
  });

  it('validates its configuration eagerly', () => {
    expect(() => createResourceVerifier({ issuer: 'nope', resource: RESOURCE })).toThrow(TypeError);
    expect(() => createResourceVerifier({ issuer: 'https://as.example.com', resource: `${RESOURCE}#x` })).toThrow(
      TypeError,
    );
    expect(() =>
      createResourceVerifier({ issuer: 'https://as.example.com', resource: RESOURCE, mode: 'introspection' }),
    ).toThrow(/introspection/);
  });
});

describe('introspection mode (RFC 7662)', () => {
  function introspector(as: TestIssuer, cacheTtlSeconds?: number) {
    return verifierFor(as, { mode: 'introspection', introspection: { ...INTROSPECTION_CLIENT, cacheTtlSeconds } });
  }
  const active = (as: TestIssuer, extra: Record<string, unknown> = {}) => ({
    active: true,
    iss: as.issuer,
    sub: 'bob',
    client_id: 'cli',
    scope: 'mcp read',
    aud: RESOURCE,
    exp: Math.floor(Date.now() / 1000) + 300,
    jti: 'opaque-1',
    token_type: 'Bearer',
    ...extra,
  });

  it('accepts an active token, authenticating with client_secret_basic', async () => {
    const as = await issuerFor();
    as.introspection.set('opaque-token', active(as));
    const info = await introspector(as).verify('opaque-token');
    expect(info).toMatchObject({
      subject: 'bob',
      clientId: 'cli',
      scopes: ['mcp', 'read'],
      audience: [RESOURCE],
      jti: 'opaque-1',
    });
    expect(as.introspectionAuth).toHaveLength(1);
    expect(as.introspectionAuth[0]).toMatch(/^Basic /);
  });

  it('refuses an inactive token', async () => {
    const as = await issuerFor();
    const e = await rejection(introspector(as).verify('unknown-token'));
    expect(e).toMatchObject({ code: 'invalid_token', status: 401, description: 'the access token is not active' });
  });

  it('checks audience, issuer, expiry and scope of the introspection response', async () => {
    const as = await issuerFor();
    const now = Math.floor(Date.now() / 1000);
    as.introspection.set('wrong-aud', active(as, { aud: 'https://other.example.com' }));
    as.introspection.set('no-aud', active(as, { aud: undefined }));
    as.introspection.set('slash-aud', active(as, { aud: [`${RESOURCE}/`] }));
    as.introspection.set('wrong-iss', active(as, { iss: 'https://evil.example.com' }));
    as.introspection.set('expired', active(as, { exp: now - 5 }));
    as.introspection.set('refresh', active(as, { token_type: 'refresh_token' }));
    as.introspection.set('read-only', active(as, { scope: 'read' }));
    const verifier = verifierFor(as, {
      mode: 'introspection',
      introspection: INTROSPECTION_CLIENT,
      requiredScopes: ['mcp'],
    });
    for (const t of ['wrong-aud', 'no-aud', 'wrong-iss', 'expired', 'refresh']) {
      expect((await rejection(verifier.verify(t))).code).toBe('invalid_token');
    }
    await expect(verifier.verify('slash-aud')).resolves.toBeDefined();
    expect(await rejection(verifier.verify('read-only'))).toMatchObject({
      code: 'insufficient_scope',
      requiredScopes: ['mcp'],
    });
  });

  it('caches nothing by default, and active results for cacheTtlSeconds when asked', async () => {
    const as = await issuerFor();
    as.introspection.set('t', active(as));
    const plain = introspector(as);
    await plain.verify('t');
    await plain.verify('t');
    expect(as.introspectionAuth).toHaveLength(2);
    const cached = introspector(as, 60);
    await cached.verify('t');
    await cached.verify('t');
    expect(as.introspectionAuth).toHaveLength(3);
    // Inactive results are never cached.
    await rejection(cached.verify('gone'));
    await rejection(cached.verify('gone'));
    expect(as.introspectionAuth).toHaveLength(5);
    // Scope is checked on cache hits too.
    expect((await rejection(cached.verify('t', { requiredScopes: ['admin'] }))).code).toBe('insufficient_scope');
  });

  it('reports a refused introspection call as temporarily_unavailable, not as a bad token', async () => {
    const as = await issuerFor();
    const verifier = verifierFor(as, {
      mode: 'introspection',
      introspection: { clientId: 'rs:api', clientSecret: 'wrong' },
    });
    expect(await rejection(verifier.verify('t'))).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
  });
});
