/**
 * Receive-time validation of OTLP trace messages, without decoding them.
 *
 * Every nested message of a span is walked once: attributes (KeyValue,
 * AnyValue, ArrayValue, KeyValueList, recursively), events, links and status,
 * and likewise the resource and scope headers. What is checked is what a
 * strict protobuf decoder (protobuf-go, gogoproto in the Collector) refuses:
 *
 * - a tag whose field number is 0 or whose varint is over-long or truncated;
 * - wire types 3, 4 (deprecated groups), 6 and 7, anywhere;
 * - a known field with the wrong wire type;
 * - a length or fixed-size value that runs past its parent message;
 * - a proto3 `string` that is not valid UTF-8;
 * - an id of the wrong length (trace ids 16 bytes, span ids 8; empty allowed
 *   where the field is optional: parent span id, link ids);
 * - AnyValue nesting deeper than MAX_ANY_VALUE_DEPTH.
 *
 * Unknown fields with a valid wire type are allowed (and carried byte for byte
 * by the span model). Functions walk [p, end) and return the end offset on
 * success or -1 on failure; the problem and the path to it are then in
 * `problem` / `path` (built only on failure, while unwinding).
 */
import { isUtf8 } from 'node:buffer';
import type { Span } from './spans.js';
import { toHex } from './wire.js';

/** AnyValues nested deeper than this (an attribute's value is level 1) are refused. */
export const MAX_ANY_VALUE_DEPTH = 32;

/** The innermost problem found by the last failed check. */
let problem = '';
/** Where it is, relative to the message the caller asked about ("attributes[2].value"). */
let path = '';
/** Second results of helpers (kept in module slots so the helpers return a plain number). */
const S = { vv: 0, lenStart: 0, status: 0 };

export function lastProblem(): string {
  return path === '' ? problem : `${path}: ${problem}`;
}

/** True when the last failure is an id of the wrong length (reason `invalid_span`, not `malformed`). */
let idFailure = false;

function fail(msg: string): -1 {
  problem = msg;
  path = '';
  idFailure = false;
  return -1;
}

/** Prepends a path segment to the failure being unwound. */
function under(seg: string): -1 {
  path = path === '' ? seg : `${seg}.${path}`;
  return -1;
}

// ---------------------------------------------------------------- primitives

/**
 * Reads the varint at p (any length up to 10 bytes) whose value must fit in
 * 32 bits; the value goes to `S.vv`. Returns the position after it or -1.
 */
function varint32(buf: Uint8Array, p: number, end: number): number {
  let v = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (p >= end) return fail('truncated varint');
    const b = buf[p++];
    if (shift < 28) v |= (b & 0x7f) << shift;
    else if (shift === 28) {
      if ((b & 0x70) !== 0) return fail('varint value too large');
      v |= (b & 0x0f) << 28;
    } else if ((b & 0x7f) !== 0) return fail('varint value too large');
    if (b < 0x80) {
      S.vv = v >>> 0;
      return p;
    }
  }
  return fail('varint longer than 10 bytes');
}

/** Skips a varint of up to 10 bytes (the 10th may only hold the 64th bit). */
function skipVarint(buf: Uint8Array, p: number, end: number): number {
  const max = p + 10;
  while (p < end) {
    const b = buf[p++];
    if (b < 0x80) {
      if (p === max && b > 1) return fail('varint overflows 64 bits');
      return p;
    }
    if (p === max) return fail('varint longer than 10 bytes');
  }
  return fail('truncated varint');
}

/** Reads a length prefix; returns the end of the field and sets `S.lenStart`, or -1. */
function lenEnd(buf: Uint8Array, p: number, end: number): number {
  if (p >= end) return fail('truncated length');
  let n = buf[p++];
  if (n >= 0x80) {
    p = varint32(buf, p - 1, end);
    if (p < 0) return -1;
    n = S.vv;
  }
  const e = p + n;
  if (e > end) return fail(`length ${n} runs past the end of its message`);
  S.lenStart = p;
  return e;
}

/** A length-delimited string field: returns its end or -1 when cut or not UTF-8. */
function str(buf: Uint8Array, p: number, end: number, name: string): number {
  const e = lenEnd(buf, p, end);
  if (e < 0) return under(name);
  if (!isValidUtf8(buf, S.lenStart, e)) return fail(`invalid UTF-8 in ${name}`);
  return e;
}

