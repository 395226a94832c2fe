import { describe, expect, it } from 'vitest';
import {
  clientMetadataResponse,
  parseRegistrationRequest,
  validateClientMetadata,
  type GrantClientRules,
} from './client-metadata.js';
import { InvalidClientMetadata, InvalidRedirectUri, OAuthError } from '../model/errors.js';
import type { ClientRecord } from '../model/records.js';
// The real registry, so these tests check the rules the server runs with (core itself never imports grants).
import { grantModules } from '../grants/index.js';
import { thrown } from '../../test/helpers/thrown.js';

const SUPPORTED = ['openid', 'profile', 'email', 'offline_access', 'mcp:tools'];

function validate(body: unknown, strict = false) {
  return validateClientMetadata(parseRegistrationRequest(body), SUPPORTED, strict, grantModules);
}

const error = (fn: () => unknown): OAuthError => thrown(fn, OAuthError);

describe('parseRegistrationRequest (RFC 7591 §2, §3.2.2)', () => {
  it.each([null, 'string', 42, [], [{ redirect_uris: [] }]])('refuses a non-object body: %j', (body) => {
    const err = error(() => parseRegistrationRequest(body));
    expect(err).toBeInstanceOf(InvalidClientMetadata);
    expect(err.code).toBe('invalid_client_metadata');
    expect(err.description).toBe('the registration request must be a JSON object');
  });

  it('ignores unknown fields (RFC 7591 §2) and drops them from the result', () => {
    const parsed = parseRegistrationRequest({
      redirect_uris: ['https://app.example.com/cb'],
      software_statement_extra: 'x',
      frobnicate: true,
    });
    expect(parsed).toEqual({ redirect_uris: ['https://app.example.com/cb'] });
  });

  it('a malformed redirect_uris is invalid_redirect_uri', () => {
    const err = error(() => parseRegistrationRequest({ redirect_uris: 'https://app.example.com/cb' }));
    expect(err).toBeInstanceOf(InvalidRedirectUri);
    expect(err.code).toBe('invalid_redirect_uri');
    expect(err.description.startsWith('redirect_uris: ')).toBe(true);
    expect(error(() => parseRegistrationRequest({ redirect_uris: [42] }))).toBeInstanceOf(InvalidRedirectUri);
  });

  it('other malformed fields are invalid_client_metadata naming the field', () => {
    const err = error(() =>
      parseRegistrationRequest({ redirect_uris: ['https://a.example/cb'], grant_types: 'authorization_code' }),
    );
    expect(err).toBeInstanceOf(InvalidClientMetadata);
    expect(err.description.startsWith('grant_types: ')).toBe(true);
  });

  it.each(['client_uri', 'logo_uri', 'tos_uri', 'policy_uri'])('%s must be an https URL', (field) => {
    expect(parseRegistrationRequest({ [field]: 'https://app.example.com/x' })).toEqual({
      [field]: 'https://app.example.com/x',
    });
    const err = error(() => parseRegistrationRequest({ [field]: 'http://app.example.com/x' }));
    expect(err).toBeInstanceOf(InvalidClientMetadata);
    expect(err.description).toBe(`${field}: must be an https URL`);
    expect(error(() => parseRegistrationRequest({ [field]: 'javascript:alert(1)' }))).toBeInstanceOf(
      InvalidClientMetadata,
    );
  });

  it('bounds list and string sizes', () => {
    expect(
      error(() =>
        parseRegistrationRequest({ redirect_uris: Array.from({ length: 51 }, (_, i) => `https://a.example/${i}`) }),
      ),
    ).toBeInstanceOf(InvalidRedirectUri);
    expect(
      error(() => parseRegistrationRequest({ client_name: 'x'.repeat(201) })).description.startsWith('client_name: '),
    ).toBe(true);
  });
});

