/**
 * Rules compiled from config into objects with two faces:
 *
 * - a conservative pre-check used on the hot path over raw bytes
 *   (`classifyKey` once per distinct key, then `valueMayAffect` /
 *   `nameMayAffect` / `countMayAffect` per span): when no active rule's
 *   pre-check fires, the span is passed on untouched and not decoded;
 * - the edit itself (`applyAttrs` / `applyName`) on a decoded SpanEdit.
 *
 * Pre-checks may fire when the edit then changes nothing (the span is then
 * still not re-encoded), but must never stay silent when the edit would
 * change something.
 */
import { createHash, createHmac } from 'node:crypto';
import {
  AttrList,
  KeyValue,
  RAW,
  VT_ARRAY,
  VT_INT,
  VT_KVLIST,
  VT_STRING,
  valueFromPlain,
  valueToString,
  valuesEqual,
  type AnyValue,
} from './edit.js';
import { Detectors, sanitizeUrl, urlMayNeedSanitizing, type DetectorName, type Replacer } from './detectors.js';
import { Templater } from './template.js';
import { migrate, semconvEntries, type SemconvEntry, type SemconvMode } from './semconv.js';
import { parseDuration } from '../../config/duration.js';
import type { RuleConfig, RuleScope } from './config.js';
import { utf8Decode } from '../../collector/pdata/wire.js';

/** classifyKey results: the rule never changes this key / always does / depends on the value (codes >= 2). */
export const NEVER = 0;
export const ALWAYS = 1;
export const VALUE = 2;

export interface RuleMetrics {
  changed(): void;
  redacted(detector: string): void;
  collapsed(key: string): void;
}

export const NOOP_METRICS: RuleMetrics = { changed() {}, redacted() {}, collapsed() {} };

export interface ApplyContext {
  /** Span kind (0 for resources). */
  kind: number;
  /** The span's attributes (for original_to of span-name templating), or null for resources. */
  spanAttrs: AttrList | null;
}

/** Anything with a dropped_attributes_count (span, event). */
export interface DroppedOwner {
  droppedAttributes: number;
}

export const KIND_NUMBERS: Record<string, number> = { unspecified: 0, internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

/** Compiles a regex from config; a leading (?i) becomes the i flag. Throws on a bad pattern. */
export function compileRegex(src: string, flags = ''): RegExp {
  let s = src;
  let f = flags;
  if (s.startsWith('(?i)')) {
    s = s.slice(4);
    if (!f.includes('i')) f += 'i';
  }
  return new RegExp(s, f);
}

/** A bounded string -> boolean memo for key-pattern tests. */
class KeyMemo {
  private readonly m = new Map<string, boolean>();
  constructor(private readonly fn: (k: string) => boolean) {}
  test(k: string): boolean {
    let v = this.m.get(k);
    if (v === undefined) {
      v = this.fn(k);
      if (this.m.size < 10_000) this.m.set(k, v);
    }
    return v;
  }
}

export interface RuleFilter {
  services: ReadonlySet<string> | null;
  kinds: ReadonlySet<number> | null;
  namePattern: RegExp | null;
}

export abstract class CompiledRule {
  readonly index: number;
  readonly label: string;
  readonly resource: boolean;
  readonly span: boolean;
  readonly event: boolean;
  readonly name: boolean;
  readonly filter: RuleFilter;
  metrics: RuleMetrics = NOOP_METRICS;

  constructor(index: number, label: string, scopes: readonly RuleScope[], filter: RuleFilter) {
    this.index = index;
    this.label = label;
    this.resource = scopes.includes('resource');
    this.span = scopes.includes('span');
    this.event = scopes.includes('event');
    this.name = scopes.includes('span_name');
    this.filter = filter;
  }

  get hasSpanFilter(): boolean {
    return this.filter.services !== null || this.filter.kinds !== null || this.filter.namePattern !== null;
  }

  /** NEVER, ALWAYS, or a code >= VALUE handed back to valueMayAffect. */
  classifyKey(_key: string): number {
    return NEVER;
  }
  /** vt: AnyValue oneof field; [ps, pe): string bytes, or the nested payload, or the varint. */
  valueMayAffect(_code: number, _buf: Uint8Array, _vt: number, _ps: number, _pe: number): boolean {
    return true;
  }
  /** Span- or event-level check by attribute count (and for rules that add attributes). */
  countMayAffect(_n: number): boolean {
    return false;
  }
  nameMayAffect(_buf: Uint8Array, _s: number, _e: number): boolean {
    return false;
  }
  /** Called once per consumed batch. */
  beginBatch(_now: number): void {}

  applyAttrs(_list: AttrList, _ctx: ApplyContext, _owner: DroppedOwner | null): boolean {
    return false;
  }
  applyName(name: string, _ctx: ApplyContext): string {
    return name;
  }
  /** True for rules that also apply to a log body (redact, truncate). */
  get appliesToBody(): boolean {
    return false;
  }
  /** True for a cardinality limit (a metric data point it collapses is marked as overflow). */
  get limitsCardinality(): boolean {
    return false;
  }
  /** Label values for metrics this rule may emit (pre-bound at creation). */
  redactDetectors(): string[] {
    return [];
  }
  collapseKeys(): string[] {
    return [];
  }
}

// ------------------------------------------------------------------ semconv

class SemconvRule extends CompiledRule {
  private readonly table: Map<string, SemconvEntry>;
  private readonly mode: SemconvMode;
  private readonly methods: ReadonlySet<string>;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['semconv']>) {
    super(i, l, s, f);
    this.table = semconvEntries(o.target_version, o.domains);
    this.mode = o.mode;
    this.methods = new Set(o.known_methods);
  }
  override classifyKey(key: string): number {
    return this.table.has(key) ? ALWAYS : NEVER;
  }
  override applyAttrs(list: AttrList, ctx: ApplyContext): boolean {
    return migrate(list, this.table, { kind: ctx.kind, mode: this.mode, knownMethods: this.methods });
  }
}

