import { describe, expect, it } from 'vitest';
import {
  bearerErrorResponse,
  extractBearerToken,
  hasQueryAccessToken,
  protectedResourceMetadata,
  protectedResourceMetadataPath,
  protectedResourceMetadataUrl,
  ResourceAuthError,
  wwwAuthenticate,
} from '../../src/resource/index.js';

/** A small RFC 9110 §11 challenge parser, to check that what we build parses back. */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const [, scheme = '', rest = ''] = /^(\S+)\s*(.*)$/s.exec(header) ?? [];
  const params: Record<string, string> = {};
  const re = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(rest)) !== null) {
    params[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
    consumed = re.lastIndex;
  }
  expect(consumed).toBe(rest.length);
  return { scheme, params };
}

describe('wwwAuthenticate (RFC 6750 §3)', () => {
  it('builds the full challenge in order', () => {
    expect(
      wwwAuthenticate({
        resourceMetadata: 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
        error: 'invalid_token',
        errorDescription: 'the access token has expired',
        scope: ['mcp', 'read'],
      }),
    ).toBe(
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="the access token has expired", scope="mcp read"',
    );
  });

  it('omits error when no token was sent, and is bare Bearer without params', () => {
    expect(wwwAuthenticate({ resourceMetadata: 'https://x/.well-known/oauth-protected-resource' })).toBe(
      'Bearer resource_metadata="https://x/.well-known/oauth-protected-resource"',
    );
    expect(wwwAuthenticate()).toBe('Bearer');
    expect(wwwAuthenticate({ realm: 'api', scope: '' })).toBe('Bearer realm="api"');
  });

  it('escapes quotes and backslashes and strips control characters', () => {
    const header = wwwAuthenticate({
      realm: 'a "quoted" \\ realm\r\nX-Injected: 1',
      errorDescription: 'say "hi" \\ é\n',
    });
    expect(header).not.toMatch(/[\r\n]/);
    const { scheme, params } = parseChallenge(header);
    expect(scheme).toBe('Bearer');
    expect(params.realm).toBe('a "quoted" \\ realm  X-Injected: 1');
    // error_description is restricted to RFC 6750's character set: no DQUOTE, no backslash, ASCII only.
    expect(params.error_description).toBe("say 'hi' / ??");
  });
});

describe('extractBearerToken (RFC 6750 §2.1)', () => {
  it('reads the token with a case-insensitive scheme', () => {
    expect(extractBearerToken('Bearer abc.def-ghi_~+/==')).toBe('abc.def-ghi_~+/==');
    expect(extractBearerToken('bearer abc')).toBe('abc');
    expect(extractBearerToken('BEARER   abc')).toBe('abc');
    expect(extractBearerToken(['Bearer abc'])).toBe('abc');
  });

  it('treats no header or another scheme as missing credentials (401, no error code)', () => {
    for (const value of [undefined, null, '', '  ', 'Basic dXNlcjpwYXNz']) {
      let error: unknown;
      try {
        extractBearerToken(value);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ResourceAuthError);
      expect(error).toMatchObject({ status: 401, code: 'invalid_token', credentialsMissing: true });
    }
  });

  it('refuses malformed headers, two schemes and repeated headers with 400 invalid_request', () => {
    const bad = [
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer a"b',
      'Bearer a=b',
      'Bearer a, Basic b',
      'Basic b, Bearer a',
      'Bearer a, Bearer b',
      '"Bearer" abc',
      ',Bearer a',
    ];
    for (const value of bad) {
      expect(() => extractBearerToken(value), value).toThrow(ResourceAuthError);
      try {
        extractBearerToken(value);
      } catch (e) {
        expect(e, value).toMatchObject({ status: 400, code: 'invalid_request' });
      }
    }
    expect(() => extractBearerToken(['Bearer a', 'Bearer b'])).toThrow(/more than one Authorization header/);
  });

  it('detects access_token in the query string', () => {
    expect(hasQueryAccessToken('/mcp?access_token=x')).toBe(true);
    expect(hasQueryAccessToken('/mcp?a=1&access%5Ftoken=x')).toBe(true);
    expect(hasQueryAccessToken('/mcp?a=access_token')).toBe(false);
    expect(hasQueryAccessToken('/mcp')).toBe(false);
    expect(hasQueryAccessToken(undefined)).toBe(false);
  });
});

describe('bearerErrorResponse', () => {
  it('maps each error to status, challenge and JSON body', () => {
    const url = 'https://x/.well-known/oauth-protected-resource';
    const missing = bearerErrorResponse(new ResourceAuthError('invalid_token', 'no', { credentialsMissing: true }), {
      resourceMetadataUrl: url,
      scope: ['mcp'],
    });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe(`Bearer resource_metadata="${url}", scope="mcp"`);
    const scope = bearerErrorResponse(
      new ResourceAuthError('insufficient_scope', 'need more', { requiredScopes: ['mcp', 'write'] }),
      { resourceMetadataUrl: url, scope: ['mcp'] },
    );
    expect(scope.status).toBe(403);
    expect(parseChallenge(scope.headers['www-authenticate']!).params).toEqual({
      resource_metadata: url,
      error: 'insufficient_scope',
      error_description: 'need more',
      scope: 'mcp write',
    });
    expect(scope.body).toEqual({ error: 'insufficient_scope', error_description: 'need more' });
    const down = bearerErrorResponse(new ResourceAuthError('temporarily_unavailable', 'later'));
    expect(down.status).toBe(503);
    expect(down.headers['www-authenticate']).toBeUndefined();
  });
});

describe('protected-resource metadata (RFC 9728)', () => {
  it('builds the document', () => {
    expect(
      protectedResourceMetadata({
        resource: 'https://mcp.example.com/mcp',
        authorizationServers: ['https://auth.example.com'],
        scopesSupported: ['mcp'],
        resourceName: 'Example MCP',
        resourceDocumentation: 'https://docs.example.com',
      }),
    ).toEqual({
      resource: 'https://mcp.example.com/mcp',
      authorization_servers: ['https://auth.example.com'],
      scopes_supported: ['mcp'],
      bearer_methods_supported: ['header'],
      resource_name: 'Example MCP',
      resource_documentation: 'https://docs.example.com',
    });
    expect(() =>
      protectedResourceMetadata({ resource: 'https://x/#f', authorizationServers: ['https://a'] }),
    ).toThrow();
    expect(() => protectedResourceMetadata({ resource: 'https://x/', authorizationServers: [] })).toThrow();
  });

  it('computes the well-known path and URL, path-inserted for a resource with a path', () => {
    expect(protectedResourceMetadataPath('https://x')).toBe('/.well-known/oauth-protected-resource');
    expect(protectedResourceMetadataPath('https://x/')).toBe('/.well-known/oauth-protected-resource');
    expect(protectedResourceMetadataPath('https://x/mcp')).toBe('/.well-known/oauth-protected-resource/mcp');
    expect(protectedResourceMetadataPath('https://x/a/b/')).toBe('/.well-known/oauth-protected-resource/a/b/');
    expect(protectedResourceMetadataUrl('https://x:8443/mcp')).toBe(
      'https://x:8443/.well-known/oauth-protected-resource/mcp',
    );
    expect(protectedResourceMetadataUrl('https://x/')).toBe('https://x/.well-known/oauth-protected-resource');
  });
});
