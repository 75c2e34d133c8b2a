/**
 * Configuration of the `tail_sampling` processor: the OpenTelemetry
 * Collector's `tail_sampling` keys (same names, same meaning), plus a
 * `dynamic` policy, a byte bound on the buffer, `dry_run` and `tick_interval`.
 *
 * The schema rejects unknown keys and unknown policy types; `validateTailSamplingConfig`
 * adds the checks a schema cannot express (regexes compile, ranges relate,
 * names are unique) and names the policy and key in every problem.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, DURATION_PATTERN, parseDuration } from '../../config/duration.js';
import type { ConfigProblem } from '../../collector/component.js';

/** Policy types that need no sub-policies (usable inside and / not / drop / composite). */
export const SHARED_POLICY_TYPES = [
  'always_sample',
  'latency',
  'numeric_attribute',
  'probabilistic',
  'status_code',
  'string_attribute',
  'rate_limiting',
  'bytes_limiting',
  'span_count',
  'trace_state',
  'boolean_attribute',
  'trace_flags',
  'ottl_condition',
  'dynamic',
] as const;
export const COMPOSITE_SUB_POLICY_TYPES = [...SHARED_POLICY_TYPES, 'and'] as const;
export const TOP_POLICY_TYPES = [...SHARED_POLICY_TYPES, 'and', 'not', 'drop', 'composite'] as const;

export type SharedPolicyType = (typeof SHARED_POLICY_TYPES)[number];
export type PolicyType = (typeof TOP_POLICY_TYPES)[number];

function StringEnum<T extends string>(values: readonly T[], description: string) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], description });
}

const LatencyCfg = Type.Object(
  {
    threshold_ms: Type.Integer({ minimum: 0, default: 0, description: 'Lower bound on the trace duration, in ms.' }),
    upper_threshold_ms: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'Upper bound, in ms. 0: none, sample when duration >= threshold_ms; else sample when threshold_ms < duration <= upper_threshold_ms.',
    }),
  },
  { additionalProperties: false, description: 'Trace duration = latest span end minus earliest span start.' },
);

const NumericAttributeCfg = Type.Object(
  {
    key: Type.String({ default: '', description: 'Attribute key (resource or span).' }),
    min_value: Type.Integer({ default: 0, description: 'Inclusive minimum; 0 means no lower bound (as in the Collector).' }),
    max_value: Type.Integer({ default: 0, description: 'Inclusive maximum; 0 means no upper bound (as in the Collector).' }),
    invert_match: Type.Boolean({ default: false, description: 'Sample traces where no span or resource has the value in range (deprecated upstream; prefer drop).' }),
  },
  { additionalProperties: false },
);

const ProbabilisticCfg = Type.Object(
  {
    hash_salt: Type.String({ default: '', description: 'Salt hashed before the trace id; empty means the Collector default "default-hash-seed".' }),
    sampling_percentage: Type.Number({ minimum: 0, maximum: 100, default: 0, description: 'Percentage of traces to keep, 0 to 100.' }),
  },
  { additionalProperties: false },
);

const StatusCodeCfg = Type.Object(
  {
    status_codes: Type.Array(StringEnum(['OK', 'ERROR', 'UNSET'] as const, 'A span status code.'), {
      default: [],
      description: 'Sample when any span has one of these status codes.',
    }),
  },
  { additionalProperties: false },
);

const StringAttributeCfg = Type.Object(
  {
    key: Type.String({ default: '', description: 'Attribute key (resource or span).' }),
    values: Type.Array(Type.String(), { default: [], description: 'Exact values, or regular expressions when enabled_regex_matching.' }),
    enabled_regex_matching: Type.Boolean({ default: false, description: 'Treat values as regular expressions (unanchored, as in Go).' }),
    cache_max_size: Type.Integer({ minimum: 0, default: 0, description: 'LRU size of regex match results; 0 means 128.' }),
    invert_match: Type.Boolean({ default: false, description: 'Sample traces where no span or resource matches (deprecated upstream; prefer drop).' }),
  },
  { additionalProperties: false },
);

const RateLimitingCfg = Type.Object(
  {
    spans_per_second: Type.Integer({ minimum: 0, default: 0, description: 'Token bucket refill rate in spans per second.' }),
    burst_capacity: Type.Integer({ minimum: 0, default: 0, description: 'Bucket size in spans; 0 means 2 x spans_per_second.' }),
  },
  { additionalProperties: false },
);

