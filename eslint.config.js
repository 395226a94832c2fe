// ESLint flat config: type-aware typescript-eslint rules for the TypeScript tree, the JS rules for the .mjs scripts,
// and the import boundaries between the layers (docs/architecture.md, "Layers and what may import what").
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

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
);
