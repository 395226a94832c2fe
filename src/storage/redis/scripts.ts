/**
 * The one registry of the Redis store's Lua scripts. Each feature's scripts live in ./scripts/<feature>.ts; the
 * helpers every script shares, and the conventions they keep, are in ./scripts/prelude.ts. The connection defines
 * each of these as an ioredis command (EVALSHA, falling back to EVAL on NOSCRIPT).
 */
import { codeScripts } from './scripts/codes.js';
import { counterScripts } from './scripts/counters.js';
import { grantScripts } from './scripts/grants.js';
import { indexScripts } from './scripts/indexes.js';
import { layoutScripts } from './scripts/layout.js';
import { PRELUDE, type ScriptSource } from './scripts/prelude.js';
import { recordScripts } from './scripts/records.js';
import { replayGuardScripts } from './scripts/replay-guard.js';
import { signingKeyScripts } from './scripts/signing-keys.js';
import { userScripts } from './scripts/users.js';

const sources = {
  ...codeScripts,
  ...grantScripts,
  ...replayGuardScripts,
  ...indexScripts,
  ...recordScripts,
  ...userScripts,
  ...signingKeyScripts,
  ...counterScripts,
  ...layoutScripts,
} satisfies Record<string, ScriptSource>;

/** Names of the store's scripts. */
export type ScriptName = keyof typeof sources;

/** The scripts with the prelude prepended, ready for ioredis `defineCommand`. */
export const SCRIPTS: Readonly<Record<ScriptName, string>> = Object.fromEntries(
  Object.entries(sources).map(([name, source]) => [name, `${PRELUDE}\n${source.lua}`]),
) as Record<ScriptName, string>;
