/**
 * OTLP/gRPC send function: one unary call to TraceService/Export through the
 * node:http2 client in grpc-client.ts, so the request bytes built by
 * encodeExportRequest go out unchanged (unknown fields included) and uncopied.
 */
import type { ExportRequest } from '../exporterhelper/queue.js';
import type { SendResult } from '../exporterhelper/exporter.js';
import { HeaderSource } from '../exporterhelper/headers.js';
import { loadTlsFiles } from '../exporterhelper/tls.js';
import { parseExportResponse, parseRpcStatus } from '../exporterhelper/otlpwire.js';
import { CollectorError, InvalidDataError, PermanentError, RetryableError } from '../../collector/errors.js';
import { GrpcCode } from '../../receivers/otlp/grpc-server.js';
import { UnaryGrpcClient } from './grpc-client.js';
import { parseGrpcEndpoint, type OtlpExporterConfig, type ParsedEndpoint } from './config.js';
import type { Signal } from '../../collector/signals.js';

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** The Export method of each signal's service. */
export const EXPORT_PATHS: Record<Signal, string> = {
  traces: TRACE_EXPORT_PATH,
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
};

/** OTLP: these codes may succeed later; RESOURCE_EXHAUSTED only with RetryInfo. */
const RETRYABLE = new Set<number>([
  GrpcCode.CANCELLED,
  GrpcCode.DEADLINE_EXCEEDED,
  GrpcCode.ABORTED,
  GrpcCode.OUT_OF_RANGE,
  GrpcCode.UNAVAILABLE,
  GrpcCode.DATA_LOSS,
]);

const CODE_NAMES = new Map<number, string>(Object.entries(GrpcCode).map(([k, v]) => [v, k]));

/** Maps a failed call's status (code, grpc-message, grpc-status-details-bin) to a CollectorError. */
export function grpcError(code: number, message: string, details?: Uint8Array): CollectorError {
  const retryDelayMs = details !== undefined && details.length > 0 ? parseRpcStatus(details).retryDelayMs : undefined;
  const msg = `gRPC ${CODE_NAMES.get(code) ?? String(code)}: ${message}`;
  if (RETRYABLE.has(code)) return new RetryableError(msg, retryDelayMs);
  if (code === GrpcCode.RESOURCE_EXHAUSTED && retryDelayMs !== undefined) return new RetryableError(msg, retryDelayMs);
  if (code === GrpcCode.INVALID_ARGUMENT) return new InvalidDataError(msg);
  return new PermanentError(msg);
}

export class GrpcSender {
  private client: UnaryGrpcClient | undefined;
  private readonly headers: HeaderSource;
  private readonly endpoint: ParsedEndpoint;

  private readonly path: string;

  constructor(
    private readonly cfg: OtlpExporterConfig,
    signal: Signal = 'traces',
  ) {
    this.path = EXPORT_PATHS[signal];
    this.headers = new HeaderSource(cfg.headers);
    this.endpoint = parseGrpcEndpoint(cfg.endpoint);
  }

  async start(): Promise<void> {
    const tls = this.cfg.tls;
    const insecure = this.endpoint.insecure ?? tls.insecure;
    let t;
    if (!insecure) {
      const m = await loadTlsFiles(tls);
      t = { ca: m.ca, cert: m.cert, key: m.key, skipVerify: tls.insecure_skip_verify };
    }
    this.client = new UnaryGrpcClient({ address: this.endpoint.address, tls: t, userAgent: 'sidecar-collector', maxRecvBytes: 16 * 1024 * 1024 });
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  send = async (req: ExportRequest, signal: AbortSignal): Promise<SendResult | void> => {
    const client = this.client;
    if (client === undefined) throw new RetryableError('otlp exporter is not started');
    const md: Record<string, string> = {};
    for (const [k, v] of this.headers.fixed) md[k.toLowerCase()] = v;
    if (this.headers.hasFiles) for (const [k, v] of await this.headers.fileHeaders()) md[k.toLowerCase()] = v;
    const r = await client.call(this.path, req.bytes, md, this.cfg.compression === 'gzip', signal);
    if (r.code !== GrpcCode.OK) throw grpcError(r.code, r.message, r.details);
    if (r.body === undefined || r.body.length === 0) return;
    try {
      const ps = parseExportResponse(r.body);
      return ps ? { rejectedSpans: ps.rejectedSpans, errorMessage: ps.errorMessage } : undefined;
    } catch {
      return; // accepted; an unreadable response body does not undo that
    }
  };
}
