// berth's layers (README "Layout"), checked by `npm run check:layers` and first thing in `npm test`. A layer may
// import only from the layers before it: contracts <- config <- planning, inventory, schedules <- activities <-
// workflows (activities as types only) <- api, workers, cli.
const layers = {
  contracts: [],
  config: ['contracts'],
  metrics: ['contracts', 'config'],
  planning: ['contracts', 'config'],
  inventory: ['contracts', 'config'],
  schedules: ['contracts', 'config', 'planning'],
  activities: ['contracts', 'config', 'metrics', 'planning', 'inventory', 'schedules'],
  workflows: ['contracts', 'activities'],
};
// What a provider, an init step or a registry kind declares about itself for config and planning: pure zod schemas and
// facts kept beside their code, so adding one touches only its folder and the registry listing it.
const declarations = '^activities/(cloud/(schemas|[^/]+/schema)|hosts/steps/(schemas|[^/]+[.]schema)|registry/adapters/(kinds?|[^/]+/kind))[.]ts$';
const readsDeclarations = ['config', 'planning'];
const folders = '^(contracts|config|metrics|planning|inventory|schedules|activities|workflows|api|workers|cli|codec|embedded|scripts|bench|testbed|test)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...Object.entries(layers).map(([layer, below]) => ({
      name: `${layer}-layer`,
      comment: `${layer}/ imports only from ${below.length ? below.join(', ') : 'itself'} (and packages)`,
      severity: 'error',
      from: { path: `^${layer}/` },
      to: {
        path: folders,
        pathNot: [`^(${[layer, ...below].join('|')})/`, ...(readsDeclarations.includes(layer) ? [declarations] : [])],
      },
    })),
    {
      name: 'declarations-are-pure',
      comment: 'schema and kind files are read by config: they import only zod, config/fields.ts and each other',
      severity: 'error',
      from: { path: declarations },
      to: { pathNot: [declarations, '^config/fields[.]ts$', '^node_modules/zod/'] },
    },
    {
      name: 'workflows-import-activities-as-types',
      comment: 'workflow code is bundled apart from activities: it may name their types, never run their code',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'workflow-safe',
      comment: 'workflows and the contracts they share are deterministic: no Node built-ins',
      severity: 'error',
      from: { path: '^(contracts|workflows)/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'bench-apart-from-test',
      comment: 'benchmarks share bench/lib.ts and testbed/ (what tests and benchmarks both start), never the tests',
      severity: 'error',
      from: { path: '^(bench|testbed)/' },
      to: { path: '^test/' },
    },
    {
      name: 'no-circular',
      comment: 'modules that need each other at runtime (a type named back, as routes name ApiDeps, is no cycle)',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(\.tools|\.berth|test/histories|bench/results)/' },
    // Type-only imports count: a layer must not even name the types of a layer above it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'], exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
