/**
 * The log model (plog's counterpart): a log record is kept as its encoded
 * LogRecord bytes plus a small index (trace id, span id, time, severity,
 * flags), under the same shared resource and scope headers as spans
 * (spans.ts). Scanned once on receipt (`scanLogsRequest`), edited by
 * re-encoding only the record that changes, exported by re-framing
 * (`encodeExportRequest` in encode.ts: the frame is the same for all signals).
 * Unknown fields stay in the bytes and are exported as they came.
 */
import { WireReader, WireWriter, WIRE_LEN, WIRE_I64, WIRE_I32, WIRE_VARINT, toHex, utf8Encode } from './wire.js';
import { encodeKeyValue, type AttrValue } from './attributes.js';
import type { ScopeRef } from './spans.js';
import { EncodedItem, scanFramed, type FramedScan } from './scan.js';
import { anyValueProblem, attributeProblem, isValidUtf8 } from './validate.js';

// LogRecord field numbers (opentelemetry-proto logs/v1).
export const LOG_TIME = 1;
export const LOG_SEVERITY_NUMBER = 2;
export const LOG_SEVERITY_TEXT = 3;
export const LOG_BODY = 5;
export const LOG_ATTRIBUTES = 6;
export const LOG_FLAGS = 8;
export const LOG_TRACE_ID = 9;
export const LOG_SPAN_ID = 10;
export const LOG_OBSERVED_TIME = 11;
export const LOG_EVENT_NAME = 12;

export class LogRecord extends EncodedItem {
  /** Lowercase hex, 32 characters, or '' when the record carries no trace id. */
  traceId: string;
  /** Offset of the 8 span-id bytes in buf, or -1. */
  spanIdOff: number;
  severity: number;
  flags: number;

  constructor(buf: Uint8Array, off: number, len: number, scope: ScopeRef) {
    super(buf, off, len, scope);
    this.traceId = '';
    this.spanIdOff = -1;
    this.severity = 0;
    this.flags = 0;
  }

  get spanId(): string {
    return this.spanIdOff < 0 ? '' : toHex(this.buf, this.spanIdOff, this.spanIdOff + 8);
  }

  /**
   * Unix nanoseconds as a double: time_unix_nano, else observed_time_unix_nano
   * (0 when neither). Read from the bytes when asked: nothing on the hot path
   * needs it, and a stored double is a 16-byte heap number per held record.
   */
  get timeNs(): number {
    const r = new WireReader(this.buf, this.off, this.off + this.len);
    let observed = 0;
    while (!r.done()) {
      const tag = r.uint32();
      if (tag === ((LOG_TIME << 3) | WIRE_I64)) {
        const t = r.fixed64Number();
        if (t !== 0) return t;
      } else if (tag === ((LOG_OBSERVED_TIME << 3) | WIRE_I64)) observed = r.fixed64Number();
      else r.skip(tag & 7);
    }
    return observed;
  }
}

export type LogsScan = FramedScan<LogRecord>;

const ZERO_TRACE = '00000000000000000000000000000000';

/**
 * Scans an ExportLogsServiceRequest. Throws WireError when the bytes are not
 * a well-formed request; invalid records (ids of the wrong length, bad UTF-8,
 * wrong wire types) are counted in `rejected`.
 */
export function scanLogsRequest(input: Uint8Array): LogsScan {
  const ids = new TraceIdMemo();
  return scanFramed(input, 'logs', (buf, off, len, scope) => {
    const rec = new LogRecord(buf, off, len, scope);
    return indexLogRecord(rec, ids) ?? rec;
  });
}

/**
 * The last trace id seen in a request, so that consecutive records of one
 * trace (the usual order: an SDK batches a request's logs as they were
 * written) share one string instead of holding ~48 bytes each.
 */
export class TraceIdMemo {
  private buf: Uint8Array | undefined = undefined;
  private off = 0;
  private id = '';
  get(buf: Uint8Array, off: number): string {
    const last = this.buf;
    if (last !== undefined) {
      let same = true;
      for (let i = 0; i < 16; i++) {
        if (last[this.off + i] !== buf[off + i]) {
          same = false;
          break;
        }
      }
      if (same) return this.id;
    }
    this.buf = buf;
    this.off = off;
    this.id = toHex(buf, off, off + 16);
    return this.id;
  }
}