/** A length-delimited bytes field whose length must be `want` (or 0 when `orEmpty`). */
function id(buf: Uint8Array, p: number, end: number, name: string, want: number, orEmpty: boolean): number {
  const e = lenEnd(buf, p, end);
  if (e < 0) return under(name);
  const n = e - S.lenStart;
  if (n !== want && !(orEmpty && n === 0)) {
    fail(`invalid ${name}: ${n} bytes, want ${want}${orEmpty ? ' or none' : ''}`);
    idFailure = true;
    return -1;
  }
  return e;
}

function fixed(p: number, end: number, n: number, name: string): number {
  return p + n <= end ? p + n : fail(`truncated ${name}`);
}

const WIRE_NAMES = ['varint', 'fixed64', 'length-delimited', 'group start', 'group end', 'fixed32', 'wire type 6', 'wire type 7'];

/**
 * A field the caller's switch did not take: a known field number with the
 * wrong wire type, field number 0, a refused wire type, or an unknown field to
 * skip. `names[n]` names known field n; `types[n]` is its wire type.
 */
function other(buf: Uint8Array, p: number, end: number, tag: number, names: readonly string[], types: readonly number[]): number {
  const fno = tag >>> 3;
  const wt = tag & 7;
  if (fno === 0) return fail(`field number 0 (${WIRE_NAMES[wt]})`);
  if (fno < names.length && names[fno] !== '') return fail(`${names[fno]}: ${WIRE_NAMES[wt]}, want ${WIRE_NAMES[types[fno]]}`);
  switch (wt) {
    case 0:
      return skipVarint(buf, p, end);
    case 1:
      return fixed(p, end, 8, `fixed64 field ${fno}`);
    case 2: {
      const e = lenEnd(buf, p, end);
      return e < 0 ? under(`field ${fno}`) : e;
    }
    case 5:
      return fixed(p, end, 4, `fixed32 field ${fno}`);
    default:
      return fail(`field ${fno}: ${WIRE_NAMES[wt]} is not allowed`);
  }
}

/** Reads a tag at p < end into `S.vv`; returns the position after it or -1. */
function tagAt(buf: Uint8Array, p: number, end: number): number {
  const b = buf[p];
  if (b < 0x80) {
    S.vv = b;
    return p + 1;
  }
  return varint32(buf, p, end);
}

// ---------------------------------------------------------------- UTF-8

/**
 * Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF), as
 * proto3 requires of `string` fields. Short strings are checked here (an
 * ASCII loop, then a byte-class walk from the first non-ASCII byte): for the
 * 10–60-byte keys and values spans carry this is 3–6 times faster than
 * node:buffer's native `isUtf8`, whose call and view cost ~100 ns; from 128
 * bytes the native check is faster and is used (BENCHMARKS.md, issue 17).
 */
export function isValidUtf8(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start >= 128) return isUtf8(new Uint8Array(buf.buffer, buf.byteOffset + start, end - start));
  return isAscii(buf, start, end) || utf8From(buf, start, end);
}

function utf8From(buf: Uint8Array, i: number, end: number): boolean {
  while (i < end) {
    const c = buf[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c < 0xc2) return false; // continuation byte or overlong 2-byte lead
    if (c < 0xe0) {
      if (i + 1 >= end || (buf[i + 1] & 0xc0) !== 0x80) return false;
      i += 2;
      continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= end) return false;
      const c1 = buf[i + 1];
      if ((c1 & 0xc0) !== 0x80 || (buf[i + 2] & 0xc0) !== 0x80) return false;
      if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f)) return false; // overlong, surrogate
      i += 3;
      continue;
    }
    if (c > 0xf4 || i + 3 >= end) return false;
    const c1 = buf[i + 1];
    if ((c1 & 0xc0) !== 0x80 || (buf[i + 2] & 0xc0) !== 0x80 || (buf[i + 3] & 0xc0) !== 0x80) return false;
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return false; // overlong, above U+10FFFF
    i += 4;
  }
  return true;
}

// ---------------------------------------------------------------- common messages

const KV_NAMES = ['', 'key', 'value'];
const KV_TYPES = [0, 2, 2];

