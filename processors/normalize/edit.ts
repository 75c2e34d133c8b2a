/**
 * Span edits on the wire format.
 *
 * A SpanEdit decodes only what normalization rules touch: the name, the
 * attributes (as KeyValues whose values decode lazily) and, when asked, the
 * events. Everything else stays as raw byte ranges. `encode()` writes the span
 * back field by field in its original order, copying every field it did not
 * change (unknown fields included) byte for byte; an attribute whose key and
 * value were not changed is copied as its original bytes too.
 */
import { WireReader, WireWriter, WireError, WIRE_LEN, WIRE_VARINT, WIRE_I64, utf8Decode } from '../../collector/pdata/wire.js';
import type { Span } from '../../collector/pdata/spans.js';

export type AnyValue =
  | { t: 'empty' }
  | { t: 'string'; v: string }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: bigint }
  | { t: 'double'; v: number }
  | { t: 'array'; v: AnyValue[] }
  | { t: 'kvlist'; v: KeyValue[] }
  | { t: 'bytes'; v: Uint8Array };

export const EMPTY_VALUE: AnyValue = { t: 'empty' };

/** AnyValue oneof field numbers, as found on the wire (0: no value set). */
export const VT_NONE = 0;
export const VT_STRING = 1;
export const VT_BOOL = 2;
export const VT_INT = 3;
export const VT_DOUBLE = 4;
export const VT_ARRAY = 5;
export const VT_KVLIST = 6;
export const VT_BYTES = 7;

/**
 * Re-encoded spans are copied out of one reused scratch writer into slabs of
 * SLAB_SIZE bytes (one ArrayBuffer allocation per ~100 spans instead of two
 * per span). A slab lives while any span that points into it does, like the
 * request buffers the receiver hands on. The first slab is allocated by the
 * first copy, so an idle collector holds none.
 */
const SLAB_SIZE = 64 * 1024;
let slab = new Uint8Array(0);
let slabPos = SLAB_SIZE;
const scratchOut = new WireWriter(4096);

function copyOut(w: WireWriter): Uint8Array {
  const n = w.pos;
  if (n > SLAB_SIZE / 8) return w.buf.slice(0, n);
  if (slabPos + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabPos = 0;
  }
  const start = slabPos;
  slab.set(new Uint8Array(w.buf.buffer, 0, n), start);
  slabPos = start + n;
  return new Uint8Array(slab.buffer, start, n);
}

/** Turns key bytes into a string; the processor passes an interning lookup. */
export type KeyDecoder = (buf: Uint8Array, start: number, end: number) => string;

/** Scratch output of KeyValue.rawValue() (one thread, no allocation). */
export const RAW: { buf: Uint8Array; start: number; end: number } = { buf: new Uint8Array(0), start: 0, end: 0 };

/** One attribute. Raw bytes are kept until the key or the value is replaced. */
export class KeyValue {
  key: string;
  /** Encoded AnyValue payload, when the value has not been replaced. */
  private rawBuf: Uint8Array | null;
  private rawStart: number;
  private rawEnd: number;
  /** Encoded KeyValue payload (key + value), valid while neither changed. */
  private kvStart: number;
  private kvEnd: number;
  private _value: AnyValue | undefined;
  keyChanged: boolean;
  valueChanged: boolean;

  private constructor(key: string) {
    this.key = key;
    this.rawBuf = null;
    this.rawStart = 0;
    this.rawEnd = 0;
    this.kvStart = 0;
    this.kvEnd = 0;
    this._value = undefined;
    this.keyChanged = false;
    this.valueChanged = false;
  }

