/**
 * One verifier, several issuers: a list of trusted issuers, or a tenant issuer template. Each issuer is a real HTTP
 * issuer (several on one origin, under their own paths, with RFC 8414 path-inserted discovery), and every fetch the
 * verifier makes is counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createResourceVerifier, protectedResourceMetadata, ResourceAuthError } from '../../src/resource/index.js';
import type { FetchLike, ResourceVerifierOptions } from '../../src/resource/index.js';
import { parseIssuerTemplate, TENANT_PATTERN } from '../../src/resource/issuers.js';
import { INTROSPECTION_CLIENT, startIssuerHost } from './issuer.js';
import type { TestIssuerHost, TestIssuerOptions } from './issuer.js';

const RESOURCE = 'https://mcp.example.com/mcp';
const hosts: TestIssuerHost[] = [];

async function hostOf(...issuers: (string | TestIssuerOptions)[]): Promise<TestIssuerHost> {
  const host = await startIssuerHost(issuers);
  hosts.push(host);
  return host;
}

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

/** A fetch that records every URL the verifier asks for. */
function countingFetch(): { fetch: FetchLike; urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    fetch: (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<ResourceAuthError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ResourceAuthError);
  return error as ResourceAuthError;
}

const discoveryHits = (host: TestIssuerHost, path: string) =>
  host.hits.get(`/.well-known/oauth-authorization-server${path}`) ?? 0;

