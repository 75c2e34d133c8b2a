/**
 * Strict checks of the common OTLP values (KeyValue, AnyValue) on receipt, for
 * log bodies and the attributes of log records and data points: every string
 * valid UTF-8, every field of the wire type its schema says, nesting bounded.
 * A value that fails is reported as a reason; the caller rejects its item
 * (partial_success), as protobuf-go would refuse the whole message.
 */
import { isUtf8 } from 'node:buffer';
import { WireReader, WIRE_LEN, WIRE_VARINT, WIRE_I64 } from './wire.js';

const MAX_DEPTH = 32;

/** Checks one AnyValue message in buf[start, end). */
export function checkAnyValue(buf: Uint8Array, start: number, end: number, depth = 0): string | undefined {
  if (depth > MAX_DEPTH) return `value nested deeper than ${MAX_DEPTH} levels`;
  const r = new WireReader(buf, start, end);
  while (!r.done()) {
    const t = r.uint32();
    const field = t >>> 3;
    const wt = t & 7;
    switch (field) {
      case 1: // string_value
      case 7: {
        // bytes_value
        if (wt !== WIRE_LEN) return `AnyValue field ${field} has wire type ${wt}`;
        const e = r.lenEnd();
        if (field === 1 && !isUtf8(buf.subarray(r.pos, e))) return 'string value is not valid UTF-8';
        r.pos = e;
        break;
      }
      case 2:
      case 3:
        if (wt !== WIRE_VARINT) return `AnyValue field ${field} has wire type ${wt}`;
        r.skip(wt);
        break;
      case 4:
        if (wt !== WIRE_I64) return `AnyValue field 4 has wire type ${wt}`;
        r.skip(wt);
        break;
      case 5:
      case 6: {
        if (wt !== WIRE_LEN) return `AnyValue field ${field} has wire type ${wt}`;
        const e = r.lenEnd();
        const p = field === 5 ? checkList(buf, r.pos, e, depth + 1, false) : checkList(buf, r.pos, e, depth + 1, true);
        if (p !== undefined) return p;
        r.pos = e;
        break;
      }
      default:
        r.skip(wt);
    }
  }
  return undefined;
}

/** ArrayValue (values: AnyValue = 1) or KeyValueList (values: KeyValue = 1). */
function checkList(buf: Uint8Array, start: number, end: number, depth: number, kv: boolean): string | undefined {
  const r = new WireReader(buf, start, end);
  while (!r.done()) {
    const t = r.uint32();
    if (t >>> 3 === 1) {
      if ((t & 7) !== WIRE_LEN) return `list entry has wire type ${t & 7}`;
      const e = r.lenEnd();
      const p = kv ? checkKeyValue(buf, r.pos, e, depth) : checkAnyValue(buf, r.pos, e, depth);
      if (p !== undefined) return p;
      r.pos = e;
    } else r.skip(t & 7);
  }
  return undefined;
}

/** Checks one KeyValue message (key = 1 string, value = 2 AnyValue). */
export function checkKeyValue(buf: Uint8Array, start: number, end: number, depth = 0): string | undefined {
  const r = new WireReader(buf, start, end);
  while (!r.done()) {
    const t = r.uint32();
    const field = t >>> 3;
    if (field === 1 || field === 2) {
      if ((t & 7) !== WIRE_LEN) return `KeyValue field ${field} has wire type ${t & 7}`;
      const e = r.lenEnd();
      if (field === 1 && !isUtf8(buf.subarray(r.pos, e))) return 'attribute key is not valid UTF-8';
      if (field === 2) {
        const p = checkAnyValue(buf, r.pos, e, depth + 1);
        if (p !== undefined) return p;
      }
      r.pos = e;
    } else r.skip(t & 7);
  }
  return undefined;
}