// ------------------------------------------------------------------ rename / key style

class RenameRule extends CompiledRule {
  private readonly map: Map<string, string>;
  private readonly conflict: string;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['rename']>) {
    super(i, l, s, f);
    this.map = new Map(Object.entries(o.keys).filter(([a, b]) => a !== b));
    this.conflict = o.on_conflict;
  }
  override classifyKey(key: string): number {
    return this.map.has(key) ? ALWAYS : NEVER;
  }
  override applyAttrs(list: AttrList): boolean {
    let changed = false;
    for (const [from, to] of this.map) {
      const kv = list.get(from);
      if (kv === undefined) continue;
      const existing = list.get(to);
      if (existing !== undefined) {
        if (this.conflict === 'keep_both') continue;
        if (this.conflict === 'keep_target') {
          list.remove(from);
          changed = true;
          continue;
        }
        list.remove(to);
      }
      kv.setKey(to);
      changed = true;
    }
    return changed;
  }
}

/** Dotted snake case: "userId" -> "user_id", "HTTP-Status" -> "http_status", "App.UserID" -> "app.user_id". */
export function toSnakeCase(key: string): string {
  let s = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2');
  s = s.toLowerCase().replace(/[^a-z0-9_.]+/g, '_').replace(/_+/g, '_');
  s = s.replace(/(^|\.)_+/g, '$1').replace(/_+($|\.)/g, '$1');
  return s === '' ? key : s;
}

class KeyStyleRule extends CompiledRule {
  private readonly except: ReadonlySet<string>;
  private readonly style: (k: string) => string;
  private readonly memo = new Map<string, string>();
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['key_style']>) {
    super(i, l, s, f);
    this.except = new Set(o.except);
    this.style = o.style === 'lowercase' ? (k) => k.toLowerCase() : toSnakeCase;
  }
  private styled(k: string): string {
    let v = this.memo.get(k);
    if (v === undefined) {
      v = this.except.has(k) ? k : this.style(k);
      if (this.memo.size < 10_000) this.memo.set(k, v);
    }
    return v;
  }
  override classifyKey(key: string): number {
    return this.styled(key) !== key ? ALWAYS : NEVER;
  }
  override applyAttrs(list: AttrList): boolean {
    let changed = false;
    for (const kv of list.items) {
      const to = this.styled(kv.key);
      if (to === kv.key || list.has(to)) continue;
      kv.setKey(to);
      changed = true;
    }
    return changed;
  }
}