describe('createResourceVerifier({ issuers }): a list of trusted issuers', () => {
  it('accepts two issuers on one origin, each discovered at its path-inserted URL and checked with its own keys', async () => {
    const host = await hostOf('/a', '/b');
    const a = host.issuers['/a']!;
    const b = host.issuers['/b']!;
    expect(a.keys[0]!.kid).not.toBe(b.keys[0]!.kid);
    const verifier = createResourceVerifier({ issuers: [a.issuer, b.issuer], resource: RESOURCE });
    expect(verifier.issuer).toBeUndefined();
    expect(verifier.issuers).toEqual([a.issuer, b.issuer]);
    expect(verifier.authorizationServers).toEqual([a.issuer, b.issuer]);
    const fromA = await verifier.verify(await a.sign({ sub: 'alice' }));
    expect(fromA).toMatchObject({ subject: 'alice', claims: { iss: a.issuer } });
    expect('tenant' in fromA).toBe(false);
    // Concurrent first requests for one issuer share a single discovery.
    const tokens = await Promise.all(Array.from({ length: 5 }, () => b.sign({ sub: 'bob' })));
    for (const info of await Promise.all(tokens.map((t) => verifier.verify(t)))) {
      expect(info).toMatchObject({ subject: 'bob', claims: { iss: b.issuer } });
    }
    expect(discoveryHits(host, '/a')).toBe(1);
    expect(discoveryHits(host, '/b')).toBe(1);
    expect(host.hits.get('/a/jwks')).toBe(1);
    expect(host.hits.get('/b/jwks')).toBe(1);
    expect(await verifier.authorizationServerMetadata(b.issuer)).toMatchObject({
      issuer: b.issuer,
      jwks_uri: `${b.issuer}/jwks`,
    });
  });

  it("refuses a token signed by A's key whose iss names B, and never fetches A's keys for it", async () => {
    const host = await hostOf('/a', '/b');
    const a = host.issuers['/a']!;
    const b = host.issuers['/b']!;
    const verifier = createResourceVerifier({ issuers: [a.issuer, b.issuer], resource: RESOURCE });
    const cases: [string, RegExp][] = [
      [await a.sign({ iss: b.issuer }), /no signing key/],
      [await a.sign({ iss: b.issuer }, { kid: b.keys[0]!.kid }), /signature/],
      [await a.sign({ iss: b.issuer }, { kid: undefined }), /signature/],
    ];
    for (const [token, description] of cases) {
      const e = await rejection(verifier.verify(token));
      expect(e.code).toBe('invalid_token');
      expect(e.description).toMatch(description);
    }
    // B's keys were the only ones consulted.
    expect(discoveryHits(host, '/a')).toBe(0);
    expect(host.hits.get('/a/jwks')).toBeUndefined();
    expect(host.hits.get('/b/jwks')).toBeGreaterThanOrEqual(1);
    // With both issuers' keys loaded, each token is still checked with its own issuer's keys only.
    await expect(verifier.verify(await a.sign())).resolves.toBeDefined();
    await expect(verifier.verify(await b.sign())).resolves.toBeDefined();
    for (const [token, description] of cases) {
      expect((await rejection(verifier.verify(token))).description).toMatch(description);
    }
  });

  it('refuses an issuer not in the list without any fetch', async () => {
    const host = await hostOf('/a', '/b', '/c');
    const [a, b, c] = [host.issuers['/a']!, host.issuers['/b']!, host.issuers['/c']!];
    const counter = countingFetch();
    const verifier = createResourceVerifier({
      issuers: [a.issuer, b.issuer],
      resource: RESOURCE,
      fetch: counter.fetch,
    });
    const refused = [
      await c.sign(),
      await a.sign({ iss: c.issuer }),
      await a.sign({ iss: 'https://evil.example.com' }),
      await a.sign({ iss: `${a.issuer}/` }),
    ];
    for (const token of refused) {
      expect(await rejection(verifier.verify(token))).toMatchObject({
        code: 'invalid_token',
        description: 'the access token was issued by an untrusted issuer',
      });
    }
    expect((await rejection(verifier.verify(await a.sign({ iss: undefined })))).description).toBe(
      'the access token lacks the "iss" claim',
    );
    expect((await rejection(verifier.verify('not-a-jwt'))).description).toBe('the access token is malformed');
    expect(counter.urls).toEqual([]);
    expect(host.requests()).toBe(0);
  });

  it('keeps at most maxIssuers issuers: three in turn with maxIssuers 2 all verify, the evicted one rediscovered', async () => {
    const host = await hostOf('/a', '/b', '/c');
    const all = [host.issuers['/a']!, host.issuers['/b']!, host.issuers['/c']!];
    const verifier = createResourceVerifier({ issuers: all.map((i) => i.issuer), resource: RESOURCE, maxIssuers: 2 });
    for (let round = 0; round < 2; round++) {
      for (const issuer of all) await expect(verifier.verify(await issuer.sign())).resolves.toBeDefined();
    }
    for (const path of ['/a', '/b', '/c']) expect(discoveryHits(host, path)).toBe(2);
    // The two most recent stay cached.
    await verifier.verify(await all[2]!.sign());
    await verifier.verify(await all[1]!.sign());
    expect(discoveryHits(host, '/c')).toBe(2);
    expect(discoveryHits(host, '/b')).toBe(2);
  });

  it('remembers a failed discovery for discoveryCooldownSeconds instead of retrying on every request', async () => {
    const host = await hostOf({ path: '/a', failMetadata: 1 });
    const a = host.issuers['/a']!;
    const verifier = createResourceVerifier({ issuers: [a.issuer], resource: RESOURCE, discoveryCooldownSeconds: 0.2 });
    const token = await a.sign();
    for (let i = 0; i < 5; i++) {
      expect(await rejection(verifier.verify(token))).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
    }
    expect(discoveryHits(host, '/a')).toBe(1);
    await new Promise((r) => setTimeout(r, 250));
    await expect(verifier.verify(token)).resolves.toBeDefined();
    expect(discoveryHits(host, '/a')).toBe(2);
  });
});

