/**
 * The normalize processor.
 *
 * Per span: resource rules ran once per ResourceRef (cached by identity);
 * then a pre-check walks the span's attributes on the wire, looks each key up
 * in an interned table (hash of the key bytes -> per-rule classification
 * computed once per distinct key), and asks only the rules that care about
 * that key whether the raw value could change. The first "maybe" switches to
 * the slow path (decode to a SpanEdit, run the rules in order, re-encode if
 * anything changed); a span with no "maybe" keeps its exact bytes.
 */
import { readFileSync } from 'node:fs';
import type { Component, CreateSettings } from '../../collector/component.js';
import type { LogsConsumer, MetricsConsumer, TracesConsumer } from '../../collector/consumer.js';
import { indexLogRecord, type LogRecord } from '../../collector/pdata/logs.js';
import { METRIC_DATA_FIELDS, POINT_ATTRIBUTES_FIELD, type Metric } from '../../collector/pdata/metrics.js';
import type { EncodedItem } from '../../collector/pdata/scan.js';
import { ResourceRef, ScopeRef, type Span } from '../../collector/pdata/spans.js';
import { WireReader, WireWriter, WIRE_LEN, utf8Decode } from '../../collector/pdata/wire.js';
import type { Counter } from '../../collector/telemetry/metrics.js';
import { AttrList, LogEdit, PointEdit, SpanEdit, editResourceHeader, type AnyValue, type KeyValue } from './edit.js';
import { ALWAYS, NEVER, compileRule, type ApplyContext, type CompileDeps, type CompiledRule, type RuleMetrics } from './rules.js';
import type { NormalizeConfig, RuleConfig } from './config.js';
import { effectiveRules } from './preset.js';

const TAG_NAME = (5 << 3) | WIRE_LEN;
const TAG_ATTR = (9 << 3) | WIRE_LEN;
const TAG_EVENT = (11 << 3) | WIRE_LEN;
const TAG_EVENT_ATTR = (3 << 3) | WIRE_LEN;
const KEY_BUCKETS = 4096;
const TAG_LOG_BODY = (5 << 3) | WIRE_LEN;
const TAG_LOG_ATTR = (6 << 3) | WIRE_LEN;
const TAG_POINT = (1 << 3) | WIRE_LEN;

/**
 * Attribute added to a metric data point whose attribute value a
 * cardinality_limit collapsed (the OpenTelemetry SDK's overflow attribute).
 */
export const OVERFLOW_KEY = 'otel.metric.overflow';
const OVERFLOW_VALUE: AnyValue = { t: 'bool', v: true };

/** Rules that care about one key in one scope. */
class KeyCheck {
  readonly always: Int32Array;
  readonly valueRules: CompiledRule[];
  readonly valueCodes: Int32Array;
  constructor(always: number[], valueRules: CompiledRule[], codes: number[]) {
    this.always = Int32Array.from(always);
    this.valueRules = valueRules;
    this.valueCodes = Int32Array.from(codes);
  }
}

class KeyInfo {
  readonly bytes: Uint8Array;
  readonly key: string;
  readonly span: KeyCheck | null;
  readonly event: KeyCheck | null;
  next: KeyInfo | null;
  constructor(bytes: Uint8Array, key: string, span: KeyCheck | null, event: KeyCheck | null) {
    this.bytes = bytes;
    this.key = key;
    this.span = span;
    this.event = event;
    this.next = null;
  }
}

interface ResState {
  ref: ResourceRef;
  /** Per rule index: 1 when the rule's service filter passes for this resource. */
  serviceOk: Uint8Array;
  /** serviceOk without the rules that filter on span kind or name (log records, data points). */
  recordActive?: Uint8Array;
}

interface ScopeState {
  scope: ScopeRef;
  res: ResState;
}

