/**
 * OtlpTestBackend: an OTLP trace backend for tests and load tests. Serves
 * OTLP/gRPC and OTLP/HTTP (protobuf and JSON, gzip) on 127.0.0.1, records what
 * arrives, and can be switched at run time between behaviours: ok, slow, down
 * (error answers or refused connections), throttling with a retry delay,
 * partial rejection, permanent error. See README.md in this folder.
 *
 * No test-framework imports: it is compiled into dist with the collector.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { scanExportRequest, type Span } from '../../collector/pdata/spans.js';
import { GrpcCode, UnaryGrpcServer, type UnaryCall, type UnaryReply } from '../../receivers/otlp/grpc-server.js';
import { jsonToProtobuf } from '../../collector/pdata/otlp-json.js';
import { spanName } from '../../collector/pdata/attributes.js';
import { WireReader } from '../../collector/pdata/wire.js';
import { encodeRpcStatus } from '../../collector/pdata/otlp-json.js';
import { encodeExportResponse, encodeRpcStatusWithRetry } from '../../exporters/exporterhelper/otlpwire.js';

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export type BackendMode =
  /** Accept everything. */
  | { kind: 'ok' }
  /** Accept after a delay. */
  | { kind: 'slow'; delayMs: number }
  /** gRPC UNAVAILABLE / HTTP 503; with `refuse`, stop listening so connections are refused. */
  | { kind: 'down'; refuse?: boolean }
  /** gRPC RESOURCE_EXHAUSTED with RetryInfo / HTTP 429 with Retry-After (whole seconds, rounded up). */
  | { kind: 'throttle'; retryAfterMs: number }
  /** Accept, but reject the first `rejectSpans` spans of each request through partial_success. */
  | { kind: 'partial'; rejectSpans: number; message?: string }
  /** gRPC INVALID_ARGUMENT / HTTP 400. */
  | { kind: 'permanent'; message?: string }
  /**
   * gRPC INVALID_ARGUMENT / HTTP 400 for a request holding any span named
   * `spanName` (a strict backend refusing a batch for one bad span); other
   * requests are accepted.
   */
  | { kind: 'reject_marked'; spanName: string };

export interface BackendOptions {
  /** Serve OTLP/gRPC (default true). */
  grpc?: boolean;
  /** Serve OTLP/HTTP (default true). */
  http?: boolean;
  /** Keep every accepted span's trace id + span id (default true; turn off for long load tests). */
  recordIds?: boolean;
  /**
   * Only count the spans of each request (a walk over the protobuf framing,
   * no Span objects): for throughput runs where the sink must stay cheap.
   * `onRequest` then gets no spans and `recordIds` has no effect.
   */
  countOnly?: boolean;
  /** Keep each request's body (decompressed, as sent: protobuf or JSON bytes). Default false. */
  keepBodies?: boolean;
  /**
   * Called for every request as it is recorded, with the scanned spans and how
   * many of the first were rejected (partial mode), so a recorder needs no
   * second scan and no kept body. `undecodable`: the body could not be read.
   */
  onRequest?: (req: ReceivedRequest, spans: readonly Span[] | undefined, rejected: number, undecodable: boolean) => void;
  /** Serve TLS with this PEM key pair (and require client certificates signed by `ca` when given). */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; requireClientCert?: boolean };
}

export interface ReceivedRequest {
  /** Date.now() at arrival. */
  at: number;
  transport: 'grpc' | 'http';
  encoding: 'proto' | 'json';
  /** Body arrived gzip-compressed (HTTP Content-Encoding, gRPC grpc-encoding with the compressed flag). */
  compressed: boolean;
  /** HTTP path ('' for gRPC). */
  path: string;
  /** Request headers / gRPC metadata (lowercase names; binary metadata omitted). */
  headers: Record<string, string>;
  /** Spans in the request. */
  spans: number;
  /** How the backend answered. */
  outcome: 'accepted' | 'partial' | 'error';
  /** Decompressed body, when keepBodies. */
  body?: Uint8Array;
}

