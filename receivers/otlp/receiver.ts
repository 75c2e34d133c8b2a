/**
 * The OTLP receiver: gRPC (TraceService/Export) and HTTP (POST /v1/traces,
 * protobuf or JSON, optionally gzip). Both transports scan the request into
 * Span objects (no full decode) and hand them to the next stage; the answer to
 * the client follows the outcome (see status.ts).
 */
import http from 'node:http';
import zlib from 'node:zlib';
import type { Component, CreateSettings } from '../../collector/component.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import { scanExportRequest, type ScanResult } from '../../collector/pdata/spans.js';
import { WireError } from '../../collector/pdata/wire.js';
import { scanJsonRequest, encodeRpcStatus } from '../../collector/pdata/otlp-json.js';
import type { Counter } from '../../collector/telemetry/metrics.js';
import { splitHostPort, type GrpcConfig, type HttpConfig, type OtlpReceiverConfig } from './config.js';
import { GrpcCode, UnaryGrpcServer, listenOn, type UnaryCall, type UnaryReply } from './grpc-server.js';
import { answerFor, encodeExportResponse, encodeStatusWithRetry, exportResponseJson, type RefuseReason } from './status.js';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

type Transport = 'grpc' | 'http';

class TransportMetrics {
  readonly accepted: ReturnType<Counter['labels']>;
  readonly refused: ReturnType<Counter['labels']>;
  private readonly refusedByReason: Counter;
  private readonly receiver: string;
  private readonly transport: string;
  private readonly reasonChildren = new Map<string, ReturnType<Counter['labels']>>();
  constructor(settings: CreateSettings, transport: Transport) {
    const t = settings.telemetry;
    this.receiver = settings.id;
    this.transport = transport;
    this.accepted = t
      .counter('otelcol_receiver_accepted_spans_total', 'Spans the receiver accepted into the pipeline.', ['receiver', 'transport'])
      .labels(settings.id, transport);
    this.refused = t
      .counter('otelcol_receiver_refused_spans_total', 'Spans the receiver refused (the client was told).', ['receiver', 'transport'])
      .labels(settings.id, transport);
    this.refusedByReason = t.counter(
      'sidecar_receiver_refused_spans_total',
      'Spans refused at the receiver, by reason (invalid_span, memory_limit, retryable, permanent, malformed, too_large, internal).',
      ['receiver', 'transport', 'reason'],
    );
  }
  refuse(reason: RefuseReason | 'invalid_span', n: number): void {
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

export class OtlpReceiver implements Component {
  private readonly settings: CreateSettings;
  private readonly config: OtlpReceiverConfig;
  private readonly next: TracesConsumer;
  private grpcServer: UnaryGrpcServer | undefined;
  private httpServer: http.Server | undefined;
  private readonly grpcMetrics: TransportMetrics;
  private readonly httpMetrics: TransportMetrics;
  private stopped = false;
  /** Bound addresses after start (port 0 resolves to the real port). */
  grpcPort = 0;
  httpPort = 0;

  constructor(settings: CreateSettings, config: OtlpReceiverConfig, next: TracesConsumer) {
    this.settings = settings;
    this.config = config;
    this.next = next;
    this.grpcMetrics = new TransportMetrics(settings, 'grpc');
    this.httpMetrics = new TransportMetrics(settings, 'http');
  }

  async start(): Promise<void> {
    const { grpc: g, http: h } = this.config.protocols;
    if (g) await this.startGrpc(g);
    if (h) await this.startHttp(h);
  }

  /**
   * Hands a scanned request to the pipeline. Resolves with what to answer;
   * never rejects (every failure is an answer to the client).
   */
  private async deliver(scan: ScanResult, m: TransportMetrics): Promise<{ ok: true } | { ok: false; err: unknown }> {
    m.refuse('invalid_span', scan.rejected - scan.malformed);
    m.refuse('malformed', scan.malformed);
    if (scan.spans.length === 0) return { ok: true };
    try {
      await this.next.consume(scan.spans);
      m.accepted.inc(scan.spans.length);
      return { ok: true };
    } catch (err) {
      const a = answerFor(err);
      m.refuse(a.reason, scan.spans.length);
      if (a.reason === 'internal') this.settings.logger.error({ err }, 'pipeline failed on a request');
      return { ok: false, err };
    }
  }

  // ------------------------------------------------------------------ gRPC

  private async startGrpc(cfg: GrpcConfig): Promise<void> {
    const m = this.grpcMetrics;
    const server = new UnaryGrpcServer({
      methods: { [EXPORT_PATH]: (call) => this.onGrpcExport(call) },
      maxRecvBytes: Math.floor(cfg.max_recv_msg_size_mib * 1024 * 1024),
      maxConcurrentStreams: cfg.max_concurrent_streams,
      windowBytes: Math.floor(cfg.window_size_mib * 1024 * 1024),
      // Refused while shutting down is not counted, as on the HTTP side: the client retries.
      onRefused: (_path, why) => {
        if (why !== 'unavailable') m.refuse(why, 1);
      },
      onHandlerError: (err) => this.settings.logger.error({ err }, 'unexpected failure answering a gRPC export'),
    });
    const { host, port } = splitHostPort(cfg.endpoint);
    this.grpcPort = await server.listen(host, port);
    this.grpcServer = server;
    this.settings.logger.info({ endpoint: `${host}:${this.grpcPort}` }, 'OTLP/gRPC receiver listening');
  }

  private onGrpcExport(call: UnaryCall): UnaryReply | Promise<UnaryReply> {
    const m = this.grpcMetrics;
    if (this.stopped) return { code: GrpcCode.UNAVAILABLE, message: 'collector is shutting down' };
    let scan: ScanResult;
    try {
      scan = scanExportRequest(call.message);
    } catch (err) {
      m.refuse('malformed', 1);
      return { code: GrpcCode.INVALID_ARGUMENT, message: `malformed ExportTraceServiceRequest: ${(err as Error).message}` };
    }
    return this.deliver(scan, m).then((res): UnaryReply => {
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
    const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 60_000, headersTimeout: 30_000 }, (req, res) => {
      try {
        this.onHttpRequest(cfg, req, res);
      } catch (err) {
        this.settings.logger.error({ err }, 'unexpected failure handling an HTTP request');
        if (!res.headersSent) sendStatus(res, 500, 'internal error', 'application/json');
      }
    });
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    const { host, port } = splitHostPort(cfg.endpoint);
    this.httpPort = await listenOn(server, host, port);
    this.httpServer = server;
    this.settings.logger.info({ endpoint: `${host}:${this.httpPort}` }, 'OTLP/HTTP receiver listening');
  }

  private onHttpRequest(cfg: HttpConfig, req: http.IncomingMessage, res: http.ServerResponse): void {
    const m = this.httpMetrics;
    const path = (req.url ?? '').split('?')[0];
    const ctype = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const isJson = ctype === 'application/json';
    const replyType = isJson ? 'application/json' : 'application/x-protobuf';
    if (path !== cfg.traces_url_path) {
      drain(req);
      return sendStatus(res, 404, `unknown path ${path}; traces are accepted at ${cfg.traces_url_path}`, replyType);
    }
    if (req.method !== 'POST') {
      drain(req);
      res.setHeader('Allow', 'POST');
      return sendStatus(res, 405, `method ${req.method} not allowed; use POST`, replyType);
    }
    if (!isJson && ctype !== 'application/x-protobuf') {
      drain(req);
      return sendStatus(res, 415, `unsupported content type "${ctype}"; use application/x-protobuf or application/json`, 'application/json');
    }
    const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'gzip' && encoding !== 'identity' && encoding !== '') {
      drain(req);
      return sendStatus(res, 400, `unsupported content encoding "${encoding}"; use gzip or none`, replyType);
    }
    if (this.stopped) {
      drain(req);
      res.setHeader('Retry-After', '1');
      return sendStatus(res, 503, 'collector is shutting down', replyType);
    }
    const limit = cfg.max_request_body_size;
    const declared = Number(req.headers['content-length'] ?? -1);
    if (declared > limit) {
      m.refuse('too_large', 1);
      res.setHeader('Connection', 'close');
      drain(req);
      return sendStatus(res, 413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`, replyType);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        m.refuse('too_large', 1);
        res.setHeader('Connection', 'close');
        sendStatus(res, 413, `request body exceeds the limit of ${limit} bytes`, replyType);
        return;
      }
      chunks.push(c);
    });
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
          this.handleHttpBody(out, isJson, replyType, res);
        });
      } else this.handleHttpBody(body, isJson, replyType, res);
    });
  }

  private handleHttpBody(body: Buffer, isJson: boolean, replyType: string, res: http.ServerResponse): void {
    const m = this.httpMetrics;
    let scan: ScanResult;
    try {
      scan = isJson ? scanJsonRequest(body) : scanExportRequest(body);
    } catch (err) {
      m.refuse('malformed', 1);
      const msg = err instanceof WireError ? err.message : String(err);
      return sendStatus(res, 400, `malformed ExportTraceServiceRequest: ${msg}`, replyType);
    }
    this.deliver(scan, m).then((r) => {
      if (r.ok) {
        res.statusCode = 200;
        res.setHeader('Content-Type', replyType);
        res.end(isJson ? exportResponseJson(scan.rejected, scan.rejectReason) : encodeExportResponse(scan.rejected, scan.rejectReason));
        return;
      }
      const a = answerFor(r.err);
      if (a.retryAfterMs !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(a.retryAfterMs / 1000))));
      sendStatus(res, a.httpStatus, a.message, replyType);
    });
  }

  /** Stops accepting: new requests are refused, listeners close, in-flight requests finish. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
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

function drain(req: http.IncomingMessage): void {
  req.resume();
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
