/**
 * A redis-server child process for tests and the multi-sidecar load test: an
 * ephemeral port (found by binding 0 first: redis-server has no `--port 0`),
 * no persistence, stopped by its owner. Only ever on 127.0.0.1.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './collector.js';

/** True when redis-server is on PATH (.ci/run installs it). */
export const HAVE_REDIS = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
/** True when redis-cli is on PATH too (RedisCluster creates the cluster with it). */
export const HAVE_REDIS_CLI = HAVE_REDIS && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;

export class RedisServer {
  private proc: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly extra: string[],
  ) {}

  /** `extra`: more redis-server arguments, e.g. ['--requirepass', 'x'], or a function of the port chosen. */
  static async start(extra: string[] | ((port: number) => string[]) = []): Promise<RedisServer> {
    const port = await freePort();
    const r = new RedisServer(port, typeof extra === 'function' ? extra(port) : extra);
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


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A Redis Cluster of `primaries` redis-server processes (no replicas) on
 * ephemeral ports (the cluster bus on another ephemeral port:
 * `--cluster-port`), created with `redis-cli --cluster create`; node configs
 * in a temporary directory, removed by stop(). Needs HAVE_REDIS_CLI.
 */
export class RedisCluster {
  private constructor(
    readonly nodes: RedisServer[],
    private readonly dir: string,
  ) {}

  static async start(primaries = 3): Promise<RedisCluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-cluster-'));
    const c = new RedisCluster([], dir);
    try {
      for (let i = 0; i < primaries; i++) {
        const bus = await freePort();
        const node = await RedisServer.start((port) => [
          '--cluster-enabled', 'yes',
          '--cluster-port', String(bus),
          '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', '5000',
          '--dir', dir,
        ]);
        c.nodes.push(node);
      }
      await new Promise<void>((resolve, reject) =>
        execFile('redis-cli', ['--cluster', 'create', ...c.seeds, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 15_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`redis-cli --cluster create failed: ${err.message}\n${stdout}${stderr}`)) : resolve(),
        ),
      );
      const deadline = Date.now() + 15_000;
      for (const n of c.nodes) {
        while (!(await n.command('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
          if (Date.now() > deadline) throw new Error(`cluster_state not ok on ${n.port}`);
          await sleep(50);
        }
      }
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  /** `host:port` of every node (the `cluster:` seeds). */
  get seeds(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`);
  }

  /** Stops every node and removes the node configs. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
