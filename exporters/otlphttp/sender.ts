/**
 * OTLP/HTTP send function over node:http / node:https with a keep-alive agent.
 * 429/502/503/504 are retryable (Retry-After honoured, seconds or HTTP date);
 * every other non-2xx status is permanent, 400 as invalid data (the helper
 * may split the batch to find the bad spans). partial_success is read from
 * protobuf or JSON response bodies.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { Clock } from '../../collector/component.js';
import type { ExportRequest } from '../exporterhelper/queue.js';
import type { SendResult } from '../exporterhelper/exporter.js';
import { HeaderSource } from '../exporterhelper/headers.js';
import { loadTlsFiles } from '../exporterhelper/tls.js';
import { parseExportResponse, parseRpcStatus } from '../exporterhelper/otlpwire.js';
import { CollectorError, InvalidDataError, PermanentError, RetryableError } from '../../collector/errors.js';
import { protobufToJson, type RequestTypeName } from '../../collector/pdata/otlp-json.js';
import type { Signal } from '../../collector/signals.js';
import { signalUrl, type OtlpHttpExporterConfig } from './config.js';

const REQUEST_TYPE: Record<Signal, RequestTypeName> = {
  traces: 'ExportTraceServiceRequest',
  logs: 'ExportLogsServiceRequest',
  metrics: 'ExportMetricsServiceRequest',
};

const gzip = promisify(zlib.gzip);
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Retry-After as milliseconds from now: delta-seconds or an HTTP date. */
export function parseRetryAfter(v: string | undefined, nowMs: number): number | undefined {
  if (v === undefined || v === '') return undefined;
  const t = v.trim();
  if (/^[0-9]+$/.test(t)) return parseInt(t, 10) * 1000;
  const d = Date.parse(t);
  if (Number.isNaN(d)) return undefined;
  return Math.max(0, d - nowMs);
}

/** Maps a non-2xx answer to a CollectorError (exported for tests). */
export function httpError(status: number, retryAfter: string | undefined, body: Buffer, contentType: string, nowMs: number): CollectorError {
  let detail = '';
  if (body.length > 0) {
    if (contentType.includes('json')) {
      try {
        const o = JSON.parse(body.toString('utf8')) as { message?: unknown };
        if (typeof o.message === 'string') detail = o.message;
      } catch {
        detail = body.toString('utf8', 0, Math.min(body.length, 256));
      }
    } else if (contentType.includes('protobuf')) {
      detail = parseRpcStatus(body).message;
    } else detail = body.toString('utf8', 0, Math.min(body.length, 256));
  }
  const msg = `HTTP ${status}${detail ? ': ' + detail.slice(0, 256) : ''}`;
  if (RETRYABLE_STATUS.has(status)) return new RetryableError(msg, parseRetryAfter(retryAfter, nowMs));
  if (status === 400) return new InvalidDataError(msg);
  return new PermanentError(msg);
}

export function parsePartialSuccess(body: Buffer, contentType: string): SendResult | undefined {
  if (body.length === 0) return undefined;
  try {
    if (contentType.includes('json')) {
      const o = JSON.parse(body.toString('utf8')) as {
        partialSuccess?: { rejectedSpans?: unknown; rejectedLogRecords?: unknown; rejectedDataPoints?: unknown; errorMessage?: unknown };
      };
      const ps = o.partialSuccess;
      if (!ps) return undefined;
      const n = ps.rejectedSpans ?? ps.rejectedLogRecords ?? ps.rejectedDataPoints ?? 0;
      return { rejectedSpans: Number(n) || 0, errorMessage: typeof ps.errorMessage === 'string' ? ps.errorMessage : '' };
    }
    const ps = parseExportResponse(body);
    return ps ? { rejectedSpans: ps.rejectedSpans, errorMessage: ps.errorMessage } : undefined;
  } catch {
    return undefined;
  }
}

export class HttpSender {
  private readonly url: URL;
  private readonly secure: boolean;
  private agent: http.Agent | undefined;
  private readonly headers: HeaderSource;
  private readonly baseHeaders: Record<string, string>;

  private readonly requestType: RequestTypeName;

  constructor(
    private readonly cfg: OtlpHttpExporterConfig,
    private readonly clock: Clock,
    signal: Signal = 'traces',
  ) {
    this.url = new URL(signalUrl(cfg, signal));
    this.requestType = REQUEST_TYPE[signal];
    this.secure = this.url.protocol === 'https:';
    this.headers = new HeaderSource(cfg.headers);
    this.baseHeaders = {
      'content-type': cfg.encoding === 'json' ? 'application/json' : 'application/x-protobuf',
      'user-agent': 'sidecar-collector',
    };
    if (cfg.compression === 'gzip') this.baseHeaders['content-encoding'] = 'gzip';
    for (const [k, v] of this.headers.fixed) this.baseHeaders[k] = v;
  }

  async start(): Promise<void> {
    const common = { keepAlive: true, maxSockets: Math.max(4, this.cfg.sending_queue.num_consumers * 2) };
    if (this.secure) {
      const m = await loadTlsFiles(this.cfg.tls);
      this.agent = new https.Agent({
        ...common,
        ca: m.ca,
        cert: m.cert,
        key: m.key,
        rejectUnauthorized: !this.cfg.tls.insecure_skip_verify,
      });
    } else this.agent = new http.Agent(common);
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  send = async (req: ExportRequest, signal: AbortSignal): Promise<SendResult | void> => {
    const agent = this.agent;
    if (agent === undefined) throw new RetryableError('otlphttp exporter is not started');
    let body: Buffer;
    if (this.cfg.encoding === 'json') body = Buffer.from(protobufToJson(req.bytes, this.requestType), 'utf8');
    else body = Buffer.isBuffer(req.bytes) ? req.bytes : Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength);
    if (this.cfg.compression === 'gzip') body = await gzip(body);
    let headers = this.baseHeaders;
    if (this.headers.hasFiles) {
      headers = { ...headers };
      for (const [k, v] of await this.headers.fileHeaders()) headers[k] = v;
    }
    const mod = this.secure ? https : http;
    return new Promise<SendResult | void>((resolve, reject) => {
      const r = mod.request(this.url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
        });
        res.on('error', (e) => finish(new RetryableError(`reading response: ${e.message}`)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const buf = Buffer.concat(chunks);
          const ct = String(res.headers['content-type'] ?? '');
          if (status >= 200 && status < 300) finish(undefined, parsePartialSuccess(buf, ct));
          else finish(httpError(status, headerString(res.headers['retry-after']), buf, ct, this.clock.now()));
        });
      });
      let done = false;
      const finish = (err: CollectorError | undefined, result?: SendResult) => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(result);
      };
      const onAbort = () => {
        r.destroy();
        finish(new RetryableError('request aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      r.on('error', (e: NodeJS.ErrnoException) => finish(new RetryableError(`${e.code ?? 'error'}: ${e.message}`)));
      r.end(body);
    });
  };
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