describe('createResourceVerifier({ issuerTemplate }): tenant issuers', () => {
  it('accepts every tenant of the template and names the tenant in the result', async () => {
    const host = await hostOf('/t1', '/t2');
    const template = `${host.origin}/{tenant}`;
    const verifier = createResourceVerifier({ issuerTemplate: template, resource: RESOURCE });
    expect(verifier).toMatchObject({
      issuer: undefined,
      issuers: [],
      issuerTemplate: template,
      authorizationServers: [],
    });
    for (const tenant of ['t1', 't2']) {
      const as = host.issuers[`/${tenant}`]!;
      await expect(verifier.verify(await as.sign())).resolves.toMatchObject({ tenant, claims: { iss: as.issuer } });
      expect(discoveryHits(host, `/${tenant}`)).toBe(1);
    }
    // Tenant A's key cannot sign for tenant B.
    const t1 = host.issuers['/t1']!;
    const t2 = host.issuers['/t2']!;
    expect((await rejection(verifier.verify(await t1.sign({ iss: t2.issuer })))).description).toMatch(/no signing key/);
    expect(
      (await rejection(verifier.verify(await t1.sign({ iss: t2.issuer }, { kid: t2.keys[0]!.kid })))).description,
    ).toMatch(/signature/);
  });

  it('refuses issuers that only resemble the template, without any fetch', async () => {
    // These exist and would verify, were they trusted.
    const host = await hostOf('/t1', '/T1', '/t1/extra');
    const t1 = host.issuers['/t1']!;
    const counter = countingFetch();
    const verifier = createResourceVerifier({
      issuerTemplate: `${host.origin}/{tenant}`,
      resource: RESOURCE,
      fetch: counter.fetch,
    });
    const lookalikes = [
      `${host.origin}/t1/extra`,
      `${host.origin}/T1`,
      'https://evil/t1',
      `${host.origin}/t1/`,
      `${host.origin}//t1`,
      `${host.origin}/`,
      `${host.origin}/-t1`,
      `${host.origin}/t1-`,
      `${host.origin}/${'a'.repeat(64)}`,
      `${host.origin}/t%31`,
      `${host.origin}/t1?x=1`,
      `${host.origin}/t1#x`,
      `${host.origin.replace('127.0.0.1', 'localhost')}/t1`,
      host.origin,
    ];
    for (const iss of lookalikes) {
      const token = iss === `${host.origin}/T1` ? await host.issuers['/T1']!.sign() : await t1.sign({ iss });
      expect(await rejection(verifier.verify(token)), iss).toMatchObject({
        code: 'invalid_token',
        description: 'the access token was issued by an untrusted issuer',
      });
    }
    await rejection(verifier.verify(await host.issuers['/t1/extra']!.sign()));
    expect(counter.urls).toEqual([]);
    expect(host.requests()).toBe(0);
    await expect(verifier.verify(await t1.sign())).resolves.toMatchObject({ tenant: 't1' });
  });

  it('narrows the template to the tenants a list or a predicate allows, before fetching anything', async () => {
    const host = await hostOf('/t1', '/t2', '/t3');
    const [t1, t2, t3] = [host.issuers['/t1']!, host.issuers['/t2']!, host.issuers['/t3']!];
    const template = `${host.origin}/{tenant}`;
    const listed = createResourceVerifier({ issuerTemplate: template, tenants: ['t1', 't2'], resource: RESOURCE });
    await expect(listed.verify(await t2.sign())).resolves.toMatchObject({ tenant: 't2' });
    expect((await rejection(listed.verify(await t3.sign()))).description).toMatch(/untrusted issuer/);
    const asked: string[] = [];
    const predicated = createResourceVerifier({
      issuerTemplate: template,
      tenants: async (tenant) => {
        asked.push(tenant);
        return tenant !== 't3';
      },
      resource: RESOURCE,
    });
    await expect(predicated.verify(await t1.sign())).resolves.toMatchObject({ tenant: 't1' });
    expect((await rejection(predicated.verify(await t3.sign()))).description).toMatch(/untrusted issuer/);
    // The predicate sees only names the template matched.
    await rejection(predicated.verify(await t1.sign({ iss: `${host.origin}/T3` })));
    expect(asked).toEqual(['t1', 't3']);
    expect(discoveryHits(host, '/t3')).toBe(0);
    expect(host.hits.get('/t3/jwks')).toBeUndefined();
    const broken = createResourceVerifier({
      issuerTemplate: template,
      tenants: () => {
        throw new Error('tenant store down');
      },
      resource: RESOURCE,
    });
    expect(await rejection(broken.verify(await t1.sign()))).toMatchObject({ code: 'temporarily_unavailable' });
  });

  it("refuses an unknown tenant's token as invalid_token (401, not an outage) and remembers it instead of fetching on every request", async () => {
    const host = await hostOf('/t1');
    const t1 = host.issuers['/t1']!;
    const verifier = createResourceVerifier({ issuerTemplate: `${host.origin}/{tenant}`, resource: RESOURCE });
    const ghost = await t1.sign({ iss: `${host.origin}/t9` });
    for (let i = 0; i < 5; i++) {
      expect(await rejection(verifier.verify(ghost))).toMatchObject({ code: 'invalid_token', status: 401 });
    }
    // One discovery: RFC 8414 path-inserted, then both OpenID Connect forms, each once.
    expect(discoveryHits(host, '/t9')).toBe(1);
    expect(host.hits.get('/.well-known/openid-configuration/t9')).toBe(1);
    expect(host.hits.get('/t9/.well-known/openid-configuration')).toBe(1);
    await expect(verifier.verify(await t1.sign())).resolves.toMatchObject({ tenant: 't1' });
  });

  it('keeps at most maxIssuers tenants, rediscovering an evicted one', async () => {
    const host = await hostOf('/t1', '/t2', '/t3');
    const verifier = createResourceVerifier({
      issuerTemplate: `${host.origin}/{tenant}`,
      resource: RESOURCE,
      maxIssuers: 2,
    });
    for (let round = 0; round < 2; round++) {
      for (const tenant of ['t1', 't2', 't3']) {
        const as = host.issuers[`/${tenant}`]!;
        await expect(verifier.verify(await as.sign())).resolves.toMatchObject({ tenant });
      }
    }
    for (const tenant of ['t1', 't2', 't3']) expect(discoveryHits(host, `/${tenant}`)).toBe(2);
  });

  it('works with the template in the middle of the path', async () => {
    const host = await hostOf('/org/acme/oauth');
    const verifier = createResourceVerifier({
      issuerTemplate: `${host.origin}/org/{tenant}/oauth`,
      resource: RESOURCE,
    });
    const as = host.issuers['/org/acme/oauth']!;
    await expect(verifier.verify(await as.sign())).resolves.toMatchObject({ tenant: 'acme' });
    expect(discoveryHits(host, '/org/acme/oauth')).toBe(1);
    await rejection(verifier.verify(await as.sign({ iss: `${host.origin}/org/acme` })));
  });

  it('advertises authorizationServers in the RFC 9728 metadata only when they are trusted', async () => {
    const template = 'https://auth.example.com/{tenant}';
    const servers = ['https://auth.example.com/acme', 'https://auth.example.com/globex'];
    const verifier = createResourceVerifier({
      issuerTemplate: template,
      authorizationServers: servers,
      resource: RESOURCE,
    });
    expect(
      protectedResourceMetadata({ resource: RESOURCE, authorizationServers: verifier.authorizationServers }),
    ).toMatchObject({ authorization_servers: servers });
    const bare = createResourceVerifier({ issuerTemplate: template, resource: RESOURCE });
    expect(() =>
      protectedResourceMetadata({ resource: RESOURCE, authorizationServers: bare.authorizationServers }),
    ).toThrow(/issuerTemplate/);
    for (const options of [
      { issuerTemplate: template, authorizationServers: ['https://auth.example.com'] },
      { issuerTemplate: template, tenants: ['acme'], authorizationServers: servers },
      { issuers: ['https://a.example'], authorizationServers: ['https://b.example'] },
      { issuer: 'https://a.example', authorizationServers: ['https://a.example/'] },
    ]) {
      expect(() => createResourceVerifier({ ...options, resource: RESOURCE }), JSON.stringify(options)).toThrow(
        /does not trust/,
      );
    }
    await expect(bare.authorizationServerMetadata()).rejects.toThrow(TypeError);
    await expect(bare.authorizationServerMetadata('https://evil.example/acme')).rejects.toThrow(/not trusted/);
  });
});