export interface NormalizeDeps {
  /** Environment for enrich_from_env (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  readFile?: (path: string) => Buffer;
}

export class NormalizeProcessor implements Component, TracesConsumer, LogsConsumer, MetricsConsumer {
  readonly mutatesData = true;
  private readonly settings: CreateSettings;
  private readonly next: TracesConsumer | LogsConsumer | MetricsConsumer;
  /** Span-scoped rules: they also apply to log record and data point attributes. */
  private readonly recordRules: CompiledRule[];
  /** Record rules that also apply to log bodies (redact, truncate). */
  private readonly bodyRules: CompiledRule[];
  readonly rules: CompiledRule[];
  private readonly resourceRules: CompiledRule[];
  private readonly spanRules: CompiledRule[];
  private readonly nameRules: CompiledRule[];
  private readonly countRules: CompiledRule[];
  private readonly eventCountRules: CompiledRule[];
  private readonly hasEventRules: boolean;
  private readonly hasSpanFilters: boolean;
  private readonly hasServiceFilters: boolean;
  private readonly hasNameFilters: boolean;
  private readonly allActive: Uint8Array;
  private readonly active: Uint8Array;
  private readonly allServicesOk: Uint8Array;

  /** Hash table of interned keys (see lookupKey), chained through KeyInfo.next. */
  private readonly keyBuckets: Array<KeyInfo | null> = new Array<KeyInfo | null>(KEY_BUCKETS).fill(null);
  private keyCount = 0;
  private readonly keyCacheSize: number;

  private readonly scopeCache = new WeakMap<ScopeRef, ScopeState>();
  private lastScope: ScopeRef | null = null;
  private lastScopeState: ScopeState | null = null;

  private readonly reader = new WireReader(new Uint8Array(0));
  /** Attribute keys through the interning table (shared strings, hashes computed once). */
  private readonly keyOf = (buf: Uint8Array, s: number, e: number): string => this.lookupKey(buf, s, e).key;
  private readonly ctx: ApplyContext = { kind: 0, spanAttrs: null };

  private readonly mProcessed: ReturnType<Counter['labels']>;
  private readonly mReencoded: ReturnType<Counter['labels']>;
  private readonly mResources: ReturnType<Counter['labels']>;
  private readonly mLogs: ReturnType<Counter['labels']>;
  private readonly mPoints: ReturnType<Counter['labels']>;
  private stopped = false;

  constructor(settings: CreateSettings, config: NormalizeConfig, next: TracesConsumer | LogsConsumer | MetricsConsumer, deps: NormalizeDeps = {}) {
    this.settings = settings;
    this.next = next;
    this.keyCacheSize = config.key_cache_size;
    const compileDeps: CompileDeps = {
      env: deps.env ?? process.env,
      readFile: deps.readFile ?? ((p) => readFileSync(p)),
    };
    this.rules = effectiveRules(config).map(({ rule, label }, i) => compileRule(rule, i, label, compileDeps));
    this.resourceRules = this.rules.filter((r) => r.resource);
    this.spanRules = this.rules.filter((r) => r.span || r.event || r.name);
    this.nameRules = this.rules.filter((r) => r.name);
    this.countRules = this.rules.filter((r) => r.span);
    this.eventCountRules = this.rules.filter((r) => r.event);
    this.recordRules = this.countRules;
    this.bodyRules = this.recordRules.filter((r) => r.appliesToBody);
    this.hasEventRules = this.eventCountRules.length > 0;
    this.hasSpanFilters = this.spanRules.some((r) => r.hasSpanFilter);
    this.hasServiceFilters = this.rules.some((r) => r.filter.services !== null);
    this.hasNameFilters = this.spanRules.some((r) => r.filter.namePattern !== null);
    this.allActive = new Uint8Array(this.rules.length).fill(1);
    this.active = new Uint8Array(this.rules.length);
    this.allServicesOk = this.allActive;

    const t = settings.telemetry;
    const id = settings.id;
    const changed = t.counter('otelcol_processor_normalize_spans_changed_total', 'Spans, log records or data points a normalize rule changed, by rule.', ['processor', 'rule']);
    const redacted = t.counter('otelcol_processor_normalize_values_redacted_total', 'Values (or parts of values) redacted, by rule and detector.', ['processor', 'rule', 'detector']);
    const collapsed = t.counter('otelcol_processor_normalize_values_collapsed_total', 'Values replaced by _OTHER by a cardinality limit, by rule and key.', ['processor', 'rule', 'key']);
    this.mProcessed = t.counter('otelcol_processor_normalize_spans_total', 'Spans seen by the normalize processor.', ['processor']).labels(id);
    this.mReencoded = t.counter('otelcol_processor_normalize_spans_reencoded_total', 'Spans, log records and data points re-encoded because a rule changed them.', ['processor']).labels(id);
    this.mLogs = t.counter('otelcol_processor_normalize_log_records_total', 'Log records seen by the normalize processor.', ['processor']).labels(id);
    this.mPoints = t.counter('otelcol_processor_normalize_metric_points_total', 'Metric data points seen by the normalize processor.', ['processor']).labels(id);
    this.mResources = t.counter('otelcol_processor_normalize_resources_changed_total', 'Resources (per request) whose attributes a rule changed.', ['processor']).labels(id);
    for (const r of this.rules) {
      const m = new BatchedRuleMetrics(
        changed.labels(id, r.label),
        (d) => redacted.labels(id, r.label, d),
        (k) => collapsed.labels(id, r.label, k),
      );
      for (const d of r.redactDetectors()) m.redactedChild(d);
      for (const k of r.collapseKeys()) m.collapsedChild(k);
      r.metrics = m;
      this.ruleMetrics.push(m);
    }
  }

