/**
 * OTLP/gRPC send function: one unary call to TraceService/Export with raw
 * Buffer (de)serializers, so the request bytes built by encodeExportRequest go
 * out unchanged (unknown fields included).
 */
import * as grpc from '@grpc/grpc-js';
import type { ExportRequest } from '../exporterhelper/queue.js';
import type { SendResult } from '../exporterhelper/exporter.js';
import { HeaderSource } from '../exporterhelper/headers.js';
import { loadTlsFiles } from '../exporterhelper/tls.js';
import { parseExportResponse, parseRpcStatus } from '../exporterhelper/otlpwire.js';
import { CollectorError, PermanentError, RetryableError } from '../../collector/errors.js';
import { parseGrpcEndpoint, type OtlpExporterConfig, type ParsedEndpoint } from './config.js';

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** OTLP: these codes may succeed later; RESOURCE_EXHAUSTED only with RetryInfo. */
const RETRYABLE = new Set<number>([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

const identity = (b: Buffer) => b;

/** Maps a failed call's status to a CollectorError (exported for tests). */
export function grpcError(err: grpc.ServiceError): CollectorError {
  const code = err.code;
  let retryDelayMs: number | undefined;
  const details = err.metadata?.get('grpc-status-details-bin');
  if (details && details.length > 0 && Buffer.isBuffer(details[0])) retryDelayMs = parseRpcStatus(details[0]).retryDelayMs;
  const name = grpc.status[code] ?? String(code);
  const msg = `gRPC ${name}: ${err.details}`;
  if (RETRYABLE.has(code)) return new RetryableError(msg, retryDelayMs);
  if (code === grpc.status.RESOURCE_EXHAUSTED && retryDelayMs !== undefined) return new RetryableError(msg, retryDelayMs);
  return new PermanentError(msg);
}

export class GrpcSender {
  private client: grpc.Client | undefined;
  private readonly headers: HeaderSource;
  private readonly endpoint: ParsedEndpoint;

  constructor(private readonly cfg: OtlpExporterConfig) {
    this.headers = new HeaderSource(cfg.headers);
    this.endpoint = parseGrpcEndpoint(cfg.endpoint);
  }

  async start(): Promise<void> {
    const tls = this.cfg.tls;
    const insecure = this.endpoint.insecure ?? tls.insecure;
    let creds: grpc.ChannelCredentials;
    if (insecure) creds = grpc.credentials.createInsecure();
    else {
      const m = await loadTlsFiles(tls);
      const verify: grpc.VerifyOptions = tls.insecure_skip_verify ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {};
      creds = grpc.credentials.createSsl(m.ca ?? null, m.key ?? null, m.cert ?? null, verify);
    }
    this.client = new grpc.Client(this.endpoint.address, creds, {
      'grpc.default_compression_algorithm': this.cfg.compression === 'gzip' ? grpc.compressionAlgorithms.gzip : grpc.compressionAlgorithms.identity,
      'grpc.primary_user_agent': 'sidecar-collector',
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    });
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  send = async (req: ExportRequest, signal: AbortSignal): Promise<SendResult | void> => {
    const client = this.client;
    if (client === undefined) throw new RetryableError('otlp exporter is not started');
    const md = new grpc.Metadata();
    for (const [k, v] of this.headers.fixed) md.set(k, v);
    if (this.headers.hasFiles) for (const [k, v] of await this.headers.fileHeaders()) md.set(k, v);
    const b = req.bytes;
    const body = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    return new Promise<SendResult | void>((resolve, reject) => {
      const call = client.makeUnaryRequest<Buffer, Buffer>(TRACE_EXPORT_PATH, identity, identity, body, md, {}, (err, resp) => {
        signal.removeEventListener('abort', onAbort);
        if (err) return reject(grpcError(err));
        if (resp === undefined || resp.length === 0) return resolve();
        try {
          const ps = parseExportResponse(resp);
          resolve(ps ? { rejectedSpans: ps.rejectedSpans, errorMessage: ps.errorMessage } : undefined);
        } catch {
          resolve(); // accepted; an unreadable response body does not undo that
        }
      });
      const onAbort = () => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  };
}