/** Fills a record's index from its bytes; returns a reason when the record is invalid. */
export function indexLogRecord(rec: LogRecord, ids?: TraceIdMemo): string | undefined {
  const buf = rec.buf;
  const r = new WireReader(buf, rec.off, rec.off + rec.len);
  let attrs = 0;
  while (!r.done()) {
    const tag = r.uint32();
    switch (tag) {
      case (LOG_TIME << 3) | WIRE_I64:
      case (LOG_OBSERVED_TIME << 3) | WIRE_I64:
        r.skip(WIRE_I64);
        break;
      case (LOG_SEVERITY_NUMBER << 3) | WIRE_VARINT:
        rec.severity = r.uint32();
        break;
      case (7 << 3) | WIRE_VARINT: // dropped_attributes_count
        r.skip(WIRE_VARINT);
        break;
      case (LOG_FLAGS << 3) | WIRE_I32:
        rec.flags = r.fixed32();
        break;
      case (LOG_SEVERITY_TEXT << 3) | WIRE_LEN:
      case (LOG_EVENT_NAME << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        if (!isValidUtf8(buf, r.pos, e)) return `invalid log record: ${tag >>> 3 === LOG_SEVERITY_TEXT ? 'severity_text' : 'event_name'} is not valid UTF-8`;
        r.pos = e;
        break;
      }
      case (LOG_BODY << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        const p = anyValueProblem(buf, r.pos, e);
        if (p !== undefined) return `invalid log record: body: ${p}`;
        r.pos = e;
        break;
      }
      case (LOG_ATTRIBUTES << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        const p = attributeProblem(buf, r.pos, e);
        if (p !== undefined) return `invalid log record: attributes[${attrs}]: ${p}`;
        attrs++;
        r.pos = e;
        break;
      }
      case (LOG_TRACE_ID << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        if (e - r.pos === 16) {
          const id = ids !== undefined ? ids.get(buf, r.pos) : toHex(buf, r.pos, e);
          if (id !== ZERO_TRACE) rec.traceId = id;
        } else if (e > r.pos) return `invalid trace_id: ${e - r.pos} bytes, want 16 or none`;
        r.pos = e;
        break;
      }
      case (LOG_SPAN_ID << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        if (e - r.pos === 8) rec.spanIdOff = r.pos;
        else if (e > r.pos) return `invalid span_id: ${e - r.pos} bytes, want 8 or none`;
        r.pos = e;
        break;
      }
      default: {
        const f = tag >>> 3;
        if (f === 0) return `invalid log record: field number 0`;
        // A known field with the wrong wire type is malformed; unknown fields are carried as they are.
        if (f >= 1 && f <= 12 && f !== 4) return `invalid log record: field ${f} has wire type ${tag & 7}`;
        r.skip(tag & 7);
      }
    }
  }
  return undefined;
}

/**
 * Sets log record attributes: existing attributes with these keys are removed
 * and the new ones appended; the record's bytes are rewritten once and its
 * index refreshed (the span id moves). Everything else is copied as it was.
 */
export function setLogAttributes(rec: LogRecord, attrs: Record<string, AttrValue>): void {
  const keys = Object.keys(attrs);
  if (keys.length === 0) return;
  const keyBytes = keys.map(utf8Encode);
  const buf = rec.buf;
  const w = new WireWriter(rec.len + 64 * keys.length);
  const r = new WireReader(buf, rec.off, rec.off + rec.len);
  while (!r.done()) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag === ((LOG_ATTRIBUTES << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      const kr = new WireReader(buf, r.pos, e);
      let replaced = false;
      while (!kr.done()) {
        const kt = kr.uint32();
        if (kt === ((1 << 3) | WIRE_LEN)) {
          const ke = kr.lenEnd();
          for (const kb of keyBytes) if (kb.length === ke - kr.pos && Buffer.from(buf.buffer, buf.byteOffset + kr.pos, kb.length).equals(kb)) replaced = true;
          kr.pos = ke;
        } else kr.skip(kt & 7);
      }
      r.pos = e;
      if (replaced) continue;
    } else r.skip(tag & 7);
    w.raw(buf, start, r.pos);
  }
  for (const k of keys) encodeKeyValue(w, LOG_ATTRIBUTES, k, attrs[k]);
  rec.setBytes(Buffer.from(w.finish()));
  const traceId = rec.traceId;
  rec.spanIdOff = -1;
  indexLogRecord(rec);
  rec.traceId = traceId;
}
