/**
 * OTLP clients the generator sends through: gRPC (grpc-js with raw byte
 * serializers, so the bytes are exactly what was encoded) and HTTP
 * (protobuf or JSON, optionally gzip). Each send answers one attempt's
 * outcome; the retry loop lives in the generator, as in an SDK exporter.
 */
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import zlib from 'node:zlib';
import { WireReader, WIRE_LEN, WIRE_VARINT } from '../../collector/pdata/wire.js';

export type Protocol = 'grpc' | 'http/protobuf' | 'http/json';

export interface TransportConfig {
  protocol: Protocol;
  /** host:port (gRPC) or host:port / http://host:port (HTTP). */
  endpoint: string;
  gzip: boolean;
  timeoutMs: number;
  /** Parallel connections / streams the client may use. */
  maxSockets: number;
}

export interface AttemptResult {
  ok: boolean;
  /** 'ok', 'grpc:UNAVAILABLE', 'http:503', 'net:ECONNREFUSED', ... */
  code: string;
  retryable: boolean;
  retryAfterMs: number | undefined;
  /** partial_success.rejected_spans on success. */
  rejectedSpans: number;
  message: string;
}

export interface Transport {
  send(body: Buffer): Promise<AttemptResult>;
  close(): void;
}

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const GRPC_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);
const GRPC_RETRYABLE = new Set([1, 4, 10, 11, 14, 15]);

/** Reads partial_success {rejected_spans, error_message} from an encoded ExportTraceServiceResponse. */
export function decodePartialSuccess(buf: Uint8Array): { rejected: number; message: string } {
  let rejected = 0;
  let message = '';
  try {
    const r = new WireReader(buf);
    while (!r.done()) {
      const tag = r.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === WIRE_LEN) {
        const end = r.lenEnd();
        const inner = new WireReader(buf, r.pos, end);
        while (!inner.done()) {
          const t = inner.uint32();
          if (t >>> 3 === 1 && (t & 7) === WIRE_VARINT) rejected = Number(inner.uint64Number());
          else if (t >>> 3 === 2 && (t & 7) === WIRE_LEN) message = inner.string();
          else inner.skip(t & 7);
        }
        r.pos = end;
      } else r.skip(tag & 7);
    }
  } catch {
    // a malformed response body is treated as a plain success
  }
  return { rejected, message };
}

/** google.rpc.Status bytes -> RetryInfo.retry_delay in ms, if any detail carries one. */
export function retryInfoDelayMs(statusBytes: Uint8Array): number | undefined {
  try {
    const r = new WireReader(statusBytes);
    while (!r.done()) {
      const tag = r.uint32();
      if (tag >>> 3 === 3 && (tag & 7) === WIRE_LEN) {
        const end = r.lenEnd();
        const any = new WireReader(statusBytes, r.pos, end);
        let typeUrl = '';
        let value: Uint8Array | undefined;
        while (!any.done()) {
          const t = any.uint32();
          if (t >>> 3 === 1) typeUrl = any.string();
          else if (t >>> 3 === 2) value = any.bytes();
          else any.skip(t & 7);
        }
        r.pos = end;
        if (typeUrl.endsWith('google.rpc.RetryInfo') && value) {
          const ri = new WireReader(value);
          while (!ri.done()) {
            const t = ri.uint32();
            if (t >>> 3 === 1 && (t & 7) === WIRE_LEN) {
              const dEnd = ri.lenEnd();
              const d = new WireReader(value, ri.pos, dEnd);
              let s = 0;
              let n = 0;
              while (!d.done()) {
                const tt = d.uint32();
                if (tt >>> 3 === 1) s = d.uint64Number();
                else if (tt >>> 3 === 2) n = d.uint64Number();
                else d.skip(tt & 7);
              }
              return s * 1000 + n / 1e6;
            }
            ri.skip(t & 7);
          }
          return 0;
        }
      } else r.skip(tag & 7);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

class GrpcTransport implements Transport {
  private readonly client: grpc.Client;
  constructor(private readonly cfg: TransportConfig) {
    const opts: grpc.ChannelOptions = { 'grpc.max_send_message_length': 64 << 20, 'grpc.max_receive_message_length': 64 << 20 };
    if (cfg.gzip) opts['grpc.default_compression_algorithm'] = 2;
    this.client = new grpc.Client(cfg.endpoint.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure(), opts);
  }
  send(body: Buffer): Promise<AttemptResult> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        EXPORT_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        new grpc.Metadata(),
        { deadline: Date.now() + this.cfg.timeoutMs },
        (err, resp) => {
          if (!err) {
            const ps = resp ? decodePartialSuccess(resp) : { rejected: 0, message: '' };
            resolve({ ok: true, code: 'ok', retryable: false, retryAfterMs: undefined, rejectedSpans: ps.rejected, message: ps.message });
            return;
          }
          const code = err.code ?? grpc.status.UNKNOWN;
          let retryAfterMs: number | undefined;
          const det = err.metadata?.get('grpc-status-details-bin')?.[0];
          if (det instanceof Buffer) retryAfterMs = retryInfoDelayMs(det);
          const retryable = GRPC_RETRYABLE.has(code) || (code === grpc.status.RESOURCE_EXHAUSTED && retryAfterMs !== undefined);
          resolve({ ok: false, code: `grpc:${GRPC_NAMES[code] ?? code}`, retryable, retryAfterMs, rejectedSpans: 0, message: err.details ?? err.message });
        },
      );
    });
  }
  close(): void {
    this.client.close();
  }
}

