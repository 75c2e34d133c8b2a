/**
 * The OTLP receiver: gRPC (TraceService/Export, LogsService/Export,
 * MetricsService/Export) and HTTP (POST /v1/traces, /v1/logs, /v1/metrics,
 * protobuf or JSON, optionally gzip), for the signals whose pipelines list it
 * (signals.ts has what differs per signal). Both transports scan the request
 * into items (no full decode) and hand them to the next stage of their
 * signal; the answer to the client follows the outcome (see status.ts).
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import zlib from 'node:zlib';
import type { Component, CreateSettings } from '../../collector/component.js';
import { FileWatch } from '../../collector/file-watch.js';
import { parseDuration } from '../../config/duration.js';
import type { SignalConsumers, TracesConsumer } from '../../collector/consumer.js';
import { WireError } from '../../collector/pdata/wire.js';
import { encodeRpcStatus } from '../../collector/pdata/otlp-json.js';
import { ITEM, ITEM_TEXT, type Signal } from '../../collector/signals.js';
import { ROUTES, type SignalRoute, type SignalScan } from './signals.js';
import type { Counter } from '../../collector/telemetry/metrics.js';
import { isLoopback, splitHostPort, type AuthConfig, type GrpcConfig, type HttpConfig, type OtlpReceiverConfig, type ServerTlsConfig } from './config.js';
import { GrpcCode, UnaryGrpcServer, listenOn, type UnaryCall, type UnaryReply } from './grpc-server.js';
import { answerFor, encodeExportResponse, encodeStatusWithRetry, exportResponseJson, type RefuseReason } from './status.js';
import { RefusalMemory, type Admission } from './admission.js';
import { BearerToken } from './auth.js';
import { answerEarly, DEFAULT_DISCARD, type DiscardBounds } from './early.js';
import { ConnectionMetrics, countHttpTimeouts, httpServerOptions, trackConnections } from './limits.js';
import { ServerTlsFiles } from './tls.js';

type Transport = 'grpc' | 'http';

class TransportMetrics {
  readonly accepted: ReturnType<Counter['labels']>;
  readonly refused: ReturnType<Counter['labels']>;
  private readonly refusedByReason: Counter;
  private readonly refusedRequests: Counter;
  private readonly receiver: string;
  private readonly transport: string;
  private readonly reasonChildren = new Map<string, ReturnType<Counter['labels']>>();
  private readonly requestChildren = new Map<string, ReturnType<Counter['labels']>>();
  readonly connections: ConnectionMetrics;
  constructor(settings: CreateSettings, transport: Transport, signal: Signal = 'traces', connections?: ConnectionMetrics) {
    const t = settings.telemetry;
    this.receiver = settings.id;
    this.transport = transport;
    const item = ITEM[signal];
    const Item = ITEM_TEXT[signal][0].toUpperCase() + ITEM_TEXT[signal].slice(1);
    this.accepted = t
      .counter(`otelcol_receiver_accepted_${item}_total`, `${Item} the receiver accepted into the pipeline.`, ['receiver', 'transport'])
      .labels(settings.id, transport);
    this.refused = t
      .counter(`otelcol_receiver_refused_${item}_total`, `${Item} the receiver refused (the client was told).`, ['receiver', 'transport'])
      .labels(settings.id, transport);
    this.refusedByReason = t.counter(
      `sidecar_receiver_refused_${item}_total`,
      `${Item} refused at the receiver, by reason (invalid_span / invalid_log_record / invalid_metric, memory_limit, retryable, permanent, malformed, too_large, internal).`,
      ['receiver', 'transport', 'reason'],
    );
    this.refusedRequests = t.counter(
      'sidecar_receiver_refused_requests_total',
      'Requests answered when their headers arrived, before their body was read (so their spans were never counted), by reason: retryable, memory_limit (the pipeline was refusing), unauthenticated.',
      ['receiver', 'transport', 'reason'],
    );
    this.connections = connections ?? new ConnectionMetrics(t, settings.id, transport);
  }
  /** A request refused before its body was read. */
  refuseEarly(reason: RefuseReason | 'unauthenticated'): void {
    let c = this.requestChildren.get(reason);
    if (c === undefined) {
      c = this.refusedRequests.labels(this.receiver, this.transport, reason);
      this.requestChildren.set(reason, c);
    }
    c.inc();
  }
  refuse(reason: RefuseReason | SignalRoute['invalidReason'], n: number): void {
    if (n <= 0) return;
    this.refused.inc(n);
    let c = this.reasonChildren.get(reason);
    if (c === undefined) {
      c = this.refusedByReason.labels(this.receiver, this.transport, reason);
      this.reasonChildren.set(reason, c);
    }
    c.inc(n);
  }
}

