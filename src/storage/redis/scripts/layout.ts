import type { ScriptSource } from './prelude.js';

/** The Lua scripts of the layout upgrade that init() runs (../connection.ts). */
export const layoutScripts = {
  /** Replaces a record only if it is still the one read (a concurrent write wins). KEYS: record. ARGV: now, old, new. */
  replaceIfUnchanged: {
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
return 1
`,
  },
} satisfies Record<string, ScriptSource>;