// ------------------------------------------------------------------ set / delete / allow

class SetRule extends CompiledRule {
  private readonly key: string;
  private readonly value: AnyValue | undefined;
  private readonly copyFrom: string | undefined;
  private readonly action: string;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['set']>) {
    super(i, l, s, f);
    this.key = o.key;
    this.value = o.value === undefined ? undefined : valueFromPlain(o.value);
    this.copyFrom = o.copy_from;
    this.action = o.action;
  }
  override classifyKey(key: string): number {
    return key === this.key || key === this.copyFrom ? ALWAYS : NEVER;
  }
  override countMayAffect(): boolean {
    // insert / upsert / default of a constant can add the key to any span.
    return this.copyFrom === undefined && this.action !== 'update';
  }
  override applyAttrs(list: AttrList): boolean {
    let value = this.value;
    if (this.copyFrom !== undefined) {
      const src = list.get(this.copyFrom);
      if (src === undefined) return false;
      value = src.value;
    }
    if (value === undefined) return false;
    const kv = list.get(this.key);
    switch (this.action) {
      case 'insert':
        if (kv !== undefined) return false;
        break;
      case 'update':
        if (kv === undefined) return false;
        break;
      case 'default':
        if (kv !== undefined) {
          const v = kv.value;
          if (!(v.t === 'empty' || (v.t === 'string' && v.v === ''))) return false;
        }
        break;
    }
    if (kv !== undefined && valuesEqual(kv.value, value)) return false;
    list.set(this.key, value);
    return true;
  }
}

class DeleteRule extends CompiledRule {
  private readonly match: KeyMemo;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['delete']>) {
    super(i, l, s, f);
    const keys = new Set(o.keys);
    const re = o.key_pattern !== undefined ? compileRegex(o.key_pattern) : null;
    this.match = new KeyMemo((k) => keys.has(k) || (re !== null && re.test(k)));
  }
  override classifyKey(key: string): number {
    return this.match.test(key) ? ALWAYS : NEVER;
  }
  override applyAttrs(list: AttrList): boolean {
    return list.filter((kv) => !this.match.test(kv.key)) > 0;
  }
}

class AllowRule extends CompiledRule {
  private readonly allowed: KeyMemo;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['allow']>) {
    super(i, l, s, f);
    const keys = new Set(o.keys);
    const res = o.key_patterns.map((p) => compileRegex(p));
    this.allowed = new KeyMemo((k) => keys.has(k) || res.some((r) => r.test(k)));
  }
  override classifyKey(key: string): number {
    return this.allowed.test(key) ? NEVER : ALWAYS;
  }
  override applyAttrs(list: AttrList): boolean {
    return list.filter((kv) => this.allowed.test(kv.key)) > 0;
  }
}

// ------------------------------------------------------------------ redact

const R_WHOLE = 1 << 8;
const R_URL = 1 << 9;
const R_QUERY_ONLY = 1 << 10;
const R_SCAN = 1 << 11;

/** Reads a non-negative varint as a float (only compared against ranges). */
function varintApprox(buf: Uint8Array, p: number, end: number): number {
  let v = 0;
  let mul = 1;
  while (p < end) {
    const b = buf[p++];
    v += (b & 0x7f) * mul;
    mul *= 128;
    if (b < 0x80) break;
  }
  return v;
}