/** What one protocol's front door checks before reading a request (TLS and auth files, refusals). */
interface FrontDoor {
  auth: BearerToken | undefined;
  watch: FileWatch | undefined;
}

export class OtlpReceiver implements Component {
  private readonly settings: CreateSettings;
  private readonly config: OtlpReceiverConfig;
  private readonly consumers: SignalConsumers;
  /** The signals this instance serves (the ones it has a consumer for). */
  private readonly routes: SignalRoute[];
  private grpcServer: UnaryGrpcServer | undefined;
  private httpServer: http.Server | undefined;
  private readonly grpcMetrics = new Map<Signal, TransportMetrics>();
  private readonly httpMetrics = new Map<Signal, TransportMetrics>();
  /** Per signal, its pipeline's last refusal, shared by both transports (they feed the same pipeline). */
  private readonly admission = new Map<Signal, Admission>();
  private readonly doors: FrontDoor[] = [];
  private grpcAuth: BearerToken | undefined;
  private httpAuth: BearerToken | undefined;
  private readonly discard: DiscardBounds;
  /** Per signal, the gRPC answer to its current refusal. */
  private readonly refusalReplies = new Map<Signal, { refusal: unknown; reason: RefuseReason; reply: UnaryReply }>();
  /** Signals whose refusal memory is refusing now (the gRPC stream window is lowered while any is). */
  private refusingSignals = 0;
  private stopped = false;
  /** Bound addresses after start (port 0 resolves to the real port). */
  grpcPort = 0;
  httpPort = 0;

  /**
   * `opts.consumers` holds the next stage per signal (the service passes the
   * signals whose pipelines list this receiver); without it the receiver
   * serves traces into `next`. `opts.admission` is the traces pipeline's.
   */
  constructor(
    settings: CreateSettings,
    config: OtlpReceiverConfig,
    next: TracesConsumer,
    opts: { admission?: Admission; discard?: DiscardBounds; consumers?: SignalConsumers } = {},
  ) {
    this.settings = settings;
    this.config = config;
    this.consumers = opts.consumers ?? { traces: next };
    this.routes = ROUTES.filter((r) => this.consumers[r.signal] !== undefined);
    // Connection metrics are per transport, whatever the signal.
    const grpcConnections = new ConnectionMetrics(settings.telemetry, settings.id, 'grpc');
    const httpConnections = new ConnectionMetrics(settings.telemetry, settings.id, 'http');
    for (const r of ROUTES) {
      this.grpcMetrics.set(r.signal, new TransportMetrics(settings, 'grpc', r.signal, grpcConnections));
      this.httpMetrics.set(r.signal, new TransportMetrics(settings, 'http', r.signal, httpConnections));
      if (r.signal === 'traces' && opts.admission) {
        this.admission.set(r.signal, opts.admission);
        continue;
      }
      const memory = new RefusalMemory(settings.clock);
      // While calls are refused at their headers, a refused gRPC client may push only 64 KiB of its message.
      memory.onChange = (refusing) => {
        this.refusingSignals += refusing ? 1 : -1;
        this.grpcServer?.setStreamWindow(this.refusingSignals > 0 ? 65_535 : undefined);
      };
      this.admission.set(r.signal, memory);
    }
    this.discard = opts.discard ?? DEFAULT_DISCARD;
  }

  private gm(signal: Signal): TransportMetrics {
    return this.grpcMetrics.get(signal)!;
  }