function parseRetryAfter(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const d = Date.parse(v);
  return Number.isNaN(d) ? undefined : Math.max(0, d - Date.now());
}

const HTTP_RETRYABLE = new Set([429, 502, 503, 504]);

class HttpTransport implements Transport {
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;
  private readonly json: boolean;
  constructor(private readonly cfg: TransportConfig) {
    const u = new URL(cfg.endpoint.includes('://') ? cfg.endpoint : `http://${cfg.endpoint}`);
    this.host = u.hostname;
    this.port = Number(u.port || 4318);
    this.json = cfg.protocol === 'http/json';
    this.agent = new http.Agent({ keepAlive: true, maxSockets: cfg.maxSockets });
  }
  send(raw: Buffer): Promise<AttemptResult> {
    const body = this.cfg.gzip ? zlib.gzipSync(raw, { level: 1 }) : raw;
    const headers: Record<string, string | number> = {
      'content-type': this.json ? 'application/json' : 'application/x-protobuf',
      'content-length': body.length,
    };
    if (this.cfg.gzip) headers['content-encoding'] = 'gzip';
    return new Promise((resolve) => {
      const req = http.request(
        { host: this.host, port: this.port, method: 'POST', path: '/v1/traces', headers, agent: this.agent, timeout: this.cfg.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => resolve(netError(e)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const buf = Buffer.concat(chunks);
            if (status >= 200 && status < 300) {
              let ps = { rejected: 0, message: '' };
              const ct = String(res.headers['content-type'] ?? '');
              if (ct.includes('json')) {
                try {
                  const o = JSON.parse(buf.toString('utf8') || '{}') as { partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string } };
                  ps = { rejected: Number(o.partialSuccess?.rejectedSpans ?? 0), message: o.partialSuccess?.errorMessage ?? '' };
                } catch {
                  /* treated as plain success */
                }
              } else if (buf.length > 0) ps = decodePartialSuccess(buf);
              resolve({ ok: true, code: 'ok', retryable: false, retryAfterMs: undefined, rejectedSpans: ps.rejected, message: ps.message });
              return;
            }
            resolve({
              ok: false,
              code: `http:${status}`,
              retryable: HTTP_RETRYABLE.has(status),
              retryAfterMs: parseRetryAfter(res.headers['retry-after'] as string | undefined),
              rejectedSpans: 0,
              message: buf.subarray(0, 200).toString('utf8'),
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => resolve(netError(e)));
      req.end(body);
    });
  }
  close(): void {
    this.agent.destroy();
  }
}

function netError(e: Error): AttemptResult {
  const code = (e as NodeJS.ErrnoException).code ?? 'ERROR';
  // Connection-level failures are retried by SDK exporters.
  return { ok: false, code: `net:${code}`, retryable: true, retryAfterMs: undefined, rejectedSpans: 0, message: e.message };
}

export function createTransport(cfg: TransportConfig): Transport {
  return cfg.protocol === 'grpc' ? new GrpcTransport(cfg) : new HttpTransport(cfg);
}
