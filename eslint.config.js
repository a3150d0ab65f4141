// ESLint over every TypeScript file, type-aware through tsconfig.json. The promise rules come first, as in the
// Temporal samples: an unawaited promise in a workflow or an activity is a step that silently never happened.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', '.tools/', '.berth/', 'bench/results/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's runner awaits the promises test() and describe() return; awaiting them by hand would serialise.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // `{ secret: _, ...rest }` is how berth drops a field (a credential, a private key) from an object it passes on.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true, argsIgnorePattern: '^_' }],
      // JSON from registries, clouds and the API is `any` until zod (at the boundary) or an assertion (in tests) checks
      // it: flagging every property read of it would bury the findings that matter.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Activities and harness handles are objects of `this`-free functions handed around by reference (to Worker,
      // MockActivityEnvironment.run, cleanup lists): an unbound call is how they are meant to be used.
      '@typescript-eslint/unbound-method': 'off',
      // Interfaces berth implements take async functions (PayloadCodec, Fastify handlers, waitUntil's probe, the AWS
      // credential provider): an async function without an await is how those are written, not a mistake.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests read the API's and registries' JSON as `any` and assert on it field by field.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Kysely's own rule for migrations: they are typed against no schema, since the schema they see changes under them.
    files: ['**/migrations/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