/** KeyValue { string key = 1; AnyValue value = 2; } with its value at `depth`. */
function keyValue(buf: Uint8Array, p: number, end: number, depth: number): number {
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    const t = S.vv;
    if (t === 0x0a) {
      p = str(buf, p, end, 'key');
      if (p < 0) return -1;
    } else if (t === 0x12) {
      const e = lenEnd(buf, p, end);
      if (e < 0 || anyValue(buf, S.lenStart, e, depth) < 0) return under('value');
      p = e;
    } else {
      p = other(buf, p, end, t, KV_NAMES, KV_TYPES);
      if (p < 0) return -1;
    }
  }
  return p;
}

const AV_NAMES = ['', 'string_value', 'bool_value', 'int_value', 'double_value', 'array_value', 'kvlist_value', 'bytes_value'];
const AV_TYPES = [0, 2, 0, 0, 1, 2, 2, 2];

/** AnyValue (a oneof of string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7). */
function anyValue(buf: Uint8Array, p: number, end: number, depth: number): number {
  if (depth > MAX_ANY_VALUE_DEPTH) return fail(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    switch (S.vv) {
      case 0x0a: // string_value
        p = str(buf, p, end, 'string_value');
        break;
      case 0x10: // bool_value
      case 0x18: // int_value
        p = skipVarint(buf, p, end);
        break;
      case 0x21: // double_value
        p = fixed(p, end, 8, 'double_value');
        break;
      case 0x2a: {
        // array_value: ArrayValue { repeated AnyValue values = 1; }
        const e = lenEnd(buf, p, end);
        if (e < 0 || list(buf, S.lenStart, e, depth, false) < 0) return under('array_value');
        p = e;
        break;
      }
      case 0x32: {
        // kvlist_value: KeyValueList { repeated KeyValue values = 1; }
        const e = lenEnd(buf, p, end);
        if (e < 0 || list(buf, S.lenStart, e, depth, true) < 0) return under('kvlist_value');
        p = e;
        break;
      }
      case 0x3a: {
        // bytes_value: anything
        p = lenEnd(buf, p, end);
        if (p < 0) return under('bytes_value');
        break;
      }
      default:
        p = other(buf, p, end, S.vv, AV_NAMES, AV_TYPES);
    }
    if (p < 0) return -1;
  }
  return p;
}

const LIST_NAMES = ['', 'values'];
const LIST_TYPES = [0, 2];

/** ArrayValue or KeyValueList: repeated field 1 of AnyValue / KeyValue one level deeper. */
function list(buf: Uint8Array, p: number, end: number, depth: number, kv: boolean): number {
  let i = 0;
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    if (S.vv === 0x0a) {
      const e = lenEnd(buf, p, end);
      if (e < 0) return under(`values[${i}]`);
      if ((kv ? keyValue(buf, S.lenStart, e, depth + 1) : anyValue(buf, S.lenStart, e, depth + 1)) < 0) return under(`values[${i}]`);
      p = e;
      i++;
    } else {
      p = other(buf, p, end, S.vv, LIST_NAMES, LIST_TYPES);
      if (p < 0) return -1;
    }
  }
  return p;
}

/** One `repeated KeyValue attributes` entry (the tag has been read); `i` is its index. */
function attribute(buf: Uint8Array, p: number, end: number, name: string, i: number): number {
  const e = lenEnd(buf, p, end);
  if (e < 0) return under(`${name}[${i}]`);
  if (plainAttribute(buf, S.lenStart, e)) return e;
  if (keyValue(buf, S.lenStart, e, 1) < 0) return under(`${name}[${i}]`);
  return e;
}

/**
 * The fast path for the attributes nearly every span carries: a KeyValue of
 * an ASCII key and an ASCII string, an int, a bool or a double, each with a
 * one-byte length. True when [p, end) is such a KeyValue and valid; false
 * sends the caller to the general walk (which also names any problem).
 */