  /** Wraps an encoded KeyValue payload buf[start, end). */
  static fromWire(buf: Uint8Array, start: number, end: number, keyOf: KeyDecoder = utf8Decode): KeyValue {
    let key = '';
    let vs = -1;
    let ve = -1;
    let p = start;
    while (p < end) {
      const t = buf[p++];
      if (t !== 0x0a && t !== 0x12) {
        // Unusual encoding (multi-byte tags, unknown fields): take the general path.
        return KeyValue.fromWireSlow(buf, start, end);
      }
      let len = 0;
      let shift = 0;
      let b: number;
      do {
        if (p >= end) throw new WireError('truncated KeyValue');
        b = buf[p++];
        len |= (b & 0x7f) << shift;
        shift += 7;
      } while (b >= 0x80 && shift < 28);
      const e = p + len;
      if (e > end) throw new WireError('KeyValue field runs past its end');
      if (t === 0x0a) key = keyOf(buf, p, e);
      else {
        vs = p;
        ve = e;
      }
      p = e;
    }
    return KeyValue.make(key, buf, start, end, vs, ve);
  }

  private static fromWireSlow(buf: Uint8Array, start: number, end: number): KeyValue {
    const r = new WireReader(buf, start, end);
    let key = '';
    let vs = -1;
    let ve = -1;
    while (!r.done()) {
      const t = r.uint32();
      if (t === ((1 << 3) | WIRE_LEN)) {
        const e = r.lenEnd();
        key = utf8Decode(buf, r.pos, e);
        r.pos = e;
      } else if (t === ((2 << 3) | WIRE_LEN)) {
        const e = r.lenEnd();
        vs = r.pos;
        ve = e;
        r.pos = e;
      } else r.skip(t & 7);
    }
    return KeyValue.make(key, buf, start, end, vs, ve);
  }

  private static make(key: string, buf: Uint8Array, start: number, end: number, vs: number, ve: number): KeyValue {
    const kv = new KeyValue(key);
    kv.rawBuf = buf;
    kv.kvStart = start;
    kv.kvEnd = end;
    if (vs >= 0) {
      kv.rawStart = vs;
      kv.rawEnd = ve;
    } else {
      kv._value = EMPTY_VALUE;
      kv.rawStart = kv.rawEnd = 0;
    }
    return kv;
  }

  static of(key: string, value: AnyValue): KeyValue {
    const kv = new KeyValue(key);
    kv._value = value;
    kv.keyChanged = true;
    kv.valueChanged = true;
    return kv;
  }

  /** The value, decoded on first use. */
  get value(): AnyValue {
    if (this._value === undefined) {
      this._value = this.rawBuf === null ? EMPTY_VALUE : decodeAnyValue(this.rawBuf, this.rawStart, this.rawEnd);
    }
    return this._value;
  }

  set value(v: AnyValue) {
    this._value = v;
    this.valueChanged = true;
  }

  setKey(k: string): void {
    if (k === this.key) return;
    this.key = k;
    this.keyChanged = true;
  }

  get changed(): boolean {
    return this.keyChanged || this.valueChanged;
  }

  /** The AnyValue oneof field number without decoding the value. */
  valueType(): number {
    if (this.valueChanged || this.rawBuf === null) return this._value === undefined ? VT_NONE : valueTypeOf(this._value);
    if (this.rawEnd <= this.rawStart) return VT_NONE;
    return this.rawBuf[this.rawStart] >> 3;
  }

  /**
   * For a value still in its original bytes: points RAW at the payload (the
   * string bytes for strings, the nested message for arrays/kvlists, the
   * varint/fixed bytes otherwise) and returns the AnyValue type; -1 when the
   * value was replaced (decode it instead).
   */
  rawValue(): number {
    if (this.valueChanged || this.rawBuf === null) return -1;
    const buf = this.rawBuf;
    if (this.rawEnd <= this.rawStart) return VT_NONE;
    const tag = buf[this.rawStart];
    let p = this.rawStart + 1;
    RAW.buf = buf;
    if ((tag & 7) === WIRE_LEN) {
      let len = 0;
      let shift = 0;
      let b: number;
      do {
        b = buf[p++];
        len |= (b & 0x7f) << shift;
        shift += 7;
      } while (b >= 0x80 && shift < 28);
      RAW.start = p;
      RAW.end = p + len;
    } else {
      RAW.start = p;
      RAW.end = this.rawEnd;
    }
    return tag >> 3;
  }

