/**
 * Typed attribute reads straight from encoded bytes, for the attribute
 * policies. Each policy compiles its key to UTF-8 once; a lookup walks the
 * span's (or resource's) attributes comparing key bytes and decodes only the
 * value it returns. No per-lookup allocation beyond a returned string.
 *
 * Values follow Go pdata's accessors, which the Collector's policies use:
 * `Str()` is "" for a non-string value, `Int()` is 0 for a non-int value
 * (a double 5.0 reads as 0), `Bool()` is false for a non-bool value.
 */
import { WireReader, WIRE_LEN, utf8Decode, utf8Encode } from '../../collector/pdata/wire.js';
import type { Span, ResourceRef } from '../../collector/pdata/spans.js';

const outer = new WireReader(new Uint8Array(0));
const inner = new WireReader(new Uint8Array(0));
/** End of the AnyValue found by the last successful lookup. */
let valueEnd = 0;

export class AttrKey {
  readonly name: string;
  readonly bytes: Uint8Array;
  constructor(name: string) {
    this.name = name;
    this.bytes = utf8Encode(name);
  }
}

/** True when the KeyValue at buf[start,end) has this key. */
function keyIs(buf: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  inner.buf = buf;
  inner.pos = start;
  inner.end = end;
  while (!inner.done()) {
    const t = inner.uint32();
    if (t === ((1 << 3) | WIRE_LEN)) {
      const ke = inner.lenEnd();
      if (ke - inner.pos !== key.length) return false;
      for (let i = 0; i < key.length; i++) if (buf[inner.pos + i] !== key[i]) return false;
      return true;
    }
    inner.skip(t & 7);
  }
  return false;
}

/** Start of the AnyValue of the KeyValue at buf[start,end) (end in valueEnd), or -1. */
function valueOf(buf: Uint8Array, start: number, end: number): number {
  inner.buf = buf;
  inner.pos = start;
  inner.end = end;
  while (!inner.done()) {
    const t = inner.uint32();
    if (t === ((2 << 3) | WIRE_LEN)) {
      const ve = inner.lenEnd();
      valueEnd = ve;
      return inner.pos;
    }
    inner.skip(t & 7);
  }
  valueEnd = start;
  return start; // present with an empty value
}

/** Scans KeyValue fields numbered `fieldNo` in buf[start,end); returns the value start or -1. */
function findIn(buf: Uint8Array, start: number, end: number, fieldNo: number, key: Uint8Array): number {
  outer.buf = buf;
  outer.pos = start;
  outer.end = end;
  const want = (fieldNo << 3) | WIRE_LEN;
  while (!outer.done()) {
    const t = outer.uint32();
    if (t === want) {
      const e = outer.lenEnd();
      if (keyIs(buf, outer.pos, e, key)) return valueOf(buf, outer.pos, e);
      outer.pos = e;
    } else outer.skip(t & 7);
  }
  return -1;
}

/** Value start of a span attribute (span field 9), or -1 when absent. */
export function findSpanAttr(span: Span, key: AttrKey): number {
  return findIn(span.buf, span.off, span.off + span.len, 9, key.bytes);
}

/** Value start of a resource attribute, or -1. The value lies in `resource.header`. */
export function findResourceAttr(resource: ResourceRef, key: AttrKey): number {
  const h = resource.header;
  outer.buf = h;
  outer.pos = 0;
  outer.end = h.length;
  while (!outer.done()) {
    const t = outer.uint32();
    if (t === ((1 << 3) | WIRE_LEN)) {
      const e = outer.lenEnd();
      return findIn(h, outer.pos, e, 1, key.bytes);
    }
    outer.skip(t & 7);
  }
  return -1;
}

/** Str(): the string value, "" when the value is not a string. */
export function readStr(buf: Uint8Array, start: number): string {
  inner.buf = buf;
  inner.pos = start;
  inner.end = valueEnd;
  let s = '';
  while (!inner.done()) {
    const t = inner.uint32();
    if (t === ((1 << 3) | WIRE_LEN)) {
      const e = inner.lenEnd();
      s = utf8Decode(buf, inner.pos, e);
      inner.pos = e;
    } else {
      inner.skip(t & 7);
      s = '';
    }
  }
  return s;
}

/** Int(): the int64 value as a number, 0 when the value is not an int. */
export function readInt(buf: Uint8Array, start: number): number {
  inner.buf = buf;
  inner.pos = start;
  inner.end = valueEnd;
  let v = 0;
  while (!inner.done()) {
    const t = inner.uint32();
    if (t === 3 << 3) v = Number(inner.int64());
    else {
      inner.skip(t & 7);
      v = 0;
    }
  }
  return v;
}

/** Bool(): the bool value, false when the value is not a bool. */
export function readBool(buf: Uint8Array, start: number): boolean {
  inner.buf = buf;
  inner.pos = start;
  inner.end = valueEnd;
  let v = false;
  while (!inner.done()) {
    const t = inner.uint32();
    if (t === 2 << 3) v = inner.uint32() !== 0;
    else {
      inner.skip(t & 7);
      v = false;
    }
  }
  return v;
}

/**
 * A value as a display string for dynamic-sampling keys: strings as they are,
 * numbers and bools via String(); other kinds are "".
 */
export function readAsKeyPart(buf: Uint8Array, start: number): string {
  inner.buf = buf;
  inner.pos = start;
  inner.end = valueEnd;
  let s = '';
  while (!inner.done()) {
    const t = inner.uint32();
    if (t === ((1 << 3) | WIRE_LEN)) {
      const e = inner.lenEnd();
      s = utf8Decode(buf, inner.pos, e);
      inner.pos = e;
    } else if (t === 2 << 3) s = inner.uint32() !== 0 ? 'true' : 'false';
    else if (t === 3 << 3) s = inner.int64().toString();
    else if (t === ((4 << 3) | 1)) s = String(inner.double());
    else inner.skip(t & 7);
  }
  return s;
}
