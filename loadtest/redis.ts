/**
 * A redis-server child process for tests and the multi-sidecar load test: an
 * ephemeral port (found by binding 0 first: redis-server has no `--port 0`),
 * no persistence, stopped by its owner. Only ever on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from './collector.js';

/** True when redis-server is on PATH (.ci/run installs it). */
export const HAVE_REDIS = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

export class RedisServer {
  private proc: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly extra: string[],
  ) {}

  /** `extra`: more redis-server arguments, e.g. ['--requirepass', 'x']. */
  static async start(extra: string[] = []): Promise<RedisServer> {
    const r = new RedisServer(await freePort(), extra);
    await r.resume();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port, empty. */
  async resume(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...this.extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000);
      proc.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${out}`));
      });
    });
    proc.removeAllListeners('exit');
  }

  /** Stops the server (SIGKILL: as a crash); resume() brings it back. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p === undefined || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
  }

  /** One command over a fresh connection (RESP, inline): INFO, DBSIZE, ... */
  async command(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = net.connect(this.port, '127.0.0.1');
      let buf = '';
      s.on('data', (d) => {
        buf += d;
        // Bulk string: $len\r\n...\r\n; integer :n\r\n; simple +OK\r\n.
        const m = /^\$(\d+)\r\n/.exec(buf);
        if ((m && buf.length >= m[0].length + Number(m[1]) + 2) || /^[:+-].*\r\n$/.test(buf)) {
          s.end();
          resolve(m ? buf.slice(m[0].length, m[0].length + Number(m[1])) : buf.trim());
        }
      });
      s.on('error', reject);
      s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
  }
}