const BytesLimitingCfg = Type.Object(
  {
    bytes_per_second: Type.Integer({ minimum: 0, default: 0, description: 'Token bucket refill rate in encoded span bytes per second.' }),
    burst_capacity: Type.Integer({ minimum: 0, default: 0, description: 'Bucket size in bytes; 0 means 2 x bytes_per_second.' }),
  },
  { additionalProperties: false },
);

const SpanCountCfg = Type.Object(
  {
    min_spans: Type.Integer({ minimum: 0, default: 0, description: 'Inclusive minimum number of spans.' }),
    max_spans: Type.Integer({ minimum: 0, default: 0, description: 'Inclusive maximum; 0 means no maximum.' }),
  },
  { additionalProperties: false },
);

const TraceStateCfg = Type.Object(
  {
    key: Type.String({ default: '', description: 'W3C tracestate list key.' }),
    values: Type.Array(Type.String(), { default: [], description: 'Sample when any span has key=value for one of these values.' }),
  },
  { additionalProperties: false },
);

const BooleanAttributeCfg = Type.Object(
  {
    key: Type.String({ default: '', description: 'Attribute key (resource or span).' }),
    value: Type.Boolean({ default: false, description: 'Value to match.' }),
    invert_match: Type.Boolean({ default: false, description: 'Sample traces where no span or resource has the value (deprecated upstream; prefer drop).' }),
  },
  { additionalProperties: false },
);

const OttlConditionCfg = Type.Object({}, { additionalProperties: true, description: 'Not supported by this collector (rejected at load).' });

const DynamicCfg = Type.Object(
  {
    key_fields: Type.Array(Type.String(), {
      default: [],
      description: 'Fields whose values form the sampling key: attribute keys (span or resource), or span.name, span.kind, status.code.',
    }),
    goal_sample_rate: Type.Integer({ minimum: 1, default: 10, description: 'Average sample rate to aim for (keep about 1 in N traces overall).' }),
    adjustment_interval: Duration('15s', 'How often per-key rates are recomputed from the moving average.'),
    weight: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5, description: 'Weight of the newest interval in the moving average.' }),
    age_out_value: Type.Number({ minimum: 0, default: 0.5, description: 'Keys whose moving average falls below this are forgotten.' }),
    max_keys: Type.Integer({ minimum: 1, default: 500, description: 'Most distinct keys tracked; further keys share one overflow key.' }),
  },
  { additionalProperties: false },
);

function sharedProps() {
  return {
    latency: Type.Optional(LatencyCfg),
    numeric_attribute: Type.Optional(NumericAttributeCfg),
    probabilistic: Type.Optional(ProbabilisticCfg),
    status_code: Type.Optional(StatusCodeCfg),
    string_attribute: Type.Optional(StringAttributeCfg),
    rate_limiting: Type.Optional(RateLimitingCfg),
    bytes_limiting: Type.Optional(BytesLimitingCfg),
    span_count: Type.Optional(SpanCountCfg),
    trace_state: Type.Optional(TraceStateCfg),
    boolean_attribute: Type.Optional(BooleanAttributeCfg),
    ottl_condition: Type.Optional(OttlConditionCfg),
    dynamic: Type.Optional(DynamicCfg),
  };
}

const PolicyName = Type.String({ minLength: 1, description: 'Policy name: shows in metrics and in the tailsampling.policy attribute.' });

export const SharedPolicySchema = Type.Object(
  { name: PolicyName, type: StringEnum(SHARED_POLICY_TYPES, 'Policy type.'), ...sharedProps() },
  { additionalProperties: false },
);

const AndCfg = Type.Object(
  { and_sub_policy: Type.Array(SharedPolicySchema, { default: [], description: 'Sampled only when every sub-policy samples.' }) },
  { additionalProperties: false },
);

export const CompositeSubPolicySchema = Type.Object(
  { name: PolicyName, type: StringEnum(COMPOSITE_SUB_POLICY_TYPES, 'Policy type.'), ...sharedProps(), and: Type.Optional(AndCfg) },
  { additionalProperties: false },
);

