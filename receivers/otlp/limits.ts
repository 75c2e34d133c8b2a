/**
 * Limits on connections, and what they close or refuse, counted.
 *
 * - HTTP/1 (`configureHttpLimits`): node's own timers do the work:
 *   `keepAliveTimeout` closes a connection idle between requests,
 *   `headersTimeout` / `requestTimeout` close a request whose headers or
 *   whole body have not arrived in time (slowloris), checked every
 *   `connectionsCheckingInterval`; `maxConnections` closes connections
 *   beyond the limit as they arrive ('drop').
 * - HTTP/2 (`Http2Limits`, for the gRPC server): one coarse sweeper timer
 *   (no timer per stream) closes a session with no open stream for the
 *   idle time (GOAWAY: the client's calls in flight finish, it reconnects
 *   for the next one) and resets a stream whose request has not fully
 *   arrived within the read timeout.
 */
import type http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { Telemetry } from '../../collector/telemetry/metrics.js';

export type CloseReason = 'idle' | 'header_timeout' | 'read_timeout' | 'max_connections' | 'discard_limit' | 'tls_handshake';

/** Counts connections by outcome and keeps the open-connection gauge. */
export class ConnectionMetrics {
  private readonly closedTotal;
  private readonly children = new Map<CloseReason, { inc(n?: number): void }>();
  private readonly openGauge;
  constructor(
    telemetry: Telemetry,
    private readonly receiver: string,
    private readonly transport: string,
  ) {
    this.closedTotal = telemetry.counter(
      'sidecar_receiver_connections_closed_total',
      'Connections (or HTTP/2 streams, for read_timeout) the receiver closed or refused, by reason: idle, header_timeout, read_timeout, max_connections, discard_limit, tls_handshake.',
      ['receiver', 'transport', 'reason'],
    );
    this.openGauge = telemetry.gauge('sidecar_receiver_open_connections', 'Connections open to the receiver.', ['receiver', 'transport']).labels(receiver, transport);
  }
  closed(reason: CloseReason): void {
    let c = this.children.get(reason);
    if (c === undefined) {
      c = this.closedTotal.labels(this.receiver, this.transport, reason);
      this.children.set(reason, c);
    }
    c.inc();
  }
  opened(): void {
    this.openGauge.inc();
  }
  gone(): void {
    this.openGauge.dec();
  }
}

export interface ConnectionLimits {
  /** Close a connection with nothing in progress after this long (0: never). */
  idleMs: number;
  /** Open connections at once (0: no limit). */
  maxConnections: number;
}

/** Counts connections of any net.Server and refuses those beyond `maxConnections`. */
export function trackConnections(server: net.Server, limits: ConnectionLimits, m: ConnectionMetrics, secure: boolean): void {
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  server.on('drop', () => m.closed('max_connections'));
  server.on(secure ? 'secureConnection' : 'connection', (socket: net.Socket) => {
    m.opened();
    socket.once('close', () => m.gone());
  });
  if (secure) server.on('tlsClientError', () => m.closed('tls_handshake'));
}

/** Coarse checking interval for timeouts of `ms`: a quarter of the shortest, between 10 ms and 1 s. */
export function checkEvery(...ms: number[]): number {
  const set = ms.filter((x) => x > 0);
  if (set.length === 0) return 1000;
  return Math.min(1000, Math.max(10, Math.floor(Math.min(...set) / 4)));
}

export interface HttpLimits extends ConnectionLimits {
  headerTimeoutMs: number;
  readTimeoutMs: number;
}

/** node:http server options for the limits (pass to createServer). */
export function httpServerOptions(l: HttpLimits): http.ServerOptions {
  return {
    keepAliveTimeout: l.idleMs,
    headersTimeout: l.headerTimeoutMs,
    requestTimeout: l.readTimeoutMs,
    connectionsCheckingInterval: checkEvery(l.headerTimeoutMs, l.readTimeoutMs),
  };
}

/**
 * Counts what node's HTTP/1 timers close. A keep-alive timeout reaches the
 * server's 'timeout' event (with a listener there, closing is ours); a
 * header or request timeout reaches 'clientError' as ERR_HTTP_REQUEST_TIMEOUT,
 * answered 408. `inRequest` tells whether the connection's headers were
 * complete (then the body was late).
 */
export function countHttpTimeouts(server: http.Server, m: ConnectionMetrics): { clientError(err: NodeJS.ErrnoException, socket: net.Socket): boolean; requestStarted(socket: net.Socket): void; requestDone(socket: net.Socket): void } {
  const reading = new WeakSet<net.Socket>();
  server.on('timeout', (socket: net.Socket) => {
    m.closed('idle');
    socket.destroy();
  });
  return {
    requestStarted: (socket) => reading.add(socket),
    requestDone: (socket) => reading.delete(socket),
    /** Handles a timeout clientError; false for other errors. */
    clientError(err, socket) {
      if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') return false;
      m.closed(reading.has(socket) ? 'read_timeout' : 'header_timeout');
      if (socket.writable && !(socket as unknown as { _httpMessage?: unknown })._httpMessage) {
        socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else socket.destroy();
      return true;
    },
  };
}

interface SessionState {
  streams: number;
  idleSince: number;
}

/** Idle sessions and slow streams of an HTTP/2 server, on one sweeper timer. */
export class Http2Limits {
  private readonly sessions = new Map<http2.ServerHttp2Session, SessionState>();
  /** Streams whose request has not fully arrived, with when their headers came. */
  private readonly reading = new Map<http2.ServerHttp2Stream, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly idleMs: number,
    private readonly readTimeoutMs: number,
    private readonly m: ConnectionMetrics | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Hooks the server's sessions and streams; starts the sweeper. */
  attach(server: http2.Http2Server | http2.Http2SecureServer): void {
    server.on('session', (s: http2.ServerHttp2Session) => {
      const st: SessionState = { streams: 0, idleSince: this.now() };
      this.sessions.set(s, st);
      s.once('close', () => this.sessions.delete(s));
    });
    server.on('stream', (stream: http2.ServerHttp2Stream) => {
      const st = this.sessions.get(stream.session as http2.ServerHttp2Session);
      if (st !== undefined) st.streams++;
      if (this.readTimeoutMs > 0) {
        this.reading.set(stream, this.now());
        stream.once('end', () => this.reading.delete(stream));
      }
      stream.once('close', () => {
        this.reading.delete(stream);
        if (st !== undefined && --st.streams === 0) st.idleSince = this.now();
      });
    });
    const every = checkEvery(this.idleMs, this.readTimeoutMs);
    if (this.idleMs > 0 || this.readTimeoutMs > 0) {
      this.timer = setInterval(() => this.sweep(), every);
      this.timer.unref();
    }
  }

  sweep(): void {
    const now = this.now();
    if (this.idleMs > 0) {
      for (const [s, st] of this.sessions) {
        if (st.streams === 0 && now - st.idleSince >= this.idleMs && !s.closed && !s.destroyed) {
          this.m?.closed('idle');
          this.sessions.delete(s);
          s.close(); // GOAWAY; the socket closes once the client has seen it
          const force = setTimeout(() => s.destroy(), 1000);
          force.unref();
        }
      }
    }
    if (this.readTimeoutMs > 0) {
      for (const [stream, since] of this.reading) {
        if (now - since < this.readTimeoutMs) continue;
        this.reading.delete(stream);
        if (stream.destroyed || stream.closed) continue;
        this.m?.closed('read_timeout');
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