class RedactRule extends CompiledRule {
  override get appliesToBody(): boolean {
    return true;
  }
  private readonly whole: KeyMemo;
  private readonly excluded: ReadonlySet<string>;
  private readonly urlKeys: ReadonlySet<string>;
  private readonly urlMode: string;
  private readonly params: ReadonlySet<string>;
  private readonly detectors: Detectors;
  private readonly patterns: RegExp[];
  private readonly replacer: Replacer;
  private readonly maskOrHash: (s: string) => string;

  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['redact']>, secret: Buffer | null) {
    super(i, l, s, f);
    const keys = new Set(o.keys);
    const re = o.key_pattern !== undefined ? compileRegex(o.key_pattern) : null;
    this.whole = new KeyMemo((k) => keys.has(k) || (re !== null && re.test(k)));
    this.excluded = new Set(o.exclude_keys);
    this.urlMode = o.url_query;
    this.urlKeys = new Set(o.url_query === 'off' ? [] : o.url_keys);
    this.params = new Set(o.sensitive_params.map((p) => p.toLowerCase()));
    this.detectors = new Detectors(o.detectors as DetectorName[]);
    this.patterns = o.value_patterns.map((p) => compileRegex(p, 'g'));
    const len = o.hash_length;
    const mask = o.mask_text;
    this.maskOrHash =
      o.action === 'hash'
        ? secret !== null
          ? (v) => createHmac('sha256', secret).update(v).digest('hex').slice(0, len)
          : (v) => createHash('sha256').update(v).digest('hex').slice(0, len)
        : () => mask;
    this.replacer = (secretText, detector) => {
      this.metrics.redacted(detector);
      return this.maskOrHash(secretText);
    };
  }

  override redactDetectors(): string[] {
    return ['key', 'value_pattern', 'url_query', 'url_userinfo', ...this.detectors.names];
  }

  private get scans(): boolean {
    return !this.detectors.empty || this.patterns.length > 0;
  }

  override classifyKey(key: string): number {
    if (this.whole.test(key)) return ALWAYS;
    let code = 0;
    if (this.urlKeys.has(key)) code |= R_URL | (key === 'url.query' ? R_QUERY_ONLY : 0);
    if (this.scans && !this.excluded.has(key)) code |= R_SCAN;
    return code === 0 ? NEVER : code | VALUE;
  }

  override valueMayAffect(code: number, buf: Uint8Array, vt: number, ps: number, pe: number): boolean {
    if (vt === VT_STRING) {
      if ((code & R_URL) !== 0 && urlMayNeedSanitizing(buf, ps, pe, (code & R_QUERY_ONLY) !== 0)) return true;
      if ((code & R_SCAN) !== 0) {
        if (this.detectors.mayMatchBytes(buf, ps, pe)) return true;
        if (this.patterns.length > 0) {
          const s = utf8Decode(buf, ps, pe);
          for (const p of this.patterns) {
            p.lastIndex = 0;
            if (p.test(s)) return true;
          }
        }
      }
      return false;
    }
    if ((code & R_SCAN) === 0) return false;
    if (vt === VT_ARRAY || vt === VT_KVLIST) return this.patterns.length > 0 || this.detectors.mayMatchBytes(buf, ps, pe);
    if (vt === VT_INT) return this.detectors.intMayMatch(BigInt(Math.floor(varintApprox(buf, ps, pe))));
    return false;
  }

  override nameMayAffect(buf: Uint8Array, s: number, e: number): boolean {
    if (!this.scans) return false;
    return this.patterns.length > 0 || this.detectors.mayMatchBytes(buf, s, e);
  }

  /** Runs detectors and value patterns over a string. */
  private scanString(s: string): string {
    let out = this.detectors.empty ? s : this.detectors.redact(s, this.replacer);
    for (const p of this.patterns) {
      p.lastIndex = 0;
      out = out.replace(p, (m) => (m === '' ? m : this.replacer(m, 'value_pattern')));
    }
    return out;
  }

  /** Returns the redacted value, or undefined when nothing changed. */
  private scanValue(v: AnyValue): AnyValue | undefined {
    switch (v.t) {
      case 'string': {
        const out = this.scanString(v.v);
        return out === v.v ? undefined : { t: 'string', v: out };
      }
      case 'int': {
        if (!this.detectors.intMayMatch(v.v)) return undefined;
        const s = v.v.toString();
        const out = this.detectors.redact(s, this.replacer);
        return out === s ? undefined : { t: 'string', v: out };
      }
      case 'array': {
        let changed = false;
        const arr = v.v.map((el) => {
          const r = this.scanValue(el);
          if (r === undefined) return el;
          changed = true;
          return r;
        });
        return changed ? { t: 'array', v: arr } : undefined;
      }
      case 'kvlist': {
        let changed = false;
        for (const kv of v.v) {
          if (this.excluded.has(kv.key)) continue;
          const r = this.scanValue(kv.value);
          if (r !== undefined) {
            kv.value = r;
            changed = true;
          }
        }
        return changed ? { t: 'kvlist', v: v.v } : undefined;
      }
      default:
        return undefined;
    }
  }

  /** Whole-value redaction keeping the shape of arrays and kvlists. */
  private wholeValue(v: AnyValue): AnyValue | undefined {
    switch (v.t) {
      case 'empty':
        return undefined;
      case 'string': {
        if (v.v === '') return undefined;
        const out = this.maskOrHash(v.v);
        if (out === v.v) return undefined;
        this.metrics.redacted('key');
        return { t: 'string', v: out };
      }
      case 'array': {
        let changed = false;
        const arr = v.v.map((el) => {
          const r = this.wholeValue(el);
          if (r === undefined) return el;
          changed = true;
          return r;
        });
        return changed ? { t: 'array', v: arr } : undefined;
      }
      case 'kvlist': {
        let changed = false;
        for (const kv of v.v) {
          const r = this.wholeValue(kv.value);
          if (r !== undefined) {
            kv.value = r;
            changed = true;
          }
        }
        return changed ? { t: 'kvlist', v: v.v } : undefined;
      }
      default:
        this.metrics.redacted('key');
        return { t: 'string', v: this.maskOrHash(valueToString(v)) };
    }
  }

  override applyAttrs(list: AttrList): boolean {
    let changed = false;
    for (const kv of list.items) {
      const key = kv.key;
      if (this.whole.test(key)) {
        const r = this.wholeValue(kv.value);
        if (r !== undefined) {
          kv.value = r;
          changed = true;
        }
        continue;
      }
      if (this.urlKeys.has(key) && this.sanitize(kv)) changed = true;
      if (this.scans && !this.excluded.has(key)) {
        const vt = kv.rawValue();
        if (vt >= 0 && !this.valueMayAffect(R_SCAN | VALUE, RAW.buf, vt, RAW.start, RAW.end)) continue;
        const r = this.scanValue(kv.value);
        if (r !== undefined) {
          kv.value = r;
          changed = true;
        }
      }
    }
    return changed;
  }

  override applyName(name: string): string {
    return this.scans ? this.scanString(name) : name;
  }

  /** URL sanitization of one attribute; true when it changed. */
  private sanitize(kv: KeyValue): boolean {
    const queryOnly = kv.key === 'url.query';
    const vt = kv.rawValue();
    if (vt === VT_STRING && !urlMayNeedSanitizing(RAW.buf, RAW.start, RAW.end, queryOnly)) return false;
    const v = kv.value;
    if (v.t !== 'string') return false;
    const out = sanitizeUrl(v.v, queryOnly, this.urlMode === 'all', this.params, (d) => this.metrics.redacted(d));
    if (out === v.v) return false;
    kv.value = { t: 'string', v: out };
    return true;
  }
}