  private readonly ruleMetrics: BatchedRuleMetrics[] = [];
  private reencoded = 0;

  async start(): Promise<void> {
    this.settings.logger.info({ rules: this.rules.map((r) => r.label) }, 'normalize processor started');
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
  }

  async consume(spans: Span[]): Promise<void> {
    const now = this.settings.clock.now();
    for (const r of this.rules) r.beginBatch(now);
    let failed: Set<Span> | null = null;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i];
      try {
        this.processSpan(span);
      } catch {
        // Malformed nested data: the span cannot be normalized, so it must not leave unredacted.
        (failed ??= new Set()).add(span);
      }
    }
    this.mProcessed.inc(spans.length);
    if (this.reencoded > 0) {
      this.mReencoded.inc(this.reencoded);
      this.reencoded = 0;
    }
    for (const m of this.ruleMetrics) m.flush();
    if (failed !== null) {
      this.settings.telemetry.drop(this.settings.id, 'normalize_failed', failed.size);
      spans = spans.filter((s) => !failed!.has(s));
      if (spans.length === 0) return;
    }
    return (this.next as TracesConsumer).consume(spans);
  }

  async consumeLogs(records: LogRecord[]): Promise<void> {
    const failed = this.eachItem(records, (rec) => this.processLog(rec));
    this.mLogs.inc(records.length);
    if (failed !== null) {
      this.settings.telemetry.drop(this.settings.id, 'normalize_failed', failed.size, 'logs');
      records = records.filter((r) => !failed.has(r));
      if (records.length === 0) return;
    }
    return (this.next as LogsConsumer).consumeLogs(records);
  }

  async consumeMetrics(metrics: Metric[]): Promise<void> {
    const failed = this.eachItem(metrics, (m) => this.processMetric(m));
    let points = 0;
    for (const m of metrics) points += m.points;
    this.mPoints.inc(points);
    if (failed !== null) {
      let lost = 0;
      for (const m of failed) lost += Math.max(1, m.points);
      this.settings.telemetry.drop(this.settings.id, 'normalize_failed', lost, 'metrics');
      metrics = metrics.filter((m) => !failed.has(m));
      if (metrics.length === 0) return;
    }
    return (this.next as MetricsConsumer).consumeMetrics(metrics);
  }

  /** Runs `fn` on each item of a batch; returns the items whose nested data could not be decoded. */
  private eachItem<T extends EncodedItem>(items: T[], fn: (item: T) => void): Set<T> | null {
    const now = this.settings.clock.now();
    for (const r of this.rules) r.beginBatch(now);
    let failed: Set<T> | null = null;
    for (let i = 0; i < items.length; i++) {
      try {
        fn(items[i]);
      } catch {
        // It must not leave unredacted.
        (failed ??= new Set()).add(items[i]);
      }
    }
    if (this.reencoded > 0) {
      this.mReencoded.inc(this.reencoded);
      this.reencoded = 0;
    }
    for (const m of this.ruleMetrics) m.flush();
    return failed;
  }

  /** Normalizes one log record in place: attributes with the span-scoped rules, the body with redact and truncate. */
  processLog(rec: LogRecord): void {
    const st = this.resolveScope(rec.scope);
    if (st.scope !== rec.scope) rec.scope = st.scope;
    if (this.recordRules.length === 0) return;
    const active = this.recordActiveOf(st.res);
    if (!this.logMayChange(rec, active)) return;
    const edit = new LogEdit(rec.buf, rec.off, rec.off + rec.len, this.keyOf);
    this.applyRecordRules(edit.attrs, active, edit, this.bodyRules.length > 0 ? edit.body() : null, false);
    if (!edit.changed) return;
    const traceId = rec.traceId;
    rec.setBytes(Buffer.from(edit.encode()));
    rec.spanIdOff = -1;
    const bad = indexLogRecord(rec);
    if (bad !== undefined) throw new Error(bad);
    rec.traceId = traceId;
    this.reencoded++;
  }

  /** Normalizes the data point attributes of one metric in place; only changed points are re-encoded. */
  processMetric(m: Metric): void {
    const st = this.resolveScope(m.scope);
    if (st.scope !== m.scope) m.scope = st.scope;
    if (this.recordRules.length === 0 || m.type === 'empty') return;
    const active = this.recordActiveOf(st.res);
    const attrField = POINT_ATTRIBUTES_FIELD[m.type];
    const attrTag = (attrField << 3) | WIRE_LEN;
    const buf = m.buf;
    const r = new WireReader(buf, m.off, m.off + m.len);
    let ds = -1;
    let de = -1;
    let dataField = 0;
    while (!r.done()) {
      const t = r.uint32();
      if ((t & 7) === WIRE_LEN && METRIC_DATA_FIELDS[t >>> 3] !== undefined) {
        const e = r.lenEnd();
        ds = r.pos;
        de = e;
        dataField = t >>> 3;
        r.pos = e;
      } else r.skip(t & 7);
    }
    if (ds < 0) return;
    let edits: PointEdit[] | null = null;
    const pr = new WireReader(buf, ds, de);
    while (!pr.done()) {
      const t = pr.uint32();
      if (t !== TAG_POINT) {
        pr.skip(t & 7);
        continue;
      }
      const e = pr.lenEnd();
      if (this.messageMayChange(buf, pr.pos, e, attrTag, active, false, true, this.recordRules)) {
        const edit = new PointEdit(buf, pr.pos, e, attrField, this.keyOf);
        this.applyRecordRules(edit.attrs, active, null, null, true);
        if (edit.changed) (edits ??= []).push(edit);
      }
      pr.pos = e;
    }
    if (edits === null) return;
    // Copy the metric, rebuilding only its data message, and in it only the changed points.
    const w = new WireWriter(m.len + 64 * edits.length);
    const mr = new WireReader(buf, m.off, m.off + m.len);
    while (!mr.done()) {
      const fs = mr.pos;
      const t = mr.uint32();
      mr.skip(t & 7);
      if (mr.pos !== de) {
        w.raw(buf, fs, mr.pos);
        continue;
      }
      const dm = w.beginLen(dataField);
      const dr = new WireReader(buf, ds, de);
      let k = 0;
      while (!dr.done()) {
        const ps = dr.pos;
        const pt = dr.uint32();
        if (pt === TAG_POINT && k < edits.length) {
          const pe = dr.lenEnd();
          dr.pos = pe;
          if (edits[k].start < pe && edits[k].end === pe) {
            edits[k++].encodeTo(w, 1);
            continue;
          }
        } else dr.skip(pt & 7);
        w.raw(buf, ps, dr.pos);
      }
      w.endLen(dm);
    }
    m.setBytes(Buffer.from(w.finish()));
    this.reencoded += edits.length;
  }

  private applyRecordRules(attrs: AttrList, active: Uint8Array, owner: LogEdit | null, body: AttrList | null, isPoint: boolean): void {
    const ctx = this.ctx;
    ctx.kind = 0;
    ctx.spanAttrs = attrs;
    for (const rule of this.recordRules) {
      if (active[rule.index] !== 1) continue;
      let changed = rule.applyAttrs(attrs, ctx, owner);
      if (changed && isPoint && rule.limitsCardinality) attrs.set(OVERFLOW_KEY, OVERFLOW_VALUE);
      if (body !== null && rule.appliesToBody && rule.applyAttrs(body, ctx, null)) changed = true;
      if (changed) rule.metrics.changed();
    }
    ctx.spanAttrs = null;
  }

  private recordActiveOf(res: ResState): Uint8Array {
    let a = res.recordActive;
    if (a === undefined) {
      a = new Uint8Array(this.rules.length);
      for (const r of this.rules) a[r.index] = res.serviceOk[r.index] === 1 && r.filter.kinds === null && r.filter.namePattern === null ? 1 : 0;
      res.recordActive = a;
    }
    return a;
  }

  private logMayChange(rec: LogRecord, active: Uint8Array): boolean {
    return this.messageMayChange(rec.buf, rec.off, rec.off + rec.len, TAG_LOG_ATTR, active, true, true, this.recordRules);
  }

  /**
   * Pre-check of an event, log record or data point buf[s, e) whose attributes
   * have tag `attrTag`; `isSpan` selects the span-scoped (record) rules, else
   * the event rules; `isLog` also considers the body.
   */
  private messageMayChange(buf: Uint8Array, s: number, e: number, attrTag: number, active: Uint8Array, isLog: boolean, isSpan: boolean, countRules: readonly CompiledRule[]): boolean {
    const r = new WireReader(buf, s, e);
    let n = 0;
    while (!r.done()) {
      const t = r.uint32();
      if (t === attrTag) {
        const ae = r.lenEnd();
        n++;
        if (this.attrMayChange(buf, r.pos, ae, isSpan, active)) return true;
        r.pos = ae;
      } else if (isLog && t === TAG_LOG_BODY) {
        // Bodies are not pre-checked: any active body rule decodes the record.
        for (const rule of this.bodyRules) if (active[rule.index] === 1) return true;
        r.skip(t & 7);
      } else r.skip(t & 7);
    }
    for (const rule of countRules) if (active[rule.index] === 1 && rule.countMayAffect(n)) return true;
    return false;
  }

  /** Normalizes one span in place (exposed for benchmarks and tests). */
  processSpan(span: Span): void {
    const st = this.resolveScope(span.scope);
    if (st.scope !== span.scope) span.scope = st.scope;
    if (this.spanRules.length === 0) return;
    let active = this.allActive;
    if (this.hasSpanFilters) active = this.computeActive(span, st.res);
    if (!this.mayChange(span, active)) return;
    this.rewrite(span, active);
  }

  // -------------------------------------------------------------- resources

  private resolveScope(scope: ScopeRef): ScopeState {
    if (scope === this.lastScope) return this.lastScopeState!;
    let st = this.scopeCache.get(scope);
    if (st === undefined) {
      const res = this.resolveResource(scope.resource);
      const next = res.ref === scope.resource ? scope : new ScopeRef(res.ref, scope.header);
      st = { scope: next, res };
      this.scopeCache.set(scope, st);
      if (next !== scope) this.scopeCache.set(next, st);
    }
    this.lastScope = scope;
    this.lastScopeState = st;
    return st;
  }

  private readonly resCache = new WeakMap<ResourceRef, ResState>();

  private resolveResource(ref: ResourceRef): ResState {
    let st = this.resCache.get(ref);
    if (st !== undefined) return st;
    if (this.resourceRules.length === 0 && !this.hasServiceFilters) {
      st = { ref, serviceOk: this.allServicesOk };
      this.resCache.set(ref, st);
      return st;
    }
    const ctx: ApplyContext = { kind: 0, spanAttrs: null };
    let serviceOk: Uint8Array = this.allServicesOk;
    const header = editResourceHeader(ref.header, (attrs) => {
      for (const r of this.resourceRules) {
        if (r.filter.services !== null && !r.filter.services.has(serviceOf(attrs))) continue;
        if (r.applyAttrs(attrs, ctx, null)) r.metrics.changed();
      }
      if (this.hasServiceFilters) {
        const svc = serviceOf(attrs);
        serviceOk = new Uint8Array(this.rules.length);
        for (const r of this.rules) serviceOk[r.index] = r.filter.services === null || r.filter.services.has(svc) ? 1 : 0;
      }
    });
    const next = header === ref.header ? ref : new ResourceRef(header);
    if (next !== ref) this.mResources.inc();
    st = { ref: next, serviceOk };
    this.resCache.set(ref, st);
    if (next !== ref) this.resCache.set(next, st);
    return st;
  }

  // -------------------------------------------------------------- filters

  private computeActive(span: Span, res: ResState): Uint8Array {
    const active = this.active;
    const name = this.hasNameFilters ? this.readName(span) : '';
    for (const r of this.rules) {
      const f = r.filter;
      let ok = res.serviceOk[r.index] === 1;
      if (ok && f.kinds !== null) ok = f.kinds.has(span.kind);
      if (ok && f.namePattern !== null) ok = f.namePattern.test(name);
      active[r.index] = ok ? 1 : 0;
    }
    return active;
  }

  private readName(span: Span): string {
    const r = this.reader;
    r.buf = span.buf;
    r.pos = span.off;
    r.end = span.off + span.len;
    let name = '';
    while (!r.done()) {
      const t = r.uint32();
      if (t === TAG_NAME) name = r.string();
      else r.skip(t & 7);
    }
    return name;
  }

  // -------------------------------------------------------------- pre-check

  private mayChange(span: Span, active: Uint8Array): boolean {
    const buf = span.buf;
    const end = span.off + span.len;
    let p = span.off;
    let nAttrs = 0;
    let nameS = -1;
    let nameE = -1;
    // The span's top-level fields, walked by hand (the receiver already validated them).
    while (p < end) {
      let tag = buf[p++];
      if (tag >= 0x80) tag = (tag & 0x7f) | (buf[p++] << 7); // field numbers up to 2047
      const wt = tag & 7;
      if (wt === 2) {
        let b = buf[p++];
        let len = b & 0x7f;
        if (b >= 0x80) {
          b = buf[p++];
          len |= (b & 0x7f) << 7;
          if (b >= 0x80) {
            b = buf[p++];
            len |= (b & 0x7f) << 14;
            if (b >= 0x80) {
              b = buf[p++];
              len |= (b & 0x7f) << 21;
              if (b >= 0x80) return true; // > 256 MiB field: let the slow path decide
            }
          }
        }
        const e = p + len;
        if (e > end) return true;
        if (tag === TAG_ATTR) {
          nAttrs++;
          if (this.attrMayChange(buf, p, e, true, active)) return true;
        } else if (tag === TAG_NAME) {
          nameS = p;
          nameE = e;
        } else if (tag === TAG_EVENT && this.hasEventRules) {
          if (this.eventMayChange(buf, p, e, active)) return true;
        }
        p = e;
      } else if (wt === 0) {
        while (buf[p++] >= 0x80);
      } else if (wt === 1) p += 8;
      else if (wt === 5) p += 4;
      else return true; // unexpected: the slow path will report it
    }
    const countRules = this.countRules;
    for (let i = 0; i < countRules.length; i++) {
      const rule = countRules[i];
      if (active[rule.index] === 1 && rule.countMayAffect(nAttrs)) return true;
    }
    if (nameS >= 0) {
      const nameRules = this.nameRules;
      for (let i = 0; i < nameRules.length; i++) {
        const rule = nameRules[i];
        if (active[rule.index] === 1 && rule.nameMayAffect(buf, nameS, nameE)) return true;
      }
    }
    return false;
  }

  private eventMayChange(buf: Uint8Array, start: number, end: number, active: Uint8Array): boolean {
    return this.messageMayChange(buf, start, end, TAG_EVENT_ATTR, active, false, false, this.eventCountRules);
  }

  /** Pre-check of one KeyValue payload buf[s, e). */
  private attrMayChange(buf: Uint8Array, s: number, e: number, isSpan: boolean, active: Uint8Array): boolean {
    let p = s;
    let ks = -1;
    let ke = -1;
    let vs = -1;
    let ve = -1;
    while (p < e) {
      const tag = buf[p++];
      if (tag !== 0x0a && tag !== 0x12) return true; // unusual encoding: let the slow path handle it
      let len = 0;
      let shift = 0;
      let b: number;
      do {
        b = buf[p++];
        len |= (b & 0x7f) << shift;
        shift += 7;
      } while (b >= 0x80 && shift < 35);
      if (tag === 0x0a) {
        ks = p;
        ke = p + len;
      } else {
        vs = p;
        ve = p + len;
      }
      p += len;
    }
    if (p !== e || ks < 0) return true;
    const info = this.lookupKey(buf, ks, ke);
    const chk = isSpan ? info.span : info.event;
    if (chk === null) return false;
    const always = chk.always;
    for (let i = 0; i < always.length; i++) if (active[always[i]] === 1) return true;
    const vr = chk.valueRules;
    if (vr.length === 0) return false;
    // AnyValue: one field; find its type and payload.
    let vt = 0;
    let ps = vs;
    let pe = ve;
    if (vs >= 0 && ve > vs) {
      const vtag = buf[vs];
      vt = vtag >> 3;
      let q = vs + 1;
      if ((vtag & 7) === 2) {
        let len = 0;
        let shift = 0;
        let b: number;
        do {
          b = buf[q++];
          len |= (b & 0x7f) << shift;
          shift += 7;
        } while (b >= 0x80 && shift < 35);
        ps = q;
        pe = q + len;
        if (pe > ve) return true;
      } else {
        ps = q;
        pe = ve;
      }
    }
    const codes = chk.valueCodes;
    for (let i = 0; i < vr.length; i++) {
      const rule = vr[i];
      if (active[rule.index] === 1 && rule.valueMayAffect(codes[i], buf, vt, ps, pe)) return true;
    }
    return false;
  }

  private lookupKey(buf: Uint8Array, s: number, e: number): KeyInfo {
    // Cheap hash: length and the first and last four bytes (keys share prefixes
    // like "http." and differ at the end); the full compare settles it.
    const n = e - s;
    let h = Math.imul(n, 0x9e3779b1);
    if (n >= 4) {
      h = Math.imul(h ^ (buf[s] | (buf[s + 1] << 8) | (buf[s + 2] << 16) | (buf[s + 3] << 24)), 0x85ebca6b);
      h = Math.imul(h ^ (buf[e - 4] | (buf[e - 3] << 8) | (buf[e - 2] << 16) | (buf[e - 1] << 24)), 0xc2b2ae35);
    } else for (let i = s; i < e; i++) h = Math.imul(h ^ buf[i], 0x01000193);
    h ^= h >>> 15;
    const b = (h >>> 0) & (KEY_BUCKETS - 1);
    let ki = this.keyBuckets[b];
    while (ki !== null) {
      const kb = ki.bytes;
      if (kb.length === n) {
        let i = 0;
        while (i < n && kb[i] === buf[s + i]) i++;
        if (i === n) return ki;
      }
      ki = ki.next;
    }
    const key = utf8Decode(buf, s, e);
    const info = new KeyInfo(buf.slice(s, e), key, this.buildCheck(key, true), this.hasEventRules ? this.buildCheck(key, false) : null);
    if (this.keyCount < this.keyCacheSize) {
      info.next = this.keyBuckets[b];
      this.keyBuckets[b] = info;
      this.keyCount++;
    }
    return info;
  }

  private buildCheck(key: string, isSpan: boolean): KeyCheck | null {
    const always: number[] = [];
    const vr: CompiledRule[] = [];
    const codes: number[] = [];
    for (const r of this.spanRules) {
      if (isSpan ? !r.span : !r.event) continue;
      const c = r.classifyKey(key);
      if (c === NEVER) continue;
      if (c === ALWAYS) always.push(r.index);
      else {
        vr.push(r);
        codes.push(c);
      }
    }
    return always.length === 0 && vr.length === 0 ? null : new KeyCheck(always, vr, codes);
  }

  // -------------------------------------------------------------- slow path

  private rewrite(span: Span, active: Uint8Array): void {
    const edit = new SpanEdit(span, this.keyOf);
    const ctx = this.ctx;
    ctx.kind = span.kind;
    ctx.spanAttrs = edit.attrs;
    for (const rule of this.spanRules) {
      if (active[rule.index] !== 1) continue;
      let changed = false;
      if (rule.span && rule.applyAttrs(edit.attrs, ctx, edit)) changed = true;
      if (rule.event && edit.hasEvents) {
        for (const ev of edit.events()) if (rule.applyAttrs(ev.attrs, ctx, ev)) changed = true;
      }
      if (rule.name) {
        const before = edit.name;
        const after = rule.applyName(before, ctx);
        if (after !== before) {
          edit.name = after;
          changed = true;
        }
      }
      if (changed) rule.metrics.changed();
    }
    ctx.spanAttrs = null;
    if (edit.changed) {
      edit.applyTo(span);
      this.reencoded++;
    }
  }

  get isShutdown(): boolean {
    return this.stopped;
  }
}