  /** The value when it is a string, else undefined. */
  stringValue(): string | undefined {
    const v = this.value;
    return v.t === 'string' ? v.v : undefined;
  }

  /** A new attribute with another key and the same value (raw bytes shared). */
  withKey(k: string): KeyValue {
    const kv = new KeyValue(k);
    kv.keyChanged = true;
    kv.rawBuf = this.valueChanged ? null : this.rawBuf;
    kv.rawStart = this.rawStart;
    kv.rawEnd = this.rawEnd;
    kv._value = this._value;
    kv.valueChanged = this.valueChanged || this.rawBuf === null;
    return kv;
  }

  /** Writes this KeyValue as a length-delimited field. */
  encodeTo(w: WireWriter, fieldNo: number): void {
    if (!this.keyChanged && !this.valueChanged && this.rawBuf !== null) {
      w.lenField(fieldNo, this.rawBuf, this.kvStart, this.kvEnd);
      return;
    }
    const m = w.beginLen(fieldNo);
    w.stringField(1, this.key);
    if (!this.valueChanged && this.rawBuf !== null) {
      w.lenField(2, this.rawBuf, this.rawStart, this.rawEnd);
    } else {
      const v = this.value;
      const vm = w.beginLen(2);
      writeAnyValuePayload(w, v);
      w.endLen(vm);
    }
    w.endLen(m);
  }
}

export function valueTypeOf(v: AnyValue): number {
  switch (v.t) {
    case 'string':
      return VT_STRING;
    case 'bool':
      return VT_BOOL;
    case 'int':
      return VT_INT;
    case 'double':
      return VT_DOUBLE;
    case 'array':
      return VT_ARRAY;
    case 'kvlist':
      return VT_KVLIST;
    case 'bytes':
      return VT_BYTES;
    default:
      return VT_NONE;
  }
}

export function decodeAnyValue(buf: Uint8Array, start: number, end: number): AnyValue {
  const r = new WireReader(buf, start, end);
  let v: AnyValue = EMPTY_VALUE;
  while (!r.done()) {
    const t = r.uint32();
    switch (t) {
      case (1 << 3) | WIRE_LEN:
        v = { t: 'string', v: r.string() };
        break;
      case (2 << 3) | WIRE_VARINT:
        v = { t: 'bool', v: r.uint32() !== 0 };
        break;
      case (3 << 3) | WIRE_VARINT:
        v = { t: 'int', v: r.int64() };
        break;
      case (4 << 3) | WIRE_I64:
        v = { t: 'double', v: r.double() };
        break;
      case (5 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        const arr: AnyValue[] = [];
        const ar = new WireReader(buf, r.pos, e);
        while (!ar.done()) {
          const at = ar.uint32();
          if (at === ((1 << 3) | WIRE_LEN)) {
            const ve = ar.lenEnd();
            arr.push(decodeAnyValue(buf, ar.pos, ve));
            ar.pos = ve;
          } else ar.skip(at & 7);
        }
        v = { t: 'array', v: arr };
        r.pos = e;
        break;
      }
      case (6 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        const kvs: KeyValue[] = [];
        const kr = new WireReader(buf, r.pos, e);
        while (!kr.done()) {
          const kt = kr.uint32();
          if (kt === ((1 << 3) | WIRE_LEN)) {
            const ke = kr.lenEnd();
            kvs.push(KeyValue.fromWire(buf, kr.pos, ke));
            kr.pos = ke;
          } else kr.skip(kt & 7);
        }
        v = { t: 'kvlist', v: kvs };
        r.pos = e;
        break;
      }
      case (7 << 3) | WIRE_LEN:
        v = { t: 'bytes', v: r.bytes() };
        break;
      default:
        r.skip(t & 7);
    }
  }
  return v;
}

