/**
 * Factory of the `normalize` processor: consistent, low-cardinality,
 * privacy-safe attributes. See README.md.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import type { ConfigProblem, CreateSettings, ProcessorFactory } from '../../collector/component.js';
import type { LogsConsumer, MetricsConsumer, TracesConsumer } from '../../collector/consumer.js';
import { SIGNALS } from '../../collector/signals.js';
import { NormalizeConfig, OPERATIONS, type RuleConfig, type RuleScope } from './config.js';
import { NormalizeProcessor, type NormalizeDeps } from './processor.js';
import { effectiveRules } from './preset.js';
import { compileRegex, ruleScopes, toSnakeCase } from './rules.js';
import { compareVersions, semconvEntries } from './semconv.js';

export { NormalizeConfig } from './config.js';

type Path = Array<string | number>;

/** Which operations make sense on which scope. */
const OPS_BY_SCOPE: Record<RuleScope, readonly string[]> = {
  resource: ['semconv', 'rename', 'key_style', 'set', 'delete', 'allow', 'redact', 'template', 'truncate', 'cardinality_limit', 'enrich_from_env'],
  span: ['semconv', 'rename', 'key_style', 'set', 'delete', 'allow', 'redact', 'template', 'truncate', 'cardinality_limit'],
  event: ['semconv', 'rename', 'key_style', 'set', 'delete', 'allow', 'redact', 'template', 'truncate', 'cardinality_limit'],
  span_name: ['redact', 'template', 'truncate'],
};

/**
 * A heuristic for regexes that can never match: an empty class, (?!), a `$`
 * followed by more required text, or a `^` after required text.
 */
export function neverMatches(src: string): boolean {
  let s = src.startsWith('(?i)') ? src.slice(4) : src;
  if (/\[\]/.test(s) || s.includes('(?!)')) return true;
  // Drop escapes and character classes, then look at the anchors.
  s = s.replace(/\\./g, 'x').replace(/\[(?:\\.|[^\]])*\]/g, 'x');
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '$') {
      const next = s[i + 1];
      if (next !== undefined && next !== '|' && next !== ')' && next !== '$') return true;
    } else if (c === '^' && i > 0) {
      const prev = s[i - 1];
      if (prev !== '|' && prev !== '(' && prev !== ':' && prev !== '^') return true;
    }
  }
  return false;
}

function checkRegex(problems: ConfigProblem[], path: Path, src: string | undefined, what: 'key' | 'value' | 'name'): RegExp | null {
  if (src === undefined) return null;
  let re: RegExp;
  try {
    re = compileRegex(src);
  } catch (e) {
    problems.push({ path, message: `regular expression does not compile: ${(e as Error).message}` });
    return null;
  }
  if (neverMatches(src)) problems.push({ path, message: `regular expression ${JSON.stringify(src)} can never match anything` });
  else if (what === 'value' && re.test('')) problems.push({ path, message: `regular expression ${JSON.stringify(src)} matches the empty string` });
  return re;
}

/** Keys a rule refers to that must exist for it to do anything, with their config paths. */
function referencedKeys(rule: RuleConfig, base: Path): Array<{ key: string; path: Path }> {
  const out: Array<{ key: string; path: Path }> = [];
  const add = (keys: readonly string[] | undefined, p: Path) => keys?.forEach((k, j) => out.push({ key: k, path: [...p, j] }));
  if (rule.rename) for (const k of Object.keys(rule.rename.keys)) out.push({ key: k, path: [...base, 'rename', 'keys', k] });
  if (rule.set?.copy_from !== undefined) out.push({ key: rule.set.copy_from, path: [...base, 'set', 'copy_from'] });
  if (rule.set?.action === 'update') out.push({ key: rule.set.key, path: [...base, 'set', 'key'] });
  add(rule.delete?.keys, [...base, 'delete', 'keys']);
  add(rule.redact?.keys, [...base, 'redact', 'keys']);
  if (!rule.scope || !ruleScopes(rule).every((s) => s === 'span_name')) add(rule.template?.keys, [...base, 'template', 'keys']);
  add(rule.truncate?.keys, [...base, 'truncate', 'keys']);
  add(rule.cardinality_limit?.keys, [...base, 'cardinality_limit', 'keys']);
  return out;
}

/** What earlier rules guarantee about keys that reach later ones, per scope. */
interface KeyFate {
  scope: RuleScope;
  /** Returns why `key` can no longer exist, or undefined. */
  gone(key: string): string | undefined;
}

