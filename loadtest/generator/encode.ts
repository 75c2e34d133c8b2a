/**
 * Encodes generated spans as an OTLP ExportTraceServiceRequest, by hand:
 * protobuf (what SDK exporters send on the wire) or OTLP/JSON. Spans are
 * grouped under their pod's resource and their instrumentation scope, as an
 * SDK exporting from many processes through one agent would look.
 */
import type { AttrValue, GenTrace, PodDef, ServiceGraph } from './model.js';
import { KIND_SERVER } from './model.js';
import { closeLen } from '../../collector/pdata/wire.js';

/** A span reference inside a batch. */
export interface BatchItem {
  trace: SentTrace;
  span: number;
}

/** A generated trace plus the wall-clock time its spans are placed at. */
export interface SentTrace extends GenTrace {
  /** Wall-clock ms of the trace start. */
  baseMs: number;
  /** Its nanoseconds split in 32-bit halves (exact). */
  baseHi: number;
  baseLo: number;
}

const TWO32 = 4294967296;

export function placeTrace(t: GenTrace, startMs: number): SentTrace {
  const s = t as SentTrace;
  const ms = Math.floor(startMs);
  const ns = BigInt(ms) * 1000000n + BigInt(Math.round((startMs - ms) * 1e6));
  s.baseMs = startMs;
  s.baseHi = Number(ns >> 32n);
  s.baseLo = Number(ns & 0xffffffffn);
  return s;
}

/** Protobuf writer over a reusable growable buffer. */
class Writer {
  buf: Buffer = Buffer.allocUnsafe(1 << 16);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  varint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    while (v >= 0x80) {
      b[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    b[this.pos++] = v;
  }
  byte(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }
  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  raw(src: Uint8Array, start = 0, end = src.length): void {
    const n = end - start;
    this.ensure(n);
    this.buf.set(src.subarray(start, end), this.pos);
    this.pos += n;
  }
  /** tag + length + utf8 string. */
  string(tag: number, s: string): void {
    const max = s.length * 3;
    this.ensure(max + 11);
    this.buf[this.pos++] = tag;
    if (s.length < 43) {
      // length fits in one byte for sure (<= 127)
      const at = this.pos++;
      const n = this.buf.write(s, this.pos, "utf8");
      this.buf[at] = n;
      this.pos += n;
    } else {
      const n = Buffer.byteLength(s);
      this.varint(n);
      this.buf.write(s, this.pos, "utf8");
      this.pos += n;
    }
  }
  /** Starts a length-delimited field; returns the mark for end(). */
  begin(tag: number): number {
    this.ensure(6);
    this.buf[this.pos++] = tag;
    const mark = this.pos;
    this.pos += 5;
    return mark;
  }
  end(mark: number): void {
    this.pos = closeLen(this.buf, mark, this.pos);
  }
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

// Tags: (field << 3) | wire type.
const T_LEN = (f: number) => (f << 3) | 2;
const T_VARINT = (f: number) => f << 3;

/** A KeyValue as field `field` of the enclosing message. */
function writeAttr(w: Writer, field: number, key: string, v: AttrValue): void {
  const m = w.begin(T_LEN(field));
  w.string(T_LEN(1), key);
  const a = w.begin(T_LEN(2));
  if (typeof v === 'string') w.string(T_LEN(1), v);
  else if (typeof v === 'boolean') {
    w.byte(T_VARINT(2));
    w.byte(v ? 1 : 0);
  } else if (Number.isInteger(v)) {
    w.byte(T_VARINT(3));
    w.varint(v < 0 ? 0 : v);
  } else {
    w.byte((4 << 3) | 1);
    w.double(v);
  }
  w.end(a);
  w.end(m);
}

function writeTime(w: Writer, tag: number, t: SentTrace, offMs: number): void {
  const off = Math.round(offMs * 1e6);
  let lo = t.baseLo + (off % TWO32);
  let hi = t.baseHi + Math.floor(off / TWO32);
  if (lo >= TWO32) {
    lo -= TWO32;
    hi += 1;
  }
  w.byte(tag);
  w.fixed32(lo);
  w.fixed32(hi);
}

export class ProtoEncoder {
  private readonly w = new Writer();
  /** Pre-encoded resource bodies by pod index. */
  private readonly resources: Buffer[];
  /** Pre-encoded scope bodies by service index and scope. */
  private readonly scopes: Buffer[][];
  /** Scratch grouping: per pod, per scope, the batch items. */
  private readonly groups: BatchItem[][][];

  constructor(graph: ServiceGraph) {
    const w = new Writer();
    this.resources = graph.pods.map((pod: PodDef) => {
      w.reset();
      for (const [k, v] of pod.attributes) writeAttr(w, 1, k, v);
      return w.finish();
    });
    this.scopes = graph.services.map((svc) =>
      [svc.httpScope, svc.dbScope].map((sc) => {
        w.reset();
        w.string(T_LEN(1), sc.name);
        w.string(T_LEN(2), sc.version);
        return w.finish();
      }),
    );
    this.groups = graph.pods.map(() => [[], []]);
  }

  encode(items: readonly BatchItem[]): Buffer {
    const groups = this.groups;
    const used: number[] = [];
    for (const it of items) {
      const s = it.trace.spans[it.span];
      const g = groups[s.pod.index];
      if (g[0].length === 0 && g[1].length === 0) used.push(s.pod.index);
      g[s.scope].push(it);
    }
    const w = this.w;
    w.reset();
    for (const podIndex of used) {
      const g = groups[podIndex];
      const first = (g[0][0] ?? g[1][0]).trace.spans[(g[0][0] ?? g[1][0]).span];
      const rs = w.begin(T_LEN(1)); // resource_spans
      const res = w.begin(T_LEN(1)); // resource
      w.raw(this.resources[podIndex]);
      w.end(res);
      for (let sc = 0; sc < 2; sc++) {
        const list = g[sc];
        if (list.length === 0) continue;
        const ss = w.begin(T_LEN(2)); // scope_spans
        const scope = w.begin(T_LEN(1));
        w.raw(this.scopes[first.pod.service.index][sc]);
        w.end(scope);
        for (const it of list) this.span(it);
        w.end(ss);
        list.length = 0;
      }
      w.end(rs);
    }
    return w.finish();
  }

  private span(it: BatchItem): void {
    const w = this.w;
    const t = it.trace;
    const s = t.spans[it.span];
    const m = w.begin(T_LEN(2)); // spans
    w.byte(T_LEN(1));
    w.byte(16);
    w.raw(t.ids, 0, 16);
    w.byte(T_LEN(2));
    w.byte(8);
    w.raw(t.ids, 16 + 8 * it.span, 24 + 8 * it.span);
    if (s.parent >= 0) {
      w.byte(T_LEN(4));
      w.byte(8);
      w.raw(t.ids, 16 + 8 * s.parent, 24 + 8 * s.parent);
    }
    w.string(T_LEN(5), s.name);
    w.byte(T_VARINT(6));
    w.byte(s.kind);
    writeTime(w, (7 << 3) | 1, t, s.startMs);
    writeTime(w, (8 << 3) | 1, t, s.endMs);
    const a = s.attrs;
    for (let k = 0; k < a.length; k += 2) writeAttr(w, 9, a[k] as string, a[k + 1]);
    if (s.exception !== undefined) {
      const ev = w.begin(T_LEN(11));
      writeTime(w, (1 << 3) | 1, t, s.endMs - 0.01);
      w.string(T_LEN(2), 'exception');
      writeAttr(w, 3, 'exception.type', s.exception.type);
      writeAttr(w, 3, 'exception.message', s.exception.message);
      w.end(ev);
    }
    if (s.status !== 0) {
      const st = w.begin(T_LEN(15));
      if (s.statusMessage !== '') w.string(T_LEN(2), s.statusMessage);
      w.byte(T_VARINT(3));
      w.byte(s.status);
      w.end(st);
    }
    // flags: sampled, has-is-remote, and is-remote for server spans with a parent
    w.ensure(7);
    w.buf[w.pos++] = 0x85; // field 16, wire type 5: tag 133 = 0x85 0x01
    w.buf[w.pos++] = 0x01;
    w.fixed32(s.kind === KIND_SERVER && s.parent >= 0 ? 0x301 : 0x101);
    w.end(m);
  }
}

function jsonValue(v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Number.isInteger(v)) return { intValue: String(v) };
  return { doubleValue: v };
}

function jsonTime(t: SentTrace, offMs: number): string {
  const off = BigInt(Math.round(offMs * 1e6));
  return ((BigInt(t.baseHi) << 32n) + BigInt(t.baseLo) + off).toString();
}

/** OTLP/JSON encoding (hex ids, integer enums, 64-bit values as strings). */
export class JsonEncoder {
  constructor(private readonly graph: ServiceGraph) {}

