import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { createGatehouse, createLogger, type Gatehouse } from '../server.js';
import { enabledGrants, grantModules, knownGrantTypes } from './index.js';

// The registry is the one list of grant types: discovery, token dispatch and static clients all follow it. The
// config switches every grant on (the jwt-bearer grant only exists with something to trust; no key set is fetched;
// token exchange only with a resource server allowed to).
const config = parseConfig({
  storage: 'memory',
  logLevel: 'silent',
  issuer: 'http://localhost:9999',
  clients: [{ client_id: 'machine', client_secret: 's'.repeat(32), scope: 'mcp:tools' }],
  enterpriseIdps: [
    { issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', allowedClients: ['machine'] },
  ],
  workloadIssuers: [{ issuer: 'https://k8s.example.com', jwksUri: 'https://k8s.example.com/openid/v1/jwks' }],
  tokenExchange: { resourceServers: [{ clientId: 'machine', audiences: ['https://mcp.example.com'] }] },
});
let gatehouse: Gatehouse;
beforeAll(async () => {
  gatehouse = await createGatehouse(config, { logger: createLogger('silent') });
});
afterAll(() => gatehouse.close());

const REGISTERED_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'invalid_scope',
  'invalid_target',
  // RFC 8628 §3.5, in the IANA OAuth Extensions Error Registry.
  'authorization_pending',
  'slow_down',
  'access_denied',
  'expired_token',
]);

describe('the grant registry', () => {
  it('names each grant type once', () => {
    expect(new Set(knownGrantTypes).size).toBe(grantModules.length);
  });

  it('this config offers every registered grant (so the rows below cover each)', () => {
    expect(enabledGrants(config)).toHaveLength(grantModules.length);
  });

  it('discovery advertises exactly the registered grants and their response types and fields', async () => {
    const res = await gatehouse.app.inject({ url: '/.well-known/oauth-authorization-server' });
    const md = res.json();
    expect(md.grant_types_supported).toEqual(enabledGrants(config).map((g) => g.grantType));
    expect(md.response_types_supported).toEqual([...new Set(grantModules.flatMap((g) => g.responseTypes ?? []))]);
    for (const g of grantModules) expect(md).toMatchObject(g.metadata?.(config) ?? {});
  });

  it.each(knownGrantTypes)('the token endpoint dispatches %s (never unsupported_grant_type)', async (grantType) => {
    const res = await gatehouse.app.inject({
      method: 'POST',
      url: '/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`machine:${'s'.repeat(32)}`).toString('base64')}`,
      },
      payload: new URLSearchParams({ grant_type: grantType }).toString(),
    });
    expect(res.statusCode).not.toBe(500);
    expect(res.json().error).not.toBe('unsupported_grant_type');
  });

  it('a grant type not in the registry is unsupported_grant_type', async () => {
    const res = await gatehouse.app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=password',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('unsupported_grant_type');
  });

  it('a static client without grant_types or redirect_uris gets the grants whose modules default it (a machine client)', async () => {
    const client = await gatehouse.deps.storage.getClient('machine');
    expect(client?.grantTypes).toEqual(
      grantModules.filter((g) => g.staticClientDefault?.(false)).map((g) => g.grantType),
    );
    expect(client?.grantTypes.length).toBeGreaterThan(0);
  });

  it('every module documents its error codes with registered OAuth token-endpoint codes', () => {
    for (const g of grantModules) {
      expect(g.errorCodes.length).toBeGreaterThan(0);
      for (const code of g.errorCodes) expect(REGISTERED_ERRORS.has(code)).toBe(true);
    }
  });
});
