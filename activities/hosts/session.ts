import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'ssh2';
import { HostError } from './errors.ts';

export interface SshTarget {
  address: string;
  port: number;
  user: string;
  /** The key itself, resolved from its reference by the activity (resolvePrivateKey). */
  privateKey: string;
  /** Recorded on first contact and passed back on every later one: a host presenting another key is refused. */
  hostKeyFingerprint?: string;
}

export interface SessionOptions {
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Commands running at once on the connection (sshd's MaxSessions is 10; a few keep it far from that). */
  maxChannels?: number;
  /** For commands that name no timeout of their own. */
  commandTimeoutMs?: number;
}

export interface CommandOptions {
  /** Positional parameters of the script ($1, $2, ...): values never pass through shell parsing. */
  args?: string[];
  /** Written to the command's stdin, then closed. */
  input?: string;
  timeoutMs?: number;
  /** How errors name the command; the script itself by default. */
  what?: string;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** OpenSSH's fingerprint of a host key (`ssh-keygen -lf`): SHA256 of the key blob, base64 without padding. */
export function fingerprint(hostKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(hostKey).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Connects once sshd lets us in: a refused or timed-out attempt is what a booting machine looks like, and is tried
 * again every second until `timeoutMs`; any other answer (a refused key, another host key) fails at once.
 */
export async function connectWhenReady(
  target: SshTarget,
  opts: SessionOptions & { timeoutMs: number; onAttempt?: () => void; pause?: (ms: number) => Promise<unknown> },
): Promise<SshSession> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    opts.onAttempt?.();
    try {
      return await SshSession.connect(target, opts);
    } catch (err) {
      if (!(err instanceof HostError && err.type === 'HostUnreachable') || Date.now() > deadline) throw err;
    }
    await (opts.pause ?? sleep)(1000);
  }
}

/** Single-quotes a string for sh. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * One SSH connection to a host (ssh2), with keepalive, a timeout on every command and a bound on the channels in
 * use. Every command runs as root through `sh -c`: directly for root, through `sudo -n` (never a password prompt)
 * for any other user.
 */
export class SshSession {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  private constructor(
    private readonly client: Client,
    readonly target: Omit<SshTarget, 'privateKey'>,
    /** The key the host presented on this connection: store it after first contact. */
    readonly hostKeyFingerprint: string,
    private readonly opts: Required<SessionOptions>,
  ) {}

  static connect(target: SshTarget, options: SessionOptions = {}): Promise<SshSession> {
    const opts = { connectTimeoutMs: 10_000, keepaliveIntervalMs: 5_000, maxChannels: 3, commandTimeoutMs: 60_000, ...options };
    const where = `${target.user}@${target.address}:${target.port}`;
    const client = new Client();
    let presented: string | undefined;
    return new Promise((resolve, reject) => {
      let ready = false;
      client.once('ready', () => {
        ready = true;
        const { privateKey: _secret, ...rest } = target;
        resolve(new SshSession(client, rest, presented!, opts));
      });
      // Errors after the handshake (keepalive timeout, reset) end the connection: the commands on it fail then.
      client.on('error', (err: Error & { level?: string }) => {
        if (ready) return;
        client.end();
        if (target.hostKeyFingerprint !== undefined && presented !== undefined && presented !== target.hostKeyFingerprint) {
          reject(
            new HostError(
              'HostKeyMismatch',
              `${where} presented host key ${presented}, not ${target.hostKeyFingerprint} recorded on first contact: refused (another machine answers at this address, or the connection is intercepted)`,
            ),
          );
        } else if (err.level === 'client-authentication') {
          reject(new HostError('SshAuthFailed', `${where} refused the key: ${err.message}`, { cause: err }));
        } else {
          reject(new HostError('HostUnreachable', `cannot connect to ${where}: ${err.message}`, { cause: err }));
        }
      });
      const config = {
        host: target.address,
        port: target.port,
        username: target.user,
        privateKey: target.privateKey,
        readyTimeout: opts.connectTimeoutMs,
        keepaliveInterval: opts.keepaliveIntervalMs,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          presented = fingerprint(key);
          return target.hostKeyFingerprint === undefined || presented === target.hostKeyFingerprint;
        },
      };
      try {
        client.connect(config);
      } catch (err) {
        // ssh2 parses the key before connecting: a key it cannot read is a configuration problem, not the host's.
        reject(new HostError('SecretUnavailable', `the SSH private key for ${where} cannot be used: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  /** Runs a script as root; a non-zero exit is a result, not an error. */
  async exec(script: string, opts: CommandOptions = {}): Promise<CommandResult> {
    const what = opts.what ?? script.trim();
    const timeoutMs = opts.timeoutMs ?? this.opts.commandTimeoutMs;
    const command = [this.target.user === 'root' ? 'sh' : 'sudo -n sh', '-c', shellQuote(script), 'sh', ...(opts.args ?? []).map(shellQuote)].join(' ');
    await this.acquire();
    try {
      return await new Promise<CommandResult>((resolve, reject) => {
        // Listen from inside the callback: a quick command's output, exit status and close can arrive in the same
        // packet as the channel's confirmation, before any later tick.
        this.client.exec(command, (err, channel) => {
          if (err) return reject(err);
          const stdout: Buffer[] = [];
          const stderr: Buffer[] = [];
          const timer = setTimeout(() => {
            channel.signal('KILL');
            channel.close();
            reject(new HostError('CommandTimeout', `\`${what}\` on ${this.where} did not finish within ${timeoutMs} ms`));
          }, timeoutMs);
          channel.on('data', (d: Buffer) => stdout.push(d));
          channel.stderr.on('data', (d: Buffer) => stderr.push(d));
          channel.once('close', (code: number | null | undefined) => {
            clearTimeout(timer);
            // No exit status: the command was killed by a signal, or the connection went away under it.
            if (typeof code !== 'number') reject(new HostError('HostUnreachable', `\`${what}\` on ${this.where} ended without an exit status (connection lost or command killed)`));
            else resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
          });
          channel.end(opts.input);
        });
      }).catch((err: unknown) => {
        // A channel refused, or ssh2 throwing at once on a connection already closed.
        throw err instanceof HostError ? err : new HostError('HostUnreachable', `cannot run \`${what}\` on ${this.where}: ${(err as Error).message}`, { cause: err });
      });
    } finally {
      this.release();
    }
  }

  /** Runs a script as root and returns its stdout; a non-zero exit fails with the command's stderr. */
  async run(script: string, opts: CommandOptions = {}): Promise<string> {
    const result = await this.exec(script, opts);
    if (result.code !== 0) {
      const stderr = result.stderr.trim();
      throw new HostError('CommandFailed', `\`${opts.what ?? script.trim()}\` exited ${result.code}${stderr ? `: ${stderr}` : ' (no stderr)'}`, { stderr });
    }
    return result.stdout;
  }

  close(): void {
    this.client.end();
  }

  private get where(): string {
    return `${this.target.address}:${this.target.port}`;
  }

  private async acquire(): Promise<void> {
    if (this.active < this.opts.maxChannels) {
      this.active++;
      return;
    }
    // The slot is handed over by release(), so `active` stays counted.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