  encodeObject(items: readonly BatchItem[]): Record<string, unknown> {
    const byPod = new Map<number, BatchItem[][]>();
    for (const it of items) {
      const s = it.trace.spans[it.span];
      let g = byPod.get(s.pod.index);
      if (g === undefined) byPod.set(s.pod.index, (g = [[], []]));
      g[s.scope].push(it);
    }
    const resourceSpans = [];
    for (const [podIndex, g] of byPod) {
      const pod = this.graph.pods[podIndex];
      const scopeSpans = [];
      for (let sc = 0; sc < 2; sc++) {
        if (g[sc].length === 0) continue;
        const scope = sc === 0 ? pod.service.httpScope : pod.service.dbScope;
        scopeSpans.push({
          scope: { name: scope.name, version: scope.version },
          spans: g[sc].map((it) => {
            const t = it.trace;
            const s = t.spans[it.span];
            const hex = (i: number) => Buffer.from(t.ids.buffer, t.ids.byteOffset + 16 + 8 * i, 8).toString('hex');
            const attributes = [];
            for (let k = 0; k < s.attrs.length; k += 2) attributes.push({ key: s.attrs[k] as string, value: jsonValue(s.attrs[k + 1]) });
            const out: Record<string, unknown> = {
              traceId: t.traceIdHex,
              spanId: hex(it.span),
              name: s.name,
              kind: s.kind,
              startTimeUnixNano: jsonTime(t, s.startMs),
              endTimeUnixNano: jsonTime(t, s.endMs),
              attributes,
              flags: s.kind === KIND_SERVER && s.parent >= 0 ? 0x301 : 0x101,
            };
            if (s.parent >= 0) out.parentSpanId = hex(s.parent);
            if (s.exception !== undefined) {
              out.events = [
                {
                  timeUnixNano: jsonTime(t, s.endMs - 0.01),
                  name: 'exception',
                  attributes: [
                    { key: 'exception.type', value: { stringValue: s.exception.type } },
                    { key: 'exception.message', value: { stringValue: s.exception.message } },
                  ],
                },
              ];
            }
            if (s.status !== 0) out.status = s.statusMessage !== '' ? { code: s.status, message: s.statusMessage } : { code: s.status };
            return out;
          }),
        });
      }
      resourceSpans.push({
        resource: { attributes: pod.attributes.map(([key, v]) => ({ key, value: jsonValue(v) })) },
        scopeSpans,
      });
    }
    return { resourceSpans };
  }

  encode(items: readonly BatchItem[]): Buffer {
    return Buffer.from(JSON.stringify(this.encodeObject(items)));
  }
}