describe('createResourceVerifier: issuer configuration', () => {
  it('needs exactly one of issuer, issuers or issuerTemplate', () => {
    const conflicts: [Partial<ResourceVerifierOptions>, RegExp][] = [
      [{}, /exactly one of issuer, issuers or issuerTemplate; none was given/],
      [{ issuer: 'https://a', issuers: ['https://b'] }, /issuer and issuers were given/],
      [{ issuers: ['https://b'], issuerTemplate: 'https://a/{tenant}' }, /issuers and issuerTemplate were given/],
      [
        { issuer: 'https://a', issuers: ['https://b'], issuerTemplate: 'https://a/{tenant}' },
        /issuer and issuers and issuerTemplate were given/,
      ],
    ];
    for (const [options, message] of conflicts) {
      expect(() => createResourceVerifier({ ...options, resource: RESOURCE })).toThrow(TypeError);
      expect(() => createResourceVerifier({ ...options, resource: RESOURCE })).toThrow(message);
    }
  });

  it('refuses invalid lists, templates, tenants and limits, and introspection with several issuers', () => {
    const refused: [Partial<ResourceVerifierOptions>, RegExp][] = [
      [{ issuer: 'https://a', tenants: ['x'] }, /tenants narrows an issuerTemplate/],
      [{ issuers: [] }, /non-empty/],
      [{ issuers: ['https://a', 'nope'] }, /absolute URL/],
      [{ issuers: ['https://a?x=1'] }, /query or fragment/],
      [{ issuerTemplate: 'https://auth.example.com/tenant' }, /exactly one \{tenant\}/],
      [{ issuerTemplate: 'https://auth.example.com/{tenant}/{tenant}' }, /exactly one \{tenant\}/],
      [{ issuerTemplate: 'https://{tenant}.example.com' }, /whole path segment/],
      [{ issuerTemplate: 'https://auth.example.com/x{tenant}' }, /whole path segment/],
      [{ issuerTemplate: 'https://auth.example.com/{tenant}x' }, /whole path segment/],
      [{ issuerTemplate: 'HTTPS://Auth.example.com/{tenant}' }, /normalised/],
      [{ issuerTemplate: 'https://auth.example.com:443/{tenant}' }, /normalised/],
      [{ issuerTemplate: 'https://auth.example.com/a/../{tenant}' }, /normalised/],
      [{ issuerTemplate: 'https://user@auth.example.com/{tenant}' }, /whole path segment/],
      [{ issuerTemplate: 'https://auth.example.com/{tenant}?x=1' }, /query or fragment/],
      [{ issuerTemplate: 'https://auth.example.com/{tenant}', tenants: ['Acme'] }, /invalid tenant/],
      [{ issuerTemplate: 'https://auth.example.com/{tenant}', maxIssuers: 0 }, /maxIssuers/],
      [{ issuers: ['https://a'], maxIssuers: 1.5 }, /maxIssuers/],
      [{ issuers: ['https://a'], discoveryCooldownSeconds: -1 }, /discoveryCooldownSeconds/],
      [{ issuers: ['https://a'], mode: 'introspection', introspection: INTROSPECTION_CLIENT }, /single issuer/],
      [
        { issuerTemplate: 'https://a/{tenant}', mode: 'introspection', introspection: INTROSPECTION_CLIENT },
        /single issuer/,
      ],
    ];
    for (const [options, message] of refused) {
      expect(() => createResourceVerifier({ ...options, resource: RESOURCE }), JSON.stringify(options)).toThrow(
        message,
      );
    }
    for (const template of [
      'https://auth.example.com/{tenant}',
      'https://auth.example.com/{tenant}/',
      'https://auth.example.com/org/{tenant}/oauth',
      'http://127.0.0.1:8080/{tenant}',
    ]) {
      expect(() => createResourceVerifier({ issuerTemplate: template, resource: RESOURCE })).not.toThrow();
    }
  });
});

