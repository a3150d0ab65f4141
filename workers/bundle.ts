// `node --import tsx workers/bundle.ts [out.js]`: bundles the workflow code once, at image build time. Workers
// load it with BERTH_WORKFLOW_BUNDLE=<out.js>: they start without webpack, and every worker of a release runs the
// same bytes (replay tests check the same sources).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { failureConverterPath } from '../codec/data-converter.ts';
import { workflowsPath } from './run.ts';

const out = resolve(process.argv[2] ?? 'dist/workflow-bundle.js');
// The bundle cannot know whether a deployment encrypts: its failures always travel encoded (clients read both).
const { code } = await bundleWorkflowCode({ workflowsPath, failureConverterPath });
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, code);
console.log(`workflow bundle: ${out} (${(code.length / 1024).toFixed(0)} KiB)`);