  private hm(signal: Signal): TransportMetrics {
    return this.httpMetrics.get(signal)!;
  }

  async start(): Promise<void> {
    const { grpc: g, http: h } = this.config.protocols;
    if (g) await this.startGrpc(g);
    if (h) await this.startHttp(h);
  }

  /**
   * Reads the TLS and token files of one protocol (a missing file fails the
   * start) and watches them: a change is applied to new connections and
   * requests without a restart.
   */
  private openDoor(what: Transport, endpoint: string, tlsCfg: ServerTlsConfig | undefined, authCfg: AuthConfig | undefined, applyTls: (o: import('node:tls').SecureContextOptions) => void): { tls: ServerTlsFiles | undefined; auth: BearerToken | undefined; watch: () => void } {
    const log = this.settings.logger;
    const tlsFiles = tlsCfg ? new ServerTlsFiles(tlsCfg) : undefined;
    const auth = authCfg ? new BearerToken(authCfg.bearer_token_file) : undefined;
    const { host } = splitHostPort(endpoint);
    if (!tlsFiles && !isLoopback(host)) {
      log.warn({ endpoint, transport: what }, 'OTLP receiver listens beyond localhost without TLS: anyone who can reach it can send data and read nothing back encrypted; set tls (and tls.client_ca_file or auth) when other hosts send to it');
    }
    const files = [...(tlsFiles?.files ?? []), ...(auth ? [auth.file] : [])];
    const watch = (): void => {
      if (files.length === 0) return;
      const w = new FileWatch(
        files,
        async () => {
          if (tlsFiles) {
            try {
              const o = await tlsFiles.reload();
              if (o) {
                applyTls(o);
                log.info({ transport: what, cert_file: tlsFiles.cfg.cert_file }, 'TLS files changed: new connections use the new certificate');
              }
            } catch (err) {
              log.warn({ transport: what, err: (err as Error).message }, 'TLS files changed but cannot be used (yet); keeping the current certificate');
            }
          }
          if (auth) {
            try {
              if (await auth.reload()) log.info({ transport: what, file: auth.file }, 'bearer token file changed');
            } catch (err) {
              log.warn({ transport: what, err: (err as Error).message }, 'bearer token file changed but cannot be used; keeping the current token');
            }
          }
        },
        { logger: log, intervalMs: tlsCfg ? parseDuration(tlsCfg.reload_interval) : 0 },
      );
      w.start();
      this.doors.push({ auth, watch: w });
    };
    return { tls: tlsFiles, auth, watch };
  }

  /**
   * Hands a scanned request to the pipeline. Resolves with what to answer;
   * never rejects (every failure is an answer to the client).
   */
  private async deliver(route: SignalRoute, scan: SignalScan, m: TransportMetrics): Promise<{ ok: true } | { ok: false; err: unknown }> {
    m.refuse(route.invalidReason, scan.rejected - scan.malformed);
    m.refuse('malformed', scan.malformed);
    if (scan.items.length === 0) return { ok: true };
    const admission = this.admission.get(route.signal)!;
    try {
      await route.deliver(this.consumers, scan.items);
      m.accepted.inc(scan.count);
      admission.accepted();
      return { ok: true };
    } catch (err) {
      admission.refused(err);
      const a = answerFor(err);
      m.refuse(a.reason, scan.count);
      if (a.reason === 'internal') this.settings.logger.error({ err }, 'pipeline failed on a request');
      return { ok: false, err };
    }
  }

  // ------------------------------------------------------------------ gRPC

