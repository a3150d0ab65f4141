// The failure converter of every berth client and worker when payloads are encrypted (codec/data-converter.ts),
// and of the workflow bundle: failure messages and stack traces travel as a payload, which the codec encrypts.
// Loaded by path (the SDK requires it so), also inside the workflow sandbox: nothing but the SDK here.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
