/** One line per target or host of a workflow's `progress` query, with a bar where bytes are known. */
export function progressLines(progress: Record<string, Record<string, unknown>> | null): string[] {
  if (!progress) return [];
  return Object.entries(progress).map(([name, p]) => {
    const status = typeof p.status === 'string' ? p.status : '';
    const done = Number(p.bytesCopied ?? p.bytes ?? 0);
    // A finished copy is whole, even when it ended before it reported a total (short copies report only once).
    const total = status === 'done' ? Math.max(done, Number(p.bytesTotal ?? 0), 1) : Number(p.bytesTotal ?? 0);
    const fraction = status === 'done' ? 1 : total > 0 ? done / total : undefined;
    const bar = fraction === undefined ? '' : `${barOf(fraction)} ${Math.floor(100 * fraction).toString().padStart(3)}% ${mib(done)} MiB`;
    const extra = typeof p.error === 'string' && p.error ? `  ${p.error.slice(0, 120)}` : '';
    return `${name.padEnd(16)} ${status.padEnd(9)} ${bar}${extra}`.trimEnd();
  });
}

function barOf(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