function fatesOf(rule: RuleConfig, label: string): KeyFate[] {
  const fates: KeyFate[] = [];
  const scopes = ruleScopes(rule);
  const hasFilter = (rule.where?.services?.length ?? 0) > 0 || (rule.where?.span_kinds?.length ?? 0) > 0 || rule.where?.span_name_pattern !== undefined;
  if (hasFilter) return fates; // applies to some spans only
  for (const scope of scopes) {
    if (rule.semconv && rule.semconv.mode === 'replace') {
      const table = semconvEntries(rule.semconv.target_version, rule.semconv.domains);
      fates.push({ scope, gone: (k) => (table.has(k) && !k.startsWith('net.host.') ? `rule ${label} (semconv replace) renames it to ${table.get(k)!.to}` : undefined) });
    }
    if (rule.key_style) {
      const except = new Set(rule.key_style.except);
      const style = rule.key_style.style === 'lowercase' ? (k: string) => k.toLowerCase() : toSnakeCase;
      fates.push({ scope, gone: (k) => (!except.has(k) && style(k) !== k ? `rule ${label} rewrites keys to ${rule.key_style!.style} (${JSON.stringify(style(k))})` : undefined) });
    }
    if (rule.delete && rule.delete.key_pattern === undefined) {
      const del = new Set(rule.delete.keys);
      fates.push({ scope, gone: (k) => (del.has(k) ? `rule ${label} deletes it` : undefined) });
    }
    if (rule.rename && rule.rename.on_conflict !== 'keep_both') {
      const from = rule.rename.keys;
      fates.push({ scope, gone: (k) => (Object.prototype.hasOwnProperty.call(from, k) && from[k] !== k ? `rule ${label} renames it to ${from[k]}` : undefined) });
    }
    if (rule.allow) {
      const keys = new Set(rule.allow.keys);
      let res: RegExp[] = [];
      try {
        res = rule.allow.key_patterns.map((p) => compileRegex(p));
      } catch {
        res = [];
      }
      fates.push({ scope, gone: (k) => (!keys.has(k) && !res.some((r) => r.test(k)) ? `rule ${label} (allow-list) removes it` : undefined) });
    }
  }
  return fates;
}

