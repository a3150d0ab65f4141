import type { ReconcileReport } from '../activities/reconcile/index.ts';

const money = (n: number | null) => (n === null ? '?' : n.toFixed(2));

/** A reconciliation report as an operator reads it: each finding with its cost and its remedy. */
export function reportLines(r: ReconcileReport): string[] {
  const lines = [
    `cluster ${r.cluster} (${r.provider}, installation ${r.installation}), checked ${r.checkedAt}: ${r.atProvider} machines at the provider`,
    `orphans: ${r.orphans.length} (${money(r.monthlyCost.orphans)} a month); ghosts: ${r.ghosts.length} (${money(r.monthlyCost.ghosts)} a month); drift: ${r.drift.length}`,
  ];
  for (const o of r.orphans) {
    const made = o.madeHere ? 'made by this installation' : o.installation ? `made by installation ${o.installation}` : 'not made by berth';
    lines.push(`  orphan ${o.providerId}  ${o.pool ?? '?'}/${o.name ?? '?'} ${o.state}, ${made}, ${money(o.costSoFar)} so far`, `    ${o.remedy}`);
  }
  for (const g of r.ghosts) lines.push(`  ghost ${g.machineId}  ${g.pool}/${g.name} ${g.state} in the inventory, gone at the provider`, `    ${g.remedy}`);
  for (const d of r.drift) lines.push(`  drift ${d.machineId}  ${d.pool}/${d.name} ${d.inventoryState} in the inventory, ${d.providerState} at the provider`, `    ${d.remedy}`);
  return lines;
}
