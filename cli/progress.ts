import type { DeployProgress } from '../contracts/services.ts';

/** One line per target or host of a workflow's `progress` query, with a bar where bytes are known; a deploy's per batch. */
export function progressLines(progress: Record<string, Record<string, unknown>> | null): string[] {
  if (!progress) return [];
  if (Array.isArray(progress.batches)) return deployLines(progress as unknown as DeployProgress);
  return Object.entries(progress).map(([name, p]) => {
    const status = typeof p.status === 'string' ? p.status : '';
    const done = Number(p.bytesCopied ?? p.bytes ?? 0);
    // A finished copy is whole, even when it ended before it reported a total (short copies report only once).
    const total = status === 'done' ? Math.max(done, Number(p.bytesTotal ?? 0), 1) : Number(p.bytesTotal ?? 0);
    const fraction = status === 'done' ? 1 : total > 0 ? done / total : undefined;
    const bar =
      fraction === undefined
        ? ''
        : `${barOf(fraction)} ${Math.floor(100 * fraction)
            .toString()
            .padStart(3)}% ${mib(done)} MiB`;
    const extra = typeof p.error === 'string' && p.error ? `  ${p.error.slice(0, 120)}` : '';
    return `${name.padEnd(16)} ${status.padEnd(9)} ${bar}${extra}`.trimEnd();
  });
}

/** A deploy: its state, then a bar per batch (replicas replaced of the batch's), and each failed machine's error. */
function deployLines(p: DeployProgress): string[] {
  const batches = p.batches.map((b, i) => {
    const fraction = b.total > 0 ? b.replaced / b.total : 1;
    return `${`batch ${i + 1}`.padEnd(16)} ${b.status.padEnd(9)} ${barOf(fraction)} ${`${b.replaced}/${b.total}`.padStart(5)} replicas  ${b.machines.join(', ')}`;
  });
  const errors = Object.values(p.machines)
    .filter((m) => m.error)
    .map((m) => `  ${m.name}: ${m.error!.slice(0, 160)}`);
  return [`${p.version} ${p.status}${p.digest ? ` ${p.digest.slice(0, 19)}` : ''}`, ...batches, ...errors];
}

function barOf(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
