import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.pgrepl/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['bin/**/*.js'], languageOptions: { globals: { process: 'readonly' } } },
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: { process: 'readonly' } } },
  {
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Decisions are pure functions of observations: nothing in decide/ may reach a disk, a process,
    // a socket or the clock through an import. Types may come from anywhere.
    files: ['src/cluster/decide/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'child_process', 'net', 'pg'],
              allowTypeImports: true,
              message: 'decide/ is pure: pass the fact in as an observation instead',
            },
            {
              regex:
                '^\\.\\./(actions|operations|store|context)/|^\\.\\./observe/(?!observation\\.js$)|^\\.\\./\\.\\./(?!cluster-spec/|postgres/|backup/)|^\\.\\./\\.\\./postgres/(?!(lsn|render-pg-hba|render-postgresql-conf|upgrade-names)\\.js$)|^\\.\\./\\.\\./backup/(?!(pgbackrest-commands|render-pgbackrest-conf)\\.js$)',
              allowTypeImports: true,
              message:
                'decide/ may import only other decisions, observation types, cluster-spec/ and pure postgres/ and backup/ renderers',
            },
          ],
        },
      ],
    },
  },
  // cluster/'s folders form layers, each importing (at run time) only those below it: store/,
  // context/, observe/, decide/, actions/, operations/. So no cycle can form between them; a piece
  // two layers share moves down. Types may cross (they vanish at run time). decide/ and store/ have
  // stricter rules of their own below.
  ...[
    ['context', 'observe|decide|actions|operations'],
    ['observe', 'decide|actions|operations'],
    ['actions', 'operations'],
  ].map(([folder, above]) => ({
    files: [`src/cluster/${folder}/**/*.ts`],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^\\.\\./(${above})/`,
              allowTypeImports: true,
              message: `${folder}/ may import only the cluster/ layers below it (store < context < observe < decide < actions < operations): move what both need down`,
            },
          ],
        },
      ],
    },
  })),
  // The agent and the operator's side are two faces over cluster/: neither imports the other (what
  // both need, the HA layout, token and services, is in ha/, which imports neither).
  ...[
    ['agent', 'operator|cli'],
    ['operator', 'agent|cli'],
    ['ha', 'agent|operator|cli'],
  ].map(([folder, others]) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^\\.\\./(${others})/`,
              message: `${folder}/ may not import ${others
                .split('|')
                .map((f) => `${f}/`)
                .join(' or ')}: move what both need to ha/`,
            },
          ],
        },
      ],
    },
  })),
  {
    // store/ is what commands share (lock, journal, fenced nodes): it holds data and knows nothing
    // of the layers that use it, so that context/, which builds it, and store/ never import each other.
    files: ['src/cluster/store/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(context|observe|decide|actions|operations)/',
              message: 'store/ may not import the layers above it: pass what it needs in',
            },
          ],
        },
      ],
    },
  },
);
