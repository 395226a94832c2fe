import { describe, expect, it } from 'vitest';
import { InvalidRequest } from '../model/errors.js';
import { collapseParams, parseRawParams, requiredParam } from './params.js';

describe('parseRawParams', () => {
  it('collects every value of every name, in order', () => {
    expect(parseRawParams('a=1&b=2&a=3')).toEqual({ a: ['1', '3'], b: ['2'] });
  });

  it('decodes form-urlencoding (+ is a space, %XX escapes)', () => {
    expect(parseRawParams('scope=openid+profile&redirect_uri=http%3A%2F%2F127.0.0.1%3A33418%2F')).toEqual({
      scope: ['openid profile'],
      redirect_uri: ['http://127.0.0.1:33418/'],
    });
  });

  it('keeps empty values and names without "="', () => {
    expect(parseRawParams('state=&nonce')).toEqual({ state: [''], nonce: [''] });
  });

  it('accepts a leading "?" (query strings) and an empty string', () => {
    expect(parseRawParams('?x=1')).toEqual({ x: ['1'] });
    expect(Object.keys(parseRawParams(''))).toEqual([]);
  });

  it('is prototype-free: __proto__ and constructor are ordinary names', () => {
    const raw = parseRawParams('__proto__=x&constructor=y&toString=z');
    expect(Object.getPrototypeOf(raw)).toBeNull();
    expect(raw['__proto__']).toEqual(['x']);
    expect(raw.constructor).toEqual(['y']);
    expect(raw.toString).toEqual(['z']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('collapseParams (RFC 6749 §3.1)', () => {
  it('collapses single values to strings', () => {
    expect(collapseParams({ client_id: ['abc'], scope: ['openid'] })).toEqual({ client_id: 'abc', scope: 'openid' });
  });

  it('treats parameters sent without a value as omitted', () => {
    const out = collapseParams({ state: [''], scope: ['openid'] });
    expect(out).toEqual({ scope: 'openid' });
    expect('state' in out).toBe(false);
  });

  it('refuses a repeated non-repeatable parameter with invalid_request naming it', () => {
    let err: unknown;
    try {
      collapseParams({ code: ['a', 'b'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRequest);
    expect((err as InvalidRequest).description).toBe('parameter code must not be included more than once');
  });

  it('refuses the same value repeated too', () => {
    expect(() => collapseParams({ scope: ['openid', 'openid'] })).toThrow(InvalidRequest);
  });

  it('an all-empty repeated parameter is simply omitted', () => {
    expect(collapseParams({ state: ['', ''] })).toEqual({});
  });

  it('keeps repeatable parameters as a list (RFC 8707 resource), dropping empty values', () => {
    expect(collapseParams({ resource: ['https://a.example/', '', 'https://b.example/'] }, ['resource'])).toEqual({
      resource: ['https://a.example/', 'https://b.example/'],
    });
    expect(collapseParams({ resource: ['https://a.example/'] }, ['resource'])).toEqual({
      resource: ['https://a.example/'],
    });
    expect(collapseParams({ resource: [''] }, ['resource'])).toEqual({});
  });

  it('only the named parameters are repeatable', () => {
    expect(() => collapseParams({ resource: ['a', 'b'], scope: ['x', 'y'] }, ['resource'])).toThrow(
      'parameter scope must not be included more than once',
    );
  });

  it('a parameter named __proto__ cannot pollute Object.prototype', () => {
    const out = collapseParams(parseRawParams('__proto__=x&constructor=y&a=1'));
    expect(out.a).toBe('1');
    expect(out.constructor).toBe('y');
    // Prototype-free, so __proto__ is an ordinary key.
    expect(Object.getPrototypeOf(out)).toBeNull();
    expect(out['__proto__']).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('works end to end with parseRawParams', () => {
    expect(
      collapseParams(parseRawParams('grant_type=authorization_code&code=xyz&state=&resource=r1&resource=r2'), [
        'resource',
      ]),
    ).toEqual({
      grant_type: 'authorization_code',
      code: 'xyz',
      resource: ['r1', 'r2'],
    });
  });

  // BUG (spec deviation): RFC 6749 §3.1 says a parameter sent without a value MUST be treated as omitted, so
  // `scope=&scope=openid` carries scope exactly once. collapseParams refuses it because it also counts the empty
  // value (`|| values.length > 1`). authorize.ts's singleRaw() already treats this case as a single value, so the two
  // layers disagree.
  it('RFC 6749 §3.1: an empty duplicate is omitted, so the other value stands', () => {
    expect(collapseParams({ scope: ['', 'openid'] })).toEqual({ scope: 'openid' });
  });
});

describe('requiredParam (RFC 6749 §5.2: a missing parameter is invalid_request)', () => {
  it('returns the single value', () => {
    expect(requiredParam({ code: 'abc' }, 'code')).toBe('abc');
    expect(requiredParam({ resource: ['https://a.example/'] }, 'resource')).toBe('https://a.example/');
  });

  it.each([
    ['missing', {}],
    ['undefined', { code: undefined }],
    ['empty', { code: '' }],
    ['an empty list', { code: [] }],
  ])('refuses %s with invalid_request', (_label, params) => {
    const err = (() => {
      try {
        requiredParam(params, 'code');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidRequest);
    expect((err as InvalidRequest).description).toBe('code is required');
  });

  it('refuses a repeated value with invalid_request', () => {
    expect(() => requiredParam({ code: ['a', 'b'] }, 'code')).toThrow(InvalidRequest);
  });
});
