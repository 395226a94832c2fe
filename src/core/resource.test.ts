import { describe, expect, it } from 'vitest';
import { InvalidTarget } from '../model/errors.js';
import { resolveResources } from './resource.js';

function targetError(fn: () => unknown): InvalidTarget {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidTarget) return err;
    throw err;
  }
  throw new Error('expected InvalidTarget');
}

describe('resolveResources (RFC 8707 §2)', () => {
  it('returns [] for no resource parameter', () => {
    expect(resolveResources([], [])).toEqual([]);
    expect(resolveResources([], ['https://mcp.example.com/'])).toEqual([]);
  });

  describe('no configured list: any absolute URI', () => {
    it('accepts absolute URIs unchanged, including non-http ones', () => {
      expect(resolveResources(['https://mcp.example.com/mcp', 'http://localhost:3000', 'urn:example:api'], [])).toEqual(
        ['https://mcp.example.com/mcp', 'http://localhost:3000', 'urn:example:api'],
      );
    });

    it('does not rewrite the trailing slash when there is nothing to map to', () => {
      expect(resolveResources(['https://mcp.example.com'], [])).toEqual(['https://mcp.example.com']);
      expect(resolveResources(['https://mcp.example.com/'], [])).toEqual(['https://mcp.example.com/']);
    });

    it('de-duplicates in order', () => {
      expect(resolveResources(['https://b.example/', 'https://a.example/', 'https://b.example/'], [])).toEqual([
        'https://b.example/',
        'https://a.example/',
      ]);
    });
  });

  it.each(['/mcp', 'mcp.example.com', '', '//mcp.example.com/'])(
    'refuses a non-absolute URI with invalid_target: %j',
    (value) => {
      const err = targetError(() => resolveResources([value], []));
      expect(err.code).toBe('invalid_target');
      expect(err.status).toBe(400);
      expect(err.description).toBe('resource must be an absolute URI');
    },
  );

  it.each(['https://mcp.example.com/#x', 'https://mcp.example.com/mcp#', 'urn:example:api#frag'])(
    'refuses a fragment (RFC 8707 §2 "MUST NOT include a fragment"): %s',
    (value) => {
      expect(targetError(() => resolveResources([value], [])).description).toBe('resource must not contain a fragment');
      expect(targetError(() => resolveResources([value], [value.split('#')[0]!])).description).toBe(
        'resource must not contain a fragment',
      );
    },
  );

  describe('with a configured list', () => {
    const allowed = ['https://mcp.example.com/', 'https://api.example.com/v1'];

    it('accepts configured values exactly', () => {
      expect(resolveResources(['https://api.example.com/v1', 'https://mcp.example.com/'], allowed)).toEqual([
        'https://api.example.com/v1',
        'https://mcp.example.com/',
      ]);
    });

    it('maps a value differing only by a trailing slash to the configured form (both directions)', () => {
      expect(resolveResources(['https://mcp.example.com'], allowed)).toEqual(['https://mcp.example.com/']);
      expect(resolveResources(['https://api.example.com/v1/'], allowed)).toEqual(['https://api.example.com/v1']);
    });

    it('strips or adds exactly one trailing slash, so the result is always a configured value', () => {
      // Only one slash is mapped: "//" maps to the configured "/" form, "///" does not.
      expect(resolveResources(['https://mcp.example.com//'], allowed)).toEqual(['https://mcp.example.com/']);
      expect(() => resolveResources(['https://mcp.example.com///'], allowed)).toThrow(InvalidTarget);
    });

    it('maps an upper-case scheme or host to the configured form, never the path (MCP canonical server URI)', () => {
      expect(resolveResources(['HTTPS://MCP.EXAMPLE.COM/'], allowed)).toEqual(['https://mcp.example.com/']);
      expect(resolveResources(['https://MCP.example.com'], allowed)).toEqual(['https://mcp.example.com/']);
      expect(resolveResources(['Https://API.Example.com/v1/'], allowed)).toEqual(['https://api.example.com/v1']);
    });

    it('de-duplicates after mapping', () => {
      expect(resolveResources(['https://mcp.example.com', 'https://mcp.example.com/'], allowed)).toEqual([
        'https://mcp.example.com/',
      ]);
    });

    it.each([
      'https://evil.example.com/',
      'https://mcp.example.com/other',
      'https://mcp.example.com///',
      'https://api.example.com/v1/extra',
      'https://api.example.com/v',
      'http://mcp.example.com/',
      'https://MCP.example.com/x',
      'https://api.example.com/V1',
      'https://user@MCP.example.com/',
    ])('refuses an unknown resource with invalid_target: %s', (value) => {
      expect(targetError(() => resolveResources([value], allowed)).description).toBe(
        `resource is not served by this authorization server: ${value}`,
      );
    });

    it('refuses the whole request when any one value is unknown', () => {
      expect(() => resolveResources(['https://mcp.example.com/', 'https://evil.example.com/'], allowed)).toThrow(
        InvalidTarget,
      );
    });
  });
});