// ------------------------------------------------------------------ template

class TemplateRule extends CompiledRule {
  private readonly keys: ReadonlySet<string>;
  private readonly t: Templater;
  private readonly originalTo: string | undefined;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['template']>) {
    super(i, l, s, f);
    this.keys = new Set(o.keys);
    this.t = new Templater({
      numeric: o.numeric,
      uuid: o.uuid,
      hexMinLength: o.hex_min_length,
      placeholder: o.placeholder,
      patterns: o.patterns.map((p) => ({ regex: compileRegex(p.pattern, 'g'), placeholder: p.placeholder })),
    });
    this.originalTo = o.original_to;
  }
  override classifyKey(key: string): number {
    return this.keys.has(key) ? VALUE : NEVER;
  }
  override valueMayAffect(_c: number, buf: Uint8Array, vt: number, ps: number, pe: number): boolean {
    return vt === VT_STRING && this.t.mayChangeBytes(buf, ps, pe, true);
  }
  override nameMayAffect(buf: Uint8Array, s: number, e: number): boolean {
    return s >= 0 && this.t.mayChangeBytes(buf, s, e, false);
  }
  override applyAttrs(list: AttrList): boolean {
    let changed = false;
    for (const kv of list.items) {
      if (!this.keys.has(kv.key)) continue;
      const v = kv.value;
      if (v.t !== 'string') continue;
      const out = this.t.apply(v.v, true);
      if (out === v.v) continue;
      kv.value = { t: 'string', v: out };
      changed = true;
      if (this.originalTo !== undefined && !list.has(this.originalTo)) list.push(KeyValue.of(this.originalTo, v));
    }
    return changed;
  }
  override applyName(name: string, ctx: ApplyContext): string {
    const out = this.t.apply(name, false);
    if (out !== name && this.originalTo !== undefined && ctx.spanAttrs !== null && !ctx.spanAttrs.has(this.originalTo)) {
      ctx.spanAttrs.push(KeyValue.of(this.originalTo, { t: 'string', v: name }));
    }
    return out;
  }
}

