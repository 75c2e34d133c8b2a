/**
 * Lazy reads and small edits of a span's encoded fields. Readers walk the
 * span's top-level fields once and decode only what they return; edits
 * rewrite the span bytes and keep every other field, known or not, as it was.
 */
import { WireReader, WireWriter, WIRE_I64, WIRE_LEN, utf8Encode } from './wire.js';
import { readKeyValuePlain, type Span } from './spans.js';

/** Span attributes (field 9) as plain JS values: string | boolean | number | bigint | Uint8Array | unknown[] | object. */
export function spanAttributes(span: Span): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const r = new WireReader(span.buf, span.off, span.off + span.len);
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((9 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      const [k, v] = readKeyValuePlain(span.buf, r.pos, e);
      out.set(k, v);
      r.pos = e;
    } else r.skip(tag & 7);
  }
  return out;
}

/** One span attribute, or undefined. Stops at the first match. */
export function spanAttribute(span: Span, key: string): unknown {
  const r = new WireReader(span.buf, span.off, span.off + span.len);
  const keyBytes = utf8Encode(key);
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((9 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      if (keyEquals(span.buf, r.pos, e, keyBytes)) {
        const [, v] = readKeyValuePlain(span.buf, r.pos, e);
        return v;
      }
      r.pos = e;
    } else r.skip(tag & 7);
  }
  return undefined;
}

/** True when the KeyValue at buf[start,end) has exactly this key (compares bytes, no string decode). */
function keyEquals(buf: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  // KeyValue.key is field 1; encoders write it first, but do not rely on it.
  const r = new WireReader(buf, start, end);
  while (!r.done()) {
    const t = r.uint32();
    if (t === ((1 << 3) | WIRE_LEN)) {
      const ke = r.lenEnd();
      if (ke - r.pos !== key.length) return false;
      for (let i = 0; i < key.length; i++) if (buf[r.pos + i] !== key[i]) return false;
      return true;
    }
    r.skip(t & 7);
  }
  return false;
}

function stringField(span: Span, fieldNo: number): string {
  const r = new WireReader(span.buf, span.off, span.off + span.len);
  const want = (fieldNo << 3) | WIRE_LEN;
  let v = '';
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === want) v = r.string();
    else r.skip(tag & 7);
  }
  return v;
}

export function spanName(span: Span): string {
  return stringField(span, 5);
}

export function spanTraceState(span: Span): string {
  return stringField(span, 3);
}

/**
 * The span's start and end times (fields 7 and 8, fixed64) read exactly from
 * its bytes; 0n when absent. `Span.startNs` / `endNs` are doubles, which step
 * in 256 ns at today's timestamps: use this where those steps matter.
 */
export function spanTimesExact(span: Span): [start: bigint, end: bigint] {
  const r = new WireReader(span.buf, span.off, span.off + span.len);
  let start = 0n;
  let end = 0n;
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((7 << 3) | WIRE_I64)) start = r.fixed64BigInt();
    else if (tag === ((8 << 3) | WIRE_I64)) end = r.fixed64BigInt();
    else r.skip(tag & 7);
  }
  return [start, end];
}

export type AttrValue = string | boolean | number | { int: number | bigint } | { double: number };

/** Encodes a KeyValue (string, bool, int, or double; plain numbers that are integers encode as int). */
export function encodeKeyValue(w: WireWriter, fieldNo: number, key: string, value: AttrValue): void {
  const kv = w.beginLen(fieldNo);
  w.stringField(1, key);
  const av = w.beginLen(2);
  if (typeof value === 'string') w.stringField(1, value);
  else if (typeof value === 'boolean') {
    w.tag(2, 0);
    w.uint32(value ? 1 : 0);
  } else if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      w.tag(3, 0);
      w.int64(BigInt(value));
    } else {
      w.tag(4, 1);
      w.double(value);
    }
  } else if ('int' in value) {
    w.tag(3, 0);
    w.int64(BigInt(value.int));
  } else {
    w.tag(4, 1);
    w.double(value.double);
  }
  w.endLen(av);
  w.endLen(kv);
}

/**
 * Sets span attributes: existing attributes with these keys are removed and
 * the new ones appended. Rewrites the span's bytes once.
 */
export function setSpanAttributes(span: Span, attrs: Record<string, AttrValue>): void {
  const keys = Object.keys(attrs);
  if (keys.length === 0) return;
  const keyBytes = keys.map(utf8Encode);
  const w = new WireWriter(span.len + 64 * keys.length);
  const buf = span.buf;
  const r = new WireReader(buf, span.off, span.off + span.len);
  while (!r.done()) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag === ((9 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      let replaced = false;
      for (const kb of keyBytes) if (keyEquals(buf, r.pos, e, kb)) replaced = true;
      r.pos = e;
      if (replaced) continue;
    } else r.skip(tag & 7);
    w.raw(buf, start, r.pos);
  }
  for (const k of keys) encodeKeyValue(w, 9, k, attrs[k]);
  span.setBytes(w.finish());
  relocateSpanId(span);
}

/** After a rewrite the span id moved: find it again (the index points into the bytes). */
function relocateSpanId(span: Span): void {
  const r = new WireReader(span.buf, span.off, span.off + span.len);
  span.spanIdOff = -1;
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((2 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      span.spanIdOff = r.pos;
      r.pos = e;
    } else r.skip(tag & 7);
  }
}

/** Replaces the span's trace_state (field 3); an empty string removes it. */
export function setSpanTraceState(span: Span, traceState: string): void {
  const w = new WireWriter(span.len + traceState.length + 8);
  const buf = span.buf;
  const r = new WireReader(buf, span.off, span.off + span.len);
  let written = false;
  while (!r.done()) {
    const start = r.pos;
    const tag = r.uint32();
    r.skip(tag & 7);
    if (tag === ((3 << 3) | WIRE_LEN)) {
      if (!written && traceState !== '') w.stringField(3, traceState);
      written = true;
      continue;
    }
    w.raw(buf, start, r.pos);
  }
  if (!written && traceState !== '') w.stringField(3, traceState);
  span.setBytes(w.finish());
  relocateSpanId(span);
}