  private async startGrpc(cfg: GrpcConfig): Promise<void> {
    const m = this.gm('traces'); // connection metrics are per transport
    const routeOf = (path: string) => this.routes.find((r) => r.grpcPath === path);
    const methods: Record<string, (call: UnaryCall) => UnaryReply | Promise<UnaryReply>> = {};
    for (const r of this.routes) methods[r.grpcPath] = (call) => this.onGrpcExport(r, call);
    let server: UnaryGrpcServer | undefined;
    const door = this.openDoor('grpc', cfg.endpoint, cfg.tls, cfg.auth, (o) => server?.setSecureContext(o));
    this.grpcAuth = door.auth;
    const t = door.tls?.serverOptions();
    server = new UnaryGrpcServer({
      methods,
      maxRecvBytes: Math.floor(cfg.max_recv_msg_size_mib * 1024 * 1024),
      maxConcurrentStreams: cfg.max_concurrent_streams,
      windowBytes: Math.floor(cfg.window_size_mib * 1024 * 1024),
      tls: t ? { cert: t.cert as Buffer, key: t.key as Buffer, ca: t.ca as Buffer | undefined, requireClientCert: door.tls!.mutual, minVersion: t.minVersion } : undefined,
      admit: (path, headers) => this.admitGrpc(routeOf(path)?.signal ?? 'traces', headers['authorization']),
      idleTimeoutMs: parseDuration(cfg.idle_timeout),
      readTimeoutMs: parseDuration(cfg.read_timeout),
      maxConnections: cfg.max_connections,
      connectionMetrics: m.connections,
      // Refused while shutting down is not counted, as on the HTTP side: the client retries.
      onRefused: (path, why) => {
        if (why !== 'unavailable') this.gm(routeOf(path)?.signal ?? 'traces').refuse(why, 1);
      },
      onHandlerError: (err) => this.settings.logger.error({ err }, 'unexpected failure answering a gRPC export'),
    });
    const { host, port } = splitHostPort(cfg.endpoint);
    this.grpcPort = await server.listen(host, port);
    this.grpcServer = server;
    door.watch();
    this.settings.logger.info({ endpoint: `${host}:${this.grpcPort}`, tls: t !== undefined, mtls: door.tls?.mutual ?? false, auth: door.auth !== undefined }, 'OTLP/gRPC receiver listening');
  }

  /** At a call's headers: authentication, then the pipeline's standing refusal. */
  private admitGrpc(signal: Signal, authorization: string | undefined): UnaryReply | undefined {
    if (this.grpcAuth !== undefined && !this.grpcAuth.verify(authorization)) {
      this.gm(signal).refuseEarly('unauthenticated');
      return { code: GrpcCode.UNAUTHENTICATED, message: 'missing or invalid bearer token' };
    }
    if (this.stopped) return undefined;
    const refusal = this.admission.get(signal)!.check();
    if (refusal === undefined) return undefined;
    // The memory hands out one error object per hint step: answer it once.
    let c = this.refusalReplies.get(signal);
    if (c === undefined || c.refusal !== refusal) {
      const a = answerFor(refusal);
      c = { refusal, reason: a.reason, reply: { code: a.grpcCode, message: a.message, details: encodeStatusWithRetry(a.grpcCode, a.message, a.retryAfterMs) } };
      this.refusalReplies.set(signal, c);
    }
    this.gm(signal).refuseEarly(c.reason);
    return c.reply;
  }

  private onGrpcExport(route: SignalRoute, call: UnaryCall): UnaryReply | Promise<UnaryReply> {
    const m = this.gm(route.signal);
    if (this.stopped) return { code: GrpcCode.UNAVAILABLE, message: 'collector is shutting down' };
    let scan: SignalScan;
    try {
      scan = route.scan(call.message);
    } catch (err) {
      m.refuse('malformed', 1);
      return { code: GrpcCode.INVALID_ARGUMENT, message: `malformed ${route.requestType}: ${(err as Error).message}` };
    }
    return this.deliver(route, scan, m).then((res): UnaryReply => {
      if (res.ok) return { code: GrpcCode.OK, body: encodeExportResponse(scan.rejected, scan.rejectReason) };
      const a = answerFor(res.err);
      return {
        code: a.grpcCode,
        message: a.message,
        details: a.retryAfterMs !== undefined ? encodeStatusWithRetry(a.grpcCode, a.message, a.retryAfterMs) : undefined,
      };
    });
  }

  // ------------------------------------------------------------------ HTTP

