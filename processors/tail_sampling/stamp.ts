/**
 * Stamping a kept span without decoding or re-encoding it.
 *
 * Protobuf lets a repeated field be appended anywhere in a message, so the
 * attributes a kept span gets (`tailsampling.policy`, `SampleRate`, ...) are
 * pre-encoded KeyValue fields (span field 9) appended to its bytes; a new
 * trace_state (field 3) is spliced in place of the old one. One walk over the
 * span's top-level fields finds the trace_state field and checks that none of
 * the stamped keys is already there; one copy writes the result into a shared
 * slab. The bytes are exactly those of the general path (setSpanTraceState,
 * then the attributes appended), which remains for the rare cases this one
 * declines: a stamped key already present (it must be replaced, not
 * duplicated) or a repeated trace_state field.
 */
import { WireReader, WIRE_LEN, utf8Decode, utf8Encode, varintSize } from '../../collector/pdata/wire.js';
import type { Span } from '../../collector/pdata/spans.js';
import type { Slab } from '../../collector/pdata/slab.js';

const TAG_TRACE_STATE = (3 << 3) | WIRE_LEN;
const TAG_SPAN_ID = (2 << 3) | WIRE_LEN;
const TAG_ATTRIBUTE = (9 << 3) | WIRE_LEN;
const TAG_KEY = (1 << 3) | WIRE_LEN;

const r = new WireReader(new Uint8Array(0));
const kr = new WireReader(new Uint8Array(0));

/** Where the last successful `scanForStamp` found things (absolute offsets in span.buf, -1 when absent). */
export const found = { tsStart: -1, tsEnd: -1, tsValueStart: -1, tsValueEnd: -1 };

/** True when the KeyValue at buf[start,end) has one of `keys` as its key. */
function hasKey(buf: Uint8Array, start: number, end: number, keys: readonly Uint8Array[]): boolean {
  kr.buf = buf;
  kr.pos = start;
  kr.end = end;
  while (!kr.done()) {
    const t = kr.uint32();
    if (t !== TAG_KEY) {
      kr.skip(t & 7);
      continue;
    }
    const ke = kr.lenEnd();
    const p = kr.pos;
    const n = ke - p;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      if (key.length !== n) continue;
      let i = 0;
      while (i < n && buf[p + i] === key[i]) i++;
      if (i === n) return true;
    }
    return false;
  }
  return false;
}

/**
 * Walks the span's top-level fields once: records the trace_state field in
 * `found` and returns false when the fast path must not be taken (an
 * attribute already has one of `keys`, or trace_state appears twice).
 */
export function scanForStamp(span: Span, keys: readonly Uint8Array[]): boolean {
  const buf = span.buf;
  r.buf = buf;
  r.pos = span.off;
  r.end = span.off + span.len;
  found.tsStart = -1;
  found.tsEnd = -1;
  found.tsValueStart = -1;
  found.tsValueEnd = -1;
  while (!r.done()) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag === TAG_ATTRIBUTE) {
      const e = r.lenEnd();
      if (hasKey(buf, r.pos, e, keys)) return false;
      r.pos = e;
    } else if (tag === TAG_TRACE_STATE) {
      if (found.tsStart >= 0) return false;
      const e = r.lenEnd();
      found.tsStart = start;
      found.tsValueStart = r.pos;
      found.tsValueEnd = e;
      found.tsEnd = e;
      r.pos = e;
    } else r.skip(tag & 7);
  }
  return true;
}

/** The trace_state the last `scanForStamp` found ('' when absent). */
export function foundTraceState(span: Span): string {
  return found.tsValueStart < 0 ? '' : utf8Decode(span.buf, found.tsValueStart, found.tsValueEnd);
}

/** A trace_state field (tag, length, UTF-8), or an empty array for '' (the field is removed). */
export function encodeTraceStateField(ts: string): Uint8Array {
  if (ts === '') return new Uint8Array(0);
  const s = utf8Encode(ts);
  const out = new Uint8Array(1 + varintSize(s.length) + s.length);
  out[0] = TAG_TRACE_STATE;
  let p = 1;
  let v = s.length;
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[p++] = v;
  out.set(s, p);
  return out;
}

function copyInto(dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n > 0) dst.set(src.subarray(start, end), at);
  return at + n;
}

/**
 * Writes the stamped span into `slab` and points the span at it: its bytes
 * with trace_state replaced by `tsField` (undefined: left as it is; empty:
 * removed; where there was none it is appended), then `attrs`. Call right
 * after a `scanForStamp` of the same span that returned true.
 */
export function writeStamped(span: Span, tsField: Uint8Array | undefined, attrs: Uint8Array, slab: Slab): void {
  const src = span.buf;
  const begin = span.off;
  const end = begin + span.len;
  // Splice point: the old trace_state field, or the end of the span when there was none.
  let cutStart = end;
  let cutEnd = end;
  let insert = 0;
  if (tsField !== undefined) {
    insert = tsField.length;
    if (found.tsStart >= 0) {
      cutStart = found.tsStart;
      cutEnd = found.tsEnd;
    }
  }
  const n = span.len - (cutEnd - cutStart) + insert + attrs.length;
  const at = slab.reserve(n);
  const dst = slab.out;
  let p = copyInto(dst, at, src, begin, cutStart);
  if (insert > 0) {
    dst.set(tsField!, p);
    p += insert;
  }
  p = copyInto(dst, p, src, cutEnd, end);
  dst.set(attrs, p);
  // The span id keeps its place relative to the start, shifted when it lay after the splice.
  if (span.spanIdOff >= 0) {
    let rel = span.spanIdOff - begin;
    if (span.spanIdOff >= cutEnd) rel += insert - (cutEnd - cutStart);
    span.spanIdOff = at + rel;
  }
  span.buf = dst;
  span.off = at;
  span.len = n;
}