describe('issuer template matcher (property)', () => {
  const runs = Number(process.env['FUZZ_RUNS'] ?? 500);
  const TEMPLATES = [
    'https://auth.example.com/{tenant}',
    'https://auth.example.com/{tenant}/',
    'https://auth.example.com/org/{tenant}/oauth',
    'http://127.0.0.1:8080/{tenant}',
  ];
  // Characters that matter around a tenant: separators, case, escapes, look-alikes.
  const char = fc.constantFrom(...'aT1z0-/.%?#:_@ \u00e9\u0131\u212a'.split(''), 'https://', 'auth.example.com');
  const junk = fc.string({ unit: char, maxLength: 8 });
  const tenant = fc.stringMatching(TENANT_PATTERN);

  /** An independent oracle: the template as a regular expression. */
  function oracle(template: string, issuer: string): string | undefined {
    const [prefix, suffix] = template.split('{tenant}') as [string, string];
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const m = new RegExp(`^${escape(prefix)}([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)${escape(suffix)}$`).exec(issuer);
    return m?.[1];
  }

  it('matches exactly the template with a valid tenant, and nothing else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TEMPLATES), junk, tenant, junk, fc.boolean(), (template, pre, name, post, raw) => {
        const parsed = parseIssuerTemplate(template);
        const [prefix, suffix] = template.split('{tenant}') as [string, string];
        // Near misses around a real tenant, or arbitrary text in the placeholder.
        const candidate = raw ? `${pre}${name}${post}` : `${prefix}${pre}${name}${post}${suffix}`;
        const got = parsed.match(candidate);
        expect(got).toBe(oracle(template, candidate));
        if (got !== undefined) {
          expect(TENANT_PATTERN.test(got)).toBe(true);
          expect(parsed.issuerFor(got)).toBe(candidate);
        }
        expect(parsed.match(parsed.issuerFor(name))).toBe(name);
      }),
      { numRuns: runs },
    );
  });

  it('never matches random strings unless they are the template with a valid tenant', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TEMPLATES), fc.string({ maxLength: 80 }), (template, s) => {
        const got = parseIssuerTemplate(template).match(s);
        expect(got).toBe(oracle(template, s));
      }),
      { numRuns: runs },
    );
  });
});