export function writeAnyValuePayload(w: WireWriter, v: AnyValue): void {
  switch (v.t) {
    case 'string':
      w.stringField(1, v.v);
      break;
    case 'bool':
      w.tag(2, WIRE_VARINT);
      w.uint64Number(v.v ? 1 : 0);
      break;
    case 'int':
      w.tag(3, WIRE_VARINT);
      w.int64(v.v);
      break;
    case 'double':
      w.tag(4, WIRE_I64);
      w.double(v.v);
      break;
    case 'array': {
      const m = w.beginLen(5);
      for (const el of v.v) {
        const em = w.beginLen(1);
        writeAnyValuePayload(w, el);
        w.endLen(em);
      }
      w.endLen(m);
      break;
    }
    case 'kvlist': {
      const m = w.beginLen(6);
      for (const kv of v.v) kv.encodeTo(w, 1);
      w.endLen(m);
      break;
    }
    case 'bytes':
      w.lenField(7, v.v, 0, v.v.length);
      break;
    default:
      break;
  }
}

/** The value as text (for hashing, cardinality keys and copy). Bytes become hex. */
export function valueToString(v: AnyValue): string {
  switch (v.t) {
    case 'string':
      return v.v;
    case 'bool':
    case 'int':
    case 'double':
      return String(v.v);
    case 'empty':
      return '';
    case 'bytes': {
      let s = '';
      for (const b of v.v) s += b.toString(16).padStart(2, '0');
      return s;
    }
    case 'array':
      return JSON.stringify(v.v.map(valueToString));
    case 'kvlist': {
      const o: Record<string, string> = {};
      for (const kv of v.v) o[kv.key] = valueToString(kv.value);
      return JSON.stringify(o);
    }
  }
}

/** Converts a YAML scalar (string, number, boolean) into an AnyValue. */
export function valueFromPlain(v: unknown): AnyValue {
  if (typeof v === 'string') return { t: 'string', v };
  if (typeof v === 'boolean') return { t: 'bool', v };
  if (typeof v === 'number') return Number.isInteger(v) ? { t: 'int', v: BigInt(v) } : { t: 'double', v };
  if (typeof v === 'bigint') return { t: 'int', v };
  if (Array.isArray(v)) return { t: 'array', v: v.map(valueFromPlain) };
  return EMPTY_VALUE;
}

export function valuesEqual(a: AnyValue, b: AnyValue): boolean {
  if (a.t !== b.t) return false;
  switch (a.t) {
    case 'array': {
      const bv = (b as typeof a).v;
      return a.v.length === bv.length && a.v.every((x, i) => valuesEqual(x, bv[i]));
    }
    case 'kvlist': {
      const bv = (b as typeof a).v;
      return a.v.length === bv.length && a.v.every((x, i) => x.key === bv[i].key && valuesEqual(x.value, bv[i].value));
    }
    case 'bytes': {
      const bv = (b as typeof a).v;
      return a.v.length === bv.length && a.v.every((x, i) => x === bv[i]);
    }
    case 'empty':
      return true;
    default:
      return a.v === (b as typeof a).v;
  }
}

