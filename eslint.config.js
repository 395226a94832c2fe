// ESLint flat config: type-aware typescript-eslint rules for the TypeScript tree, the JS rules for the .mjs scripts,
// and the import boundaries between the layers (docs/architecture.md, "Layers and what may import what").
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// ---- Import boundaries -----------------------------------------------------------------------------------------
// Which folders of src/ each layer may not import (matched on the relative specifier as written). `context`, `server`
// and `index` are src/context.ts (the composition root: Deps), src/server.ts and src/index.ts (the public API).
// docs/architecture.md explains the layers. Tests (*.test.ts) are exempt: they compose whatever they need.
/** What only the top imports: the HTTP app, the CLI, the published toolkit, src/server.ts and src/index.ts. */
const TOP = ['http', 'cli', 'resource', 'server', 'index'];
const UPPER = {
  // The records, store ports and OAuth errors: the bottom layer, importing nothing else of src/.
  model: [
    'upstream',
    'tenants',
    'core',
    'storage',
    'config',
    'clients',
    'grants',
    'authorization',
    'endpoints',
    'ui',
    'context',
    ...TOP,
  ],
  core: [
    'upstream',
    'tenants',
    'storage',
    'config',
    'clients',
    'grants',
    'authorization',
    'endpoints',
    'ui',
    'context',
    ...TOP,
  ],
  // storage/sql/x.ts may import `../index.js`: that is storage/index.ts, so `index` is not listed here.
  storage: [
    'upstream',
    'tenants',
    'config',
    'clients',
    'grants',
    'authorization',
    'endpoints',
    'ui',
    'context',
    'http',
    'cli',
    'resource',
    'server',
  ],
  config: ['upstream', 'tenants', 'clients', 'grants', 'authorization', 'endpoints', 'ui', 'context', ...TOP],
  clients: ['upstream', 'tenants', 'grants', 'authorization', 'endpoints', 'ui', 'context', ...TOP],
  ui: [
    'upstream',
    'tenants',
    'storage',
    'config',
    'clients',
    'grants',
    'authorization',
    'endpoints',
    'context',
    ...TOP,
  ],
  grants: ['tenants', 'authorization', 'endpoints', 'ui', ...TOP],
  // The authorization flow (authorize, login, consent, sessions, codes) sits beside endpoints/: neither imports the
  // other. It reaches the store through the model's ports only, and renders nothing (http/ turns its views into pages).
  authorization: ['endpoints', 'storage', 'ui', 'tenants', ...TOP],
  endpoints: ['authorization', 'tenants', ...TOP],
  // Upstream identity providers (the relying-party side): below the flow, beside clients/.
  upstream: ['tenants', 'grants', 'authorization', 'endpoints', 'ui', 'context', ...TOP],
  // The tenant registry and admin operations: composed by server.ts, served by http/ and the CLI.
  tenants: TOP,
  http: TOP.filter((name) => name !== 'http'),
};
const ROOT_MODULES = new Set(['context', 'server', 'index']);

/**
 * Known violations, to remove as the layers are fixed (the list only shrinks; a new file or a new import fails).
 * Each entry: the importing files, and the specifier they may still use.
 */
const KNOWN_VIOLATIONS = [
  // known: config → grants/index (the static-client grant_types enum reads the grant registry, the one list of grant
  // types, so a config file naming an unknown grant fails at parse with its path); goes when the schema takes the
  // registry's names as a parameter from the composition root.
  { files: ['src/config/schema.ts'], allow: 'grants/index' },
];

