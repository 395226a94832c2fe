import { describe, expect, it } from 'vitest';
import {
  checkRedirectUriForRegistration,
  describeRedirectUriProblem,
  isLoopback,
  matchRedirectUri,
  type RedirectUriProblem,
} from './redirect-uri.js';

describe('isLoopback', () => {
  it.each(['http://127.0.0.1/', 'http://[::1]:8080/cb', 'http://localhost:3000/x', 'https://localhost/'])(
    'is true for %s',
    (uri) => expect(isLoopback(new URL(uri))).toBe(true),
  );
  it.each(['http://127.0.0.2/', 'http://localhost.evil.example/', 'http://example.com/', 'http://0.0.0.0/'])(
    'is false for %s',
    (uri) => expect(isLoopback(new URL(uri))).toBe(false),
  );
});

describe('checkRedirectUriForRegistration (RFC 7591 §2, RFC 8252 §7, OAuth 2.1 §2.3.1)', () => {
  describe('accepted for both application types', () => {
    it.each([
      'https://app.example.com/callback',
      'https://vscode.dev/redirect',
      'https://app.example.com/cb?tenant=1',
      'http://127.0.0.1/',
      'http://127.0.0.1:33418/',
      'http://[::1]/cb',
      'http://localhost/callback',
      'http://localhost:6274/oauth/callback',
    ])('%s', (uri) => {
      expect(checkRedirectUriForRegistration(uri, 'web')).toBeUndefined();
      expect(checkRedirectUriForRegistration(uri, 'native')).toBeUndefined();
    });
  });

  describe('private-use URI schemes (RFC 8252 §7.1): native only', () => {
    it.each([
      'cursor://anysphere.cursor-mcp/oauth/callback',
      'com.example.app:/cb',
      'vscode://vscode.github-authentication/did-authenticate',
    ])('%s is allowed for native and refused for web', (uri) => {
      expect(checkRedirectUriForRegistration(uri, 'native')).toBeUndefined();
      expect(checkRedirectUriForRegistration(uri, 'web')).toBe<RedirectUriProblem>('web_client_non_https');
    });
  });

  it.each([
    ['http://example.com/cb', 'http_not_loopback'],
    ['http://localhost.evil.example/cb', 'http_not_loopback'],
    ['http://127.0.0.2/cb', 'http_not_loopback'],
    ['http://192.168.1.10/cb', 'http_not_loopback'],
  ] as const)('refuses plain http to a non-loopback host (OAuth 2.1 §2.3.1): %s', (uri, problem) => {
    expect(checkRedirectUriForRegistration(uri, 'native')).toBe(problem);
    expect(checkRedirectUriForRegistration(uri, 'web')).toBe(problem);
  });

  it.each(['http://127.0.0.1:080/cb', 'http://localhost:0/cb', 'http://[::1]:00/cb', 'http://localhost:/cb'])(
    'refuses a loopback port that is not canonical decimal 1-65535: %s',
    (uri) => {
      expect(checkRedirectUriForRegistration(uri, 'native')).toBe<RedirectUriProblem>('bad_loopback_port');
      expect(describeRedirectUriProblem('bad_loopback_port', uri)).toContain('without leading zeros');
    },
  );

  it.each([
    ['https://app.example.com/cb#frag', 'has_fragment'],
    ['https://app.example.com/cb#', 'has_fragment'],
    ['http://127.0.0.1/cb#x', 'has_fragment'],
    ['com.example.app:/cb#x', 'has_fragment'],
  ] as const)('refuses a fragment (RFC 6749 §3.1.2): %s', (uri, problem) => {
    expect(checkRedirectUriForRegistration(uri, 'native')).toBe(problem);
    expect(checkRedirectUriForRegistration(uri, 'web')).toBe(problem);
  });

  it.each(['https://user:pass@app.example.com/cb', 'https://user@app.example.com/cb', 'http://evil@127.0.0.1/cb'])(
    'refuses userinfo: %s',
    (uri) => {
      expect(checkRedirectUriForRegistration(uri, 'web')).toBe<RedirectUriProblem>('has_userinfo');
      expect(checkRedirectUriForRegistration(uri, 'native')).toBe<RedirectUriProblem>('has_userinfo');
    },
  );

  it.each([
    'javascript:alert(1)',
    'JavaScript:alert(document.cookie)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox(1)',
    'file:///etc/passwd',
    'blob:https://app.example.com/uuid',
    'ws://localhost/cb',
    'wss://app.example.com/cb',
    'ftp://files.example.com/cb',
    'about:blank',
  ])('refuses dangerous schemes even for native clients: %s', (uri) => {
    expect(checkRedirectUriForRegistration(uri, 'native')).toBe<RedirectUriProblem>('insecure_scheme');
    expect(checkRedirectUriForRegistration(uri, 'web')).toBe<RedirectUriProblem>('insecure_scheme');
  });

  it.each(['/callback', 'callback', '//app.example.com/cb', '', 'https://'])(
    'refuses a non-absolute URI: %j',
    (uri) => {
      expect(checkRedirectUriForRegistration(uri, 'web')).toBe<RedirectUriProblem>('not_absolute');
    },
  );
});

