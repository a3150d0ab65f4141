// Starts the berth CLI (bin/berth) from a bundle of cli/berth.ts that esbuild makes on the first run after a
// change, kept in node_modules/.cache/berth/: a command then starts in tens of milliseconds, not the ~0.4 s of
// compiling TypeScript on every run (what makes `berth copy` as quick to start as a Go binary matters in a loop).
// The bundle is split where the CLI imports lazily (the API client, berth.yaml's parser), so a command compiles
// only the code it runs. Plain JavaScript because it runs before anything can compile TypeScript. Without
// esbuild or a writable cache, tsx runs the sources as before.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = join(root, 'cli', 'berth.ts');
const dir = join(root, 'node_modules', '.cache', 'berth-cli');
const manifest = join(dir, 'current.json');

/** The current build's entry, if no file it was made from changed since that build started. */
function current() {
  try {
    const { startedAt, inputs, main } = JSON.parse(readFileSync(manifest, 'utf8'));
    statSync(join(dir, main));
    return inputs.every((file) => statSync(join(root, file)).mtimeMs < startedAt) ? join(dir, main) : undefined;
  } catch {
    return undefined;
  }
}

/** Module-relative paths (`new URL('../x', import.meta.url)`) must stay those of the sources, not the bundle's. */
const sourceUrls = {
  name: 'source-urls',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
    });
  },
};

/** Builds into a directory of its own and makes it current; a process still running an older build keeps it. */
async function build() {
  const { build } = await import('esbuild');
  const startedAt = Date.now();
  const name = `${startedAt}-${process.pid}`;
  let previous;
  try {
    previous = JSON.parse(readFileSync(manifest, 'utf8')).main.split('/')[0];
  } catch {
    previous = undefined;
  }
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: join(dir, name),
    metafile: true,
    logLevel: 'silent',
    // Bundled CommonJS packages require() Node's own modules, which an ES module has no require for.
    banner: { js: "import { createRequire as berthRequire } from 'node:module'; const require = berthRequire(import.meta.url);" },
    plugins: [sourceUrls],
  });
  // Concurrent first runs each build and switch: whichever switches last, the current build is whole.
  writeFileSync(`${manifest}.${name}`, JSON.stringify({ startedAt, inputs: Object.keys(result.metafile.inputs), main: `${name}/berth.js` }));
  renameSync(`${manifest}.${name}`, manifest);
  for (const old of readdirSync(dir)) if (old !== name && old !== previous && !old.endsWith('.json')) rmSync(join(dir, old), { recursive: true, force: true });
  return join(dir, name, 'berth.js');
}

let main = current();
if (!main) {
  try {
    main = await build();
  } catch {
    const { register } = await import('tsx/esm/api');
    register();
    main = entry;
  }
}
await import(pathToFileURL(main).href);