/** Semantic checks a schema cannot express; paths are relative to this processor's config. */
export function validateNormalize(config: NormalizeConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const rules = config.rules ?? [];
  rules.forEach((rule, i) => {
    const base: Path = ['rules', i];
    const ops = OPERATIONS.filter((op) => rule[op] !== undefined);
    if (ops.length === 0) {
      problems.push({ path: base, message: `rule has no operation; give exactly one of: ${OPERATIONS.join(', ')}` });
      return;
    }
    if (ops.length > 1) {
      problems.push({ path: base, message: `rule has ${ops.length} operations (${ops.join(', ')}); split it into one rule per operation` });
      return;
    }
    const op = ops[0];
    const scopes = ruleScopes(rule);
    scopes.forEach((s) => {
      if (!OPS_BY_SCOPE[s].includes(op)) {
        problems.push({ path: [...base, 'scope'], message: `operation ${op} does not apply to scope ${s} (it applies to: ${(Object.keys(OPS_BY_SCOPE) as RuleScope[]).filter((k) => OPS_BY_SCOPE[k].includes(op)).join(', ')})` });
      }
    });
    if (op === 'enrich_from_env' && scopes.some((s) => s !== 'resource')) problems.push({ path: [...base, 'scope'], message: 'enrich_from_env only applies to scope resource' });
    const w = rule.where;
    if (w !== undefined) {
      checkRegex(problems, [...base, 'where', 'span_name_pattern'], w.span_name_pattern, 'name');
      if (scopes.includes('resource') && ((w.span_kinds?.length ?? 0) > 0 || w.span_name_pattern !== undefined)) {
        problems.push({ path: [...base, 'where'], message: 'span_kinds and span_name_pattern do not apply to resource-scoped rules (resources are normalized once for all their spans)' });
      }
    }
    const p = (...rest: Array<string | number>): Path => [...base, op, ...rest];
    switch (op) {
      case 'semconv': {
        const o = rule.semconv!;
        if (semconvEntries(o.target_version, o.domains).size === 0) {
          problems.push({ path: p('target_version'), message: `no renames apply for target_version ${o.target_version} and domains [${o.domains.join(', ')}] (HTTP renames need >= 1.23.0, database >= 1.26.0)` });
        }
        break;
      }
      case 'rename': {
        const entries = Object.entries(rule.rename!.keys);
        if (entries.length === 0) problems.push({ path: p('keys'), message: 'rename has no keys' });
        for (const [from, to] of entries) {
          if (from === to) problems.push({ path: p('keys', from), message: `renames ${JSON.stringify(from)} to itself` });
          if (to === '') problems.push({ path: p('keys', from), message: 'new key is empty' });
        }
        break;
      }
      case 'set': {
        const o = rule.set!;
        if (o.value === undefined && o.copy_from === undefined) problems.push({ path: p(), message: 'set needs value or copy_from' });
        if (o.value !== undefined && o.copy_from !== undefined) problems.push({ path: p(), message: 'set takes value or copy_from, not both' });
        if (o.copy_from === o.key) problems.push({ path: p('copy_from'), message: 'copy_from is the key itself' });
        break;
      }
      case 'delete': {
        const o = rule.delete!;
        if (o.keys.length === 0 && o.key_pattern === undefined) problems.push({ path: p(), message: 'delete needs keys or key_pattern' });
        checkRegex(problems, p('key_pattern'), o.key_pattern, 'key');
        break;
      }
      case 'allow': {
        const o = rule.allow!;
        if (o.keys.length === 0 && o.key_patterns.length === 0) problems.push({ path: p(), message: 'allow-list is empty: every attribute would be removed' });
        o.key_patterns.forEach((kp, j) => checkRegex(problems, p('key_patterns', j), kp, 'key'));
        break;
      }
      case 'redact': {
        const o = rule.redact!;
        if (o.keys.length === 0 && o.key_pattern === undefined && o.value_patterns.length === 0 && o.detectors.length === 0 && o.url_query === 'off') {
          problems.push({ path: p(), message: 'redact has nothing to do: give keys, key_pattern, value_patterns, detectors or url_query' });
        }
        checkRegex(problems, p('key_pattern'), o.key_pattern, 'key');
        o.value_patterns.forEach((vp, j) => checkRegex(problems, p('value_patterns', j), vp, 'value'));
        if (o.hash_key_file !== undefined) {
          if (o.action !== 'hash') problems.push({ path: p('hash_key_file'), message: 'hash_key_file is only used with action: hash' });
          try {
            accessSync(o.hash_key_file, fsConstants.R_OK);
          } catch {
            problems.push({ path: p('hash_key_file'), message: `cannot read ${o.hash_key_file}` });
          }
        }
        break;
      }
      case 'template': {
        const o = rule.template!;
        if (!o.numeric && !o.uuid && o.hex_min_length === 0 && o.patterns.length === 0) problems.push({ path: p(), message: 'template has nothing to replace: enable numeric, uuid, hex_min_length or give patterns' });
        if (scopes.some((s) => s !== 'span_name') && o.keys.length === 0) problems.push({ path: p('keys'), message: 'template on attributes needs keys' });
        o.patterns.forEach((tp, j) => checkRegex(problems, p('patterns', j, 'pattern'), tp.pattern, 'value'));
        break;
      }
      case 'truncate': {
        const o = rule.truncate!;
        if (o.max_length === 0 && o.max_attributes === 0) problems.push({ path: p(), message: 'truncate needs max_length or max_attributes' });
        break;
      }
      case 'cardinality_limit':
        break;
    }
  });

  // Keys that earlier rules guarantee never reach a later rule.
  const all = effectiveRules(config);
  const offset = all.length - rules.length;
  const fates: KeyFate[] = [];
  all.forEach(({ rule, label }, idx) => {
    if (idx >= offset) {
      const i = idx - offset;
      if (OPERATIONS.filter((op) => rule[op] !== undefined).length === 1) {
        const scopes = ruleScopes(rule);
        for (const ref of referencedKeys(rule, ['rules', i])) {
          for (const scope of scopes) {
            for (const f of fates) {
              if (f.scope !== scope) continue;
              const why = f.gone(ref.key);
              if (why !== undefined) {
                problems.push({ path: ref.path, message: `key ${JSON.stringify(ref.key)} can never match: ${why}` });
                break;
              }
            }
          }
        }
      }
    }
    try {
      fates.push(...fatesOf(rule, label));
    } catch {
      /* reported above */
    }
  });
  return problems;
}

export const normalizeProcessorFactory: ProcessorFactory<typeof NormalizeConfig> = {
  type: 'normalize',
  kind: 'processor',
  configSchema: NormalizeConfig,
  validate: validateNormalize,
  signals: SIGNALS,
  create(settings: CreateSettings, config: NormalizeConfig, next: TracesConsumer) {
    return new NormalizeProcessor(settings, config, next);
  },
  createLogs(settings: CreateSettings, config: NormalizeConfig, next: LogsConsumer) {
    return new NormalizeProcessor(settings, config, next);
  },
  createMetrics(settings: CreateSettings, config: NormalizeConfig, next: MetricsConsumer) {
    return new NormalizeProcessor(settings, config, next);
  },
};

/** Creates the processor with an injected environment / file reader (tests). */
export function createNormalizeProcessor(settings: CreateSettings, config: NormalizeConfig, next: TracesConsumer | LogsConsumer | MetricsConsumer, deps: NormalizeDeps): NormalizeProcessor {
  return new NormalizeProcessor(settings, config, next, deps);
}

export { compareVersions };