// ------------------------------------------------------------------ truncate

function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  let n = max;
  const c = s.charCodeAt(n - 1);
  if (c >= 0xd800 && c <= 0xdbff) n--;
  return s.slice(0, n);
}

class TruncateRule extends CompiledRule {
  override get appliesToBody(): boolean {
    return true;
  }
  private readonly max: number;
  private readonly keys: ReadonlySet<string> | null;
  private readonly maxAttrs: number;
  private readonly priority: string[];
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['truncate']>) {
    super(i, l, s, f);
    this.max = o.max_length;
    this.keys = o.keys.length > 0 ? new Set(o.keys) : null;
    this.maxAttrs = o.max_attributes;
    this.priority = o.priority_keys;
  }
  override classifyKey(key: string): number {
    if (this.max === 0) return NEVER;
    return this.keys === null || this.keys.has(key) ? VALUE : NEVER;
  }
  override valueMayAffect(_c: number, _buf: Uint8Array, vt: number, ps: number, pe: number): boolean {
    // UTF-8 byte length >= character length: a value within the limit in bytes is within it in characters.
    return (vt === VT_STRING || vt === VT_ARRAY || vt === VT_KVLIST) && pe - ps > this.max;
  }
  override countMayAffect(n: number): boolean {
    return this.maxAttrs > 0 && n > this.maxAttrs;
  }
  override nameMayAffect(_buf: Uint8Array, s: number, e: number): boolean {
    return this.max > 0 && e - s > this.max;
  }
  private truncValue(v: AnyValue): AnyValue | undefined {
    switch (v.t) {
      case 'string': {
        const out = cut(v.v, this.max);
        return out === v.v ? undefined : { t: 'string', v: out };
      }
      case 'array': {
        let changed = false;
        const arr = v.v.map((el) => {
          const r = this.truncValue(el);
          if (r === undefined) return el;
          changed = true;
          return r;
        });
        return changed ? { t: 'array', v: arr } : undefined;
      }
      case 'kvlist': {
        let changed = false;
        for (const kv of v.v) {
          const r = this.truncValue(kv.value);
          if (r !== undefined) {
            kv.value = r;
            changed = true;
          }
        }
        return changed ? { t: 'kvlist', v: v.v } : undefined;
      }
      default:
        return undefined;
    }
  }
  override applyAttrs(list: AttrList, _ctx: ApplyContext, owner: DroppedOwner | null): boolean {
    let changed = false;
    if (this.max > 0) {
      for (const kv of list.items) {
        if (this.keys !== null && !this.keys.has(kv.key)) continue;
        const vt = kv.rawValue();
        if (vt >= 0 && !this.valueMayAffect(VALUE, RAW.buf, vt, RAW.start, RAW.end)) continue;
        const r = this.truncValue(kv.value);
        if (r !== undefined) {
          kv.value = r;
          changed = true;
        }
      }
    }
    if (this.maxAttrs > 0 && list.length > this.maxAttrs) {
      const keep = new Set<KeyValue>();
      for (const k of this.priority) {
        if (keep.size >= this.maxAttrs) break;
        const kv = list.get(k);
        if (kv !== undefined) keep.add(kv);
      }
      for (const kv of list.items) {
        if (keep.size >= this.maxAttrs) break;
        keep.add(kv);
      }
      const removed = list.filter((kv) => keep.has(kv));
      if (owner !== null) owner.droppedAttributes += removed;
      changed = true;
    }
    return changed;
  }
  override applyName(name: string): string {
    return this.max > 0 ? cut(name, this.max) : name;
  }
}

