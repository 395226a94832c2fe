import { describe, expect, it } from 'vitest';
import { InvalidScope } from '../model/errors.js';
import {
  formatScope,
  intersectScopes,
  isSubset,
  parseScope,
  requireScopeSubset,
  resolveRequestedScopes,
  unionScopes,
} from './scope.js';

describe('parseScope (RFC 6749 §3.3)', () => {
  it('returns [] for undefined, empty and all-space input', () => {
    expect(parseScope(undefined)).toEqual([]);
    expect(parseScope('')).toEqual([]);
    expect(parseScope('   ')).toEqual([]);
  });

  it('splits on spaces, in request order', () => {
    expect(parseScope('openid profile email')).toEqual(['openid', 'profile', 'email']);
  });

  it('tolerates repeated, leading and trailing spaces', () => {
    expect(parseScope('  openid   profile ')).toEqual(['openid', 'profile']);
  });

  it('de-duplicates keeping the first occurrence', () => {
    expect(parseScope('b a b c a')).toEqual(['b', 'a', 'c']);
  });

  it('is case-sensitive', () => {
    expect(parseScope('Read read')).toEqual(['Read', 'read']);
  });

  it('accepts every legal scope-token character class, including URIs', () => {
    expect(parseScope('! # [ ] ~ a:b https://api.example.com/read mcp:tools')).toEqual([
      '!',
      '#',
      '[',
      ']',
      '~',
      'a:b',
      'https://api.example.com/read',
      'mcp:tools',
    ]);
  });

  it.each([
    ['double quote %x22', 'read "write'],
    ['backslash %x5C', 'read wr\\ite'],
    ['tab (not a delimiter)', 'read\twrite'],
    ['newline', 'read\nwrite'],
    ['DEL %x7F', 'read\x7f'],
    ['NUL', 'read\x00'],
    ['non-ASCII', 'lecture écriture'],
  ])('throws invalid_scope on an illegal character: %s', (_label, raw) => {
    let err: unknown;
    try {
      parseScope(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidScope);
    expect((err as InvalidScope).code).toBe('invalid_scope');
    expect((err as InvalidScope).status).toBe(400);
  });
});

describe('formatScope', () => {
  it('joins with single spaces and round-trips parseScope', () => {
    expect(formatScope(['openid', 'profile'])).toBe('openid profile');
    expect(formatScope([])).toBe('');
    expect(parseScope(formatScope(['a', 'b:c']))).toEqual(['a', 'b:c']);
  });
});

describe('set helpers', () => {
  it('intersectScopes keeps the order of the first list', () => {
    expect(intersectScopes(['c', 'a', 'x'], ['a', 'b', 'c'])).toEqual(['c', 'a']);
    expect(intersectScopes(['a'], [])).toEqual([]);
  });

  it('isSubset', () => {
    expect(isSubset([], [])).toBe(true);
    expect(isSubset([], ['a'])).toBe(true);
    expect(isSubset(['a', 'b'], ['b', 'a', 'c'])).toBe(true);
    expect(isSubset(['a', 'd'], ['a', 'b', 'c'])).toBe(false);
    expect(isSubset(['a'], [])).toBe(false);
  });

  it('unionScopes preserves order of first appearance, without duplicates', () => {
    expect(unionScopes(['a', 'b'], ['b', 'c', 'a', 'd'])).toEqual(['a', 'b', 'c', 'd']);
    expect(unionScopes([], ['x', 'x'])).toEqual(['x']);
    expect(unionScopes([], [])).toEqual([]);
  });

  it('requireScopeSubset (RFC 6749 §6: refresh may only narrow)', () => {
    expect(() => requireScopeSubset(['read'], ['read', 'write'])).not.toThrow();
    expect(() => requireScopeSubset([], ['read'])).not.toThrow();
    expect(() => requireScopeSubset(['read', 'admin'], ['read', 'write'])).toThrow(InvalidScope);
    expect(() => requireScopeSubset(['read', 'admin'], ['read', 'write'])).toThrow(
      'requested scope exceeds the scope originally granted',
    );
  });
});

describe('resolveRequestedScopes', () => {
  const server = ['openid', 'profile', 'email', 'offline_access', 'mcp:tools'];

  it('empty request: the client allow-list (as supported by the server) without offline_access', () => {
    expect(resolveRequestedScopes([], ['openid', 'offline_access', 'mcp:tools', 'unknown'], server, false)).toEqual([
      'openid',
      'mcp:tools',
    ]);
  });

  it('empty request without a client allow-list: every server scope except offline_access', () => {
    expect(resolveRequestedScopes([], undefined, server, false)).toEqual(['openid', 'profile', 'email', 'mcp:tools']);
  });

  it('empty request in strict mode behaves the same (nothing was asked, nothing refused)', () => {
    expect(resolveRequestedScopes([], undefined, server, true)).toEqual(['openid', 'profile', 'email', 'mcp:tools']);
  });

  it('an empty client allow-list grants nothing, never "every server scope" (absent and empty differ)', () => {
    expect(resolveRequestedScopes([], [], server, false)).toEqual([]);
    expect(resolveRequestedScopes([], [], server, true)).toEqual([]);
    expect(resolveRequestedScopes(['mcp:tools', 'openid'], [], server, false)).toEqual([]);
    expect(() => resolveRequestedScopes(['mcp:tools'], [], server, true)).toThrow(InvalidScope);
  });

  it('offline_access is granted when explicitly requested and allowed', () => {
    expect(resolveRequestedScopes(['openid', 'offline_access'], undefined, server, false)).toEqual([
      'openid',
      'offline_access',
    ]);
  });

  it('narrows unknown and not-allowed scopes away (RFC 6749 §3.3), keeping request order', () => {
    expect(
      resolveRequestedScopes(['mcp:tools', 'admin', 'profile', 'openid'], ['openid', 'mcp:tools'], server, false),
    ).toEqual(['mcp:tools', 'openid']);
  });

  it('may narrow to nothing when nothing requested is allowed', () => {
    expect(resolveRequestedScopes(['admin'], ['openid'], server, false)).toEqual([]);
  });

  it('a client allow-list entry the server does not support is not grantable', () => {
    expect(resolveRequestedScopes(['legacy'], ['legacy', 'openid'], server, false)).toEqual([]);
  });

  it('strict: refuses with invalid_scope naming the unknown scopes and the setting, apart from the not-allowed ones', () => {
    let err: unknown;
    try {
      resolveRequestedScopes(['openid', 'admin', 'profile', 'root'], ['openid'], server, true);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidScope);
    expect((err as InvalidScope).description).toBe(
      'scope not known to this server: admin root (the server\'s "scopes" setting declares the scopes it knows); ' +
        'scope not allowed for this client: profile',
    );
  });

  it('strict: an unknown scope is refused even for a client without an allow-list', () => {
    expect(() => resolveRequestedScopes(['mcp:read'], undefined, server, true)).toThrow(
      'scope not known to this server: mcp:read (the server\'s "scopes" setting declares the scopes it knows)',
    );
  });

  it('strict: grants everything when everything is allowed', () => {
    expect(resolveRequestedScopes(['profile', 'openid'], ['openid', 'profile'], server, true)).toEqual([
      'profile',
      'openid',
    ]);
  });
});