const CompositeCfg = Type.Object(
  {
    max_total_spans_per_second: Type.Integer({ minimum: 0, default: 0, description: 'Span budget per second shared by the sub-policies.' }),
    policy_order: Type.Array(Type.String(), {
      default: [],
      description: 'Accepted for compatibility and ignored: sub-policies are evaluated in the order of composite_sub_policy (as the Collector code does).',
    }),
    composite_sub_policy: Type.Array(CompositeSubPolicySchema, { default: [] }),
    rate_allocation: Type.Array(
      Type.Object(
        {
          policy: Type.String({ description: 'Name of a composite_sub_policy.' }),
          percent: Type.Integer({ minimum: 0, maximum: 100, default: 0, description: 'Share of max_total_spans_per_second; 0 means an equal share.' }),
        },
        { additionalProperties: false },
      ),
      { default: [], description: 'Per sub-policy budget; a sub-policy not listed gets no budget (as in the Collector code).' },
    ),
  },
  { additionalProperties: false },
);

export const PolicySchema = Type.Object(
  {
    name: PolicyName,
    type: StringEnum(TOP_POLICY_TYPES, 'Policy type.'),
    ...sharedProps(),
    and: Type.Optional(AndCfg),
    not: Type.Optional(Type.Object({ not_sub_policy: SharedPolicySchema }, { additionalProperties: false })),
    drop: Type.Optional(
      Type.Object(
        { drop_sub_policy: Type.Array(SharedPolicySchema, { default: [], description: 'Dropped when every sub-policy samples.' }) },
        { additionalProperties: false },
      ),
    ),
    composite: Type.Optional(CompositeCfg),
  },
  { additionalProperties: false },
);

const SharedDecisionsCfg = Type.Object(
  {
    redis: Type.Object(
      {
        endpoint: Type.Optional(
          Type.String({
            pattern: '^rediss?://',
            description: 'redis://host:port (rediss:// for TLS) of a server that speaks the Redis protocol (Redis, Valkey). Exactly one of endpoint and cluster.',
          }),
        ),
        cluster: Type.Optional(
          Type.Array(Type.String({ pattern: '^[^:/\\s]+:[0-9]{1,5}$', description: 'host:port of a Redis Cluster node.' }), {
            minItems: 1,
            description: 'Seed nodes of a Redis Cluster (host:port). Exactly one of endpoint and cluster.',
          }),
        ),
        username: Type.String({ default: '', description: 'ACL user name (optional).' }),
        password_file: Type.String({ default: '', description: 'File holding the password (read at start, trailing newline removed; never logged). Empty: no password.' }),
        tls: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'TLS for cluster nodes (an endpoint turns TLS on with rediss://).' }),
            ca_file: Type.String({ default: '', description: 'CA bundle (PEM) to verify the server with. Empty: the system roots.' }),
            insecure_skip_verify: Type.Boolean({ default: false, description: 'Do not verify the server certificate (testing only).' }),
          },
          { additionalProperties: false, default: {} },
        ),
        key_prefix: Type.String({ default: 'tsd:', description: 'Prefix of every key: one namespace per cluster or tenant.' }),
        timeout: Duration('500ms', 'Longest wait for one store round trip (and for connecting); past it the sidecar decides alone.'),
      },
      { additionalProperties: false },
    ),
    wait: Type.Optional(
      Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Number({ minimum: 0 })], {
        description: 'How long a trace this sidecar would not keep is held for a peer\'s keep (default: decision_wait). A duration: "30s", "500ms", or a number of milliseconds.',
      }),
    ),
    ttl: Duration('5m', 'How long a keep is remembered in the store.'),
  },
  {
    additionalProperties: false,
    description: 'Shared tail-sampling decisions across sidecars through a Redis-protocol store: a kept trace is kept by every sidecar that saw part of it (README, "Shared decisions").',
  },
);

