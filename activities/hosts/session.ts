import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeSSH } from 'node-ssh';
import ssh2, { type ClientChannel, type SFTPWrapper } from 'ssh2';
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
export async function connectWhenReady(target: SshTarget, opts: SessionOptions & { timeoutMs: number; onAttempt?: () => void; pause?: (ms: number) => Promise<unknown> }): Promise<SshSession> {
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
 * One SSH connection to a host (node-ssh over ssh2), with keepalive, a timeout on every command and transfer and a
 * bound on the channels in use. Every command runs as root through `sh -c`: directly for root, through `sudo -n`
 * (never a password prompt) for any other user. Transfers (SFTP) run as the SSH user, into its home directory.
 */
export class SshSession {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  private constructor(
    private readonly ssh: NodeSSH,
    readonly target: Omit<SshTarget, 'privateKey'>,
    /** The key the host presented on this connection: store it after first contact. */
    readonly hostKeyFingerprint: string,
    private readonly opts: Required<SessionOptions>,
  ) {}

  static async connect(target: SshTarget, options: SessionOptions = {}): Promise<SshSession> {
    const opts = { connectTimeoutMs: 10_000, keepaliveIntervalMs: 5_000, maxChannels: 3, commandTimeoutMs: 60_000, ...options };
    const where = `${target.user}@${target.address}:${target.port}`;
    // A key ssh2 cannot read is a configuration problem, not the host's: say so before trying the host.
    const parsed = ssh2.utils.parseKey(target.privateKey);
    if (parsed instanceof Error) throw new HostError('SecretUnavailable', `the SSH private key for ${where} cannot be used: ${parsed.message}`, { cause: parsed });
    const ssh = new NodeSSH();
    let presented: string | undefined;
    try {
      await ssh.connect({
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
      });
    } catch (err) {
      ssh.dispose();
      if (target.hostKeyFingerprint !== undefined && presented !== undefined && presented !== target.hostKeyFingerprint) {
        throw new HostError(
          'HostKeyMismatch',
          `${where} presented host key ${presented}, not ${target.hostKeyFingerprint} recorded on first contact: refused (another machine answers at this address, or the connection is intercepted)`,
        );
      }
      if ((err as { level?: string }).level === 'client-authentication') throw new HostError('SshAuthFailed', `${where} refused the key: ${(err as Error).message}`, { cause: err });
      throw new HostError('HostUnreachable', `cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
    }
    // node-ssh listens for errors only while connecting. One after the handshake (keepalive timeout, reset) ends the
    // connection: the commands on it fail then, each with its own error.
    ssh.connection!.on('error', () => undefined);
    const { privateKey: _secret, ...rest } = target;
    return new SshSession(ssh, rest, presented!, opts);
  }

  /** Runs a script as root; a non-zero exit is a result, not an error. */
  async exec(script: string, opts: CommandOptions = {}): Promise<CommandResult> {
    const what = opts.what ?? script.trim();
    const command = [this.target.user === 'root' ? 'sh' : 'sudo -n sh', '-c', shellQuote(script), 'sh', ...(opts.args ?? []).map(shellQuote)].join(' ');
    return this.onChannel(`\`${what}\``, opts.timeoutMs, async (opened) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      const r = await this.ssh.execCommand(command, {
        stdin: opts.input,
        noTrim: true,
        onChannel: (channel: ClientChannel) => opened(() => (channel.signal('KILL'), channel.close())),
        // Raw chunks, decoded once at the end: a character split across two packets stays whole.
        onStdout: (d) => stdout.push(d),
        onStderr: (d) => stderr.push(d),
      });
      // No exit status: the command was killed by a signal, or the connection went away under it.
      if (r.code === null) throw new HostError('HostUnreachable', `\`${what}\` on ${this.where} ended without an exit status (connection lost or command killed)`);
      return { code: r.code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
    });
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

  /**
   * Uploads `content` over SFTP as the SSH user to a new file of its own (mode 0600) in its home directory, and
   * returns that file's path: a root command moves it where it belongs (see writeFile).
   */
  async upload(content: Buffer, opts: { timeoutMs?: number; what: string }): Promise<string> {
    const staged = `.berth-upload-${randomBytes(8).toString('hex')}`;
    return this.onChannel(`upload of ${opts.what}`, opts.timeoutMs, async (opened) => {
      const sftp = await this.ssh.requestSFTP();
      opened(() => sftp.end());
      try {
        await sftpWrite(sftp, staged, content);
        // SFTP names the file relative to the login directory; commands need it whole.
        return await new Promise<string>((resolve, reject) => sftp.realpath(staged, (err, path) => (err ? reject(err) : resolve(path))));
      } finally {
        sftp.end();
      }
    });
  }

  close(): void {
    this.ssh.dispose();
  }

  private get where(): string {
    return `${this.target.address}:${this.target.port}`;
  }

  /**
   * Runs `use` on a channel slot, within `timeoutMs`: on timeout the channel `use` reported through `opened` is
   * closed (its command killed) and the call fails with CommandTimeout. Any fault that is not a HostError is the
   * connection's (a channel refused, the connection closed): HostUnreachable.
   */
  private async onChannel<T>(what: string, timeoutMs = this.opts.commandTimeoutMs, use: (opened: (close: () => void) => void) => Promise<T>): Promise<T> {
    await this.acquire();
    let close: (() => void) | undefined;
    let expired = false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        close?.();
        reject(new HostError('CommandTimeout', `${what} on ${this.where} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    // A channel that opens only after the deadline is closed at once.
    const work = use((fn) => (expired ? fn() : (close = fn)));
    // Once timed out, the work's own end (the channel closing under it) is nobody's to handle.
    work.catch(() => undefined);
    try {
      return await Promise.race([work, timedOut]);
    } catch (err) {
      throw err instanceof HostError ? err : new HostError('HostUnreachable', `cannot run ${what} on ${this.where}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      this.release();
    }
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

function sftpWrite(sftp: SFTPWrapper, path: string, content: Buffer): Promise<void> {
  return new Promise((resolve, reject) => sftp.writeFile(path, content, { mode: 0o600, flag: 'wx' }, (err) => (err ? reject(err) : resolve())));
}
