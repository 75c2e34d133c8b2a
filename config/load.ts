/**
 * Loads and validates the collector's YAML config file.
 *
 * The file is parsed into a YAML AST (so every node keeps its position), turned
 * into plain values with `${env:...}` substituted scalar by scalar, and each
 * part is validated against the schema that owns it: component configs against
 * their factory's TypeBox schema (Ajv fills defaults and coerces types), the
 * service section against `ServiceSchema`. Every problem is collected with the
 * file, line, column and key path of the YAML node it concerns, and all of them
 * are thrown together as one `ConfigError`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { parseDocument, LineCounter, isAlias, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import type { AnyFactory, ConfigProblem, ExporterFactory, ProcessorFactory, ReceiverFactory } from '../collector/component.js';
import { receiverFactories, processorFactories, exporterFactories } from '../collector/components.js';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import {
  COMPONENT_TYPE_PATTERN,
  ServiceSchema,
  TOP_LEVEL_KEYS,
  UNSUPPORTED_TOP_LEVEL,
  type Factories,
  type SectionKey,
  type ServiceConfig,
} from './schema.js';
import { suggestion } from './suggest.js';
import { PIPELINE_ID_PATTERN, SIGNALS, pipelineSignal } from '../collector/signals.js';

// ---------------------------------------------------------------------------
// Public types

/** One problem in a config file. `line` and `column` are 1-based; 0 when the problem has no position. */
export interface LocatedProblem {
  file: string;
  line: number;
  column: number;
  /** Key path in the file, e.g. `exporters.otlp/backend.tls.ca_file` or `service.pipelines.traces.processors[1]`. */
  path: string;
  message: string;
}

