import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reservedSegments, tenantPathRewriter } from './tenant-routing.js';

const reserved = reservedSegments('https://auth.example.com', ['/token', '/authorize', '/interaction', '/jwks.json']);

describe('tenantPathRewriter', () => {
  const root = tenantPathRewriter('https://auth.example.com', reserved);

  it('takes the tenant out of every form a tenant path takes, keeping the query', () => {
    expect(root('/acme/token')).toEqual({ url: '/token', tenant: 'acme' });
    expect(root('/acme/authorize?client_id=x&a=%2F')).toEqual({ url: '/authorize?client_id=x&a=%2F', tenant: 'acme' });
    expect(root('/acme/interaction/abc/login')).toEqual({ url: '/interaction/abc/login', tenant: 'acme' });
    expect(root('/acme/.well-known/openid-configuration')).toEqual({
      url: '/.well-known/openid-configuration',
      tenant: 'acme',
    });
    expect(root('/.well-known/oauth-authorization-server/acme')).toEqual({
      url: '/.well-known/oauth-authorization-server',
      tenant: 'acme',
    });
    expect(root('/.well-known/openid-configuration/acme?x=1')).toEqual({
      url: '/.well-known/openid-configuration?x=1',
      tenant: 'acme',
    });
    expect(root('/acme')).toEqual({ url: '/', tenant: 'acme' });
  });

  it("leaves the deployment's own paths and anything not naming one tenant alone", () => {
    for (const url of [
      '/token',
      '/authorize?x=1',
      '/.well-known/oauth-authorization-server',
      '/.well-known/oauth-authorization-server/acme/extra',
      '/.well-known/oauth-authorization-server/Acme',
      '/jwks.json',
      '/interaction/abc',
      '/admin/tenants',
      '/health',
      '/Acme/token',
      '/-acme/token',
      '/acme-/token',
      '/a_b/token',
      '/',
    ]) {
      expect(root(url), url).toEqual({ url });
    }
  });

  it('works below a deployment issuer with a path', () => {
    const below = tenantPathRewriter(
      'https://auth.example.com/auth',
      reservedSegments('https://auth.example.com/auth', ['/auth/token']),
    );
    expect(below('/auth/acme/token')).toEqual({ url: '/auth/token', tenant: 'acme' });
    expect(below('/.well-known/oauth-authorization-server/auth/acme')).toEqual({
      url: '/.well-known/oauth-authorization-server/auth',
      tenant: 'acme',
    });
    expect(below('/auth/acme/.well-known/openid-configuration')).toEqual({
      url: '/auth/.well-known/openid-configuration',
      tenant: 'acme',
    });
    expect(below('/auth/token')).toEqual({ url: '/auth/token' });
    expect(below('/other/token')).toEqual({ url: '/other/token' });
    expect(below('/.well-known/oauth-authorization-server/acme')).toEqual({
      url: '/.well-known/oauth-authorization-server/acme',
    });
  });

  it('never names a tenant that is not a tenant id; the tenant plus the rewritten path is the original path', () => {
    const segment = fc.oneof(
      fc.constantFrom('acme', 'a', 'token', 'x-1', 'A', '-', ''),
      fc.string({ maxLength: 20 }).filter((s) => !s.includes('?') && !s.includes('/')),
    );
    fc.assert(
      fc.property(
        segment,
        fc.array(segment, { maxLength: 3 }),
        fc.option(fc.string({ maxLength: 10 })),
        (first, rest, query) => {
          const path = ['', first, ...rest].join('/');
          const url = query === null ? path : `${path}?${query}`;
          const routed = root(url);
          if (routed.tenant === undefined) return routed.url === url;
          if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(routed.tenant) || reserved.has(routed.tenant))
            return false;
          const tail = path.slice(routed.tenant.length + 1);
          return routed.url === (tail || '/') + (query === null ? '' : `?${query}`);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
