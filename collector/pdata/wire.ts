/**
 * Minimal protobuf wire-format primitives used on the hot path.
 *
 * The receiver scans OTLP requests with these instead of a full decode: a
 * span is kept as its encoded bytes plus a small index (see otlp.ts), so the
 * only protobuf work per span is walking its top-level fields once.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export class WireError extends Error {
  readonly code = 'ERR_PROTOBUF';
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** Cursor over a byte range. Methods throw WireError on truncated or malformed input. */
export class WireReader {
  buf: Uint8Array;
  pos: number;
  end: number;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a varint that fits in 32 bits unsigned (tags, lengths, enums). */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    let b = buf[pos++];
    let v = b & 0x7f;
    if (b >= 0x80) {
      b = buf[pos++]; v |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = buf[pos++]; v |= (b & 0x7f) << 14;
        if (b >= 0x80) {
          b = buf[pos++]; v |= (b & 0x7f) << 21;
          if (b >= 0x80) {
            b = buf[pos++]; v = (v | ((b & 0x0f) << 28)) >>> 0;
            // Remaining bytes of a 64-bit varint (negative int32 enums are sign-extended to 10 bytes).
            let n = 0;
            while (b >= 0x80) {
              if (++n > 5) throw new WireError('varint longer than 10 bytes');
              b = buf[pos++];
            }
          }
        }
      }
    }
    if (pos > this.end) throw new WireError('truncated varint');
    this.pos = pos;
    return v >>> 0;
  }

  /** Reads a varint as a JS number (exact up to 2^53). */
  uint64Number(): number {
    let lo = 0;
    let hi = 0;
    const buf = this.buf;
    let pos = this.pos;
    let shift = 0;
    let b: number;
    do {
      if (pos >= this.end) throw new WireError('truncated varint');
      b = buf[pos++];
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      shift += 7;
      if (shift > 70) throw new WireError('varint longer than 10 bytes');
    } while (b >= 0x80);
    this.pos = pos;
    return (hi >>> 0) * 4294967296 + (lo >>> 0);
  }

  /** Reads a varint as a signed 64-bit bigint (int64 semantics). */
  int64(): bigint {
    let result = 0n;
    let shift = 0n;
    let b: number;
    do {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (shift > 70n) throw new WireError('varint longer than 10 bytes');
    } while (b >= 0x80);
    return BigInt.asIntN(64, result);
  }

  fixed32(): number {
    const p = this.pos;
    if (p + 4 > this.end) throw new WireError('truncated fixed32');
    const b = this.buf;
    this.pos = p + 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }

  /** fixed64 as a double: exact below 2^53, within 256 ns for current Unix-nano timestamps. */
  fixed64Number(): number {
    const lo = this.fixed32();
    const hi = this.fixed32();
    return hi * 4294967296 + lo;
  }

  fixed64BigInt(): bigint {
    const lo = this.fixed32();
    const hi = this.fixed32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new WireError('truncated double');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length prefix and returns the end offset of the delimited field. */
  lenEnd(): number {
    const len = this.uint32();
    const end = this.pos + len;
    if (end > this.end) throw new WireError('length-delimited field runs past its parent');
    return end;
  }

  string(): string {
    const end = this.lenEnd();
    const s = utf8Decode(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  bytes(): Uint8Array {
    const end = this.lenEnd();
    const v = this.buf.subarray(this.pos, end);
    this.pos = end;
    return v;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT: {
        let n = 0;
        while (this.buf[this.pos++] >= 0x80) if (++n > 9) throw new WireError('varint longer than 10 bytes');
        if (this.pos > this.end) throw new WireError('truncated varint');
        return;
      }
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.pos = this.lenEnd();
        return;
      case WIRE_I32:
        this.pos += 4;
        break;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new WireError('truncated field');
  }
}

const decoder = new TextDecoder('utf-8');
export function utf8Decode(buf: Uint8Array, start: number, end: number): string {
  // Short ASCII strings (attribute keys, ids) are faster by hand than through TextDecoder.
  if (end - start < 32) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = buf[i];
      if (c >= 0x80) return decoder.decode(buf.subarray(start, end));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoder.decode(buf.subarray(start, end));
}

// ---------------------------------------------------------------- writing

export function varintSize(v: number): number {
  if (v < 0) return 10;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  let n = 5;
  v = Math.floor(v / 0x800000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 0x80);
  }
  return n;
}

/** Size of a length-delimited field (tag + length + payload) for a small field number. */
export function lenFieldSize(fieldNo: number, payload: number): number {
  return varintSize(fieldNo << 3) + varintSize(payload) + payload;
}

/**
 * Closes a length-delimited field whose 5-byte length slot was reserved at
 * `mark` (the payload runs from mark + 5 to `end`): writes the length as a
 * varint, shifts the payload left over the unused slot bytes, and returns the
 * new end. Shared by every writer that encodes nested messages of unknown size.
 */
export function closeLen(buf: Uint8Array, mark: number, end: number): number {
  const payload = end - mark - 5;
  const lenSize = varintSize(payload);
  if (lenSize < 5) buf.copyWithin(mark + lenSize, mark + 5, end);
  let v = payload;
  let p = mark;
  while (v >= 0x80) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p] = v;
  return mark + lenSize + payload;
}

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);