function plainAttribute(buf: Uint8Array, p: number, end: number): boolean {
  // key: 0x0a <len> <bytes>, then value: 0x12 <len> AnyValue
  if (p + 4 > end || buf[p] !== 0x0a) return false;
  const ke = p + 2 + buf[p + 1];
  if (buf[p + 1] >= 0x80 || ke + 2 > end || buf[ke] !== 0x12 || buf[ke + 1] >= 0x80 || ke + 2 + buf[ke + 1] !== end) return false;
  const vs = ke + 2;
  if (vs === end) return isAscii(buf, p + 2, ke);
  const t = buf[vs];
  if (t === 0x0a) {
    // string_value: every byte from the key to the end is ASCII text, a tag or a one-byte length
    if (vs + 2 + buf[vs + 1] !== end) return false;
    return isAscii(buf, p + 2, end);
  }
  if (t === 0x18 || t === 0x10) return isAscii(buf, p + 2, ke) && skipVarint(buf, vs + 1, end) === end;
  if (t === 0x21) return vs + 9 === end && isAscii(buf, p + 2, ke);
  return false;
}

/** A DataView over `viewOf`, the buffer being checked (see isAscii). */
const EMPTY_VIEW = new DataView(new ArrayBuffer(4));
const V: { view: DataView; of: Uint8Array | undefined } = { view: EMPTY_VIEW, of: undefined };

/** Drops the reference to the last buffer checked (call when a request is done, so it can be collected). */
export function releaseBuffer(): void {
  V.of = undefined;
  V.view = EMPTY_VIEW;
}

/**
 * True when buf[start, end) is all ASCII. Reads 32-bit words through a
 * DataView (unaligned reads; the last word overlaps the one before): per byte,
 * this check was most of the cost of validation, and words cut it ~3x against
 * a byte loop (BENCHMARKS.md, issue 17).
 */
function isAscii(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < 4) {
    let acc = 0;
    for (let i = start; i < end; i++) acc |= buf[i];
    return acc < 0x80;
  }
  let d = V.view;
  if (buf !== V.of) {
    V.of = buf;
    d = V.view = new DataView(buf.buffer as ArrayBuffer, buf.byteOffset, buf.byteLength);
  }
  let acc = 0;
  let i = start;
  for (; i + 4 <= end; i += 4) acc |= d.getInt32(i);
  if (i < end) acc |= d.getInt32(end - 4);
  return (acc & 0x80808080) === 0;
}

const RESOURCE_NAMES = ['', 'attributes', 'dropped_attributes_count'];
const RESOURCE_TYPES = [0, 2, 0];

/** Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; } */
export function checkResource(buf: Uint8Array, p: number, end: number): number {
  let attrs = 0;
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    if (S.vv === 0x0a) p = attribute(buf, p, end, 'attributes', attrs++);
    else if (S.vv === 0x10) p = skipVarint(buf, p, end);
    else p = other(buf, p, end, S.vv, RESOURCE_NAMES, RESOURCE_TYPES);
    if (p < 0) return -1;
  }
  return p;
}

const SCOPE_NAMES = ['', 'name', 'version', 'attributes', 'dropped_attributes_count'];
const SCOPE_TYPES = [0, 2, 2, 2, 0];

/** InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped = 4; } */
export function checkScope(buf: Uint8Array, p: number, end: number): number {
  let attrs = 0;
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    switch (S.vv) {
      case 0x0a:
        p = str(buf, p, end, 'name');
        break;
      case 0x12:
        p = str(buf, p, end, 'version');
        break;
      case 0x1a:
        p = attribute(buf, p, end, 'attributes', attrs++);
        break;
      case 0x20:
        p = skipVarint(buf, p, end);
        break;
      default:
        p = other(buf, p, end, S.vv, SCOPE_NAMES, SCOPE_TYPES);
    }
    if (p < 0) return -1;
  }
  return p;
}


// ---------------------------------------------------------------- log and metric parts

/**
 * One KeyValue message in buf[start, end) (an attribute: its value is AnyValue
 * level 1), checked as span attributes are. Returns the problem (with its path
 * inside the KeyValue) or undefined. Used for log record and data point
 * attributes and metric metadata.
 */
export function attributeProblem(buf: Uint8Array, start: number, end: number): string | undefined {
  if (plainAttribute(buf, start, end)) return undefined;
  return keyValue(buf, start, end, 1) < 0 ? lastProblem() : undefined;
}

/** One AnyValue message at level 1 (a log record's body); returns the problem or undefined. */
export function anyValueProblem(buf: Uint8Array, start: number, end: number): string | undefined {
  return anyValue(buf, start, end, 1) < 0 ? lastProblem() : undefined;
}

