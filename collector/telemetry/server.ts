/**
 * The collector's own HTTP endpoint: /metrics (Prometheus text), /healthz
 * (the process is alive) and /readyz (receivers listen and the collector is
 * not shutting down). Readiness never depends on the backend being reachable.
 */
import http from 'node:http';
import type { Logger } from 'pino';
import type { Telemetry } from './metrics.js';

export class TelemetryServer {
  private server: http.Server | undefined;
  ready = false;
  port = 0;

  constructor(
    private readonly address: string,
    private readonly telemetry: Telemetry,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET' }).end();
        return;
      }
      if (path === '/metrics') {
        this.telemetry.metricsText().then(
          (text) => res.writeHead(200, { 'Content-Type': this.telemetry.contentType }).end(text),
          (err) => {
            this.logger.error({ err }, 'metrics collection failed');
            res.writeHead(500).end('metrics collection failed\n');
          },
        );
      } else if (path === '/healthz' || path === '/alive') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz' || path === '/ready') {
        if (this.ready) res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ready\n');
        else res.writeHead(503, { 'Content-Type': 'text/plain' }).end('not ready\n');
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('try /metrics, /healthz or /readyz\n');
      }
    });
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(this.address);
    if (!m) throw new Error(`invalid service.telemetry.metrics.address "${this.address}": want host:port`);
    const host = m[1] ?? (m[2] || '0.0.0.0');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(m[3]), host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    this.port = typeof a === 'object' && a ? a.port : Number(m[3]);
    this.server = server;
    this.logger.info({ address: `${host}:${this.port}` }, 'telemetry endpoint listening (/metrics, /healthz, /readyz)');
  }

  async shutdown(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
  }
}
