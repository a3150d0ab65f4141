// `npm run bench [-- <name>]`: runs bench/<name>.ts, `replicate` by default.
const name = process.argv[2] ?? 'replicate';
if (!/^[a-z-]+$/.test(name)) throw new Error(`no benchmark "${name}"`);
process.argv.splice(2, 1);
await import(`./${name}.ts`);