// ------------------------------------------------------------------ cardinality

interface KeyWindow {
  key: string;
  seen: Set<string>;
}

/** Values are remembered by text up to this length, longer ones by a hash (bounds memory). */
const MAX_REMEMBERED = 128;

function rememberKey(s: string): string {
  if (s.length <= MAX_REMEMBERED) return s;
  let h1 = 0x811c9dc5;
  let h2 = 0x12345678;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return `\u0000${s.length}:${(h1 >>> 0).toString(36)}${(h2 >>> 0).toString(36)}`;
}

class CardinalityRule extends CompiledRule {
  override get limitsCardinality(): boolean {
    return true;
  }
  private readonly windows: KeyWindow[];
  private readonly byKey: Map<string, number>;
  private readonly max: number;
  private readonly windowMs: number;
  private readonly replacement: string;
  private readonly replacementValue: AnyValue;
  private windowStart = -1;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['cardinality_limit']>) {
    super(i, l, s, f);
    this.windows = o.keys.map((k) => ({ key: k, seen: new Set<string>() }));
    this.byKey = new Map(o.keys.map((k, idx) => [k, idx]));
    this.max = o.max_values;
    this.windowMs = Math.max(1, parseDuration(o.window));
    this.replacement = o.replacement;
    this.replacementValue = { t: 'string', v: o.replacement };
  }
  override collapseKeys(): string[] {
    return this.windows.map((w) => w.key);
  }
  override beginBatch(now: number): void {
    if (this.windowStart < 0 || now - this.windowStart >= this.windowMs || now < this.windowStart) {
      this.windowStart = now;
      for (const w of this.windows) w.seen.clear();
    }
  }
  override classifyKey(key: string): number {
    const idx = this.byKey.get(key);
    return idx === undefined ? NEVER : VALUE + idx;
  }
  override valueMayAffect(code: number, buf: Uint8Array, vt: number, ps: number, pe: number): boolean {
    if (vt !== VT_STRING) return true;
    const w = this.windows[code - VALUE];
    return !w.seen.has(rememberKey(utf8Decode(buf, ps, pe)));
  }
  override applyAttrs(list: AttrList): boolean {
    let changed = false;
    for (const w of this.windows) {
      const kv = list.get(w.key);
      if (kv === undefined) continue;
      const text = valueToString(kv.value);
      if (text === this.replacement) continue;
      const rk = rememberKey(text);
      if (w.seen.has(rk)) continue;
      if (w.seen.size < this.max) {
        w.seen.add(rk);
        continue;
      }
      kv.value = this.replacementValue;
      this.metrics.collapsed(w.key);
      changed = true;
    }
    return changed;
  }
}

// ------------------------------------------------------------------ enrichment

export type EnvSource = Readonly<Record<string, string | undefined>>;

export const K8S_ENV: Record<string, string> = {
  K8S_POD_NAME: 'k8s.pod.name',
  K8S_POD_UID: 'k8s.pod.uid',
  K8S_POD_IP: 'k8s.pod.ip',
  K8S_NAMESPACE_NAME: 'k8s.namespace.name',
  K8S_NODE_NAME: 'k8s.node.name',
  K8S_CONTAINER_NAME: 'k8s.container.name',
  K8S_DEPLOYMENT_NAME: 'k8s.deployment.name',
  K8S_CLUSTER_NAME: 'k8s.cluster.name',
};

/** Parses OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", values percent-decoded); bad entries are skipped. */
export function parseResourceAttributes(s: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq).trim();
    let v = part.slice(eq + 1).trim();
    try {
      v = decodeURIComponent(v);
    } catch {
      continue;
    }
    if (k !== '') out.push([k, v]);
  }
  return out;
}

/** The attributes enrichment would add, in order (later entries win). */
export function envAttributes(env: EnvSource, o: NonNullable<RuleConfig['enrich_from_env']>): Array<[string, string]> {
  const m = new Map<string, string>();
  if (o.kubernetes) for (const [envName, key] of Object.entries(K8S_ENV)) {
    const v = env[envName];
    if (v !== undefined && v !== '') m.set(key, v);
  }
  if (o.otel_resource_attributes && env.OTEL_RESOURCE_ATTRIBUTES) for (const [k, v] of parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES)) m.set(k, v);
  if (o.otel_service_name && env.OTEL_SERVICE_NAME) m.set('service.name', env.OTEL_SERVICE_NAME);
  return [...m];
}