function serviceOf(attrs: AttrList): string {
  const kv: KeyValue | undefined = attrs.get('service.name');
  const v = kv?.stringValue();
  return v === undefined ? 'unknown_service' : v;
}

type CounterChild = ReturnType<Counter['labels']>;

/** Counts in plain numbers on the hot path; adds them to the metrics registry once per batch. */
class BatchedRuleMetrics implements RuleMetrics {
  private nChanged = 0;
  private readonly red = new Map<string, { child: CounterChild; n: number }>();
  private readonly col = new Map<string, { child: CounterChild; n: number }>();
  private dirty = false;
  constructor(
    private readonly changedChild: CounterChild,
    private readonly makeRedacted: (d: string) => CounterChild,
    private readonly makeCollapsed: (k: string) => CounterChild,
  ) {}
  redactedChild(d: string): { child: CounterChild; n: number } {
    let e = this.red.get(d);
    if (e === undefined) {
      e = { child: this.makeRedacted(d), n: 0 };
      this.red.set(d, e);
    }
    return e;
  }
  collapsedChild(k: string): { child: CounterChild; n: number } {
    let e = this.col.get(k);
    if (e === undefined) {
      e = { child: this.makeCollapsed(k), n: 0 };
      this.col.set(k, e);
    }
    return e;
  }
  changed(): void {
    this.nChanged++;
    this.dirty = true;
  }
  redacted(d: string): void {
    this.redactedChild(d).n++;
    this.dirty = true;
  }
  collapsed(k: string): void {
    this.collapsedChild(k).n++;
    this.dirty = true;
  }
  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    if (this.nChanged > 0) this.changedChild.inc(this.nChanged);
    this.nChanged = 0;
    for (const e of this.red.values()) if (e.n > 0) {
      e.child.inc(e.n);
      e.n = 0;
    }
    for (const e of this.col.values()) if (e.n > 0) {
      e.child.inc(e.n);
      e.n = 0;
    }
  }
}
