import { describe, expect, it } from 'vitest';
import { parseCliArgs } from './args.js';

describe('parseCliArgs', () => {
  it('takes a value that starts with one dash (a base64url key or client id) as a value, not short options', () => {
    const { values, positionals } = parseCliArgs({
      args: ['-IFoc26TJTfXlK8dn', '--client-id', '-abc', '--prefix', 'p'],
      options: { 'client-id': { type: 'string' }, prefix: { type: 'string' } },
      allowPositionals: true,
    });
    expect(positionals).toEqual(['-IFoc26TJTfXlK8dn']);
    expect(values).toEqual({ 'client-id': '-abc', prefix: 'p' });
  });

  it('still refuses an unknown long option and a positional where none is allowed', () => {
    expect(() => parseCliArgs({ args: ['--nope'], options: {} })).toThrow(/Unknown option '--nope'/);
    expect(() => parseCliArgs({ args: ['-x'], options: {} })).toThrow("Unexpected argument '-x'");
  });
});