// Field kinds of the metric messages below (checked generically: metrics are not the span hot path).
const K_F64 = 1; // fixed64 / sfixed64 / double
const K_VAR = 2; // (s)int32/64, uint32/64, bool, enum
const K_KV = 3; // repeated KeyValue attributes
const K_P64 = 4; // repeated fixed64 / double: packed (length a multiple of 8) or one per tag
const K_PVAR = 5; // repeated uint64: packed varints or one per tag
const K_ID8 = 6; // span id: 8 bytes or none
const K_ID16 = 7; // trace id: 16 bytes or none
const K_MSG = 8; // a nested message (subs[n])
const K_RMSG = 9; // a repeated nested message (subs[n])

interface MessageSchema {
  names: readonly string[];
  types: readonly number[];
  kinds: readonly number[];
  subs: ReadonlyArray<MessageSchema | undefined>;
}

function schema(fields: ReadonlyArray<[number, string, number, MessageSchema?]>): MessageSchema {
  const n = Math.max(...fields.map((f) => f[0])) + 1;
  const names: string[] = new Array<string>(n).fill('');
  const types: number[] = new Array<number>(n).fill(0);
  const kinds: number[] = new Array<number>(n).fill(0);
  const subs: Array<MessageSchema | undefined> = new Array<MessageSchema | undefined>(n).fill(undefined);
  for (const [no, name, kind, sub] of fields) {
    names[no] = name;
    kinds[no] = kind;
    types[no] = kind === K_F64 ? 1 : kind === K_VAR ? 0 : 2;
    subs[no] = sub;
  }
  return { names, types, kinds, subs };
}

const EXEMPLAR = schema([
  [7, 'filtered_attributes', K_KV],
  [2, 'time_unix_nano', K_F64],
  [3, 'as_double', K_F64],
  [6, 'as_int', K_F64],
  [4, 'span_id', K_ID8],
  [5, 'trace_id', K_ID16],
]);
const NUMBER_POINT = schema([
  [7, 'attributes', K_KV],
  [2, 'start_time_unix_nano', K_F64],
  [3, 'time_unix_nano', K_F64],
  [4, 'as_double', K_F64],
  [6, 'as_int', K_F64],
  [5, 'exemplars', K_RMSG, EXEMPLAR],
  [8, 'flags', K_VAR],
]);
const HISTOGRAM_POINT = schema([
  [9, 'attributes', K_KV],
  [2, 'start_time_unix_nano', K_F64],
  [3, 'time_unix_nano', K_F64],
  [4, 'count', K_F64],
  [5, 'sum', K_F64],
  [6, 'bucket_counts', K_P64],
  [7, 'explicit_bounds', K_P64],
  [8, 'exemplars', K_RMSG, EXEMPLAR],
  [10, 'flags', K_VAR],
  [11, 'min', K_F64],
  [12, 'max', K_F64],
]);
const BUCKETS = schema([
  [1, 'offset', K_VAR],
  [2, 'bucket_counts', K_PVAR],
]);
const EXP_HISTOGRAM_POINT = schema([
  [1, 'attributes', K_KV],
  [2, 'start_time_unix_nano', K_F64],
  [3, 'time_unix_nano', K_F64],
  [4, 'count', K_F64],
  [5, 'sum', K_F64],
  [6, 'scale', K_VAR],
  [7, 'zero_count', K_F64],
  [8, 'positive', K_MSG, BUCKETS],
  [9, 'negative', K_MSG, BUCKETS],
  [10, 'flags', K_VAR],
  [11, 'exemplars', K_RMSG, EXEMPLAR],
  [12, 'min', K_F64],
  [13, 'max', K_F64],
  [14, 'zero_threshold', K_F64],
]);
const QUANTILE = schema([
  [1, 'quantile', K_F64],
  [2, 'value', K_F64],
]);
const SUMMARY_POINT = schema([
  [7, 'attributes', K_KV],
  [2, 'start_time_unix_nano', K_F64],
  [3, 'time_unix_nano', K_F64],
  [4, 'count', K_F64],
  [5, 'sum', K_F64],
  [6, 'quantile_values', K_RMSG, QUANTILE],
  [8, 'flags', K_VAR],
]);