/** no-restricted-imports patterns forbidding `names` (minus the one `allow`ed module) for a layer's files. */
function forbidden(layer, names, allow) {
  return names.map((name) => {
    // A layer folder or src/context.ts, server.ts from any depth (`../storage/x.js`, `../../context.js`); `index` only
    // from a layer's top folder, since deeper `../index.js` is the layer's own index (storage/sql → storage/index.ts).
    const up = name === 'index' ? '\\.\\./' : '(\\.\\./)+';
    const target = ROOT_MODULES.has(name) ? `${up}${name}\\.js$` : `${up}${name}/`;
    const except = allow?.startsWith(`${name}/`) ? `(?!${allow.slice(name.length + 1)}\\.js$)` : '';
    return {
      regex: `^${target}${except}`,
      message: `${layer}/ may not import ${name}${ROOT_MODULES.has(name) ? '.ts' : '/'} (layers: docs/architecture.md)`,
    };
  });
}

/**
 * No AsyncLocalStorage (nor anything else of async_hooks) in src/: on Node 20 an active one installs a promise hook
 * that runs for every promise of the process. Measured (valgrind, in-process client_credentials loop): 1.52M
 * instructions per token request without, 1.86M with it: +22% on the hottest path. Measured again when it was
 * removed: 1.52-1.56M without, 1.58-1.85M with (a run varies with when V8 compiles; outside the compiler 0.98M
 * without, 1.04-1.28M with). The audit context is passed explicitly instead (core/audit.ts `emit(event, context)`).
 * In every no-restricted-imports entry below, since a later entry replaces an earlier one.
 */
const NO_ASYNC_HOOKS = ['node:async_hooks', 'async_hooks'].map((name) => ({
  name,
  message:
    'no async_hooks / AsyncLocalStorage in src/: a promise hook on every promise costs +22% per token request on Node 20; pass the context explicitly (eslint.config.js)',
}));

const boundaries = [
  {
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: NO_ASYNC_HOOKS }] },
  },
  ...Object.entries(UPPER).map(([layer, names]) => ({
    files: [`src/${layer}/**/*.ts`],
    ignores: ['src/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: NO_ASYNC_HOOKS, patterns: forbidden(layer, names) }] },
  })),
  // The published toolkit (gatehouse/resource) stands alone: nothing from the server's layers.
  {
    files: ['src/resource/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^\\.\\./', message: 'resource/ is the published toolkit: it may import only resource/' },
          ],
          paths: NO_ASYNC_HOOKS,
        },
      ],
    },
  },
  ...KNOWN_VIOLATIONS.map(({ files, allow }) => {
    const layer = files[0].split('/')[1];
    return {
      files,
      rules: {
        'no-restricted-imports': ['error', { paths: NO_ASYNC_HOOKS, patterns: forbidden(layer, UPPER[layer], allow) }],
      },
    };
  }),
];

export default defineConfig(
  globalIgnores(['dist/', 'coverage/', 'data/', 'bench/results/', '**/node_modules/']),

  // JavaScript: bench/, scripts/, bin/ and this file (plain Node ESM, no type information).
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },

  // TypeScript: src/, test/, examples/, vitest.config.ts, checked with the types of tsconfig.json.
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Store and handler methods implement Promise-returning interfaces; `async` without `await` is how a throw
      // becomes a rejection instead of a synchronous exception.
      '@typescript-eslint/require-await': 'off',
      // The validators match control characters on purpose (redirect URIs, header values, identities).
      'no-control-regex': 'off',
      // `_name` marks a value destructured only to leave it out of the rest (`const { secret: _s, ...safe } = x`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // `declare global { namespace Express { … } }` is the only way to augment Express's Request type.
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
    },
  },

  // Tests (and the store contract suite and fixtures that live in src/) read untyped JSON responses and patch
  // prototypes and hosts on purpose.
  {
    files: ['test/**/*.ts', 'src/**/*.test.ts', 'src/storage/contract/**/*.ts'],
    rules: {
      // Responses are parsed JSON (`any`) checked with expect(); typing every body would only restate the assertions.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Tests keep a method to call or restore it later (`original.apply(this, args)`, `expect(obj.toString)`).
      '@typescript-eslint/unbound-method': 'off',
      // JSON bodies are typed `any` on purpose (see above), and their fields are stringified into failure messages.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },

  ...boundaries,
);