/** An ordered attribute list with a change flag. */
export class AttrList {
  items: KeyValue[];
  /** Set when an attribute was added, removed or reordered. */
  structureChanged: boolean;
  constructor(items: KeyValue[] = []) {
    this.items = items;
    this.structureChanged = false;
  }
  get changed(): boolean {
    if (this.structureChanged) return true;
    for (let i = 0; i < this.items.length; i++) if (this.items[i].changed) return true;
    return false;
  }
  get length(): number {
    return this.items.length;
  }
  indexOf(key: string): number {
    const items = this.items;
    for (let i = 0; i < items.length; i++) if (items[i].key === key) return i;
    return -1;
  }
  get(key: string): KeyValue | undefined {
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.items[i];
  }
  has(key: string): boolean {
    return this.indexOf(key) >= 0;
  }
  removeAt(i: number): void {
    this.items.splice(i, 1);
    this.structureChanged = true;
  }
  remove(key: string): boolean {
    const i = this.indexOf(key);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }
  push(kv: KeyValue): void {
    this.items.push(kv);
    this.structureChanged = true;
  }
  insertAt(i: number, kv: KeyValue): void {
    this.items.splice(i, 0, kv);
    this.structureChanged = true;
  }
  /** Sets key to value: replaces the value in place when present, appends otherwise. */
  set(key: string, value: AnyValue): void {
    const kv = this.get(key);
    if (kv !== undefined) kv.value = value;
    else this.push(KeyValue.of(key, value));
  }
  /** Keeps only the attributes for which keep() is true; returns how many were removed. */
  filter(keep: (kv: KeyValue) => boolean): number {
    const before = this.items.length;
    const next = this.items.filter(keep);
    if (next.length !== before) {
      this.items = next;
      this.structureChanged = true;
    }
    return before - next.length;
  }
}

// ------------------------------------------------------------------ events

/**
 * A message with a repeated KeyValue field (`attrField`) and optionally a
 * dropped-attributes count (`droppedField`, 0 for none): events, log records,
 * metric data points. Only the attributes are decoded; everything else is
 * copied as it was when the message is written back.
 */
export class AttrMessageEdit {
  readonly buf: Uint8Array;
  readonly start: number;
  readonly end: number;
  readonly attrs: AttrList;
  droppedAttributes: number;
  private readonly origDropped: number;
  protected readonly attrField: number;
  protected readonly droppedField: number;
  constructor(buf: Uint8Array, start: number, end: number, attrField: number, droppedField: number, keyOf: KeyDecoder = utf8Decode) {
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.attrField = attrField;
    this.droppedField = droppedField;
    const attrTag = (attrField << 3) | WIRE_LEN;
    const droppedTag = droppedField === 0 ? -1 : (droppedField << 3) | WIRE_VARINT;
    const items: KeyValue[] = [];
    let dropped = 0;
    const r = new WireReader(buf, start, end);
    while (!r.done()) {
      const t = r.uint32();
      if (t === attrTag) {
        const e = r.lenEnd();
        items.push(KeyValue.fromWire(buf, r.pos, e, keyOf));
        r.pos = e;
      } else if (t === droppedTag) dropped = r.uint32();
      else r.skip(t & 7);
    }
    this.attrs = new AttrList(items);
    this.droppedAttributes = dropped;
    this.origDropped = dropped;
  }
  get changed(): boolean {
    return this.attrs.changed || this.droppedAttributes !== this.origDropped;
  }
  /** Writes the message's payload (without its own tag and length). */
  writePayload(w: WireWriter, extra?: FieldReplacement): void {
    writeMessageWithAttrs(w, this.buf, this.start, this.end, this.attrField, this.attrs, this.droppedField, this.droppedAttributes, this.origDropped, extra);
  }
  encodeTo(w: WireWriter, fieldNo: number): void {
    if (!this.changed) {
      w.lenField(fieldNo, this.buf, this.start, this.end);
      return;
    }
    const m = w.beginLen(fieldNo);
    this.writePayload(w);
    w.endLen(m);
  }
}

/** An Event (Span field 11): time (1), name (2), attributes (3), dropped_attributes_count (4). */
export class EventEdit extends AttrMessageEdit {
  constructor(buf: Uint8Array, start: number, end: number, keyOf: KeyDecoder = utf8Decode) {
    super(buf, start, end, 3, 4, keyOf);
  }
}

/** The key under which a log body is shown to redact and truncate rules. */
export const LOG_BODY_KEY = 'log.body';

/**
 * A LogRecord: attributes (6), dropped_attributes_count (7) and the body (5),
 * which is offered to rules as a one-attribute list keyed `log.body`.
 */
