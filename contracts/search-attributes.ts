import { defineSearchAttributeKey } from '@temporalio/common';

// berth's typed search attributes: the dev server registers them at start (embedded/temporal-dev-server.ts), a
// production cluster once (docs/operations.md). The API sets them when it starts a workflow, so the Temporal UI
// and GET /v1/workflows can filter by them.
export const BerthKind = defineSearchAttributeKey('BerthKind', 'KEYWORD');
export const BerthProject = defineSearchAttributeKey('BerthProject', 'KEYWORD');
export const BerthCluster = defineSearchAttributeKey('BerthCluster', 'KEYWORD');
export const BerthIdc = defineSearchAttributeKey('BerthIdc', 'KEYWORD_LIST');
export const BerthImage = defineSearchAttributeKey('BerthImage', 'KEYWORD');

export const berthSearchAttributes = [BerthKind, BerthProject, BerthCluster, BerthIdc, BerthImage];