export const TailSamplingConfigSchema = Type.Object(
  {
    decision_wait: Duration('30s', 'Time from the first span of a trace to its decision.'),
    decision_wait_after_root_received: Duration(
      '0s',
      'When set, a trace is decided this long after its root span (a span without parent) arrived, if that is sooner than decision_wait. 0 turns it off.',
    ),
    num_traces: Type.Integer({ minimum: 1, default: 50000, description: 'Most traces buffered; beyond it the oldest are decided early.' }),
    expected_new_traces_per_sec: Type.Integer({ minimum: 0, default: 0, description: 'Accepted for compatibility; unused.' }),
    maximum_trace_size_bytes: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'A trace whose buffered spans exceed this many encoded bytes is decided at once. 0 turns it off.',
    }),
    sample_on_first_match: Type.Boolean({ default: false, description: 'Stop evaluating policies at the first one that samples.' }),
    drop_pending_traces_on_shutdown: Type.Boolean({
      default: false,
      description: 'At shutdown, drop (and count) undecided traces instead of deciding them with the data at hand.',
    }),
    block_on_overflow: Type.Boolean({
      default: false,
      description: 'Accepted for compatibility and ignored: when the buffer is full the oldest traces are decided early.',
    }),
    decision_cache: Type.Object(
      {
        sampled_cache_size: Type.Integer({ minimum: 0, default: 0, description: 'LRU of kept trace ids, so late spans follow the decision. 0: off.' }),
        non_sampled_cache_size: Type.Integer({ minimum: 0, default: 0, description: 'LRU of not-kept trace ids. 0: off.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    buffer: Type.Object(
      {
        max_bytes: Type.Integer({
          minimum: 1,
          default: 64 * 1024 * 1024,
          description:
            'Most bytes of buffered spans held in memory (encoded size plus a fixed per-span and per-trace overhead). Beyond it the oldest traces move to disk (buffer.disk) or, without room there, buffer.when_full applies.',
        }),
        when_full: Type.Union([Type.Literal('decide_early'), Type.Literal('refuse')], {
          default: 'decide_early',
          description:
            'When memory (and the disk spill, if configured) is full: decide_early decides the oldest traces now (counted as buffer_full); refuse answers new data with a retryable error until there is room (counted in refused_spans_total).',
        }),
        disk: Type.Object(
          {
            enabled: Type.Boolean({ default: true, description: 'Spill to disk when a directory is set. false turns spilling off without removing the directory.' }),
            directory: Type.String({ default: '', description: 'Directory of the spill file (created if missing; must be writable). Empty: no spilling.' }),
            max_bytes: Type.Integer({ minimum: 1, default: 1024 * 1024 * 1024, description: 'Budget for spilled spans and the log records held with them on disk (bytes).' }),
            sync: Type.Union([Type.Literal('normal'), Type.Literal('full')], {
              default: 'normal',
              description:
                'normal: a spill is written to the WAL before it counts as done (survives kill -9, not a power loss); full: also fsynced (survives power loss; slower).',
            }),
            restore_grace: Duration(
              '30s',
              'After a start that finds pending traces in the spill file (a restart), no spilled trace is decided before this much time has passed, so the spans senders re-send after the restart (their retry interval) join the traces they belong to. Set it above the senders\' retry max_interval.',
            ),
          },
          {
            additionalProperties: false,
            default: {},
            description: 'Spillover: when buffer.max_bytes is reached the oldest pending traces move to a SQLite file here and are read back at their decision.',
          },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    dry_run: Type.Boolean({
      default: false,
      description: 'Keep every trace and write the decision that would have been made onto its spans (tailsampling.dry_run.decision).',
    }),
    tick_interval: Duration('100ms', 'Period of the decision ticker (granularity of decision times). Short ticks spread the decision work: each decides a tenth of a second of traces, so the event loop never stalls for a whole second of them.'),
    policies: Type.Array(PolicySchema, { minItems: 1, description: 'Sampling policies; required.' }),
    shared_decisions: Type.Optional(SharedDecisionsCfg),
  },
  { additionalProperties: false, default: {} },
);

export type TailSamplingConfig = Static<typeof TailSamplingConfigSchema>;
export type PolicyConfig = Static<typeof PolicySchema>;
export type SharedPolicyConfig = Static<typeof SharedPolicySchema>;
export type CompositeSubPolicyConfig = Static<typeof CompositeSubPolicySchema>;
/** Any policy config: the union of the three shapes (they share field names). */
export type AnyPolicyConfig = PolicyConfig | SharedPolicyConfig | CompositeSubPolicyConfig;

export const STATUS_CODE_NAMES: Record<string, number> = { UNSET: 0, OK: 1, ERROR: 2 };

/**
 * Go regular expressions put flags in a leading group, "(?i)" ...; JavaScript
 * takes them as flags. Converts the leading group; the rest of the RE2 syntax
 * used in practice is also valid in JavaScript.
 */
export function compileGoRegex(src: string): RegExp {
  const m = /^\(\?([imsU]+)\)/.exec(src);
  if (m === null) return new RegExp(src);
  if (m[1].includes('U')) throw new Error('the (?U) flag is not supported');
  let flags = '';
  for (const f of 'ims') if (m[1].includes(f)) flags += f;
  return new RegExp(src.slice(m[0].length), flags);
}

type Path = Array<string | number>;

/** Semantic checks; every problem's path starts at the policy (["policies", i, ...]). */
export function validateTailSamplingConfig(c: TailSamplingConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const key of ['decision_wait', 'decision_wait_after_root_received', 'tick_interval'] as const) {
    try {
      parseDuration(c[key]);
    } catch (e) {
      problems.push({ path: [key], message: (e as Error).message });
    }
  }
  try {
    if (parseDuration(c.tick_interval) <= 0) problems.push({ path: ['tick_interval'], message: 'tick_interval must be greater than 0' });
  } catch {
    /* reported above */
  }
  const policies = c.policies ?? [];
  if (policies.length === 0) problems.push({ path: ['policies'], message: 'at least one policy is required' });
  const names = new Set<string>();
  policies.forEach((p, i) => {
    const path: Path = ['policies', i];
    if (names.has(p.name)) problems.push({ path: [...path, 'name'], message: `duplicate policy name "${p.name}"` });
    names.add(p.name);
    validatePolicy(p, path, problems);
  });
  if (c.shared_decisions !== undefined) validateShared(c.shared_decisions, problems);
  return problems;
}

function validateShared(sd: NonNullable<TailSamplingConfig['shared_decisions']>, problems: ConfigProblem[]): void {
  const add = (path: Path, message: string) => problems.push({ path: ['shared_decisions', ...path], message });
  const r = sd.redis;
  if ((r.endpoint === undefined) === (r.cluster === undefined)) {
    add(['redis'], r.endpoint === undefined ? 'one of endpoint (redis://host:port) or cluster ([host:port, ...]) is required' : 'endpoint and cluster are exclusive: set one');
  }
  if (r.endpoint !== undefined) {
    try {
      const u = new URL(r.endpoint);
      if (u.hostname === '') add(['redis', 'endpoint'], `endpoint ${JSON.stringify(r.endpoint)} has no host`);
      if (u.password !== '') add(['redis', 'endpoint'], 'put the password in password_file, not in the endpoint');
    } catch {
      add(['redis', 'endpoint'], `endpoint ${JSON.stringify(r.endpoint)} is not a valid URL`);
    }
  }
  if (r.tls.insecure_skip_verify && r.tls.ca_file !== '') add(['redis', 'tls', 'insecure_skip_verify'], 'insecure_skip_verify with a ca_file: the CA would not be used');
  const ms = (key: string, v: string | number | undefined): number | undefined => {
    if (v === undefined) return undefined;
    try {
      return parseDuration(v);
    } catch (e) {
      add(key === 'timeout' ? ['redis', 'timeout'] : [key], (e as Error).message);
      return undefined;
    }
  };
  const timeout = ms('timeout', r.timeout);
  const wait = ms('wait', sd.wait);
  const ttl = ms('ttl', sd.ttl);
  if (timeout !== undefined && timeout <= 0) add(['redis', 'timeout'], 'timeout must be greater than 0');
  if (ttl !== undefined && ttl < 1000) add(['ttl'], 'ttl must be at least 1s');
  if (ttl !== undefined && wait !== undefined && ttl < wait) add(['ttl'], `ttl (${sd.ttl}) must be at least wait (${sd.wait}): a keep must outlive the traces held for it`);
}

function validatePolicy(p: AnyPolicyConfig, path: Path, problems: ConfigProblem[]): void {
  const where = `policy "${p.name}" (${p.type})`;
  const add = (sub: Path, message: string) => problems.push({ path: [...path, ...sub], message: `${where}: ${message}` });
  switch (p.type) {
    case 'ottl_condition':
      add(['type'], 'ottl_condition is not supported by this collector; express the condition with the attribute, status_code or latency policies');
      break;
    case 'latency': {
      const l = p.latency;
      if (l && l.upper_threshold_ms !== 0 && l.upper_threshold_ms < l.threshold_ms)
        add(['latency', 'upper_threshold_ms'], `upper_threshold_ms (${l.upper_threshold_ms}) must be 0 or at least threshold_ms (${l.threshold_ms})`);
      break;
    }
    case 'numeric_attribute': {
      const n = p.numeric_attribute;
      if (!n || n.key === '') add(['numeric_attribute', 'key'], 'key is required');
      if (!n || (n.min_value === 0 && n.max_value === 0)) add(['numeric_attribute'], 'at least one of min_value or max_value must be set (0 means unbounded)');
      else if (n.min_value !== 0 && n.max_value !== 0 && n.min_value > n.max_value)
        add(['numeric_attribute', 'max_value'], `max_value (${n.max_value}) is less than min_value (${n.min_value})`);
      break;
    }
    case 'probabilistic': {
      const pr = p.probabilistic;
      const pct = pr?.sampling_percentage ?? 0;
      if (!(pct >= 0 && pct <= 100)) add(['probabilistic', 'sampling_percentage'], `sampling_percentage ${pct} is out of range 0..100`);
      break;
    }
    case 'status_code': {
      const codes = p.status_code?.status_codes ?? [];
      if (codes.length === 0) add(['status_code', 'status_codes'], 'expected at least one status code (OK, ERROR, UNSET)');
      codes.forEach((code, j) => {
        if (!(code in STATUS_CODE_NAMES)) add(['status_code', 'status_codes', j], `unknown status code "${code}"; supported: OK, ERROR, UNSET`);
      });
      break;
    }
    case 'string_attribute': {
      const s = p.string_attribute;
      if (!s || s.key === '') add(['string_attribute', 'key'], 'key is required');
      if (s && s.enabled_regex_matching) {
        s.values.forEach((v, j) => {
          try {
            compileGoRegex(v);
          } catch (e) {
            add(['string_attribute', 'values', j], `regular expression ${JSON.stringify(v)} does not compile: ${(e as Error).message}`);
          }
        });
      }
      break;
    }
    case 'boolean_attribute':
      if (!p.boolean_attribute || p.boolean_attribute.key === '') add(['boolean_attribute', 'key'], 'key is required');
      break;
    case 'trace_state':
      if (!p.trace_state || p.trace_state.key === '') add(['trace_state', 'key'], 'key is required');
      break;
    case 'span_count': {
      const s = p.span_count;
      if (s && s.max_spans !== 0 && s.max_spans < s.min_spans)
        add(['span_count', 'max_spans'], `max_spans (${s.max_spans}) must be 0 or at least min_spans (${s.min_spans})`);
      break;
    }
    case 'dynamic': {
      const d = p.dynamic;
      if (!d || d.key_fields.length === 0) add(['dynamic', 'key_fields'], 'at least one key field is required');
      if (d) {
        try {
          if (parseDuration(d.adjustment_interval) <= 0) add(['dynamic', 'adjustment_interval'], 'adjustment_interval must be greater than 0');
        } catch (e) {
          add(['dynamic', 'adjustment_interval'], (e as Error).message);
        }
      }
      break;
    }
    case 'and': {
      const subs = (p as PolicyConfig).and?.and_sub_policy ?? [];
      if (subs.length === 0) add(['and', 'and_sub_policy'], 'at least one sub-policy is required');
      subs.forEach((s, j) => validatePolicy(s, [...path, 'and', 'and_sub_policy', j], problems));
      break;
    }
    case 'drop': {
      const subs = (p as PolicyConfig).drop?.drop_sub_policy ?? [];
      if (subs.length === 0) add(['drop', 'drop_sub_policy'], 'at least one sub-policy is required (an empty drop policy would drop every trace)');
      subs.forEach((s, j) => validatePolicy(s, [...path, 'drop', 'drop_sub_policy', j], problems));
      break;
    }
    case 'not': {
      const sub = (p as PolicyConfig).not?.not_sub_policy;
      if (!sub) add(['not', 'not_sub_policy'], 'not_sub_policy is required');
      else validatePolicy(sub, [...path, 'not', 'not_sub_policy'], problems);
      break;
    }
    case 'composite': {
      const cc = (p as PolicyConfig).composite;
      const subs = cc?.composite_sub_policy ?? [];
      if (!cc || cc.max_total_spans_per_second <= 0) add(['composite', 'max_total_spans_per_second'], 'max_total_spans_per_second must be greater than 0');
      if (subs.length === 0) add(['composite', 'composite_sub_policy'], 'at least one sub-policy is required');
      const subNames = new Set(subs.map((s) => s.name));
      let total = 0;
      (cc?.rate_allocation ?? []).forEach((ra, j) => {
        total += ra.percent;
        if (!subNames.has(ra.policy)) add(['composite', 'rate_allocation', j, 'policy'], `rate_allocation names "${ra.policy}", which is not a composite_sub_policy`);
      });
      if (total > 100) add(['composite', 'rate_allocation'], `rate_allocation percentages add up to ${total}, more than 100`);
      subs.forEach((s, j) => validatePolicy(s, [...path, 'composite', 'composite_sub_policy', j], problems));
      break;
    }
    default:
      break;
  }
}

/** Settings of tail_sampling that a config reload applies live (the buffer is kept). */
export const TAIL_SAMPLING_LIVE_SETTINGS = ['policies', 'sample_on_first_match', 'dry_run'] as const;
