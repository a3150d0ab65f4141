import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { HealthCheck } from '../../contracts/services.ts';

/** What the check is, as a failure names it. */
export function describeCheck(health: HealthCheck): string {
  return 'http' in health ? `GET ${health.http.path} on port ${health.http.port}` : `command ${JSON.stringify(health.command)}`;
}

/** One check of one container: undefined when healthy, else what was wrong. */
export async function checkOnce(docker: Docker, containerId: string, address: string, health: HealthCheck): Promise<string | undefined> {
  const container = docker.getContainer(containerId);
  const info = await container.inspect();
  if (!info.State.Running) return `the container is ${info.State.Status} (exit code ${info.State.ExitCode})`;
  const signal = AbortSignal.timeout(health.timeoutMs);
  if ('http' in health) {
    const published = info.NetworkSettings.Ports?.[`${health.http.port}/tcp`]?.[0]?.HostPort;
    if (!published) return `port ${health.http.port} is not published`;
    try {
      const res = await fetch(`http://${address}:${published}${health.http.path}`, { signal });
      await res.arrayBuffer();
      return res.ok ? undefined : `answered ${res.status}`;
    } catch (err) {
      return signal.aborted ? `no answer within ${health.timeoutMs} ms` : (err as Error).message;
    }
  }
  const exec = await container.exec({ Cmd: health.command, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const output: Buffer[] = [];
  stream.on('data', (b: Buffer) => output.push(b));
  const ended = new Promise((resolve) => stream.on('end', resolve));
  const timedOut = sleep(health.timeoutMs, 'timeout');
  if ((await Promise.race([ended, timedOut])) === 'timeout') {
    stream.destroy();
    return `no exit within ${health.timeoutMs} ms`;
  }
  const { ExitCode } = await exec.inspect();
  // Docker multiplexes stdout and stderr with 8-byte frame headers: printable text is what is worth showing.
  const text = Buffer.concat(output)
    .toString('utf8')
    .replace(/[^\x20-\x7e\n]/g, '')
    .trim()
    .slice(-300);
  return ExitCode === 0 ? undefined : `exited ${ExitCode}${text ? `: ${text}` : ''}`;
}