  private async startHttp(cfg: HttpConfig): Promise<void> {
    const m = this.hm('traces'); // connection metrics are per transport
    let server: http.Server | undefined;
    const door = this.openDoor('http', cfg.endpoint, cfg.tls, cfg.auth, (o) => (server as https.Server | undefined)?.setSecureContext(o));
    this.httpAuth = door.auth;
    const limits = {
      idleMs: parseDuration(cfg.idle_timeout),
      headerTimeoutMs: parseDuration(cfg.read_header_timeout),
      readTimeoutMs: parseDuration(cfg.read_timeout),
      maxConnections: cfg.max_connections,
    };
    const handle = (req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void => {
      try {
        this.onHttpRequest(cfg, req, res, expectsContinue);
      } catch (err) {
        this.settings.logger.error({ err }, 'unexpected failure handling an HTTP request');
        if (!res.headersSent) sendStatus(res, 500, 'internal error', 'application/json');
      }
    };
    const options = httpServerOptions(limits);
    server = door.tls ? https.createServer({ ...options, ...door.tls.serverOptions() }) : http.createServer(options);
    const timeouts = countHttpTimeouts(server, m.connections);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      timeouts.requestStarted(req.socket);
      req.once('end', () => timeouts.requestDone(req.socket));
      handle(req, res, false);
    });
    // Expect: 100-continue: the answer to the headers decides between 100 and a final status.
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      timeouts.requestStarted(req.socket);
      req.once('end', () => timeouts.requestDone(req.socket));
      handle(req, res, true);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      if (timeouts.clientError(err, socket)) return;
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    trackConnections(server, limits, m.connections, door.tls !== undefined);
    const { host, port } = splitHostPort(cfg.endpoint);
    this.httpPort = await listenOn(server, host, port);
    this.httpServer = server;
    door.watch();
    this.settings.logger.info({ endpoint: `${host}:${this.httpPort}`, tls: door.tls !== undefined, mtls: door.tls?.mutual ?? false, auth: door.auth !== undefined }, 'OTLP/HTTP receiver listening');
  }

  /** An answer given before the body was read: bounded discard of the rest (see early.ts). */
  private early(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string, replyType: string, close: boolean, headers: Record<string, string> = {}): void {
    const json = replyType === 'application/json';
    const body = json ? JSON.stringify({ code: grpcCodeForHttp(status), message }) : encodeRpcStatus(grpcCodeForHttp(status), message);
    answerEarly(req, res, status, { ...headers, 'Content-Type': json ? 'application/json' : 'application/x-protobuf' }, body, close, this.discard, this.hm('traces').connections);
  }

  private onHttpRequest(cfg: HttpConfig, req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void {
    const path = (req.url ?? '').split('?')[0];
    const ctype = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const isJson = ctype === 'application/json';
    const replyType = isJson ? 'application/json' : 'application/x-protobuf';
    const route = this.routes.find((r) => r.httpPath(cfg) === path);
    if (route === undefined) {
      const served = this.routes.map((r) => `${r.signal} at ${r.httpPath(cfg)}`).join(', ');
      return this.early(req, res, 404, `unknown path ${path}; this receiver accepts ${served}`, replyType, false);
    }
    const m = this.hm(route.signal);
    if (req.method !== 'POST') {
      return this.early(req, res, 405, `method ${req.method} not allowed; use POST`, replyType, false, { Allow: 'POST' });
    }
    if (this.httpAuth !== undefined && !this.httpAuth.verify(req.headers['authorization'])) {
      m.refuseEarly('unauthenticated');
      return this.early(req, res, 401, 'missing or invalid bearer token', replyType, false, { 'WWW-Authenticate': 'Bearer' });
    }
    if (!isJson && ctype !== 'application/x-protobuf') {
      return this.early(req, res, 415, `unsupported content type "${ctype}"; use application/x-protobuf or application/json`, 'application/json', false);
    }
    const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'gzip' && encoding !== 'identity' && encoding !== '') {
      return this.early(req, res, 400, `unsupported content encoding "${encoding}"; use gzip or none`, replyType, false);
    }
    if (this.stopped) {
      return this.early(req, res, 503, 'collector is shutting down', replyType, false, { 'Retry-After': '1' });
    }
    const limit = cfg.max_request_body_size;
    const declared = Number(req.headers['content-length'] ?? -1);
    if (declared > limit) {
      m.refuse('too_large', 1);
      return this.early(req, res, 413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`, replyType, true);
    }
    const refusal = this.admission.get(route.signal)!.check();
    if (refusal !== undefined) {
      const a = answerFor(refusal);
      m.refuseEarly(a.reason);
      return this.early(req, res, a.httpStatus, a.message, replyType, false, { 'Retry-After': retryAfterSeconds(a.retryAfterMs) });
    }
    if (expectsContinue) res.writeContinue();
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        req.off('data', onData);
        m.refuse('too_large', 1);
        this.early(req, res, 413, `request body exceeds the limit of ${limit} bytes`, replyType, true);
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('error', () => {
      /* client went away; nothing was accepted */
    });
    req.on('end', () => {
      if (tooLarge) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      if (encoding === 'gzip') {
        zlib.gunzip(body, { maxOutputLength: limit }, (err, out) => {
          if (err) {
            const big = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
            m.refuse(big ? 'too_large' : 'malformed', 1);
            if (big) res.setHeader('Connection', 'close');
            return sendStatus(res, big ? 413 : 400, big ? `decompressed body exceeds the limit of ${limit} bytes` : `invalid gzip body: ${err.message}`, replyType);
          }
          this.handleHttpBody(route, out, isJson, replyType, res);
        });
      } else this.handleHttpBody(route, body, isJson, replyType, res);
    });
  }

  private handleHttpBody(route: SignalRoute, body: Buffer, isJson: boolean, replyType: string, res: http.ServerResponse): void {
    const m = this.hm(route.signal);
    let scan: SignalScan;
    try {
      scan = isJson ? route.scanJson(body) : route.scan(body);
    } catch (err) {
      m.refuse('malformed', 1);
      const msg = err instanceof WireError ? err.message : String(err);
      return sendStatus(res, 400, `malformed ${route.requestType}: ${msg}`, replyType);
    }
    this.deliver(route, scan, m).then((r) => {
      if (r.ok) {
        res.statusCode = 200;
        res.setHeader('Content-Type', replyType);
        res.end(
          isJson
            ? exportResponseJson(scan.rejected, scan.rejectReason, route.rejectedJsonKey)
            : encodeExportResponse(scan.rejected, scan.rejectReason),
        );
        return;
      }
      const a = answerFor(r.err);
      if (a.retryAfterMs !== undefined) res.setHeader('Retry-After', retryAfterSeconds(a.retryAfterMs));
      sendStatus(res, a.httpStatus, a.message, replyType);
    });
  }

  /** Stops accepting: new requests are refused, listeners close, in-flight requests finish. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const d of this.doors) d.watch?.stop();
    const waits: Promise<void>[] = [];
    const g = this.grpcServer;
    if (g) waits.push(g.close(5000));
    const h = this.httpServer;
    if (h) {
      waits.push(new Promise<void>((resolve) => h.close(() => resolve())));
      h.closeIdleConnections();
      const force = setTimeout(() => h.closeAllConnections(), 5000);
      force.unref();
    }
    await Promise.all(waits);
  }
}

/** `Retry-After` is whole seconds (RFC 9110): the hint rounded up, at least 1. */
function retryAfterSeconds(ms: number | undefined): string {
  return String(Math.max(1, Math.ceil((ms ?? 1000) / 1000)));
}

function sendStatus(res: http.ServerResponse, status: number, message: string, contentType: string): void {
  if (res.headersSent) return;
  res.statusCode = status;
  if (contentType === 'application/json') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ code: grpcCodeForHttp(status), message }));
  } else {
    res.setHeader('Content-Type', 'application/x-protobuf');
    res.end(encodeRpcStatus(grpcCodeForHttp(status), message));
  }
}

function grpcCodeForHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INVALID_ARGUMENT;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 404:
      return GrpcCode.NOT_FOUND;
    case 405:
    case 415:
      return GrpcCode.UNIMPLEMENTED;
    case 413:
    case 429:
      return GrpcCode.RESOURCE_EXHAUSTED;
    case 503:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}