describe('describeRedirectUriProblem', () => {
  it('names the URI and the reason for every problem', () => {
    const uri = 'http://example.com/cb';
    expect(describeRedirectUriProblem('not_absolute', uri)).toBe(
      'redirect_uri "http://example.com/cb" is not an absolute URI',
    );
    expect(describeRedirectUriProblem('has_fragment', uri)).toBe(
      'redirect_uri "http://example.com/cb" must not contain a fragment',
    );
    expect(describeRedirectUriProblem('has_userinfo', uri)).toBe(
      'redirect_uri "http://example.com/cb" must not contain user info',
    );
    expect(describeRedirectUriProblem('http_not_loopback', uri)).toBe(
      'redirect_uri "http://example.com/cb" uses http but is not a loopback address; use https',
    );
    expect(describeRedirectUriProblem('insecure_scheme', uri)).toBe(
      'redirect_uri "http://example.com/cb" uses a forbidden scheme',
    );
    expect(describeRedirectUriProblem('web_client_non_https', uri)).toContain('application_type=native');
  });

  it('JSON-quotes the URI so control characters cannot forge the message', () => {
    expect(describeRedirectUriProblem('not_absolute', 'a"\nb')).toBe('redirect_uri "a\\"\\nb" is not an absolute URI');
  });
});