/** Gauge, Sum, Histogram, ExponentialHistogram, Summary by their Metric field number (5, 7, 9, 10, 11). */
const METRIC_DATA: ReadonlyArray<MessageSchema | undefined> = (() => {
  const a: Array<MessageSchema | undefined> = [];
  a[5] = schema([[1, 'data_points', K_RMSG, NUMBER_POINT]]);
  a[7] = schema([
    [1, 'data_points', K_RMSG, NUMBER_POINT],
    [2, 'aggregation_temporality', K_VAR],
    [3, 'is_monotonic', K_VAR],
  ]);
  a[9] = schema([
    [1, 'data_points', K_RMSG, HISTOGRAM_POINT],
    [2, 'aggregation_temporality', K_VAR],
  ]);
  a[10] = schema([
    [1, 'data_points', K_RMSG, EXP_HISTOGRAM_POINT],
    [2, 'aggregation_temporality', K_VAR],
  ]);
  a[11] = schema([[1, 'data_points', K_RMSG, SUMMARY_POINT]]);
  return a;
})();

/** Entries of field 1 seen by the last message() to return (the data point count of a Gauge, Sum, ...). */
let firstFieldCount = 0;

/** Walks one message of `s` completely; returns its end or -1. */
function message(buf: Uint8Array, p: number, end: number, s: MessageSchema): number {
  const { names, types, kinds, subs } = s;
  const seen = new Int32Array(names.length);
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    const t = S.vv;
    const fno = t >>> 3;
    const wt = t & 7;
    const kind = fno < kinds.length ? kinds[fno] : 0;
    const name = kind === 0 ? '' : names[fno];
    if (kind === 0 || (wt !== types[fno] && !(kind === K_P64 && wt === 1) && !(kind === K_PVAR && wt === 0))) {
      p = other(buf, p, end, t, names, types);
      if (p < 0) return -1;
      continue;
    }
    const i = seen[fno]++;
    switch (kind) {
      case K_F64:
      case K_P64:
        if (wt === 1) {
          p = fixed(p, end, 8, name);
          break;
        }
        p = lenEnd(buf, p, end);
        if (p < 0) return under(name);
        if ((p - S.lenStart) % 8 !== 0) return fail(`packed ${name}: ${p - S.lenStart} bytes, not a multiple of 8`);
        break;
      case K_VAR:
        p = skipVarint(buf, p, end);
        if (p < 0) return under(name);
        break;
      case K_PVAR: {
        if (wt === 0) {
          p = skipVarint(buf, p, end);
          if (p < 0) return under(name);
          break;
        }
        const e = lenEnd(buf, p, end);
        if (e < 0) return under(name);
        for (let q = S.lenStart; q < e; ) {
          q = skipVarint(buf, q, e);
          if (q < 0) return under(name);
        }
        p = e;
        break;
      }
      case K_KV:
        p = attribute(buf, p, end, name, i);
        break;
      case K_ID8:
        p = id(buf, p, end, name, 8, true);
        break;
      case K_ID16:
        p = id(buf, p, end, name, 16, true);
        break;
      default: {
        const e = lenEnd(buf, p, end);
        const seg = kind === K_RMSG ? `${name}[${i}]` : name;
        if (e < 0 || message(buf, S.lenStart, e, subs[fno] as MessageSchema) < 0) return under(seg);
        p = e;
      }
    }
    if (p < 0) return -1;
  }
  firstFieldCount = seen.length > 1 ? seen[1] : 0;
  return p;
}

/**
 * Checks the data message of a metric (`field`: 5 gauge, 7 sum, 9 histogram,
 * 10 exponential histogram, 11 summary) in buf[start, end) completely: every
 * data point with its numbers' wire types, packed or unpacked bucket counts,
 * exemplars (ids, attributes), quantiles and attributes. Returns the number of
 * data points, or -1 with the problem in lastProblem().
 */
export function checkMetricData(buf: Uint8Array, start: number, end: number, field: number): number {
  const s = METRIC_DATA[field];
  if (s === undefined) return fail(`field ${field} is not a metric data field`);
  return message(buf, start, end, s) < 0 ? -1 : firstFieldCount;
}


// ---------------------------------------------------------------- span parts

