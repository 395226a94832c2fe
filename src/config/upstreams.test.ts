import { describe, expect, it } from 'vitest';
import { resolveUpstream } from '../upstream/presets.js';
import { ConfigError, parseConfig } from './load.js';
import { tenantConfig } from './tenants.js';
import { upstreamSchema, type UpstreamConfigInput } from './upstreams.js';
import { thrown } from '../../test/helpers/thrown.js';

const TENANT_ID = '8eaef023-2b34-4da1-9baa-8bc8c9d6a490';
const secret = { clientSecretEnv: 'UPSTREAM_SECRET' };

/** The `upstreams.0...` lines of the error a config with these upstreams is refused with. */
function refused(...upstreams: unknown[]): string {
  return thrown(() => parseConfig({ upstreams }), ConfigError).message;
}

const resolved = (input: UpstreamConfigInput) => resolveUpstream(upstreamSchema.parse(input));

describe('upstreams config', () => {
  it('is empty by default', () => {
    expect(parseConfig({}).upstreams).toEqual([]);
  });

  it('a plain OIDC upstream: its issuer, openid email profile, client_secret_basic, 5 s', () => {
    const u = resolved({
      id: 'corp',
      name: 'Corp',
      type: 'oidc',
      issuer: 'https://idp.example.com',
      clientId: 'gh',
      ...secret,
    });
    expect(u).toMatchObject({
      type: 'oidc',
      issuer: 'https://idp.example.com',
      scopes: ['openid', 'email', 'profile'],
      tokenEndpointAuthMethod: 'client_secret_basic',
      authorizationParams: {},
      forbiddenParams: [],
      timeoutMs: 5000,
      userinfo: true,
      secret: { env: 'UPSTREAM_SECRET' },
    });
  });

  it('openid is always asked of an OIDC upstream', () => {
    const u = resolved({
      id: 'x',
      name: 'X',
      type: 'oidc',
      issuer: 'https://idp.example.com',
      clientId: 'c',
      scopes: ['email'],
      ...secret,
    });
    expect(u.scopes).toEqual(['openid', 'email']);
  });

  describe('presets fill in defaults; explicit settings win', () => {
    it('google: its issuer, access_type=offline and prompt=consent, iss without scheme accepted', () => {
      const u = resolved({ id: 'google', name: 'Google', type: 'oidc', preset: 'google', clientId: 'c', ...secret });
      expect(u).toMatchObject({
        issuer: 'https://accounts.google.com',
        scopes: ['openid', 'email', 'profile'],
        authorizationParams: { access_type: 'offline', prompt: 'consent' },
        alternateIdTokenIssuers: ['accounts.google.com'],
      });
      const own = resolved({
        id: 'google',
        name: 'Google',
        type: 'oidc',
        preset: 'google',
        clientId: 'c',
        scopes: ['openid', 'email'],
        authorizationParams: { prompt: 'select_account', hd: 'example.com' },
        ...secret,
      });
      expect(own.scopes).toEqual(['openid', 'email']);
      expect(own.authorizationParams).toEqual({ access_type: 'offline', prompt: 'select_account', hd: 'example.com' });
    });

    it('entra: the issuer from the tenant, offline_access, client_secret_post, no userinfo, never resource', () => {
      const u = resolved({
        id: 'entra',
        name: 'Microsoft',
        type: 'oidc',
        preset: 'entra',
        entraTenant: TENANT_ID,
        clientId: 'c',
        ...secret,
      });
      expect(u).toMatchObject({
        issuer: `https://login.microsoftonline.com/${TENANT_ID}/v2.0`,
        scopes: ['openid', 'email', 'profile', 'offline_access'],
        tokenEndpointAuthMethod: 'client_secret_post',
        forbiddenParams: ['resource'],
        userinfo: false,
      });
      const own = resolved({
        id: 'entra',
        name: 'Microsoft',
        type: 'oidc',
        preset: 'entra',
        issuer: 'https://login.microsoftonline.us/x/v2.0',
        clientId: 'c',
        scopes: ['openid', 'api://8e1f/.default'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        userinfo: true,
        ...secret,
      });
      expect(own).toMatchObject({
        issuer: 'https://login.microsoftonline.us/x/v2.0',
        scopes: ['openid', 'api://8e1f/.default'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        userinfo: true,
      });
    });

    it('okta: offline_access; keycloak: the defaults', () => {
      const okta = resolved({
        id: 'okta',
        name: 'Okta',
        type: 'oidc',
        preset: 'okta',
        issuer: 'https://acme.okta.com/oauth2/default',
        clientId: 'c',
        ...secret,
      });
      expect(okta.scopes).toEqual(['openid', 'email', 'profile', 'offline_access']);
      const kc = resolved({
        id: 'kc',
        name: 'Keycloak',
        type: 'oidc',
        preset: 'keycloak',
        issuer: 'http://kc.lan:8080/realms/acme',
        clientId: 'c',
        ...secret,
      });
      expect(kc).toMatchObject({
        issuer: 'http://kc.lan:8080/realms/acme',
        scopes: ['openid', 'email', 'profile'],
        tokenEndpointAuthMethod: 'client_secret_basic',
      });
    });

    it('github: its endpoints, client_secret_post, the id as subject, name or else login', () => {
      const u = resolved({ id: 'github', name: 'GitHub', type: 'oauth2', preset: 'github', clientId: 'c', ...secret });
      expect(u).toMatchObject({
        type: 'oauth2',
        issuer: 'https://github.com',
        authorizationEndpoint: 'https://github.com/login/oauth/authorize',
        tokenEndpoint: 'https://github.com/login/oauth/access_token',
        userinfoEndpoint: 'https://api.github.com/user',
        emailsEndpoint: 'https://api.github.com/user/emails',
        scopes: ['read:user', 'user:email'],
        tokenEndpointAuthMethod: 'client_secret_post',
        claims: { subject: ['id'], email: ['email'], emailVerified: [], name: ['name', 'login'] },
      });
      const own = resolved({
        id: 'ghe',
        name: 'GitHub Enterprise',
        type: 'oauth2',
        preset: 'github',
        issuer: 'https://ghe.example.com',
        authorizationEndpoint: 'https://ghe.example.com/login/oauth/authorize',
        tokenEndpoint: 'https://ghe.example.com/login/oauth/access_token',
        userinfoEndpoint: 'https://ghe.example.com/api/v3/user',
        emailsEndpoint: 'https://ghe.example.com/api/v3/user/emails',
        scopes: ['read:user'],
        claims: { name: 'login' },
        clientId: 'c',
        ...secret,
      });
      expect(own).toMatchObject({
        issuer: 'https://ghe.example.com',
        userinfoEndpoint: 'https://ghe.example.com/api/v3/user',
        scopes: ['read:user'],
        claims: { subject: ['id'], name: ['login'] },
      });
    });

    it('a plain oauth2 upstream: sub, email, email_verified, name; its identifier the authorization origin', () => {
      const u = resolved({
        id: 'forge',
        name: 'Forge',
        type: 'oauth2',
        authorizationEndpoint: 'https://forge.example.com/oauth/authorize',
        tokenEndpoint: 'https://forge.example.com/oauth/token',
        userinfoEndpoint: 'https://api.forge.example.com/me',
        clientId: 'c',
        clientSecretFile: '/run/secrets/forge',
      });
      expect(u).toMatchObject({
        issuer: 'https://forge.example.com',
        scopes: [],
        secret: { file: '/run/secrets/forge' },
        claims: { subject: ['sub'], email: ['email'], emailVerified: ['email_verified'], name: ['name'] },
      });
    });
  });

  describe('refused', () => {
    const base = {
      id: 'corp',
      name: 'Corp',
      type: 'oidc',
      issuer: 'https://idp.example.com',
      clientId: 'c',
      ...secret,
    };

    it('an unknown key', () => {
      expect(refused({ ...base, clientSecretFiel: '/x' })).toMatch(/upstreams\.0.*clientSecretFiel/);
      expect(refused({ ...base, emailsEndpoint: 'https://x.example/e' })).toMatch(/emailsEndpoint/);
    });

    it('an unknown type or preset, or a preset of the other type', () => {
      expect(refused({ ...base, type: 'saml' })).toMatch(/upstreams\.0\.type/);
      expect(refused({ ...base, preset: 'github' })).toMatch(/upstreams\.0\.preset/);
      expect(refused({ ...base, type: 'oauth2', preset: 'google' })).toMatch(/upstreams\.0/);
    });

    it('duplicate ids', () => {
      expect(refused(base, { ...base, name: 'Other' })).toMatch(/upstreams\.1\.id: duplicate upstream id "corp"/);
    });

    it('no secret, or two', () => {
      const { clientSecretEnv: _, ...none } = base;
      expect(refused(none)).toMatch(/exactly one of clientSecretEnv, clientSecretFile or clientSecret/);
      expect(refused({ ...base, clientSecret: 'inline' })).toMatch(/exactly one of/);
    });

    it('an OIDC upstream without issuer; entra without tenant, with a domain, with resource', () => {
      const { issuer: _, ...noIssuer } = base;
      expect(refused(noIssuer)).toMatch(/upstreams\.0\.issuer: required/);
      expect(refused({ ...noIssuer, preset: 'entra' })).toMatch(/upstreams\.0\.entraTenant: entraTenant \(or issuer\)/);
      expect(refused({ ...noIssuer, preset: 'entra', entraTenant: 'contoso.onmicrosoft.com' })).toMatch(/GUID/);
      expect(refused({ ...noIssuer, preset: 'entra', entraTenant: 'common' })).toMatch(/GUID/);
      expect(
        refused({
          ...noIssuer,
          preset: 'entra',
          entraTenant: TENANT_ID,
          authorizationParams: { resource: 'https://graph.microsoft.com' },
        }),
      ).toMatch(/authorizationParams\.resource: never sent to Entra/);
      expect(refused({ ...base, entraTenant: TENANT_ID })).toMatch(/entraTenant: only with preset entra/);
    });

    it('a keycloak issuer that is not a realm URL; an issuer with a query', () => {
      expect(refused({ ...base, preset: 'keycloak', issuer: 'https://kc.example.com' })).toMatch(/realm URL/);
      expect(refused({ ...base, issuer: 'https://idp.example.com/?tenant=1' })).toMatch(/query or fragment/);
      expect(refused({ ...base, issuer: 'ftp://idp.example.com' })).toMatch(/https \(or http\) URL/);
      expect(refused({ ...base, issuer: 'https://user:pw@idp.example.com' })).toMatch(/must not contain credentials/);
    });

    it('an oauth2 upstream without endpoints', () => {
      const message = refused({ id: 'x', name: 'X', type: 'oauth2', clientId: 'c', ...secret });
      expect(message).toMatch(/authorizationEndpoint: required/);
      expect(message).toMatch(/tokenEndpoint: required/);
      expect(message).toMatch(/userinfoEndpoint: required/);
    });

    it('parameters Gatehouse sets itself; a bad id, scope or timeout', () => {
      expect(refused({ ...base, authorizationParams: { state: 'x' } })).toMatch(
        /authorizationParams\.state: set by Gatehouse/,
      );
      expect(refused({ ...base, authorizationParams: { code_challenge_method: 'plain' } })).toMatch(/set by Gatehouse/);
      expect(refused({ ...base, id: 'Corp IdP' })).toMatch(/upstreams\.0\.id/);
      expect(refused({ ...base, scopes: ['a b'] })).toMatch(/scope token/);
      expect(refused({ ...base, timeoutMs: 0 })).toMatch(/timeoutMs/);
    });
  });

  it('registration: dynamic needs no client id nor secret, and refuses them', () => {
    const dynamic = {
      id: 'corp',
      name: 'Corp',
      type: 'oidc',
      issuer: 'https://idp.example.com',
      registration: { mode: 'dynamic', initialAccessTokenFile: '/run/secrets/iat', softwareId: 'gatehouse' },
    } as const;
    const u = resolved(dynamic);
    expect(u).toMatchObject({ clientId: '', registration: { mode: 'dynamic', softwareId: 'gatehouse' } });
    expect(u.secret).toBeUndefined();
    expect(refused({ ...dynamic, clientId: 'c' })).toMatch(/clientId: not with registration/);
    expect(refused({ ...dynamic, ...secret })).toMatch(/clientSecretEnv: not with registration/);
    expect(refused({ ...dynamic, registration: { ...dynamic.registration, initialAccessTokenEnv: 'IAT' } })).toMatch(
      /at most one of initialAccessTokenEnv or initialAccessTokenFile/,
    );
    expect(refused({ ...dynamic, registration: { mode: 'dynamic', endpont: 'https://x.example/reg' } })).toMatch(
      /endpont/,
    );
    expect(refused({ ...dynamic, registration: { mode: 'static' } })).toMatch(/registration\.mode/);
    expect(refused({ ...dynamic, registration: { mode: 'dynamic', softwareStatement: 'not a jwt' } })).toMatch(
      /softwareStatement/,
    );
    // oauth2 has no discovery: the endpoint is required.
    const oauth2 = {
      id: 'gh',
      name: 'GH',
      type: 'oauth2',
      authorizationEndpoint: 'https://x.example/a',
      tokenEndpoint: 'https://x.example/t',
      userinfoEndpoint: 'https://x.example/u',
      registration: { mode: 'dynamic' },
    };
    expect(refused(oauth2)).toMatch(/registration\.endpoint: required/);
    // Without registration, clientId is required.
    expect(refused({ ...base(), clientId: undefined })).toMatch(/clientId: required/);
  });

  it('a tenant has its own upstreams, never the deployment’s', () => {
    const deployment = parseConfig({ issuer: 'https://auth.example.com', upstreams: [base()] });
    expect(deployment.upstreams.map((u) => u.id)).toEqual(['corp']);
    expect(tenantConfig(deployment, 'acme', {}).upstreams).toEqual([]);
    const own = tenantConfig(deployment, 'acme', { upstreams: [{ ...base(), id: 'acme-kc' }] });
    expect(own.upstreams.map((u) => u.id)).toEqual(['acme-kc']);
    expect(() => tenantConfig(deployment, 'acme', { upstreams: [{ ...base(), clientSecretEnv: undefined }] })).toThrow(
      /tenants\[acme\]\.upstreams\.0/,
    );
  });
});

function base() {
  return {
    id: 'corp',
    name: 'Corp',
    type: 'oidc',
    issuer: 'https://idp.example.com',
    clientId: 'c',
    ...secret,
  } as const;
}