class EnrichRule extends CompiledRule {
  private readonly attrs: Array<[string, AnyValue]>;
  private readonly override: boolean;
  constructor(i: number, l: string, s: RuleScope[], f: RuleFilter, o: NonNullable<RuleConfig['enrich_from_env']>, env: EnvSource) {
    super(i, l, s, f);
    this.attrs = envAttributes(env, o).map(([k, v]) => [k, { t: 'string', v }]);
    this.override = o.override;
  }
  override countMayAffect(): boolean {
    return this.attrs.length > 0;
  }
  override applyAttrs(list: AttrList): boolean {
    let changed = false;
    for (const [k, v] of this.attrs) {
      const kv = list.get(k);
      if (kv !== undefined) {
        const cur = kv.value;
        // An SDK's default service name counts as "not set".
        const unset = k === 'service.name' && cur.t === 'string' && cur.v.startsWith('unknown_service');
        if (!this.override && !unset) continue;
        if (valuesEqual(cur, v)) continue;
        kv.value = v;
      } else list.push(KeyValue.of(k, v));
      changed = true;
    }
    return changed;
  }
}

// ------------------------------------------------------------------ compile

export interface CompileDeps {
  env: EnvSource;
  readFile: (path: string) => Buffer;
}

/** The operation key of a rule (validate() guarantees exactly one). */
export function ruleOperation(r: RuleConfig): string | undefined {
  for (const op of ['semconv', 'rename', 'key_style', 'set', 'delete', 'allow', 'redact', 'template', 'truncate', 'cardinality_limit', 'enrich_from_env'] as const) {
    if (r[op] !== undefined) return op;
  }
  return undefined;
}

export function ruleScopes(r: RuleConfig): RuleScope[] {
  if (r.scope === undefined) return r.enrich_from_env !== undefined ? ['resource'] : ['span'];
  return Array.isArray(r.scope) ? r.scope : [r.scope];
}

export function compileRule(r: RuleConfig, index: number, label: string, deps: CompileDeps): CompiledRule {
  const scopes = ruleScopes(r);
  const w = r.where ?? { services: [], span_kinds: [] };
  const filter: RuleFilter = {
    services: w.services && w.services.length > 0 ? new Set(w.services) : null,
    kinds: w.span_kinds && w.span_kinds.length > 0 ? new Set(w.span_kinds.map((k) => KIND_NUMBERS[k])) : null,
    namePattern: w.span_name_pattern !== undefined ? compileRegex(w.span_name_pattern) : null,
  };
  if (r.semconv) return new SemconvRule(index, label, scopes, filter, r.semconv);
  if (r.rename) return new RenameRule(index, label, scopes, filter, r.rename);
  if (r.key_style) return new KeyStyleRule(index, label, scopes, filter, r.key_style);
  if (r.set) return new SetRule(index, label, scopes, filter, r.set);
  if (r.delete) return new DeleteRule(index, label, scopes, filter, r.delete);
  if (r.allow) return new AllowRule(index, label, scopes, filter, r.allow);
  if (r.redact) {
    let secret: Buffer | null = null;
    if (r.redact.action === 'hash' && r.redact.hash_key_file !== undefined) {
      const raw = deps.readFile(r.redact.hash_key_file);
      let end = raw.length;
      while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
      secret = raw.subarray(0, end);
    }
    return new RedactRule(index, label, scopes, filter, r.redact, secret);
  }
  if (r.template) return new TemplateRule(index, label, scopes, filter, r.template);
  if (r.truncate) return new TruncateRule(index, label, scopes, filter, r.truncate);
  if (r.cardinality_limit) return new CardinalityRule(index, label, scopes, filter, r.cardinality_limit);
  if (r.enrich_from_env) return new EnrichRule(index, label, scopes, filter, r.enrich_from_env, deps.env);
  throw new Error(`rule ${label} has no operation`);
}
