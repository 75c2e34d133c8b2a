/**
 * How pipeline outcomes are answered to OTLP clients (OTLP specification,
 * "Failures" and "OTLP/HTTP Throttling"; the Collector's receiver/otlpreceiver
 * errors package): retryable -> UNAVAILABLE / 503, memory refusal ->
 * RESOURCE_EXHAUSTED / 429 (both with RetryInfo / Retry-After), permanent ->
 * INVALID_ARGUMENT / 400.
 */
import { GrpcCode as GrpcStatus } from './grpc-server.js';
import { CollectorError } from '../../collector/errors.js';
import { WireWriter } from '../../collector/pdata/wire.js';

export type RefuseReason = 'memory_limit' | 'retryable' | 'permanent' | 'malformed' | 'too_large' | 'internal';

export interface Answer {
  grpcCode: number;
  httpStatus: number;
  message: string;
  retryAfterMs: number | undefined;
  reason: RefuseReason;
}

const DEFAULT_RETRY_MS = 1000;
/**
 * The longest retry delay suggested to a client. SDKs give up on a request
 * whose suggested delay runs past their export timeout (the OpenTelemetry JS
 * exporters: 10 s in all, five attempts), and the sidecar's
 * queues change state within seconds, so a longer hint only loses data.
 */
export const MAX_CLIENT_RETRY_MS = 2000;

export function answerFor(err: unknown): Answer {
  if (err instanceof CollectorError) {
    if (!err.retryable) {
      return { grpcCode: GrpcStatus.INVALID_ARGUMENT, httpStatus: 400, message: err.message, retryAfterMs: undefined, reason: 'permanent' };
    }
    const retryAfterMs = Math.min(MAX_CLIENT_RETRY_MS, Math.max(1, err.retryAfterMs ?? DEFAULT_RETRY_MS));
    if (err.code === 'ERR_MEMORY_LIMIT') {
      return { grpcCode: GrpcStatus.RESOURCE_EXHAUSTED, httpStatus: 429, message: err.message, retryAfterMs, reason: 'memory_limit' };
    }
    return { grpcCode: GrpcStatus.UNAVAILABLE, httpStatus: 503, message: err.message, retryAfterMs, reason: 'retryable' };
  }
  // An unexpected failure inside the collector: the data was not taken, the client may retry.
  return { grpcCode: GrpcStatus.UNAVAILABLE, httpStatus: 503, message: 'internal error: ' + String((err as Error)?.message ?? err), retryAfterMs: DEFAULT_RETRY_MS, reason: 'internal' };
}

/** google.rpc.RetryInfo { retry_delay: google.protobuf.Duration } wrapped in an Any. */
function retryInfoAny(delayMs: number): Uint8Array {
  const w = new WireWriter(64);
  w.stringField(1, 'type.googleapis.com/google.rpc.RetryInfo');
  const value = w.beginLen(2);
  const dur = w.beginLen(1);
  const seconds = Math.floor(delayMs / 1000);
  const nanos = Math.round((delayMs % 1000) * 1e6);
  if (seconds > 0) {
    w.tag(1, 0);
    w.uint64Number(seconds);
  }
  if (nanos > 0) {
    w.tag(2, 0);
    w.uint32(nanos);
  }
  w.endLen(dur);
  w.endLen(value);
  return w.finish().slice();
}

/** A google.rpc.Status with optional RetryInfo detail, for `grpc-status-details-bin`. */
export function encodeStatusWithRetry(code: number, message: string, retryAfterMs: number | undefined): Buffer {
  const w = new WireWriter(128);
  if (code !== 0) {
    w.tag(1, 0);
    w.uint32(code);
  }
  if (message) w.stringField(2, message);
  if (retryAfterMs !== undefined) w.bytesField(3, retryInfoAny(retryAfterMs));
  return Buffer.from(w.finish());
}

/** An export response (the same bytes for all three signals), with partial_success when items were rejected. */
export function encodeExportResponse(rejected: number, message: string): Uint8Array {
  if (rejected === 0) return EMPTY;
  const w = new WireWriter(64 + message.length);
  const ps = w.beginLen(1);
  w.tag(1, 0);
  w.uint64Number(rejected);
  if (message) w.stringField(2, message);
  w.endLen(ps);
  return w.finish().slice();
}

/** The OTLP/JSON export response; `key` names the count (rejectedSpans, rejectedLogRecords, rejectedDataPoints). */
export function exportResponseJson(rejected: number, message: string, key = 'rejectedSpans'): string {
  if (rejected === 0) return '{}';
  return JSON.stringify({ partialSuccess: { [key]: String(rejected), errorMessage: message } });
}

const EMPTY = new Uint8Array(0);