/** Growable writer. Callers that know sizes up front pass an exact capacity. */
export class WireWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  uint32(v: number): void {
    this.ensure(5);
    const buf = this.buf;
    v >>>= 0;
    while (v >= 0x80) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  /** Unsigned varint of a non-negative JS number up to 2^53. */
  uint64Number(v: number): void {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  int64(v: bigint): void {
    this.ensure(10);
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  tag(fieldNo: number, wireType: number): void {
    this.uint32((fieldNo << 3) | wireType);
  }

  fixed32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    b[this.pos++] = v & 0xff;
    b[this.pos++] = (v >>> 8) & 0xff;
    b[this.pos++] = (v >>> 16) & 0xff;
    b[this.pos++] = (v >>> 24) & 0xff;
  }

  fixed64BigInt(v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.fixed32(Number(u & 0xffffffffn));
    this.fixed32(Number(u >> 32n));
  }

  double(v: number): void {
    this.ensure(8);
    f64[0] = v;
    const b = this.buf;
    for (let i = 0; i < 8; i++) b[this.pos++] = f64b[i];
  }

  /** Copies src[start, end). Short ranges are copied by a loop: a view plus set() costs more than the copy. */
  raw(src: Uint8Array, start = 0, end = src.length): void {
    const n = end - start;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    if (n < 96) for (let i = start; i < end; i++) b[p++] = src[i];
    else {
      // A plain view: Buffer#subarray would construct a Buffer.
      b.set(new Uint8Array(src.buffer, src.byteOffset + start, n), p);
      p += n;
    }
    this.pos = p;
  }

  /** A length-delimited field holding src[start, end). */
  lenField(fieldNo: number, src: Uint8Array, start: number, end: number): void {
    this.tag(fieldNo, WIRE_LEN);
    this.uint32(end - start);
    this.raw(src, start, end);
  }

  bytesField(fieldNo: number, src: Uint8Array): void {
    this.tag(fieldNo, WIRE_LEN);
    this.uint32(src.length);
    this.raw(src);
  }

  /** A string field, encoded to UTF-8 in place (no intermediate array); lone surrogates become U+FFFD as with TextEncoder. */
  stringField(fieldNo: number, s: string): void {
    const n = s.length;
    let len = 0;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) len++;
      else if (c < 0x800) len += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        len += 4;
        i++;
      } else len += 3;
    }
    this.tag(fieldNo, WIRE_LEN);
    this.uint32(len);
    this.ensure(len);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) b[p++] = c;
      else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
        b[p++] = 0xf0 | (c >> 18);
        b[p++] = 0x80 | ((c >> 12) & 0x3f);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      }
    }
    this.pos = p;
  }

  /** Starts a length-delimited field whose size is not known yet; returns a mark for `endLen`. */
  beginLen(fieldNo: number): number {
    this.tag(fieldNo, WIRE_LEN);
    this.ensure(5);
    const mark = this.pos;
    this.pos += 5; // reserve a 5-byte varint, fixed up (and compacted) in endLen
    return mark;
  }

  endLen(mark: number): void {
    this.pos = closeLen(this.buf, mark, this.pos);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

const encoder = new TextEncoder();
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

const HEX = '0123456789abcdef';
const HEX_BYTE: string[] = [];
for (let i = 0; i < 256; i++) HEX_BYTE.push(HEX[i >> 4] + HEX[i & 15]);

export function toHex(buf: Uint8Array, start = 0, end = buf.length): string {
  // Buffer's native hex encoder returns a flat string; concatenation would build
  // a tree of cons-strings that costs ~300 bytes of heap per id held.
  if (Buffer.isBuffer(buf)) return buf.toString('hex', start, end);
  let s = '';
  for (let i = start; i < end; i++) s += HEX_BYTE[buf[i]];
  return s;
}

export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const v = parseInt(hex.substr(i * 2, 2), 16);
    if (Number.isNaN(v)) return undefined;
    out[i] = v;
  }
  return out;
}