const EVENT_NAMES = ['', 'time_unix_nano', 'name', 'attributes', 'dropped_attributes_count'];
const EVENT_TYPES = [0, 1, 2, 2, 0];

/** Span.Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped = 4; } */
function checkEvent(buf: Uint8Array, p: number, end: number): number {
  let attrs = 0;
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    switch (S.vv) {
      case 0x09:
        p = fixed(p, end, 8, 'time_unix_nano');
        break;
      case 0x12:
        p = str(buf, p, end, 'name');
        break;
      case 0x1a:
        p = attribute(buf, p, end, 'attributes', attrs++);
        break;
      case 0x20:
        p = skipVarint(buf, p, end);
        break;
      default:
        p = other(buf, p, end, S.vv, EVENT_NAMES, EVENT_TYPES);
    }
    if (p < 0) return -1;
  }
  return p;
}

const LINK_NAMES = ['', 'trace_id', 'span_id', 'trace_state', 'attributes', 'dropped_attributes_count', 'flags'];
const LINK_TYPES = [0, 2, 2, 2, 2, 0, 5];

/** Span.Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; uint32 dropped = 5; fixed32 flags = 6; } */
function checkLink(buf: Uint8Array, p: number, end: number): number {
  let attrs = 0;
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    switch (S.vv) {
      case 0x0a:
        p = id(buf, p, end, 'trace_id', 16, true);
        break;
      case 0x12:
        p = id(buf, p, end, 'span_id', 8, true);
        break;
      case 0x1a:
        p = str(buf, p, end, 'trace_state');
        break;
      case 0x22:
        p = attribute(buf, p, end, 'attributes', attrs++);
        break;
      case 0x28:
        p = skipVarint(buf, p, end);
        break;
      case 0x35:
        p = fixed(p, end, 4, 'flags');
        break;
      default:
        p = other(buf, p, end, S.vv, LINK_NAMES, LINK_TYPES);
    }
    if (p < 0) return -1;
  }
  return p;
}

const STATUS_NAMES = ['', '', 'message', 'code'];
const STATUS_TYPES = [0, 0, 2, 0];

/** Status { string message = 2; StatusCode code = 3; } The code (as an unsigned 32-bit value) goes to `S.status`. */
function checkStatus(buf: Uint8Array, p: number, end: number): number {
  S.status = 0;
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return -1;
    if (S.vv === 0x12) p = str(buf, p, end, 'message');
    else if (S.vv === 0x18) {
      const s = p;
      p = skipVarint(buf, p, end);
      if (p >= 0) S.status = low32(buf, s, p);
    } else p = other(buf, p, end, S.vv, STATUS_NAMES, STATUS_TYPES);
    if (p < 0) return -1;
  }
  return p;
}


/** The low 32 bits of a validated varint in [s, e) (enums: negative values are sign-extended). */
function low32(buf: Uint8Array, s: number, e: number): number {
  let v = 0;
  for (let i = s, shift = 0; i < e && shift < 32; i++, shift += 7) v |= (buf[i] & 0x7f) << shift;
  return v >>> 0;
}

const SPAN_NAMES = [
  '',
  'trace_id',
  'span_id',
  'trace_state',
  'parent_span_id',
  'name',
  'kind',
  'start_time_unix_nano',
  'end_time_unix_nano',
  'attributes',
  'dropped_attributes_count',
  'events',
  'dropped_events_count',
  'links',
  'dropped_links_count',
  'status',
  'flags',
];
const SPAN_TYPES = [0, 2, 2, 2, 2, 2, 0, 1, 1, 2, 0, 2, 0, 2, 0, 2, 5];

/** What checkSpan found. */
export const SPAN_OK = 0;
/** A missing, all-zero or wrong-length trace or span id (or parent / link id). */
export const SPAN_INVALID_ID = 1;
/** Bytes a strict decoder refuses. */
export const SPAN_MALFORMED = 2;

/**
 * Checks a span's bytes completely and fills its index (ids, times, kind,
 * status, flags, parentage) in the same pass. Returns SPAN_OK, or
 * SPAN_INVALID_ID / SPAN_MALFORMED with the reason in lastProblem().
 */
