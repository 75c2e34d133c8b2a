/**
 * Test helpers for the shared decision store: a real redis-server (see
 * loadtest/redis.ts) and a TCP proxy that delays the server's answers (a slow store).
 */
import net from 'node:net';
export { HAVE_REDIS, HAVE_REDIS_CLI, RedisCluster, RedisServer as TestRedis } from '../loadtest/redis.js';

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