export interface BackendStats {
  requests: number;
  /** Requests answered with an error (down, throttle, permanent, undecodable). */
  failedRequests: number;
  /** Spans accepted (partial rejections excluded). Counted on arrival, also in slow mode. */
  acceptedSpans: number;
  /** Spans rejected through partial_success. */
  rejectedSpans: number;
  /** Accepted spans whose trace id + span id had already been accepted (only with recordIds). */
  duplicateSpans: number;
}

interface ModeEntry {
  mode: BackendMode;
  remaining: number; // requests left in this mode; Infinity = until changed
}

export class OtlpTestBackend {
  readonly received: ReceivedRequest[] = [];
  /** `${traceId}:${spanId}` of every accepted span (with recordIds). */
  readonly spanKeys = new Set<string>();
  readonly stats: BackendStats = { requests: 0, failedRequests: 0, acceptedSpans: 0, rejectedSpans: 0, duplicateSpans: 0 };

  private readonly opts: Required<Omit<BackendOptions, 'tls' | 'onRequest'>> & Pick<BackendOptions, 'tls' | 'onRequest'>;
  private modes: ModeEntry[] = [{ mode: { kind: 'ok' }, remaining: Infinity }];
  private grpcServer: UnaryGrpcServer | undefined;
  private httpServer: http.Server | undefined;
  private grpcPort = 0;
  private httpPort = 0;
  private listening = false;
  private waiters: Array<() => void> = [];

  constructor(options: BackendOptions = {}) {
    this.opts = {
      grpc: options.grpc ?? true,
      http: options.http ?? true,
      recordIds: options.recordIds ?? true,
      countOnly: options.countOnly ?? false,
      keepBodies: options.keepBodies ?? false,
      tls: options.tls,
      onRequest: options.onRequest,
    };
  }

  /** host:port for the OTLP gRPC exporter. */
  get grpcEndpoint(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }
  /** Base URL for the OTLP/HTTP exporter (append /v1/traces, or let the exporter do it). */
  get httpEndpoint(): string {
    return `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${this.httpPort}`;
  }

  /** Binds both servers on 127.0.0.1 port 0 (later restarts after `down`+`refuse` reuse the ports). */
  async start(): Promise<void> {
    await this.listen();
  }

  /** Current behaviour. */
  get mode(): BackendMode {
    return this.modes[0].mode;
  }

  /**
   * Switches behaviour. With `requests`, the mode applies to that many
   * requests only and then the previous mode comes back (e.g. fail twice).
   */
  async setMode(mode: BackendMode, opts: { requests?: number } = {}): Promise<void> {
    const entry: ModeEntry = { mode, remaining: opts.requests ?? Infinity };
    if (entry.remaining === Infinity) this.modes = [entry];
    else this.modes.unshift(entry);
    await this.applyListening();
  }

  /** Forgets everything received (the mode stays). */
  reset(): void {
    this.received.length = 0;
    this.spanKeys.clear();
    Object.assign(this.stats, { requests: 0, failedRequests: 0, acceptedSpans: 0, rejectedSpans: 0, duplicateSpans: 0 });
  }

  /** Resolves once at least `n` spans were accepted; rejects after `timeoutMs` of real time. */
  waitForSpans(n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor(() => this.stats.acceptedSpans >= n, timeoutMs, `${n} spans (have ${this.stats.acceptedSpans})`);
  }

  /** Resolves once at least `n` requests arrived (any outcome). */
  waitForRequests(n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor(() => this.stats.requests >= n, timeoutMs, `${n} requests (have ${this.stats.requests})`);
  }