export function checkSpan(span: Span): number {
  const buf = span.buf;
  let p = span.off;
  const end = p + span.len;
  let traceOff = -1;
  let attrs = 0;
  let events = 0;
  let links = 0;
  let idProblem = '';
  while (p < end) {
    p = tagAt(buf, p, end);
    if (p < 0) return SPAN_MALFORMED;
    switch (S.vv) {
      case 0x0a: // trace_id
      case 0x12: // span_id
      case 0x22: {
        // parent_span_id
        const t = S.vv;
        p = lenEnd(buf, p, end);
        if (p < 0) return under(SPAN_NAMES[t >>> 3]), SPAN_MALFORMED;
        const n = p - S.lenStart;
        if (t === 0x0a) {
          if (n === 16) traceOff = S.lenStart;
          else if (idProblem === '') idProblem = `invalid trace_id: ${n} bytes, want 16`;
        } else if (t === 0x12) {
          if (n === 8) span.spanIdOff = S.lenStart;
          else if (idProblem === '') idProblem = `invalid span_id: ${n} bytes, want 8`;
        } else {
          span.hasParent = n > 0;
          if (n !== 8 && n !== 0 && idProblem === '') idProblem = `invalid parent_span_id: ${n} bytes, want 8 or none`;
        }
        break;
      }
      case 0x1a:
        p = str(buf, p, end, 'trace_state');
        break;
      case 0x2a:
        p = str(buf, p, end, 'name');
        break;
      case 0x30: {
        const s = p;
        p = skipVarint(buf, p, end);
        if (p >= 0) span.kind = low32(buf, s, p);
        break;
      }
      case 0x39:
      case 0x41: {
        const t = S.vv;
        if (p + 8 > end) return fail(`truncated ${SPAN_NAMES[t >>> 3]}`), SPAN_MALFORMED;
        const ns = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
        const hi = (buf[p + 4] | (buf[p + 5] << 8) | (buf[p + 6] << 16) | (buf[p + 7] << 24)) >>> 0;
        if (t === 0x39) span.startNs = hi * 4294967296 + ns;
        else span.endNs = hi * 4294967296 + ns;
        p += 8;
        break;
      }
      case 0x4a:
        p = attribute(buf, p, end, 'attributes', attrs++);
        break;
      case 0x50: // dropped_attributes_count
      case 0x60: // dropped_events_count
      case 0x70: // dropped_links_count
        p = skipVarint(buf, p, end);
        break;
      case 0x5a: {
        const e = lenEnd(buf, p, end);
        if (e < 0 || checkEvent(buf, S.lenStart, e) < 0) return under(`events[${events}]`), SPAN_MALFORMED;
        events++;
        p = e;
        break;
      }
      case 0x6a: {
        const e = lenEnd(buf, p, end);
        if (e < 0 || checkLink(buf, S.lenStart, e) < 0) {
          under(`links[${links}]`);
          return idFailure ? SPAN_INVALID_ID : SPAN_MALFORMED;
        }
        links++;
        p = e;
        break;
      }
      case 0x7a: {
        const e = lenEnd(buf, p, end);
        if (e < 0 || checkStatus(buf, S.lenStart, e) < 0) return under('status'), SPAN_MALFORMED;
        span.statusCode = S.status;
        p = e;
        break;
      }
      case 0x85:
        // flags (field 16, fixed32): the one two-byte tag of a span, read whole by tagAt
        if (p + 4 > end) return fail('truncated flags'), SPAN_MALFORMED;
        span.flags = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
        p += 4;
        break;
      default:
        p = other(buf, p, end, S.vv, SPAN_NAMES, SPAN_TYPES);
    }
    if (p < 0) return SPAN_MALFORMED;
  }
  if (idProblem !== '') return fail(idProblem), SPAN_INVALID_ID;
  if (traceOff < 0) return fail('invalid trace_id: missing'), SPAN_INVALID_ID;
  if (span.spanIdOff < 0) return fail('invalid span_id: missing'), SPAN_INVALID_ID;
  if (allZero(buf, traceOff, 16)) return fail('invalid trace_id: all zero'), SPAN_INVALID_ID;
  span.traceId = toHex(buf, traceOff, traceOff + 16);
  return SPAN_OK;
}

function allZero(buf: Uint8Array, off: number, n: number): boolean {
  for (let i = off; i < off + n; i++) if (buf[i] !== 0) return false;
  return true;
}