describe('matchRedirectUri (RFC 9700 §4.1.3 exact match, RFC 8252 §7.3 loopback port)', () => {
  it('returns the URI for an exact match', () => {
    const registered = ['https://app.example.com/cb', 'https://vscode.dev/redirect'];
    expect(matchRedirectUri(registered, 'https://vscode.dev/redirect')).toBe('https://vscode.dev/redirect');
    expect(matchRedirectUri(registered, 'https://app.example.com/cb')).toBe('https://app.example.com/cb');
  });

  it('returns an exact match for a loopback URI registered with its port', () => {
    expect(matchRedirectUri(['http://127.0.0.1:33418/'], 'http://127.0.0.1:33418/')).toBe('http://127.0.0.1:33418/');
  });

  it('returns undefined when nothing is registered', () => {
    expect(matchRedirectUri([], 'https://app.example.com/cb')).toBeUndefined();
  });

  it.each([
    ['http://127.0.0.1/', 'http://127.0.0.1:33418/'],
    ['http://127.0.0.1/', 'http://127.0.0.1:1/'],
    ['http://127.0.0.1/', 'http://127.0.0.1:65535/'],
    ['http://[::1]/cb', 'http://[::1]:51000/cb'],
    ['http://localhost/callback', 'http://localhost:49152/callback'],
    ['http://localhost/callback?x=1', 'http://localhost:8080/callback?x=1'],
    ['http://localhost', 'http://localhost:8080'],
  ])('RFC 8252 §7.3: registered port-less loopback %s matches %s', (registered, requested) => {
    // The match is the registered (port-less) form; the caller redirects to what the client requested.
    expect(matchRedirectUri(['https://other.example/cb', registered], requested)).toBe(registered);
  });

  // RFC 8252 §7.3 / OAuth 2.1: any port at request time, also when the registered URI names one (VS Code registers
  // http://127.0.0.1:33418/ and falls back to a random port when 33418 is busy).
  it.each([
    ['http://127.0.0.1:33418/', 'http://127.0.0.1:51234/'],
    ['http://127.0.0.1:33418/cb', 'http://127.0.0.1:1/cb'],
    ['http://127.0.0.1:33418/', 'http://127.0.0.1:65535/'],
    ['http://127.0.0.1:33418/', 'http://127.0.0.1/'],
    ['http://[::1]:8080/cb', 'http://[::1]:51000/cb'],
    ['http://localhost:6274/oauth/callback', 'http://localhost:6275/oauth/callback'],
    ['http://localhost:6274/cb?x=1', 'http://localhost:40000/cb?x=1'],
  ])('RFC 8252 §7.3: registered loopback %s with a port matches %s', (registered, requested) => {
    expect(matchRedirectUri(['https://other.example/cb', registered], requested)).toBe(registered);
  });

  it.each([
    ['leading zero', 'http://127.0.0.1:33418/cb', 'http://127.0.0.1:080/cb'],
    ['leading zero, port-less registration', 'http://127.0.0.1/cb', 'http://127.0.0.1:080/cb'],
    ['leading zero, registered verbatim', 'http://127.0.0.1:080/cb', 'http://127.0.0.1:080/cb'],
    ['port 0', 'http://localhost/cb', 'http://localhost:0/cb'],
    ['port above 65535', 'http://[::1]:8080/cb', 'http://[::1]:65536/cb'],
    ['six digits', 'http://localhost/cb', 'http://localhost:000080/cb'],
  ])('refuses a non-canonical loopback port (%s)', (_label, registered, requested) => {
    expect(matchRedirectUri([registered], requested)).toBeUndefined();
  });

  it('keeps host, path and query exact for loopback URIs registered with a port', () => {
    expect(matchRedirectUri(['http://127.0.0.1:33418/cb'], 'http://localhost:33418/cb')).toBeUndefined();
    expect(matchRedirectUri(['http://127.0.0.1:33418/cb'], 'http://127.0.0.1:40000/cb2')).toBeUndefined();
    expect(matchRedirectUri(['http://127.0.0.1:33418/cb?a=1'], 'http://127.0.0.1:40000/cb?a=2')).toBeUndefined();
    expect(matchRedirectUri(['http://127.0.0.1:33418/cb'], 'https://127.0.0.1:40000/cb')).toBeUndefined();
    expect(matchRedirectUri(['http://127.0.0.1:33418/cb'], 'http://127.0.0.1:40000/cb#x')).toBeUndefined();
  });

  it.each([
    ['different path', 'http://localhost/callback', 'http://localhost:5000/callback2'],
    ['path prefix', 'http://localhost/callback', 'http://localhost:5000/callback/extra'],
    ['different query', 'http://localhost/cb?a=1', 'http://localhost:5000/cb?a=2'],
    ['added query', 'http://localhost/cb', 'http://localhost:5000/cb?a=1'],
    ['different loopback host', 'http://127.0.0.1/cb', 'http://localhost:5000/cb'],
    ['IPv6 vs IPv4', 'http://[::1]/cb', 'http://127.0.0.1:5000/cb'],
    ['https scheme requested', 'http://localhost/cb', 'https://localhost:5000/cb'],
    ['fragment appended', 'http://localhost/cb', 'http://localhost:5000/cb#x'],
    ['userinfo trick', 'http://localhost/cb', 'http://localhost:5000@evil.example/cb'],
    ['non-loopback host', 'http://localhost/cb', 'http://evil.example:5000/cb'],
    ['empty port', 'http://localhost/cb', 'http://localhost:/cb'],
  ])('no match on %s', (_label, registered, requested) => {
    expect(matchRedirectUri([registered], requested)).toBeUndefined();
  });

  it('gives https://localhost/ no port wildcard (RFC 8252 §7.3 is for http loopback only)', () => {
    expect(matchRedirectUri(['https://localhost/'], 'https://localhost:8443/')).toBeUndefined();
    expect(matchRedirectUri(['https://localhost/'], 'https://localhost/')).toBe('https://localhost/');
  });

  it('gives non-loopback hosts no port wildcard', () => {
    expect(matchRedirectUri(['https://app.example.com/cb'], 'https://app.example.com:444/cb')).toBeUndefined();
    expect(matchRedirectUri(['https://app.example.com:443/cb'], 'https://app.example.com:444/cb')).toBeUndefined();
    expect(matchRedirectUri(['https://localhost:8443/cb'], 'https://localhost:8444/cb')).toBeUndefined();
    expect(matchRedirectUri(['http://127.0.0.2:8080/cb'], 'http://127.0.0.2:8081/cb')).toBeUndefined();
  });

  it('has no trailing-slash leniency', () => {
    expect(matchRedirectUri(['https://vscode.dev/redirect'], 'https://vscode.dev/redirect/')).toBeUndefined();
    expect(matchRedirectUri(['https://vscode.dev/redirect/'], 'https://vscode.dev/redirect')).toBeUndefined();
    expect(matchRedirectUri(['http://127.0.0.1/'], 'http://127.0.0.1:33418')).toBeUndefined();
    expect(matchRedirectUri(['http://127.0.0.1'], 'http://127.0.0.1:33418/')).toBeUndefined();
  });

  it('is case-sensitive (no normalisation)', () => {
    expect(matchRedirectUri(['https://app.example.com/CB'], 'https://app.example.com/cb')).toBeUndefined();
    expect(matchRedirectUri(['https://app.example.com/cb'], 'HTTPS://APP.EXAMPLE.COM/cb')).toBeUndefined();
  });

  it('does not match a private-use redirect with a different path', () => {
    const registered = ['cursor://anysphere.cursor-mcp/oauth/callback'];
    expect(matchRedirectUri(registered, 'cursor://anysphere.cursor-mcp/oauth/callback')).toBe(registered[0]);
    expect(matchRedirectUri(registered, 'cursor://anysphere.cursor-mcp/oauth/callback2')).toBeUndefined();
  });

  // Regression (was a bug): the port group is /\d{1,5}/, so "ports" above 65535 match. The endpoint then echoes a redirect_uri that is
  // not a valid URL (new URL('http://localhost:99999/cb') throws), which turns a client error into a 500 or an
  // unusable redirect. RFC 8252 §7.3 is about real ports only.
  it('RFC 8252 §7.3: does not match a loopback "port" outside 0..65535', () => {
    expect(matchRedirectUri(['http://localhost/cb'], 'http://localhost:99999/cb')).toBeUndefined();
  });
});