export class LogEdit extends AttrMessageEdit {
  private bodyStart = -1;
  private bodyEnd = -1;
  private _body: AttrList | null = null;
  constructor(buf: Uint8Array, start: number, end: number, keyOf: KeyDecoder = utf8Decode) {
    super(buf, start, end, 6, 7, keyOf);
    const r = new WireReader(buf, start, end);
    while (!r.done()) {
      const t = r.uint32();
      if (t === ((5 << 3) | WIRE_LEN)) {
        const e = r.lenEnd();
        this.bodyStart = r.pos;
        this.bodyEnd = e;
        r.pos = e;
      } else r.skip(t & 7);
    }
  }
  /** The body as a list of one KeyValue (`log.body`), or null when the record has none. */
  body(): AttrList | null {
    if (this.bodyStart < 0) return null;
    if (this._body === null) {
      const w = new WireWriter(this.bodyEnd - this.bodyStart + 16);
      w.stringField(1, LOG_BODY_KEY);
      w.lenField(2, this.buf, this.bodyStart, this.bodyEnd);
      const b = w.finish();
      this._body = new AttrList([KeyValue.fromWire(b, 0, b.length)]);
    }
    return this._body;
  }
  private get bodyChanged(): boolean {
    return this._body !== null && this._body.changed;
  }
  override get changed(): boolean {
    return super.changed || this.bodyChanged;
  }
  /** The re-encoded record (call only when changed). */
  encode(): Uint8Array {
    const w = new WireWriter(this.end - this.start + 64);
    const body = this.bodyChanged ? this._body!.items[0] : undefined;
    this.writePayload(
      w,
      body === undefined
        ? undefined
        : {
            tag: (5 << 3) | WIRE_LEN,
            write: (out) => {
              const m = out.beginLen(5);
              writeAnyValuePayload(out, body.value);
              out.endLen(m);
            },
          },
    );
    return w.finish();
  }
}

/** A data point (any metric type): only its attributes are edited; no dropped count. */
export class PointEdit extends AttrMessageEdit {
  constructor(buf: Uint8Array, start: number, end: number, attrField: number, keyOf: KeyDecoder = utf8Decode) {
    super(buf, start, end, attrField, 0, keyOf);
  }
}

/** A field whose first occurrence is written by `write` instead of being copied (later ones are dropped). */
export interface FieldReplacement {
  tag: number;
  write(w: WireWriter): void;
}

/**
 * Copies a message's fields, replacing its repeated KeyValue field `attrField`
 * with `attrs` (written where the first one stood, or at the end) and its
 * dropped-count varint field when the count changed.
 */
function writeMessageWithAttrs(
  w: WireWriter,
  buf: Uint8Array,
  start: number,
  end: number,
  attrField: number,
  attrs: AttrList,
  droppedField: number,
  dropped: number,
  origDropped: number,
  extra?: FieldReplacement,
): void {
  const attrTag = (attrField << 3) | WIRE_LEN;
  const droppedTag = droppedField === 0 ? -1 : (droppedField << 3) | WIRE_VARINT;
  let extraWritten = false;
  const r = new WireReader(buf, start, end);
  let attrsWritten = false;
  let droppedWritten = false;
  while (!r.done()) {
    const fs = r.pos;
    const t = r.uint32();
    r.skip(t & 7);
    if (t === attrTag) {
      if (!attrsWritten) {
        for (const kv of attrs.items) kv.encodeTo(w, attrField);
        attrsWritten = true;
      }
      continue;
    }
    if (t === droppedTag && dropped !== origDropped) {
      if (!droppedWritten && dropped !== 0) {
        w.tag(droppedField, WIRE_VARINT);
        w.uint64Number(dropped);
      }
      droppedWritten = true;
      continue;
    }
    if (extra !== undefined && t === extra.tag) {
      if (!extraWritten) extra.write(w);
      extraWritten = true;
      continue;
    }
    w.raw(buf, fs, r.pos);
  }
  if (!attrsWritten) for (const kv of attrs.items) kv.encodeTo(w, attrField);
  if (!droppedWritten && dropped !== origDropped && dropped !== 0) {
    w.tag(droppedField, WIRE_VARINT);
    w.uint64Number(dropped);
  }
}

