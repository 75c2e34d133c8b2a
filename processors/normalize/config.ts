/**
 * Config of the normalize processor. A rule is an object with common fields
 * (`name`, `scope`, `where`) and exactly one operation key (`semconv`,
 * `rename`, `key_style`, `set`, `delete`, `allow`, `redact`, `template`,
 * `truncate`, `cardinality_limit`, `enrich_from_env`): the operation key is
 * the rule's discriminator. validate() (index.ts) reports a rule with none or
 * with two.
 *
 * Operation objects carry no `default: {}` themselves (a default would make
 * every rule have every operation); their fields have defaults that fill in
 * when the operation is present.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration } from '../../config/duration.js';
import { DETECTOR_NAMES, DEFAULT_SENSITIVE_PARAMS } from './detectors.js';
import { KNOWN_HTTP_METHODS, LATEST_SEMCONV_VERSION } from './semconv.js';

const Strings = (description: string) => Type.Array(Type.String(), { default: [], description });
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

export const SCOPES = ['resource', 'span', 'event', 'span_name'] as const;
export type RuleScope = (typeof SCOPES)[number];
const ScopeName = Type.Union(SCOPES.map((s) => Type.Literal(s)));

export const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;

const Where = Type.Object(
  {
    services: Strings('Apply only to spans whose resource service.name is one of these (empty: any).'),
    span_kinds: Type.Array(Type.Union(SPAN_KINDS.map((k) => Type.Literal(k))), { default: [], description: 'Apply only to spans of these kinds (empty: any).' }),
    span_name_pattern: Type.Optional(Type.String({ description: 'Apply only to spans whose name matches this regular expression. A leading (?i) makes it case-insensitive.' })),
  },
  { additionalProperties: false, default: {}, description: 'Filters: the rule applies only to spans matching all of them.' },
);

export const SemconvOp = Type.Object(
  {
    mode: Type.Union([Type.Literal('replace'), Type.Literal('duplicate')], {
      default: 'replace',
      description: 'replace: rename old keys to the new ones; duplicate: add the new keys and keep the old (like OTEL_SEMCONV_STABILITY_OPT_IN=http/dup).',
    }),
    target_version: Type.String({ default: LATEST_SEMCONV_VERSION, pattern: '^[0-9]+\\.[0-9]+(\\.[0-9]+)?$', description: 'Semantic-conventions version to migrate to; renames introduced after it are not applied.' }),
    domains: Type.Array(Type.Union([Type.Literal('http'), Type.Literal('database')]), { default: ['http', 'database'], description: 'Which groups of renames to apply (http includes networking).' }),
    known_methods: Type.Array(Type.String(), { default: KNOWN_HTTP_METHODS, description: 'HTTP methods kept as they are; any other method becomes _OTHER (original in http.request.method_original).' }),
  },
  { additionalProperties: false, description: 'Semantic-convention migration from the built-in table.' },
);

export const RenameOp = Type.Object(
  {
    keys: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Old key -> new key.' }),
    on_conflict: Type.Union([Type.Literal('keep_target'), Type.Literal('overwrite'), Type.Literal('keep_both')], {
      default: 'keep_target',
      description: 'When the new key already exists: keep_target drops the old attribute, overwrite replaces the existing value, keep_both changes nothing.',
    }),
  },
  { additionalProperties: false, description: 'Rename keys.' },
);

export const KeyStyleOp = Type.Object(
  {
    style: Type.Union([Type.Literal('lowercase'), Type.Literal('snake_case')], {
      default: 'snake_case',
      description: 'lowercase: lower-case the key; snake_case: dotted snake case (camelCase and dashes -> snake_case, dots kept, lower case).',
    }),
    except: Strings('Keys left as they are.'),
  },
  { additionalProperties: false, description: 'Rewrite keys into one style. A key whose restyled form already exists is left alone.' },
);

export const SetOp = Type.Object(
  {
    key: Type.String({ minLength: 1, description: 'Attribute to set.' }),
    value: Type.Optional(Scalar),
    copy_from: Type.Optional(Type.String({ description: 'Take the value from this attribute instead of `value` (nothing happens when it is absent).' })),
    action: Type.Union([Type.Literal('insert'), Type.Literal('update'), Type.Literal('upsert'), Type.Literal('default')], {
      default: 'upsert',
      description: 'insert: only when absent; update: only when present; upsert: always; default: when absent or an empty string.',
    }),
  },
  { additionalProperties: false, description: 'Set an attribute.' },
);

export const DeleteOp = Type.Object(
  {
    keys: Strings('Keys to delete.'),
    key_pattern: Type.Optional(Type.String({ description: 'Delete keys matching this regular expression.' })),
  },
  { additionalProperties: false, description: 'Delete attributes.' },
);

export const AllowOp = Type.Object(
  {
    keys: Strings('Keys that may stay.'),
    key_patterns: Strings('Regular expressions; keys matching any may stay.'),
  },
  { additionalProperties: false, description: 'Allow-list (fails closed): every attribute not listed is removed.' },
);

export const RedactOp = Type.Object(
  {
    keys: Strings('Keys whose whole value is redacted.'),
    key_pattern: Type.Optional(Type.String({ description: 'Keys matching this regular expression have their whole value redacted.' })),
    value_patterns: Strings('Regular expressions; matching parts of values are redacted.'),
    detectors: Type.Array(Type.Union(DETECTOR_NAMES.map((d) => Type.Literal(d))), { default: [], description: 'Built-in detectors run on every value (and span names with scope span_name).' }),
    exclude_keys: Strings('Keys never redacted by value detectors or patterns.'),
    action: Type.Union([Type.Literal('mask'), Type.Literal('hash')], { default: 'mask', description: 'mask: replace with mask_text; hash: replace with a hex SHA-256 (HMAC-SHA-256 with hash_key_file) of the value.' }),
    mask_text: Type.String({ default: '[REDACTED]', description: 'Replacement text for action mask.' }),
    hash_key_file: Type.Optional(Type.String({ description: 'File holding the HMAC key for action hash (read once at creation; trailing newline ignored).' })),
    hash_length: Type.Integer({ default: 16, minimum: 8, maximum: 64, description: 'Hex characters of the hash kept.' }),
    url_query: Type.Union([Type.Literal('off'), Type.Literal('sensitive'), Type.Literal('all')], {
      default: 'off',
      description: 'Sanitize URLs in url_keys: credentials in the userinfo and the values of sensitive (or all) query parameters become REDACTED.',
    }),
    url_keys: Type.Array(Type.String(), { default: ['url.full', 'url.query', 'http.url', 'http.target'], description: 'Keys holding URLs (url.query holds a bare query string).' }),
    sensitive_params: Type.Array(Type.String(), { default: DEFAULT_SENSITIVE_PARAMS, description: 'Query parameter names (case-insensitive) redacted when url_query is sensitive.' }),
  },
  { additionalProperties: false, description: 'Redact secrets.' },
);

const TemplatePatternSchema = Type.Object(
  {
    pattern: Type.String({ description: 'Regular expression.' }),
    placeholder: Type.String({ default: '{id}', description: 'Replacement for each match.' }),
  },
  { additionalProperties: false },
);

export const TemplateOp = Type.Object(
  {
    keys: Type.Array(Type.String(), { default: ['url.path', 'http.target'], description: 'Attributes templated (span and event scopes); URL-like: only the part before ? or # changes.' }),
    numeric: Type.Boolean({ default: true, description: 'All-digit segments become the placeholder.' }),
    uuid: Type.Boolean({ default: true, description: 'UUID segments become the placeholder.' }),
    hex_min_length: Type.Integer({ default: 16, minimum: 0, description: 'Hex segments at least this long become the placeholder (0: off).' }),
    placeholder: Type.String({ default: '{id}', description: 'Placeholder for ids.' }),
    patterns: Type.Array(TemplatePatternSchema, { default: [], description: 'User patterns, applied before the built-in ones.' }),
    original_to: Type.Optional(Type.String({ description: 'When the text changed, keep the original in this span attribute.' })),
  },
  { additionalProperties: false, description: 'Template span names and URL paths.' },
);

export const TruncateOp = Type.Object(
  {
    max_length: Type.Integer({ default: 0, minimum: 0, description: 'Cut string values (and array elements, nested values) to this many characters (0: off).' }),
    keys: Strings('Only these keys (empty: every key).'),
    max_attributes: Type.Integer({ default: 0, minimum: 0, description: 'Keep at most this many attributes; extra ones are dropped and counted in dropped_attributes_count (0: off).' }),
    priority_keys: Strings('Kept first when capping the attribute count, in this order.'),
  },
  { additionalProperties: false, description: 'Truncate values and cap attribute counts.' },
);

export const CardinalityOp = Type.Object(
  {
    keys: Type.Array(Type.String(), { minItems: 1, description: 'Keys limited, each separately.' }),
    max_values: Type.Integer({ default: 100, minimum: 1, description: 'Distinct values allowed per key per window.' }),
    window: Duration('1m', 'Length of the window after which the distinct values are forgotten.'),
    replacement: Type.String({ default: '_OTHER', description: 'Value given to new values past the limit.' }),
  },
  { additionalProperties: false, description: 'Limit distinct values per key.' },
);

export const EnrichOp = Type.Object(
  {
    override: Type.Boolean({ default: false, description: 'Overwrite attributes the application already set.' }),
    otel_resource_attributes: Type.Boolean({ default: true, description: 'Read OTEL_RESOURCE_ATTRIBUTES (k=v,k=v, percent-decoded).' }),
    otel_service_name: Type.Boolean({ default: true, description: 'Read OTEL_SERVICE_NAME into service.name.' }),
    kubernetes: Type.Boolean({ default: true, description: 'Map the downward-API variables K8S_POD_NAME, K8S_NAMESPACE_NAME, ... to k8s.* attributes.' }),
  },
  { additionalProperties: false, description: 'Add resource attributes from the environment.' },
);

export const Rule = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'Name used in metrics (default: the rule index).' })),
    scope: Type.Optional(
      Type.Union([ScopeName, Type.Array(ScopeName, { minItems: 1 })], {
        description: 'What the rule edits: resource, span or event attributes, or span_name. Default: span (resource for enrich_from_env).',
      }),
    ),
    where: Where,
    semconv: Type.Optional(SemconvOp),
    rename: Type.Optional(RenameOp),
    key_style: Type.Optional(KeyStyleOp),
    set: Type.Optional(SetOp),
    delete: Type.Optional(DeleteOp),
    allow: Type.Optional(AllowOp),
    redact: Type.Optional(RedactOp),
    template: Type.Optional(TemplateOp),
    truncate: Type.Optional(TruncateOp),
    cardinality_limit: Type.Optional(CardinalityOp),
    enrich_from_env: Type.Optional(EnrichOp),
  },
  { additionalProperties: false },
);

export const OPERATIONS = ['semconv', 'rename', 'key_style', 'set', 'delete', 'allow', 'redact', 'template', 'truncate', 'cardinality_limit', 'enrich_from_env'] as const;
export type Operation = (typeof OPERATIONS)[number];

export const NormalizeConfig = Type.Object(
  {
    preset: Type.Union([Type.Literal('none'), Type.Literal('recommended')], {
      default: 'none',
      description: 'recommended: semconv migration, templating of span names and URL paths, PII redaction and truncation. Runs before `rules`.',
    }),
    rules: Type.Array(Rule, { default: [], description: 'Ordered rules; resource-scoped ones run once per resource, before the span rules.' }),
    key_cache_size: Type.Integer({ default: 4096, minimum: 0, description: 'Distinct attribute keys whose rule lookups are cached.' }),
  },
  { additionalProperties: false, default: {} },
);

export type NormalizeConfig = Static<typeof NormalizeConfig>;
export type RuleConfig = Static<typeof Rule>;