describe('validateClientMetadata (RFC 7591 §2)', () => {
  describe('post_logout_redirect_uris (OIDC RP-Initiated Logout §3.1)', () => {
    it('kept as registered (deduplicated), held to the redirect-URI rules, and returned in the metadata', () => {
      const md = validate({
        redirect_uris: ['https://app.example.com/cb'],
        post_logout_redirect_uris: ['https://app.example.com/bye', 'https://app.example.com/bye'],
      });
      expect(md.postLogoutRedirectUris).toEqual(['https://app.example.com/bye']);
      for (const bad of ['http://app.example.com/bye', 'https://app.example.com/bye#x', 'relative/path']) {
        const err = error(() =>
          validate({ redirect_uris: ['https://app.example.com/cb'], post_logout_redirect_uris: [bad] }),
        );
        expect(err).toBeInstanceOf(InvalidClientMetadata);
        expect(err.description).toMatch(/^post_logout_redirect_uris: /);
      }
      expect(
        validate({ redirect_uris: ['http://127.0.0.1/cb'], post_logout_redirect_uris: ['http://127.0.0.1/bye'] })
          .postLogoutRedirectUris,
      ).toEqual(['http://127.0.0.1/bye']);
    });
  });

  describe('require_pushed_authorization_requests (RFC 9126 §6)', () => {
    it('kept as sent (absent = not required), a boolean only, and returned in the metadata', () => {
      const registered = (extra: Record<string, unknown>) =>
        validate({ redirect_uris: ['https://app.example.com/cb'], ...extra });
      expect(registered({}).requirePushedAuthorizationRequests).toBeUndefined();
      for (const value of [true, false]) {
        const md = registered({ require_pushed_authorization_requests: value });
        expect(md.requirePushedAuthorizationRequests).toBe(value);
        const out = clientMetadataResponse({
          ...md,
          clientId: 'c',
          source: 'dynamic',
          createdAt: 0,
          updatedAt: 0,
          clientSecretExpiresAt: 0,
        });
        expect(out.require_pushed_authorization_requests).toBe(value);
      }
      const err = error(() => registered({ require_pushed_authorization_requests: 'true' }));
      expect(err).toBeInstanceOf(InvalidClientMetadata);
      expect(err.description).toMatch(/^require_pushed_authorization_requests: /);
    });
  });

  describe('defaults', () => {
    it('authorization_code + code + client_secret_basic + web', () => {
      const md = validate({ redirect_uris: ['https://app.example.com/cb'] });
      expect(md).toEqual({
        redirectUris: ['https://app.example.com/cb'],
        postLogoutRedirectUris: undefined,
        grantTypes: ['authorization_code'],
        responseTypes: ['code'],
        scope: undefined,
        tokenEndpointAuthMethod: 'client_secret_basic',
        applicationType: 'web',
        clientName: undefined,
        clientUri: undefined,
        logoUri: undefined,
        contacts: undefined,
        tosUri: undefined,
        policyUri: undefined,
        softwareId: undefined,
        softwareVersion: undefined,
      });
    });

    it('copies the descriptive metadata through', () => {
      const md = validate({
        redirect_uris: ['https://app.example.com/cb'],
        client_name: 'App',
        client_uri: 'https://app.example.com',
        logo_uri: 'https://app.example.com/logo.png',
        contacts: ['ops@example.com'],
        tos_uri: 'https://app.example.com/tos',
        policy_uri: 'https://app.example.com/privacy',
        software_id: 'app-id',
        software_version: '1.2.3',
      });
      expect(md).toMatchObject({
        clientName: 'App',
        clientUri: 'https://app.example.com',
        logoUri: 'https://app.example.com/logo.png',
        contacts: ['ops@example.com'],
        tosUri: 'https://app.example.com/tos',
        policyUri: 'https://app.example.com/privacy',
        softwareId: 'app-id',
        softwareVersion: '1.2.3',
      });
    });

    it('de-duplicates redirect_uris, grant_types and response_types', () => {
      const md = validate({
        redirect_uris: ['https://a.example/cb', 'https://a.example/cb'],
        grant_types: ['authorization_code', 'refresh_token', 'authorization_code'],
        response_types: ['code', 'code'],
      });
      expect(md.redirectUris).toEqual(['https://a.example/cb']);
      expect(md.grantTypes).toEqual(['authorization_code', 'refresh_token']);
      expect(md.responseTypes).toEqual(['code']);
    });
  });

  describe('grant_types / response_types consistency (RFC 7591 §2.1)', () => {
    it('refuses an unsupported grant type (implicit, password, SAML 2.0 bearer)', () => {
      for (const g of ['implicit', 'password', 'urn:ietf:params:oauth:grant-type:saml2-bearer']) {
        const err = error(() =>
          validate({ redirect_uris: ['https://a.example/cb'], grant_types: ['authorization_code', g] }),
        );
        expect(err).toBeInstanceOf(InvalidClientMetadata);
        expect(err.description).toBe(`grant_types: unsupported grant type ${JSON.stringify(g)}`);
      }
    });

    it('refuses response types other than code (OAuth 2.1 removes token)', () => {
      for (const r of ['token', 'id_token', 'code id_token']) {
        const err = error(() => validate({ redirect_uris: ['https://a.example/cb'], response_types: [r] }));
        expect(err.description).toBe(`response_types: only "code" is supported, got ${JSON.stringify(r)}`);
      }
    });

    it('authorization_code requires response_types to include code', () => {
      const err = error(() => validate({ redirect_uris: ['https://a.example/cb'], response_types: [] }));
      expect(err).toBeInstanceOf(InvalidClientMetadata);
      expect(err.description).toBe('grant_types includes authorization_code, so response_types must include code');
    });

    it('response_types code without the authorization_code grant is refused', () => {
      const err = error(() => validate({ grant_types: ['client_credentials'], response_types: ['code'] }));
      expect(err.description).toBe('response_types "code" requires the authorization_code grant type');
    });

    it('refresh_token alone (without authorization_code) is refused', () => {
      const err = error(() => validate({ grant_types: ['refresh_token'], response_types: [] }));
      expect(err.description).toBe(
        'grant_types: refresh_token requires authorization_code or urn:ietf:params:oauth:grant-type:device_code',
      );
    });

    it('an empty grant_types list is consistent (response_types then defaults to [])', () => {
      // No grant at all is consistent per RFC 7591 (response_types defaults to [] without authorization_code).
      const md = validate({ grant_types: [] });
      expect(md.grantTypes).toEqual([]);
      expect(md.responseTypes).toEqual([]);
    });
  });

  describe('token_endpoint_auth_method', () => {
    it.each(['none', 'client_secret_basic', 'client_secret_post'] as const)('accepts %s', (method) => {
      expect(
        validate({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: method })
          .tokenEndpointAuthMethod,
      ).toBe(method);
    });

    it.each(['client_secret_jwt', 'tls_client_auth', 'NONE', ''])('refuses %j', (method) => {
      const err = error(() =>
        validate({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: method }),
      );
      expect(err).toBeInstanceOf(InvalidClientMetadata);
      expect(err.description).toBe(`token_endpoint_auth_method: unsupported method ${JSON.stringify(method)}`);
    });

    it('private_key_jwt with its public keys (jwks or jwks_uri), which the metadata keeps and returns', () => {
      const key = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' };
      const inline = validate({
        redirect_uris: ['https://a.example/cb'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [key] },
      });
      expect([inline.tokenEndpointAuthMethod, inline.jwks, inline.jwksUri]).toEqual([
        'private_key_jwt',
        { keys: [key] },
        undefined,
      ]);
      const byUri = validate({
        redirect_uris: ['https://a.example/cb'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: 'https://a.example/jwks.json',
      });
      expect(byUri.jwksUri).toBe('https://a.example/jwks.json');
      expect(
        error(() =>
          validate({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'private_key_jwt' }),
        ).description,
      ).toBe('private_key_jwt requires jwks or jwks_uri');
    });

    it('client_secret_jwt only when the server can keep the secret sealed (the clientSecretJwt option)', () => {
      const req = parseRegistrationRequest({
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_jwt',
      });
      expect(
        validateClientMetadata(req, SUPPORTED, false, grantModules, { clientSecretJwt: true }).tokenEndpointAuthMethod,
      ).toBe('client_secret_jwt');
      const err = error(() => validateClientMetadata(req, SUPPORTED, false, grantModules, { clientSecretJwt: false }));
      expect(err.description).toBe('token_endpoint_auth_method: unsupported method "client_secret_jwt"');
    });

    it('client_credentials requires a confidential client', () => {
      const err = error(() => validate({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }));
      expect(err.description).toBe('client_credentials requires a confidential client (a client secret)');
      const md = validate({ grant_types: ['client_credentials'] });
      expect(md).toMatchObject({
        grantTypes: ['client_credentials'],
        responseTypes: [],
        redirectUris: [],
        tokenEndpointAuthMethod: 'client_secret_basic',
      });
      expect(
        validate({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post' })
          .tokenEndpointAuthMethod,
      ).toBe('client_secret_post');
    });
  });

  describe('redirect_uris', () => {
    it('are required for the authorization_code grant (invalid_redirect_uri)', () => {
      for (const body of [{}, { redirect_uris: [] }]) {
        const err = error(() => validate(body));
        expect(err).toBeInstanceOf(InvalidRedirectUri);
        expect(err.description).toBe('redirect_uris is required for the authorization_code grant');
      }
    });

    it('every URI is checked; one bad URI refuses the registration, naming it', () => {
      const err = error(() => validate({ redirect_uris: ['https://a.example/cb', 'http://evil.example/cb'] }));
      expect(err).toBeInstanceOf(InvalidRedirectUri);
      expect(err.description).toBe(
        'redirect_uri "http://evil.example/cb" uses http but is not a loopback address; use https',
      );
    });

    it.each([
      'https://a.example/cb#f',
      'javascript:alert(1)',
      'data:text/html,x',
      'https://u:p@a.example/cb',
      'relative/cb',
    ])('refuses %s', (uri) => {
      expect(error(() => validate({ redirect_uris: [uri] }))).toBeInstanceOf(InvalidRedirectUri);
    });

    it('are still checked for non-code clients that send them', () => {
      expect(
        error(() => validate({ grant_types: ['client_credentials'], redirect_uris: ['javascript:x'] })),
      ).toBeInstanceOf(InvalidRedirectUri);
    });
  });

  describe('application_type (OIDC Registration §2, RFC 8252)', () => {
    it.each([
      [['http://127.0.0.1/'], 'native'],
      [['http://localhost:3000/cb'], 'native'],
      [['http://[::1]/cb'], 'native'],
      [['com.example.app:/cb'], 'native'],
      [['https://app.example.com/cb', 'cursor://anysphere.cursor-mcp/oauth/callback'], 'native'],
      [['https://app.example.com/cb'], 'web'],
      [['https://localhost/cb'], 'web'],
    ] as const)('is inferred from %j as %s', (uris, expected) => {
      expect(validate({ redirect_uris: [...uris] }).applicationType).toBe(expected);
    });

    it('is inferred as web for a client without redirect URIs', () => {
      expect(validate({ grant_types: ['client_credentials'] }).applicationType).toBe('web');
    });

    it('an explicit web client may not use a custom scheme', () => {
      const err = error(() =>
        validate({ application_type: 'web', redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'] }),
      );
      expect(err).toBeInstanceOf(InvalidRedirectUri);
      expect(err.description).toContain('web clients must use https or loopback http');
    });

    it('an explicit web client may use loopback http (development)', () => {
      expect(validate({ application_type: 'web', redirect_uris: ['http://localhost:3000/cb'] }).applicationType).toBe(
        'web',
      );
    });

    it('an explicit native client may use https', () => {
      expect(
        validate({ application_type: 'native', redirect_uris: ['https://app.example.com/cb'] }).applicationType,
      ).toBe('native');
    });

    it('refuses other values', () => {
      for (const t of ['browser', 'Native', '']) {
        const err = error(() => validate({ application_type: t, redirect_uris: ['https://a.example/cb'] }));
        expect(err).toBeInstanceOf(InvalidClientMetadata);
        expect(err.description).toBe('application_type must be "web" or "native"');
      }
    });
  });

  describe('scope', () => {
    it('keeps known scopes in order, de-duplicated', () => {
      expect(validate({ redirect_uris: ['https://a.example/cb'], scope: 'profile openid profile' }).scope).toEqual([
        'profile',
        'openid',
      ]);
    });

    it('narrows unknown scopes away when not strict', () => {
      expect(validate({ redirect_uris: ['https://a.example/cb'], scope: 'openid admin mcp:tools root' }).scope).toEqual(
        ['openid', 'mcp:tools'],
      );
    });

    it('refuses unknown scopes when strict, naming them', () => {
      const err = error(() => validate({ redirect_uris: ['https://a.example/cb'], scope: 'openid admin root' }, true));
      expect(err).toBeInstanceOf(InvalidClientMetadata);
      expect(err.description).toBe(
        'scope: not known to this server: admin root (the server\'s "scopes" setting declares the scopes it knows)',
      );
    });

    it('strict accepts known scopes', () => {
      expect(validate({ redirect_uris: ['https://a.example/cb'], scope: 'openid offline_access' }, true).scope).toEqual(
        ['openid', 'offline_access'],
      );
    });

    it('absent scope means no allow-list; an empty scope means an empty one (they stay different)', () => {
      expect(validate({ redirect_uris: ['https://a.example/cb'] }).scope).toBeUndefined();
      expect(validate({ redirect_uris: ['https://a.example/cb'], scope: '' }).scope).toEqual([]);
    });

    it('a scope of only unknown scopes narrows to an empty allow-list (grants nothing), never to "no allow-list"', () => {
      expect(validate({ redirect_uris: ['https://a.example/cb'], scope: 'legacy:read legacy:write' }).scope).toEqual(
        [],
      );
    });

    // Regression (was a bug): an illegal character in the registration `scope` surfaces as invalid_scope (parseScope's error), but
    // RFC 7591 §3.2.2 only defines invalid_redirect_uri / invalid_client_metadata / software statement errors for
    // the registration endpoint; a bad metadata value must be invalid_client_metadata.
    it('RFC 7591 §3.2.2: a malformed scope value is invalid_client_metadata', () => {
      const err = error(() => validate({ redirect_uris: ['https://a.example/cb'], scope: 'openid "quoted"' }));
      expect(err.code).toBe('invalid_client_metadata');
    });
  });

  describe('real MCP client registrations', () => {
    it('VS Code (loopback with port, port-less loopback, vscode.dev) → native public client', () => {
      const md = validate({
        client_name: 'Visual Studio Code',
        redirect_uris: ['http://127.0.0.1:33418/', 'http://127.0.0.1/', 'https://vscode.dev/redirect'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      });
      expect(md).toMatchObject({
        redirectUris: ['http://127.0.0.1:33418/', 'http://127.0.0.1/', 'https://vscode.dev/redirect'],
        grantTypes: ['authorization_code', 'refresh_token'],
        responseTypes: ['code'],
        tokenEndpointAuthMethod: 'none',
        applicationType: 'native',
        clientName: 'Visual Studio Code',
      });
    });

    it('Claude-like (http://localhost/callback and https web callback)', () => {
      const md = validate({
        client_name: 'Claude Code',
        redirect_uris: ['http://localhost/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      });
      expect(md.applicationType).toBe('native');
      expect(md.redirectUris).toEqual(['http://localhost/callback']);

      const web = validate({
        client_name: 'claudeai',
        redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      });
      expect(web).toMatchObject({ applicationType: 'web', tokenEndpointAuthMethod: 'client_secret_post' });
    });

    it('Cursor (private-use scheme) → native', () => {
      const md = validate({
        client_name: 'Cursor',
        redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      });
      expect(md).toMatchObject({
        applicationType: 'native',
        redirectUris: ['cursor://anysphere.cursor-mcp/oauth/callback'],
      });
    });

    it('MCP Inspector (localhost:6274), with the extra fields the SDK sends', () => {
      const md = validate({
        client_name: 'MCP Inspector',
        client_uri: 'https://github.com/modelcontextprotocol/inspector',
        redirect_uris: ['http://localhost:6274/oauth/callback', 'http://localhost:6274/oauth/callback/debug'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        scope: 'openid mcp:tools not-a-server-scope',
        software_statement: undefined,
        some_future_field: { nested: true },
      });
      expect(md).toMatchObject({
        applicationType: 'native',
        tokenEndpointAuthMethod: 'none',
        scope: ['openid', 'mcp:tools'],
        clientUri: 'https://github.com/modelcontextprotocol/inspector',
      });
    });
  });
});

describe('clientMetadataResponse (RFC 7591 §3.2.1)', () => {
  const base: ClientRecord = {
    clientId: 'abc',
    redirectUris: ['https://a.example/cb'],
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    scope: [],
    tokenEndpointAuthMethod: 'none',
    applicationType: 'web',
    source: 'dynamic',
    createdAt: 1_700_000_000_999,
    updatedAt: 1_700_000_000_999,
    clientSecretExpiresAt: 0,
  };

  it('public client: seconds since epoch, no secret fields, no scope when it has no allow-list', () => {
    expect(clientMetadataResponse({ ...base, scope: undefined })).toEqual({
      client_id: 'abc',
      client_id_issued_at: 1_700_000_000,
      redirect_uris: ['https://a.example/cb'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'web',
    });
  });

  it('confidential client: client_secret_expires_at in seconds (0 = never), scope joined, optional fields, never the hash', () => {
    const out = clientMetadataResponse({
      ...base,
      tokenEndpointAuthMethod: 'client_secret_basic',
      clientSecretHash: 'hmac:xyz',
      clientSecretExpiresAt: 1_800_000_000_500,
      scope: ['openid', 'mcp:tools'],
      clientName: 'App',
      contacts: ['a@example.com'],
    });
    expect(out).toMatchObject({
      client_secret_expires_at: 1_800_000_000,
      scope: 'openid mcp:tools',
      client_name: 'App',
      contacts: ['a@example.com'],
    });
    expect(JSON.stringify(out)).not.toContain('hmac:xyz');
    expect(clientMetadataResponse({ ...base, clientSecretHash: 'hmac:x' }).client_secret_expires_at).toBe(0);
  });

  it('an empty allow-list is returned as scope "" (the client learns it was narrowed to nothing)', () => {
    expect(clientMetadataResponse({ ...base, scope: [] }).scope).toBe('');
  });
});

describe('validateClientMetadata takes the grant rules from the caller (grant modules declare them)', () => {
  const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const tokenExchange: GrantClientRules = {
    grantType: TOKEN_EXCHANGE,
    allowsPublicClients: false,
    checkClient(md) {
      if (md.clientName === undefined) throw new InvalidClientMetadata(`${TOKEN_EXCHANGE} requires client_name`);
    },
  };
  const run = (body: unknown, grants: readonly GrantClientRules[]) =>
    validateClientMetadata(parseRegistrationRequest(body), SUPPORTED, false, grants);

  it('a grant type known only from the rules passed in is accepted, with no response types and no redirect URIs', () => {
    const md = run({ grant_types: [TOKEN_EXCHANGE], client_name: 'svc' }, [...grantModules, tokenExchange]);
    expect(md.grantTypes).toEqual([TOKEN_EXCHANGE]);
    expect(md.responseTypes).toEqual([]);
    expect(md.redirectUris).toEqual([]);
  });

  it('its declared rules apply: allowsPublicClients false refuses none; its own checkClient runs', () => {
    const grants = [...grantModules, tokenExchange];
    expect(
      error(() =>
        run({ grant_types: [TOKEN_EXCHANGE], client_name: 'svc', token_endpoint_auth_method: 'none' }, grants),
      ).description,
    ).toBe(`${TOKEN_EXCHANGE} requires a confidential client (a client secret)`);
    expect(error(() => run({ grant_types: [TOKEN_EXCHANGE] }, grants)).description).toBe(
      `${TOKEN_EXCHANGE} requires client_name`,
    );
  });

  it('a grant type the caller did not pass is unsupported, even a standard one', () => {
    const err = error(() => run({ grant_types: ['client_credentials'] }, [tokenExchange]));
    expect(err).toBeInstanceOf(InvalidClientMetadata);
    expect(err.description).toBe('grant_types: unsupported grant type "client_credentials"');
  });

  it('the registration default comes from the rules: with no registrationDefault grant, absent grant_types is none', () => {
    expect(run({ client_name: 'svc' }, [tokenExchange]).grantTypes).toEqual([]);
  });
});