  async close(): Promise<void> {
    await this.stopListening();
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  // ---------------------------------------------------------------- internals

  private waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`OtlpTestBackend: timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(check);
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The mode for the next request (counts down temporary modes). */
  private takeMode(): BackendMode {
    const e = this.modes[0];
    if (e.remaining !== Infinity) {
      e.remaining--;
      if (e.remaining <= 0 && this.modes.length > 1) {
        this.modes.shift();
        void this.applyListening();
      }
    }
    return e.mode;
  }

  private async applyListening(): Promise<void> {
    const refuse = this.mode.kind === 'down' && (this.mode as { refuse?: boolean }).refuse === true;
    if (refuse && this.listening) await this.stopListening();
    else if (!refuse && !this.listening && (this.grpcPort !== 0 || this.httpPort !== 0)) await this.listen();
  }

  private async listen(): Promise<void> {
    if (this.listening) return;
    this.listening = true;
    if (this.opts.grpc) await this.listenGrpc();
    if (this.opts.http) await this.listenHttp();
  }

  private async stopListening(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const g = this.grpcServer;
    this.grpcServer = undefined;
    if (g) await g.close(0);
    const h = this.httpServer;
    this.httpServer = undefined;
    if (h) {
      await new Promise<void>((resolve) => {
        h.close(() => resolve());
        h.closeAllConnections();
      });
    }
  }

  private async listenGrpc(): Promise<void> {
    const server = new UnaryGrpcServer({
      methods: { [TRACE_EXPORT_PATH]: (call) => this.onGrpc(call) },
      maxRecvBytes: 256 * 1024 * 1024,
      maxConcurrentStreams: 1000,
      tls: this.opts.tls,
    });
    this.grpcPort = await server.listen('127.0.0.1', this.grpcPort);
    this.grpcServer = server;
  }

  private async listenHttp(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.onHttp(req, res);
    const t = this.opts.tls;
    const server = t
      ? https.createServer({ key: t.key, cert: t.cert, ca: t.ca, requestCert: t.requireClientCert ?? false, rejectUnauthorized: t.requireClientCert ?? false }, handler)
      : http.createServer(handler);
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.httpPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.httpPort = (server.address() as AddressInfo).port;
    this.httpServer = server;
  }

  /** Records a request; returns how many spans were rejected by a partial mode. */
  private record(
    transport: 'grpc' | 'http',
    encoding: 'proto' | 'json',
    compressed: boolean,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    proto: Uint8Array | undefined,
    mode: BackendMode,
  ): { rejected: number; error: string | undefined; refused: boolean } {
    this.stats.requests++;
    let spans: ReturnType<typeof scanExportRequest>['spans'] | undefined;
    let count = 0;
    let error: string | undefined;
    if (proto !== undefined) {
      try {
        if (this.opts.countOnly) count = countSpans(proto);
        else {
          spans = scanExportRequest(proto).spans;
          count = spans.length;
        }
      } catch (e) {
        error = `cannot decode request: ${(e as Error).message}`;
      }
    } else error = 'cannot decode request';
    const rec: ReceivedRequest = { at: Date.now(), transport, encoding, compressed, path, headers, spans: count, outcome: 'accepted' };
    if (this.opts.keepBodies) rec.body = body;
    const marked = mode.kind === 'reject_marked' && spans !== undefined && spans.some((sp) => spanName(sp) === mode.spanName);
    const failing = mode.kind === 'down' || mode.kind === 'throttle' || mode.kind === 'permanent' || marked;
    let rejected = 0;
    if (error !== undefined || failing) {
      rec.outcome = 'error';
      this.stats.failedRequests++;
    } else {
      if (mode.kind === 'partial') {
        rejected = Math.min(mode.rejectSpans, count);
        if (rejected > 0) rec.outcome = 'partial';
      }
      this.stats.rejectedSpans += rejected;
      this.stats.acceptedSpans += count - rejected;
      if (this.opts.recordIds && spans !== undefined) {
        for (let i = rejected; i < spans.length; i++) {
          const key = spans[i].traceId + ':' + spans[i].spanId;
          if (this.spanKeys.has(key)) this.stats.duplicateSpans++;
          else this.spanKeys.add(key);
        }
      }
    }
    this.received.push(rec);
    this.opts.onRequest?.(rec, error === undefined ? spans : [], rejected, error !== undefined);
    this.notify();
    return { rejected, error, refused: marked };
  }

  private async onGrpc(call: UnaryCall): Promise<UnaryReply> {
    const mode = this.takeMode();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.headers)) if (typeof v === 'string' && k[0] !== ':' && !k.endsWith('-bin')) headers[k] = v;
    const body = call.message;
    const { rejected, error, refused } = this.record('grpc', 'proto', call.compressed, '', headers, body, body, mode);
    if (mode.kind === 'slow') await delay(mode.delayMs);
    if (error !== undefined) return { code: GrpcCode.INVALID_ARGUMENT, message: error };
    if (refused) return { code: GrpcCode.INVALID_ARGUMENT, message: 'request holds a marked span' };
    switch (mode.kind) {
      case 'down':
        return { code: GrpcCode.UNAVAILABLE, message: 'backend is down' };
      case 'permanent':
        return { code: GrpcCode.INVALID_ARGUMENT, message: mode.message ?? 'permanent error' };
      case 'throttle':
        return { code: GrpcCode.RESOURCE_EXHAUSTED, message: 'throttled', details: encodeRpcStatusWithRetry(GrpcCode.RESOURCE_EXHAUSTED, 'throttled', mode.retryAfterMs) };
      case 'partial':
        return { code: GrpcCode.OK, body: encodeExportResponse(rejected, mode.message ?? `rejected ${rejected} spans`) };
      default:
        return { code: GrpcCode.OK };
    }
  }

  private async onHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      res.destroy();
      return;
    }
    const mode = this.takeMode();
    const json = (req.headers['content-type'] ?? '').startsWith('application/json');
    const compressed = req.headers['content-encoding'] === 'gzip';
    let body: Uint8Array = Buffer.concat(chunks);
    let proto: Uint8Array | undefined;
    try {
      if (compressed) body = zlib.gunzipSync(body);
      proto = json ? jsonToProtobuf(body) : body;
    } catch {
      proto = undefined;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const { rejected, error, refused } = this.record('http', json ? 'json' : 'proto', compressed, req.url ?? '', headers, body, proto, mode);
    if (mode.kind === 'slow') await delay(mode.delayMs);
    const ct = json ? 'application/json' : 'application/x-protobuf';
    const fail = (status: number, code: number, message: string, extra: Record<string, string> = {}) => {
      const payload = json ? JSON.stringify({ code, message }) : Buffer.from(encodeRpcStatus(code, message));
      res.writeHead(status, { 'content-type': ct, ...extra });
      res.end(payload);
    };
    if (error !== undefined) return fail(400, GrpcCode.INVALID_ARGUMENT, error);
    if (refused) return fail(400, GrpcCode.INVALID_ARGUMENT, 'request holds a marked span');
    switch (mode.kind) {
      case 'down':
        return fail(503, GrpcCode.UNAVAILABLE, 'backend is down');
      case 'permanent':
        return fail(400, GrpcCode.INVALID_ARGUMENT, mode.message ?? 'permanent error');
      case 'throttle':
        return fail(429, GrpcCode.RESOURCE_EXHAUSTED, 'throttled', { 'retry-after': String(Math.ceil(mode.retryAfterMs / 1000)) });
      case 'partial': {
        const msg = mode.message ?? `rejected ${rejected} spans`;
        res.writeHead(200, { 'content-type': ct });
        if (json) res.end(JSON.stringify({ partialSuccess: { rejectedSpans: String(rejected), errorMessage: msg } }));
        else res.end(Buffer.from(encodeExportResponse(rejected, msg)));
        return;
      }
      default:
        res.writeHead(200, { 'content-type': ct });
        res.end(json ? '{}' : Buffer.alloc(0));
    }
  }
}

/** Spans in an ExportTraceServiceRequest, counted from the framing alone (resource_spans 1 > scope_spans 2 > spans 2). */
export function countSpans(buf: Uint8Array): number {
  let n = 0;
  eachLen(buf, 0, buf.length, 0x0a, (rs, rsEnd) => eachLen(buf, rs, rsEnd, 0x12, (ss, ssEnd) => eachLen(buf, ss, ssEnd, 0x12, () => n++)));
  return n;
}

/** Calls `each(start, end)` for every length-delimited field with this tag in buf[start, end); skips the others. */
function eachLen(buf: Uint8Array, start: number, end: number, tag: number, each: (start: number, end: number) => void): void {
  const r = new WireReader(buf, start, end);
  while (!r.done()) {
    const t = r.uint32();
    if (t !== tag) {
      r.skip(t & 7);
      continue;
    }
    const e = r.lenEnd();
    each(r.pos, e);
    r.pos = e;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