// ------------------------------------------------------------------ spans

const TAG_SPAN_ID = (2 << 3) | WIRE_LEN;
const TAG_NAME = (5 << 3) | WIRE_LEN;
const TAG_ATTR = (9 << 3) | WIRE_LEN;
const TAG_DROPPED_ATTRS = (10 << 3) | WIRE_VARINT;
const TAG_EVENT = (11 << 3) | WIRE_LEN;

/** A decoded view of one span for editing. */
export class SpanEdit {
  readonly buf: Uint8Array;
  readonly start: number;
  readonly end: number;
  readonly attrs: AttrList;
  droppedAttributes: number;
  private readonly origDropped: number;
  private nameStart: number;
  private nameEnd: number;
  private _name: string | undefined;
  private nameChanged: boolean;
  private eventRanges: number[];
  private _events: EventEdit[] | null;
  private readonly keyOf: KeyDecoder;

  constructor(span: Span, keyOf: KeyDecoder = utf8Decode) {
    this.buf = span.buf;
    this.keyOf = keyOf;
    this.start = span.off;
    this.end = span.off + span.len;
    this.nameStart = -1;
    this.nameEnd = -1;
    this._name = undefined;
    this.nameChanged = false;
    this.eventRanges = [];
    this._events = null;
    const items: KeyValue[] = [];
    let dropped = 0;
    const buf = this.buf;
    const r = new WireReader(buf, this.start, this.end);
    while (!r.done()) {
      const t = r.uint32();
      if (t === TAG_ATTR) {
        const e = r.lenEnd();
        items.push(KeyValue.fromWire(buf, r.pos, e, keyOf));
        r.pos = e;
      } else if (t === TAG_NAME) {
        const e = r.lenEnd();
        this.nameStart = r.pos;
        this.nameEnd = e;
        r.pos = e;
      } else if (t === TAG_EVENT) {
        const e = r.lenEnd();
        this.eventRanges.push(r.pos, e);
        r.pos = e;
      } else if (t === TAG_DROPPED_ATTRS) dropped = r.uint32();
      else r.skip(t & 7);
    }
    this.attrs = new AttrList(items);
    this.droppedAttributes = dropped;
    this.origDropped = dropped;
  }

  get name(): string {
    if (this._name === undefined) this._name = this.nameStart < 0 ? '' : utf8Decode(this.buf, this.nameStart, this.nameEnd);
    return this._name;
  }

  set name(v: string) {
    if (v === this.name) return;
    this._name = v;
    this.nameChanged = true;
  }

  get hasEvents(): boolean {
    return this.eventRanges.length > 0;
  }

  /** The span's events, decoded on first use. */
  events(): EventEdit[] {
    if (this._events === null) {
      this._events = [];
      for (let i = 0; i < this.eventRanges.length; i += 2) this._events.push(new EventEdit(this.buf, this.eventRanges[i], this.eventRanges[i + 1], this.keyOf));
    }
    return this._events;
  }

  get changed(): boolean {
    if (this.nameChanged || this.droppedAttributes !== this.origDropped || this.attrs.changed) return true;
    if (this._events !== null) for (const ev of this._events) if (ev.changed) return true;
    return false;
  }

