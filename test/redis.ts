/**
 * A real redis-server for tests: an ephemeral port (found by binding 0 first:
 * redis-server has no `--port 0`), no persistence, stopped by the test. And a
 * TCP proxy that delays the server's answers (a slow store).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from './child.js';

/** True when redis-server is on PATH (.ci/run installs it). */
export const HAVE_REDIS = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

export class TestRedis {
  private proc: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly extra: string[],
  ) {}

  /** `extra`: more redis-server arguments, e.g. ['--requirepass', 'x']. */
  static async start(extra: string[] = []): Promise<TestRedis> {
    const r = new TestRedis(await freePort(), extra);
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

/** A TCP proxy in front of a server that holds each answer back `delayMs` (set it any time). */
export class DelayProxy {
  delayMs = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private constructor(
    readonly port: number,
    server: net.Server,
  ) {
    this.server = server;
  }

  static async start(targetPort: number): Promise<DelayProxy> {
    let self: DelayProxy | undefined;
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      self!.sockets.add(client).add(upstream);
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => {
        const delay = self!.delayMs;
        if (delay <= 0) client.write(d);
        else setTimeout(() => !client.destroyed && client.write(d), delay);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    self = new DelayProxy((server.address() as net.AddressInfo).port, server);
    return self;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
