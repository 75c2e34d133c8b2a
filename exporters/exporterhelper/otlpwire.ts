/**
 * Small OTLP/gRPC wire pieces the exporters read (and the test backend
 * writes): ExportTraceServiceResponse.partial_success, google.rpc.Status with
 * a google.rpc.RetryInfo detail (the `grpc-status-details-bin` trailer).
 */
import { WireReader, WireWriter, WIRE_LEN, WIRE_VARINT } from '../../collector/pdata/wire.js';

export const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** Reads partial_success from ExportTraceServiceResponse bytes; undefined when absent. Throws WireError when malformed. */
export function parseExportResponse(buf: Uint8Array): PartialSuccess | undefined {
  const r = new WireReader(buf);
  let out: PartialSuccess | undefined;
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const end = r.lenEnd();
      out = { rejectedSpans: 0, errorMessage: '' };
      const pr = new WireReader(buf, r.pos, end);
      while (!pr.done()) {
        const t = pr.uint32();
        if (t === ((1 << 3) | WIRE_VARINT)) out.rejectedSpans = pr.uint64Number();
        else if (t === ((2 << 3) | WIRE_LEN)) out.errorMessage = pr.string();
        else pr.skip(t & 7);
      }
      r.pos = end;
    } else r.skip(tag & 7);
  }
  return out;
}

export function encodeExportResponse(rejectedSpans: number, errorMessage: string): Uint8Array {
  if (rejectedSpans === 0 && errorMessage === '') return new Uint8Array(0);
  const w = new WireWriter(32 + errorMessage.length * 3);
  const m = w.beginLen(1);
  if (rejectedSpans > 0) {
    w.tag(1, WIRE_VARINT);
    w.uint64Number(rejectedSpans);
  }
  if (errorMessage !== '') w.stringField(2, errorMessage);
  w.endLen(m);
  return w.finish().slice();
}

export interface RpcStatusInfo {
  code: number;
  message: string;
  /** RetryInfo.retry_delay in ms, when the status carries one. */
  retryDelayMs: number | undefined;
}

/** Parses a google.rpc.Status (grpc-status-details-bin, or an OTLP/HTTP error body). Never throws. */
export function parseRpcStatus(buf: Uint8Array): RpcStatusInfo {
  const out: RpcStatusInfo = { code: 0, message: '', retryDelayMs: undefined };
  try {
    const r = new WireReader(buf);
    while (!r.done()) {
      const tag = r.uint32();
      if (tag === ((1 << 3) | WIRE_VARINT)) out.code = r.uint32();
      else if (tag === ((2 << 3) | WIRE_LEN)) out.message = r.string();
      else if (tag === ((3 << 3) | WIRE_LEN)) {
        const end = r.lenEnd();
        const d = parseRetryInfoAny(buf, r.pos, end);
        if (d !== undefined) out.retryDelayMs = d;
        r.pos = end;
      } else r.skip(tag & 7);
    }
  } catch {
    // a malformed detail is ignored: the status code alone decides
  }
  return out;
}

function parseRetryInfoAny(buf: Uint8Array, start: number, end: number): number | undefined {
  const r = new WireReader(buf, start, end);
  let type = '';
  let vs = -1;
  let ve = -1;
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_LEN)) type = r.string();
    else if (tag === ((2 << 3) | WIRE_LEN)) {
      ve = r.lenEnd();
      vs = r.pos;
      r.pos = ve;
    } else r.skip(tag & 7);
  }
  if (type !== RETRY_INFO_TYPE || vs < 0) return undefined;
  // RetryInfo { Duration retry_delay = 1 }  Duration { int64 seconds = 1; int32 nanos = 2 }
  const ri = new WireReader(buf, vs, ve);
  let ms = 0;
  while (!ri.done()) {
    const tag = ri.uint32();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const de = ri.lenEnd();
      const dr = new WireReader(buf, ri.pos, de);
      while (!dr.done()) {
        const t = dr.uint32();
        if (t === ((1 << 3) | WIRE_VARINT)) ms += dr.uint64Number() * 1000;
        else if (t === ((2 << 3) | WIRE_VARINT)) ms += dr.uint32() / 1e6;
        else dr.skip(t & 7);
      }
      ri.pos = de;
    } else ri.skip(tag & 7);
  }
  return Math.round(ms);
}

/** A google.rpc.Status, with a RetryInfo detail when `retryDelayMs` is given. */
export function encodeRpcStatusWithRetry(code: number, message: string, retryDelayMs?: number): Uint8Array {
  const w = new WireWriter(64 + message.length * 3);
  if (code !== 0) {
    w.tag(1, WIRE_VARINT);
    w.uint32(code);
  }
  if (message !== '') w.stringField(2, message);
  if (retryDelayMs !== undefined) {
    const any = w.beginLen(3);
    w.stringField(1, RETRY_INFO_TYPE);
    const value = w.beginLen(2);
    const dur = w.beginLen(1);
    const seconds = Math.floor(retryDelayMs / 1000);
    const nanos = Math.round((retryDelayMs - seconds * 1000) * 1e6);
    if (seconds > 0) {
      w.tag(1, WIRE_VARINT);
      w.uint64Number(seconds);
    }
    if (nanos > 0) {
      w.tag(2, WIRE_VARINT);
      w.uint32(nanos);
    }
    w.endLen(dur);
    w.endLen(value);
    w.endLen(any);
  }
  return w.finish().slice();
}