  /**
   * Writes the span into a new buffer and points `span` at it. Fields keep
   * their order; unchanged ones are copied as they were.
   */
  applyTo(span: Span): void {
    const buf = this.buf;
    const w = scratchOut;
    w.pos = 0;
    const attrsChanged = this.attrs.changed;
    const droppedChanged = this.droppedAttributes !== this.origDropped;
    const events = this._events;
    let eventIdx = 0;
    let attrsWritten = false;
    let nameWritten = false;
    let droppedWritten = false;
    let spanIdOff = -1;
    const r = new WireReader(buf, this.start, this.end);
    while (!r.done()) {
      const fs = r.pos;
      const t = r.uint32();
      r.skip(t & 7);
      if (t === TAG_ATTR && attrsChanged) {
        if (!attrsWritten) for (const kv of this.attrs.items) kv.encodeTo(w, 9);
        attrsWritten = true;
        continue;
      }
      if (t === TAG_NAME && this.nameChanged) {
        if (!nameWritten && this._name !== '') w.stringField(5, this._name!);
        nameWritten = true;
        continue;
      }
      if (t === TAG_DROPPED_ATTRS && droppedChanged) {
        if (!droppedWritten && this.droppedAttributes !== 0) {
          w.tag(10, WIRE_VARINT);
          w.uint64Number(this.droppedAttributes);
        }
        droppedWritten = true;
        continue;
      }
      if (t === TAG_EVENT && events !== null) {
        events[eventIdx++].encodeTo(w, 11);
        continue;
      }
      if (t === TAG_SPAN_ID) spanIdOff = w.pos + (r.pos - fs) - 8;
      w.raw(buf, fs, r.pos);
    }
    if (attrsChanged && !attrsWritten) for (const kv of this.attrs.items) kv.encodeTo(w, 9);
    if (this.nameChanged && !nameWritten && this._name !== '') w.stringField(5, this._name!);
    if (droppedChanged && !droppedWritten && this.droppedAttributes !== 0) {
      w.tag(10, WIRE_VARINT);
      w.uint64Number(this.droppedAttributes);
    }
    const out = copyOut(w);
    span.setBytes(out);
    span.spanIdOff = spanIdOff;
  }
}

// ------------------------------------------------------------------ resource

/**
 * Edits the attributes of a ResourceSpans header (resource = field 1; in the
 * Resource, attributes = field 1, dropped_attributes_count = field 2). Returns
 * the new header, or the same array when `edit` changed nothing.
 */
export function editResourceHeader(header: Uint8Array, edit: (attrs: AttrList) => void): Uint8Array {
  let resStart = -1;
  let resEnd = -1;
  const r = new WireReader(header);
  while (!r.done()) {
    const t = r.uint32();
    if (t === ((1 << 3) | WIRE_LEN) && resStart < 0) {
      const e = r.lenEnd();
      resStart = r.pos;
      resEnd = e;
      r.pos = e;
    } else r.skip(t & 7);
  }
  const items: KeyValue[] = [];
  if (resStart >= 0) {
    const rr = new WireReader(header, resStart, resEnd);
    while (!rr.done()) {
      const t = rr.uint32();
      if (t === ((1 << 3) | WIRE_LEN)) {
        const e = rr.lenEnd();
        items.push(KeyValue.fromWire(header, rr.pos, e));
        rr.pos = e;
      } else rr.skip(t & 7);
    }
  }
  const attrs = new AttrList(items);
  edit(attrs);
  if (!attrs.changed) return header;
  const w = new WireWriter(header.length + 128);
  if (resStart < 0) {
    const m = w.beginLen(1);
    for (const kv of attrs.items) kv.encodeTo(w, 1);
    w.endLen(m);
    w.raw(header, 0, header.length);
    return w.finish();
  }
  const hr = new WireReader(header);
  let done = false;
  while (!hr.done()) {
    const fs = hr.pos;
    const t = hr.uint32();
    hr.skip(t & 7);
    if (t === ((1 << 3) | WIRE_LEN) && !done) {
      const m = w.beginLen(1);
      writeMessageWithAttrs(w, header, resStart, resEnd, 1, attrs, 2, 0, 0);
      w.endLen(m);
      done = true;
      continue;
    }
    w.raw(header, fs, hr.pos);
  }
  return w.finish();
}
