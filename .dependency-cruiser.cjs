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
const folders = '^(contracts|config|metrics|planning|inventory|schedules|activities|workflows|api|workers|cli|codec|embedded|scripts|bench|test)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...Object.entries(layers).map(([layer, below]) => ({
      name: `${layer}-layer`,
      comment: `${layer}/ imports only from ${below.length ? below.join(', ') : 'itself'} (and packages)`,
      severity: 'error',
      from: { path: `^${layer}/` },
      to: { path: folders, pathNot: `^(${[layer, ...below].join('|')})/` },
    })),
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
      comment: 'benchmarks share bench/lib.ts, never the tests',
      severity: 'error',
      from: { path: '^bench/' },
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
    exclude: { path: '^(node_modules|\.tools|\.berth|test/histories|bench/results)/' },
    // Type-only imports count: a layer must not even name the types of a layer above it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'], exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
