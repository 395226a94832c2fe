import { describe, expect, it } from 'vitest';
import { parseConfig } from './load.js';
import { tenantConfig, TENANT_SETTINGS } from './tenants.js';

const deployment = parseConfig({
  issuer: 'https://auth.example.com',
  scopes: ['mcp:read'],
  resources: ['https://mcp.example.com/mcp'],
  tokens: { accessTokenTtl: 600, refreshTokenTtl: 7200 },
  registration: { initialAccessToken: 'a-registration-token-of-some-length', allowClientCredentials: true },
  introspection: { allowedClients: ['rs'] },
  tokenExchange: { resourceServers: [{ clientId: 'svc', audiences: ['https://mcp.example.com/mcp'] }] },
  users: [{ username: 'root', password: 'the deployment admin password' }],
  clients: [
    { client_id: 'svc', client_secret: 'a-secret-of-at-least-32-characters!!', grant_types: ['client_credentials'] },
  ],
});

describe('tenantConfig', () => {
  it('lays the settings over the deployment config, key by key, with the tenant issuer', () => {
    const config = tenantConfig(deployment, 'acme', { tokens: { accessTokenTtl: 60 }, branding: { name: 'Acme' } });
    expect(config.issuer).toBe('https://auth.example.com/acme');
    expect(config.tokens.accessTokenTtl).toBe(60);
    expect(config.tokens.refreshTokenTtl).toBe(7200);
    expect(config.scopes).toEqual(['mcp:read']);
    expect(config.branding).toEqual({ name: 'Acme' });
    expect(config.registration.allowClientCredentials).toBe(true);
  });

  it('inherits no identity and no trust of the deployment', () => {
    const config = tenantConfig(deployment, 'acme', {});
    expect(config.users).toEqual([]);
    expect(config.clients).toEqual([]);
    expect(config.resources).toEqual([]);
    expect(config.enterpriseIdps).toEqual([]);
    expect(config.workloadIssuers).toEqual([]);
    expect(config.registration.initialAccessToken).toBeUndefined();
    expect(config.introspection.allowedClients).toEqual([]);
    expect(config.tokenExchange.resourceServers).toEqual([]);
    expect(config.tenants).toEqual([]);
  });

  it('refuses a key a tenant may not set, and a bad value, naming the tenant and the setting', () => {
    expect(() => tenantConfig(deployment, 'acme', { storage: 'memory' })).toThrow(
      /tenants\[acme\]: storage: not a tenant setting/,
    );
    expect(() => tenantConfig(deployment, 'acme', { tokens: { accessTokenTtl: -1 } })).toThrow(
      /tenants\[acme\]\.tokens\.accessTokenTtl/,
    );
    expect(() => tenantConfig(deployment, 'Acme', {})).toThrow(/invalid tenant id/);
    for (const key of ['port', 'encryptionKey', 'trustProxy', 'adminToken', 'tenants', 'http', 'logLevel']) {
      expect(TENANT_SETTINGS as readonly string[]).not.toContain(key);
    }
  });
});

describe('tenantConfig sharing', () => {
  it("shares the deployment's objects for what a tenant leaves as it is", () => {
    const a = tenantConfig(deployment, 'a', { tokens: { accessTokenTtl: 60 } });
    const b = tenantConfig(deployment, 'b', {});
    expect(a.signing).toBe(deployment.signing);
    expect(b.tokens).toBe(deployment.tokens);
    expect(a.tokens).not.toBe(deployment.tokens);
    expect(a.registration).not.toBe(deployment.registration);
  });
});