/** `config.yaml:12:7: exporters.otlp.endpont: unknown field "endpont"; did you mean "endpoint"?` */
export function formatProblem(p: LocatedProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

/** Thrown for any invalid config; `message` holds one formatted problem per line. */
export class ConfigError extends Error {
  readonly problems: LocatedProblem[];
  constructor(problems: LocatedProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ComponentEntry<F extends AnyFactory = AnyFactory> {
  /** `type` or `type/name`, as written in the file. */
  id: string;
  type: string;
  /** The part after "/", or '' when the id is just the type. */
  name: string;
  factory: F;
  /** The validated config with every default filled in (pass to `factory.create`). */
  config: unknown;
}

export interface PipelineConfig {
  receivers: string[];
  processors: string[];
  exporters: string[];
}

export interface LoadedConfig {
  file: string;
  /** sha256 (hex) of the file text after environment substitution. */
  hash: string;
  receivers: Map<string, ComponentEntry<ReceiverFactory>>;
  processors: Map<string, ComponentEntry<ProcessorFactory>>;
  exporters: Map<string, ComponentEntry<ExporterFactory>>;
  service: {
    /** Pipeline id (`traces`, `logs`, `metrics/app`, ...) -> its component ids. */
    pipelines: Record<string, PipelineConfig>;
    telemetry: {
      logs: { level: ServiceConfig['telemetry']['logs']['level'] };
      metrics: { address: string };
      summaryIntervalMs: number;
    };
    shutdownTimeoutMs: number;
    shutdownDelayMs: number;
    configWatch: boolean;
  };
  /** Things that are allowed but probably unintended (a component defined and never used), formatted like problems. */
  warnings: string[];
}

export interface LoadOptions {
  /** Where `${env:NAME}` is looked up; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** The component types known; defaults to the registry in collector/components.ts. */
  factories?: Factories;
}

// ---------------------------------------------------------------------------
// Entry points

/** Reads and validates a config file. Throws `ConfigError`. */
export function loadConfigFile(path: string, opts: LoadOptions = {}): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new ConfigError([{ file: path, line: 0, column: 0, path: '', message: `cannot read config file: ${why}` }]);
  }
  return loadConfigText(text, path, opts);
}

/** Validates config text; `fileName` is used in messages. Throws `ConfigError`. */
export function loadConfigText(text: string, fileName: string, opts: LoadOptions = {}): LoadedConfig {
  return new Loader(text, fileName, opts.env ?? process.env, opts.factories ?? defaultFactories()).load();
}

function defaultFactories(): Factories {
  return { receivers: receiverFactories, processors: processorFactories, exporters: exporterFactories };
}

// ---------------------------------------------------------------------------
// Environment substitution

const ENV_REF = /\$\$\{|\$\{env:([^}]*)\}|\$\{env:/g;
const ENV_BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

interface EnvIssue {
  /** Index in the scalar's value where the reference starts. */
  index: number;
  ref: string;
  message: string;
}

/**
 * Replaces `${env:NAME}` and `${env:NAME:-default}` (default used when NAME is
 * unset or empty) and turns `$${` into a literal `${`. Problems are returned,
 * with the reference replaced by ''.
 */
export function substituteEnv(value: string, env: Record<string, string | undefined>, issues?: EnvIssue[]): string {
  if (!value.includes('${')) return value;
  return value.replace(ENV_REF, (ref: string, body: string | undefined, index: number) => {
    if (ref === '$${') return '${';
    const m = body === undefined ? null : ENV_BODY.exec(body);
    if (!m) {
      issues?.push({
        index,
        ref,
        message:
          body === undefined
            ? `unterminated environment reference "${ref}": expected \${env:NAME} or \${env:NAME:-default}`
            : `invalid environment reference "${ref}": expected \${env:NAME} or \${env:NAME:-default}`,
      });
      return '';
    }
    const v = env[m[1]];
    if (m[2] !== undefined) return v === undefined || v === '' ? m[2] : v;
    if (v === undefined) {
      issues?.push({ index, ref, message: `environment variable "${m[1]}" is not set and the reference gives no default` });
      return '';
    }
    return v;
  });
}

// ---------------------------------------------------------------------------
// Positions of YAML nodes, by key path

type Seg = string | number;

interface Pos {
  line: number;
  column: number;
}

interface NodeInfo {
  /** Position of the key (map entries only). */
  key?: Pos;
  /** Position of the value, when one is written (not for an empty value). */
  value?: Pos;
  /** The value is a map or a list. */
  container: boolean;
}

const pathKey = (path: readonly Seg[]) => path.join('\u0000');

export function displayPath(path: readonly Seg[]): string {
  let out = '';
  for (const s of path) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out;
}

function setProp(obj: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty so a key named "__proto__" is data, not a prototype change.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

const TYPE_NOUNS: Record<string, string> = {
  number: 'a number',
  integer: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  object: 'a map',
  array: 'a list',
  null: 'empty',
};

function typeNoun(t: unknown): string {
  if (Array.isArray(t)) return t.map(typeNoun).join(' or ');
  return TYPE_NOUNS[String(t)] ?? String(t);
}

/** The property every branch pins to a distinct constant, if there is one. */
function discriminator(branches: JsonSchema[]): string | undefined {
  if (branches.length < 2) return undefined;
  const first = branches[0]?.properties as Record<string, JsonSchema> | undefined;
  if (!first) return undefined;
  for (const key of Object.keys(first)) {
    const consts = branches.map((b) => (b?.properties as Record<string, JsonSchema> | undefined)?.[key]?.const);
    if (consts.every((c) => typeof c === 'string') && new Set(consts).size === consts.length) return key;
  }
  return undefined;
}

const DURATION_MESSAGE = 'must be a duration such as "30s", "500ms" or "1m30s", or a number of milliseconds';

// ---------------------------------------------------------------------------
// Ajv

const requireHere = createRequire(import.meta.url);

/** The Ajv options every config validator is compiled with (also by config/write-validators.ts). */
export const AJV_OPTIONS = {
  useDefaults: true,
  coerceTypes: true,
  allErrors: true,
  verbose: true,
  // Component schemas come from many hands; unknown keywords or formats must not stop the collector.
  strict: false,
  logger: false,
} as const;

let ajvInstance: Ajv | undefined;
const validators = new WeakMap<object, ValidateFunction>();

/** Content hash of a schema: the key of its precompiled validator. */
export function schemaHash(schema: object): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 32);
}

/**
 * Validators compiled at build time (`npm run build` runs config/write-validators.js,
 * which writes dist/config/validators/). Compiling the component schemas at
 * start costs ~200 ms (the tail_sampling schema alone ~100 ms); loading the
 * generated code costs a few. A schema whose hash has no generated file (a
 * stale build, tests run from source) is compiled as before.
 */
let precompiled: Record<string, string> | undefined;
let precompiledDir: URL | undefined;
function precompiledValidator(schema: object): ValidateFunction | undefined {
  if (precompiled === undefined) {
    precompiled = {};
    // dist/config/load.js finds them beside it; the bundle (dist/collector/sidecar.mjs) one folder over.
    for (const rel of ['./validators/', '../config/validators/']) {
      try {
        const dir = new URL(rel, import.meta.url);
        precompiled = JSON.parse(readFileSync(new URL('index.json', dir), 'utf8')) as Record<string, string>;
        precompiledDir = dir;
        break;
      } catch {
        /* not there */
      }
    }
  }
  const file = precompiled[schemaHash(schema)];
  if (file === undefined || precompiledDir === undefined) return undefined;
  try {
    // Evaluated as a CommonJS module body, but outside the module cache: the
    // generated code is large (the tail_sampling validator alone is 0.7 MB of
    // source, which V8 keeps in the heap while the function lives), and it is
    // only needed while a config file is loaded.
    const text = readFileSync(new URL(file, precompiledDir), 'utf8');
    const mod = { exports: {} as { default?: ValidateFunction } & ValidateFunction };
    new Function('module', 'exports', 'require', text)(mod, mod.exports, requireHere);
    return (mod.exports.default ?? mod.exports) as ValidateFunction;
  } catch {
    return undefined;
  }
}

/**
 * The validator of a schema. A precompiled one is cached only in `perLoad` (one
 * config load), so it is released once the config is loaded; a reload requires
 * it again in a few milliseconds. A validator compiled with Ajv (no precompiled
 * code for this schema) is kept for the process: compiling costs far more.
 */
function validatorFor(schema: TSchema, perLoad: Map<TSchema, ValidateFunction>): ValidateFunction {
  let v = perLoad.get(schema) ?? validators.get(schema);
  if (!v) {
    v = precompiledValidator(schema);
    if (v) perLoad.set(schema, v);
    else {
      // Loaded only when a schema was not precompiled: importing Ajv costs ~30 ms of start-up.
      if (ajvInstance === undefined) {
        // Two steps on purpose: tsc drops the parentheses of `new (require(...) as T).Ajv(...)`,
        // which then calls the class without `new`.
        const AjvClass = (requireHere('ajv') as { Ajv: new (o: typeof AJV_OPTIONS) => Ajv }).Ajv;
        ajvInstance = new AjvClass(AJV_OPTIONS);
      }
      v = ajvInstance.compile(schema);
      validators.set(schema, v);
    }
  }
  return v;
}

type JsonSchema = Record<string, unknown>;

function allowsNull(s: JsonSchema): boolean {
  const t = s.type;
  if (t === 'null' || (Array.isArray(t) && t.includes('null'))) return true;
  const alts = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  return Array.isArray(alts) && alts.some((a) => a && allowsNull(a));
}

/**
 * An empty YAML value means "the default": the key is removed when the
 * schema has a default (Ajv then fills it); otherwise a map or list becomes
 * empty and a scalar is left unset. Applied recursively through properties and
 * list items, before validation.
 */
function emptyValuesToDefaults(schema: JsonSchema | undefined, data: unknown): void {
  if (!schema || typeof schema !== 'object') return;
  if (isPlainObject(data)) {
    const props = schema.properties as Record<string, JsonSchema> | undefined;
    const patterns = schema.patternProperties as Record<string, JsonSchema> | undefined;
    if (!props && !patterns) return;
    for (const key of Object.keys(data)) {
      let ps = props && Object.prototype.hasOwnProperty.call(props, key) ? props[key] : undefined;
      // Maps keyed by pattern (service.pipelines): each entry has the pattern's schema.
      if (!ps && patterns) for (const [re, sch] of Object.entries(patterns)) if (new RegExp(re).test(key)) ps = sch;
      if (!ps) continue;
      if (data[key] === null) {
        if (allowsNull(ps)) continue;
        if (ps.default !== undefined) delete data[key];
        else if (ps.type === 'object') data[key] = {};
        else if (ps.type === 'array') data[key] = [];
        // An empty scalar is an unset option (Ajv would otherwise coerce it to "" or 0).
        else delete data[key];
      } else emptyValuesToDefaults(ps, data[key]);
    }
  } else if (Array.isArray(data)) {
    const items = schema.items as JsonSchema | undefined;
    if (items && !Array.isArray(items)) for (const item of data) emptyValuesToDefaults(items, item);
  }
}

// ---------------------------------------------------------------------------
// The loader

interface RawProblem {
  path: Seg[];
  message: string;
  /** Point at the key (unknown field) or at the value (everything else). */
  at: 'key' | 'value';
}

class Loader {
  private readonly lineCounter = new LineCounter();
  private readonly infos = new Map<string, NodeInfo>();
  private readonly problems: RawProblem[] = [];
  /** Direct positions (env references point inside a scalar). */
  private readonly positioned: LocatedProblem[] = [];
  /** Paths whose value is unusable because substitution failed; their schema errors would only repeat that. */
  private readonly envFailed = new Set<string>();
  private doc!: Document.Parsed;
  /** Path of the data being validated by Ajv (its errors are relative to it). */
  private prefix: Seg[] = [];
  /** Precompiled validators used by this load (released with the loader). */
  private readonly validators = new Map<TSchema, ValidateFunction>();

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly env: Record<string, string | undefined>,
    private readonly factories: Factories,
  ) {}

  load(): LoadedConfig {
    const doc = parseDocument(this.text, { lineCounter: this.lineCounter, prettyErrors: false, uniqueKeys: true });
    this.doc = doc;
    if (doc.errors.length > 0) {
      throw new ConfigError(
        doc.errors.map((e) => {
          // The parser often points at the whitespace before the offending token; point at the token.
          let off = e.pos[0];
          while (off < this.text.length && /\s/.test(this.text[off])) off++;
          const p = this.lineCounter.linePos(off < this.text.length ? off : e.pos[0]);
          return { file: this.file, line: p.line, column: p.col, path: '', message: `YAML syntax error: ${e.message}` };
        }),
      );
    }
    const warnings: string[] = doc.warnings.map((w) => {
      const p = this.lineCounter.linePos(w.pos[0]);
      return `${this.file}:${p.line}:${p.col}: YAML: ${w.message}`;
    });

    let root = this.toValue(doc.contents, [], 0);
    if (root === null || root === undefined) root = {};
    if (!isPlainObject(root)) {
      this.report([], `the file must be a map with ${TOP_LEVEL_KEYS.join(', ')}; got ${describeValue(root)}`, 'value');
      throw this.error();
    }

    for (const key of Object.keys(root)) {
      if ((TOP_LEVEL_KEYS as readonly string[]).includes(key)) continue;
      const why = UNSUPPORTED_TOP_LEVEL[key];
      this.report([key], why ? `unknown field "${key}": ${why}` : `unknown field "${key}"${suggestion(key, [...TOP_LEVEL_KEYS])}`, 'key');
    }

    const receivers = this.section(root, 'receivers', 'receiver', this.factories.receivers);
    const processors = this.section(root, 'processors', 'processor', this.factories.processors);
    const exporters = this.section(root, 'exporters', 'exporter', this.factories.exporters);
    const service = this.service(root, { receivers, processors, exporters }, warnings);

    if (this.problems.length > 0 || this.positioned.length > 0) throw this.error();
    return {
      file: this.file,
      hash: createHash('sha256').update(substituteEnv(this.text, this.env)).digest('hex'),
      receivers,
      processors,
      exporters,
      service: service!,
      warnings,
    };
  }

  // --- YAML -> plain values, recording positions -------------------------

  private pos(offset: number): Pos {
    const p = this.lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  }

  private toValue(node: unknown, path: Seg[], depth: number): unknown {
    if (depth > 64) {
      this.report(path, 'nested too deeply', 'value');
      return null;
    }
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      return target ? this.toValue(target, path, depth + 1) : null;
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v !== 'string') return v === undefined ? null : v;
      if (!v.includes('${')) return v;
      const issues: EnvIssue[] = [];
      const out = substituteEnv(v, this.env, issues);
      for (const issue of issues) this.envProblem(node, v, path, issue);
      if (issues.length > 0) this.envFailed.add(pathKey(path));
      return out;
    }
    if (isMap(node)) {
      const obj: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = pair.key as Node | null;
        let key: string;
        if (isScalar(k) && k.value !== null && typeof k.value !== 'object') key = String(k.value);
        else {
          const kp = k && k.range ? this.pos(k.range[0]) : undefined;
          this.reportAt(kp, path, 'map keys must be plain names');
          continue;
        }
        const childPath = [...path, key];
        const v = pair.value as Node | null;
        this.infos.set(pathKey(childPath), {
          key: k.range ? this.pos(k.range[0]) : undefined,
          value: this.valuePos(v),
          container: isMap(v) || isSeq(v),
        });
        setProp(obj, key, this.toValue(v, childPath, depth + 1));
      }
      return obj;
    }
    if (isSeq(node)) {
      const arr: unknown[] = [];
      node.items.forEach((item, i) => {
        const childPath = [...path, i];
        const n = item as Node | null;
        this.infos.set(pathKey(childPath), { value: this.valuePos(n), container: isMap(n) || isSeq(n) });
        arr.push(this.toValue(n, childPath, depth + 1));
      });
      return arr;
    }
    return null;
  }

  private valuePos(n: Node | null): Pos | undefined {
    if (!n || !n.range) return undefined;
    if (isScalar(n) && n.value === null) return undefined; // empty value: point at its key instead
    return this.pos(n.range[0]);
  }

  private envProblem(node: Node, value: string, path: Seg[], issue: EnvIssue): void {
    // Point at the reference itself when it appears verbatim in the source (it does unless escaped in quotes).
    const [start, end] = node.range!;
    const source = this.text.slice(start, end);
    const before = value.slice(0, issue.index).split(issue.ref).length - 1; // earlier identical references
    let at = -1;
    for (let i = 0; i <= before; i++) {
      at = source.indexOf(issue.ref, at + 1);
      if (at < 0) break;
    }
    const p = this.pos(at >= 0 ? start + at : start);
    this.positioned.push({ file: this.file, line: p.line, column: p.column, path: displayPath(path), message: issue.message });
  }

  // --- problems ----------------------------------------------------------

  private report(path: Seg[], message: string, at: 'key' | 'value'): void {
    this.problems.push({ path, message, at });
  }

  private reportAt(pos: Pos | undefined, path: Seg[], message: string): void {
    const p = pos ?? this.locate(path, 'value');
    this.positioned.push({ file: this.file, line: p.line, column: p.column, path: displayPath(path), message });
  }

  /** The position for a problem at `path`: the node itself, or its nearest ancestor written in the file. */
  private locate(path: Seg[], at: 'key' | 'value'): Pos {
    for (let n = path.length; n > 0; n--) {
      const info = this.infos.get(pathKey(path.slice(0, n)));
      if (!info) continue;
      if (n === path.length && at === 'key') {
        const p = info.key ?? info.value;
        if (p) return p;
      }
      // A map or list value starts at its first entry; its key line reads better.
      const p = info.container ? (info.key ?? info.value) : (info.value ?? info.key);
      if (p) return p;
    }
    return { line: 1, column: 1 };
  }

  private error(): ConfigError {
    const located: LocatedProblem[] = [...this.positioned];
    for (const p of this.problems) {
      if (this.envFailed.has(pathKey(p.path))) continue;
      const pos = this.locate(p.path, p.at);
      located.push({ file: this.file, line: pos.line, column: pos.column, path: displayPath(p.path), message: p.message });
    }
    const seen = new Set<string>();
    const unique = located.filter((p) => {
      const k = formatProblem(p);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    // Stable sort: by position, keeping discovery order for problems at the same place.
    unique.sort((a, b) => a.line - b.line || a.column - b.column);
    return new ConfigError(unique);
  }

  // --- sections ------------------------------------------------------------

  private section<F extends AnyFactory>(
    root: Record<string, unknown>,
    key: SectionKey,
    kind: string,
    factories: F[],
  ): Map<string, ComponentEntry<F>> {
    const out = new Map<string, ComponentEntry<F>>();
    let value = root[key];
    if (value === undefined || value === null) return out;
    if (!isPlainObject(value)) {
      this.report([key], `must be a map of ${kind} ids to their configs; got ${describeValue(value)}`, 'value');
      return out;
    }
    const byType = new Map(factories.map((f) => [f.type, f] as const));
    const types = [...byType.keys()].sort();
    const typeRe = new RegExp(COMPONENT_TYPE_PATTERN);
    for (const id of Object.keys(value)) {
      const path: Seg[] = [key, id];
      const slash = id.indexOf('/');
      const type = slash < 0 ? id : id.slice(0, slash);
      const name = slash < 0 ? '' : id.slice(slash + 1);
      if (!typeRe.test(type) || (slash >= 0 && name === '')) {
        this.report(path, `invalid ${kind} id "${id}": expected "type" or "type/name"`, 'key');
        continue;
      }
      const factory = byType.get(type);
      if (!factory) {
        const hint = types.length === 0 ? `; no ${kind} types are registered` : suggestion(type, types, `one of the ${kind} types`);
        this.report(path, `unknown ${kind} type "${type}"${hint}`, 'key');
        continue;
      }
      let config = value[id];
      if (config === null || config === undefined) config = {};
      const schema = factory.configSchema as unknown as JsonSchema;
      emptyValuesToDefaults(schema, config);
      if (!this.validate(factory.configSchema, config, path)) continue;
      if (factory.validate) {
        let extra: ConfigProblem[];
        try {
          extra = (factory.validate as (c: unknown) => ConfigProblem[])(config);
        } catch (err) {
          extra = [{ path: [], message: `validation failed: ${(err as Error).message}` }];
        }
        if (extra.length > 0) {
          for (const p of extra) this.report([...path, ...p.path], p.message, 'value');
          continue;
        }
      }
      out.set(id, { id, type, name, factory, config });
    }
    return out;
  }

  /** Validates `data` in place (defaults, coercion); reports errors under `prefix`. */
  private validate(schema: TSchema, data: unknown, prefix: Seg[]): boolean {
    const v = validatorFor(schema, this.validators);
    if (v(data)) return true;
    this.prefix = prefix;
    for (const p of this.convertErrors(v.errors ?? [], data)) this.report([...prefix, ...p.path], p.message, p.at);
    return false;
  }

  private service(
    root: Record<string, unknown>,
    comps: {
      receivers: Map<string, ComponentEntry>;
      processors: Map<string, ComponentEntry>;
      exporters: Map<string, ComponentEntry>;
    },
    warnings: string[],
  ): LoadedConfig['service'] | undefined {
    if (!('service' in root)) {
      this.report(['service'], 'missing required field "service"', 'value');
      return undefined;
    }
    let svc = root.service;
    if (svc === null) svc = {};
    emptyValuesToDefaults(ServiceSchema as unknown as JsonSchema, svc);
    const valid = this.validate(ServiceSchema, svc, ['service']);
    // Go on with whatever parts have the right shape, to report as much as possible at once.
    const s = svc as ServiceConfig;

    const address = (s as { telemetry?: { metrics?: { address?: unknown } } }).telemetry?.metrics?.address;
    if (typeof address === 'string') {
      const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]*):([0-9]{1,5})$/.exec(address);
      if (!m || Number(m[2]) > 65535) {
        this.report(
          ['service', 'telemetry', 'metrics', 'address'],
          `must be host:port, such as "127.0.0.1:8888"; got ${JSON.stringify(address)}`,
          'value',
        );
      }
    }

    const pipelines = (s as { pipelines?: Record<string, Partial<PipelineConfig>> }).pipelines;
    const lists = [
      ['receivers', 'receiver', comps.receivers],
      ['processors', 'processor', comps.processors],
      ['exporters', 'exporter', comps.exporters],
    ] as const;
    const used = new Set<string>();
    for (const [pid, pipe] of Object.entries(isPlainObject(pipelines) ? pipelines : {})) {
      const signal = pipelineSignal(pid);
      if (!isPlainObject(pipe)) continue;
      for (const [key, kind, defined] of lists) {
        const ids = pipe[key];
        if (!Array.isArray(ids)) continue;
        const first = new Map<string, number>();
        ids.forEach((id, i) => {
          if (typeof id !== 'string' || id === '') return;
          const path: Seg[] = ['service', 'pipelines', pid, key, i];
          const earlier = first.get(id);
          if (earlier !== undefined) {
            this.report(path, `${kind} "${id}" is listed more than once (first at ${key}[${earlier}])`, 'value');
            return;
          }
          first.set(id, i);
          used.add(`${key}\u0000${id}`);
          const entry = defined.get(id);
          if (entry === undefined) {
            if (!this.definedButInvalid(key, id, root)) {
              const sec = root[key];
              const candidates = isPlainObject(sec) ? Object.keys(sec) : [];
              this.report(path, `${kind} "${id}" is not defined in ${key}${suggestion(id, candidates, `one of the defined ${key}`)}`, 'value');
            }
            return;
          }
          const supported = entry.factory.signals ?? ['traces'];
          if (signal !== undefined && !supported.includes(signal)) {
            this.report(
              path,
              `${kind} "${id}" (type ${entry.type}) does not support ${signal}; it can be used in ${supported.map((x) => `${x}`).join(', ')} pipelines`,
              'value',
            );
          }
        });
      }
    }
    for (const [key, , defined] of lists) {
      for (const id of defined.keys()) {
        if (used.has(`${key}\u0000${id}`)) continue;
        const p = this.locate([key, id], 'key');
        warnings.push(`${this.file}:${p.line}:${p.column}: ${key}.${id}: defined but not used in any of service.pipelines`);
      }
    }

    if (!valid) return undefined;
    const out: Record<string, PipelineConfig> = {};
    for (const [pid, p] of Object.entries(s.pipelines)) out[pid] = { receivers: [...p.receivers], processors: [...p.processors], exporters: [...p.exporters] };
    return {
      pipelines: out,
      telemetry: {
        logs: { level: s.telemetry.logs.level },
        metrics: { address: s.telemetry.metrics.address },
        summaryIntervalMs: parseDuration(s.telemetry.summary_interval),
      },
      shutdownTimeoutMs: parseDuration(s.shutdown_timeout),
      shutdownDelayMs: parseDuration(s.shutdown_delay),
      configWatch: s.config_watch,
    };
  }

  /** A pipeline reference to a component that is in the file but failed validation: already reported. */
  private definedButInvalid(key: SectionKey, id: string, root: Record<string, unknown>): boolean {
    const sec = root[key];
    return isPlainObject(sec) && Object.prototype.hasOwnProperty.call(sec, id);
  }

  // --- Ajv errors -> readable problems -------------------------------------

  private convertErrors(errors: ErrorObject[], data: unknown): RawProblem[] {
    const out: RawProblem[] = [];
    const isUnder = (e: ErrorObject, u: ErrorObject) =>
      e !== u &&
      e.schemaPath.startsWith(u.schemaPath + '/') &&
      (e.instancePath === u.instancePath || e.instancePath.startsWith(u.instancePath + '/'));
    const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
    const outer = unions.filter((u) => !unions.some((o) => isUnder(u, o)));
    for (const e of errors) {
      if (e.keyword === 'if') continue;
      if (outer.includes(e)) out.push(...this.convertUnion(e, errors.filter((x) => isUnder(x, e)), data));
      else if (!outer.some((u) => isUnder(e, u))) {
        const p = this.convertError(e, data);
        if (p) out.push(p);
      }
    }
    return out;
  }

  private instanceSegs(pointer: string, data: unknown): Seg[] {
    if (pointer === '') return [];
    const segs: Seg[] = [];
    let cur: unknown = data;
    for (const raw of pointer.slice(1).split('/')) {
      const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (Array.isArray(cur)) {
        const i = Number(s);
        segs.push(i);
        cur = cur[i];
      } else {
        segs.push(s);
        cur = isPlainObject(cur) ? cur[s] : undefined;
      }
    }
    return segs;
  }

  private convertUnion(u: ErrorObject, subs: ErrorObject[], data: unknown): RawProblem[] {
    const path = this.instanceSegs(u.instancePath, data);
    const branches = (Array.isArray(u.schema) ? u.schema : []) as JsonSchema[];
    if (u.keyword === 'oneOf' && (u.params as { passingSchemas?: unknown }).passingSchemas) {
      return [{ path, message: 'matches more than one of the allowed forms', at: 'value' }];
    }
    if (branches.length > 0 && branches.every((b) => b && 'const' in b)) {
      const allowed = branches.map((b) => String(b.const));
      const got = typeof u.data === 'string' ? suggestion(u.data, allowed) : '';
      const hint = got.startsWith('; did you mean') ? got : '';
      return [
        {
          path,
          message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}; got ${describeValue(u.data)}${hint}`,
          at: 'value',
        },
      ];
    }
    if (branches.some((b) => b && b.pattern === DURATION_PATTERN)) {
      return [{ path, message: `${DURATION_MESSAGE}; got ${describeValue(u.data)}`, at: 'value' }];
    }
    const byBranch = new Map<number, ErrorObject[]>();
    for (const e of subs) {
      const rest = e.schemaPath.slice(u.schemaPath.length + 1);
      const i = Number(rest.split('/')[0]);
      if (!byBranch.has(i)) byBranch.set(i, []);
      byBranch.get(i)!.push(e);
    }
    // A union of maps told apart by one field (`type: latency` / `type: probabilistic`): judge by that field.
    const disc = discriminator(branches);
    if (disc && isPlainObject(u.data)) {
      const values = branches.map((b) => String((b.properties as Record<string, JsonSchema>)[disc].const));
      const v = u.data[disc];
      const i = typeof v === 'string' ? values.indexOf(v) : -1;
      if (i >= 0) return this.convertErrors(byBranch.get(i) ?? [], data);
      const list = values.map((x) => JSON.stringify(x)).join(', ');
      if (v === undefined) return [{ path: [...path, disc], message: `missing required field "${disc}" (one of ${list})`, at: 'value' }];
      const s = typeof v === 'string' ? suggestion(v, values) : '';
      return [
        {
          path: [...path, disc],
          message: `must be one of ${list}; got ${describeValue(v)}${s.startsWith('; did you mean') ? s : ''}`,
          at: 'value',
        },
      ];
    }
    // Otherwise: if some alternative had the right shape and failed deeper, explain that one.
    let best: ErrorObject[] | undefined;
    for (const errs of byBranch.values()) {
      const shapeWrong = errs.some(
        (e) => e.instancePath === u.instancePath && (e.keyword === 'type' || e.keyword === 'const' || e.keyword === 'enum'),
      );
      if (!shapeWrong && (!best || errs.length < best.length)) best = errs;
    }
    if (best) return this.convertErrors(best, data);
    const nouns = [...new Set(branches.map((b) => (b && 'const' in b ? JSON.stringify(b.const) : typeNoun(b?.type ?? 'value'))))];
    return [{ path, message: `must be ${nouns.join(' or ')}; got ${describeValue(u.data)}`, at: 'value' }];
  }

  private convertError(e: ErrorObject, data: unknown): RawProblem | undefined {
    const path = this.instanceSegs(e.instancePath, data);
    const params = e.params as Record<string, unknown>;
    const got = describeValue(e.data);
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(params.additionalProperty);
        const parent = e.parentSchema as JsonSchema | undefined;
        if (parent && isPlainObject(parent.patternProperties) && String(Object.keys(parent.patternProperties)[0]) === PIPELINE_ID_PATTERN) {
          return {
            path: [...path, key],
            message: `unknown pipeline "${key}": a pipeline id is traces, logs or metrics, optionally followed by "/name"${suggestion(key.split('/')[0], [...SIGNALS])}`,
            at: 'key',
          };
        }
        const allowed = parent && isPlainObject(parent.properties) ? Object.keys(parent.properties) : [];
        return { path: [...path, key], message: `unknown field "${key}"${suggestion(key, allowed)}`, at: 'key' };
      }
      case 'required': {
        const key = String(params.missingProperty);
        return { path: [...path, key], message: `missing required field "${key}"`, at: 'value' };
      }
      case 'type':
        return { path, message: `must be ${typeNoun(params.type)}; got ${got}`, at: 'value' };
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        return { path, message: `must be ${params.comparison} ${params.limit}; got ${got}`, at: 'value' };
      case 'minLength':
        return {
          path,
          message: params.limit === 1 ? 'must not be empty' : `must be at least ${params.limit} characters long; got ${got}`,
          at: 'value',
        };
      case 'maxLength':
        return { path, message: `must be at most ${params.limit} characters long`, at: 'value' };
      case 'minItems':
        return { path, message: this.minItemsMessage(path, Number(params.limit)), at: 'value' };
      case 'maxItems':
        return { path, message: `must have at most ${params.limit} item${params.limit === 1 ? '' : 's'}`, at: 'value' };
      case 'pattern':
        return {
          path,
          message: params.pattern === DURATION_PATTERN ? `${DURATION_MESSAGE}; got ${got}` : `must match /${params.pattern}/; got ${got}`,
          at: 'value',
        };
      case 'enum': {
        const allowed = (params.allowedValues as unknown[]).map((a) => String(a));
        const s = typeof e.data === 'string' ? suggestion(e.data, allowed) : '';
        return {
          path,
          message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}; got ${got}${s.startsWith('; did you mean') ? s : ''}`,
          at: 'value',
        };
      }
      case 'const':
        return { path, message: `must be ${JSON.stringify(params.allowedValue)}; got ${got}`, at: 'value' };
      case 'format':
        return { path, message: `must be a valid ${params.format}; got ${got}`, at: 'value' };
      case 'uniqueItems':
        return { path, message: `must not repeat items (items ${params.j} and ${params.i} are the same)`, at: 'value' };
      default:
        return { path, message: e.message ?? `is invalid (${e.keyword})`, at: 'value' };
    }
  }

  private minItemsMessage(path: Seg[], limit: number): string {
    const p = displayPath([...this.prefix, ...path]);
    if (/^service\.pipelines\.[^.]+\.receivers$/.test(p)) return 'a pipeline needs at least one receiver';
    if (/^service\.pipelines\.[^.]+\.exporters$/.test(p)) return 'a pipeline needs at least one exporter';
    return limit === 1 ? 'must not be empty' : `must have at least ${limit} items`;
  }
}
