/**
 * The shape of the config file. The loader validates with these same
 * definitions (the service schema here, each component's factory schema), and
 * `buildConfigSchema` assembles them into the JSON Schema published as
 * config/schema.json for editors.
 */
import { PIPELINE_ID_PATTERN } from '../collector/signals.js';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { ReceiverFactory, ProcessorFactory, ExporterFactory } from '../collector/component.js';
import { Duration } from './duration.js';

export interface Factories {
  receivers: ReceiverFactory[];
  processors: ProcessorFactory[];
  exporters: ExporterFactory[];
}

/** The component sections of the file, with the kind of component each holds. */
export const COMPONENT_SECTIONS = [
  { key: 'receivers', kind: 'receiver' },
  { key: 'processors', kind: 'processor' },
  { key: 'exporters', kind: 'exporter' },
] as const;
export type SectionKey = (typeof COMPONENT_SECTIONS)[number]['key'];

/** Every key allowed at the top level of the file. */
export const TOP_LEVEL_KEYS = ['receivers', 'processors', 'exporters', 'service'] as const;

/** Collector sections this collector does not have, with the reason given when they appear. */
export const UNSUPPORTED_TOP_LEVEL: Record<string, string> = {
  extensions: 'extensions are not supported by this collector',
  connectors: 'connectors are not supported by this collector',
};

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A component id: its type, optionally followed by "/" and a name. */
export const COMPONENT_TYPE_PATTERN = '^[a-zA-Z][a-zA-Z0-9_]*$';

const IdList = (description: string, opts: { minItems?: number; default?: string[] } = {}) =>
  Type.Array(Type.String({ minLength: 1 }), { description, ...opts });

export const PipelineSchema = Type.Object(
  {
    receivers: IdList('Receiver ids (from `receivers`) that feed this pipeline.', { minItems: 1 }),
    processors: IdList('Processor ids (from `processors`), applied in this order. May be empty.', { default: [] }),
    exporters: IdList('Exporter ids (from `exporters`); every item (span, log record, metric) is sent to each of them.', { minItems: 1 }),
  },
  { additionalProperties: false, description: 'A pipeline: receivers -> processors in order -> fan-out to exporters.' },
);

export const ServiceSchema = Type.Object(
  {
    pipelines: Type.Record(Type.String({ pattern: PIPELINE_ID_PATTERN }), PipelineSchema, {
      additionalProperties: false,
      minProperties: 1,
      description:
        'The pipelines to run, by id: `traces`, `logs` or `metrics`, optionally followed by "/" and a name (`logs/app`). Each carries its signal from its receivers through its processors to its exporters; a component may only be listed in pipelines of the signals its type supports.',
    }),
    telemetry: Type.Object(
      {
        logs: Type.Object(
          {
            level: Type.Union(
              LOG_LEVELS.map((l) => Type.Literal(l)),
              { default: 'info', description: 'Minimum level of the JSON log lines written to stdout.' },
            ),
          },
          { additionalProperties: false, default: {}, description: "The collector's own logs." },
        ),
        metrics: Type.Object(
          {
            address: Type.String({
              default: '127.0.0.1:8888',
              description: 'host:port of the HTTP server for /metrics, /healthz and /readyz.',
            }),
          },
          { additionalProperties: false, default: {}, description: "The collector's own metrics." },
        ),
        summary_interval: Duration('60s', 'How often to log one line with ingest, export and drop rates.'),
      },
      { additionalProperties: false, default: {}, description: "The collector's own telemetry." },
    ),
    shutdown_timeout: Duration('10s', 'On SIGTERM/SIGINT, how long exporters get to send what they hold.'),
    shutdown_delay: Duration(
      '2s',
      'On SIGTERM, how long to keep accepting before draining (the application may still be flushing its last spans as it stops). SIGINT skips it.',
    ),
    config_watch: Type.Boolean({
      default: true,
      description: "Reload the config when its file changes (watches the file's directory, so a Kubernetes ConfigMap symlink swap is seen) and on SIGHUP.",
    }),
  },
  { additionalProperties: false, description: 'Which components run, and how the collector reports on itself.' },
);
export type ServiceConfig = Static<typeof ServiceSchema>;

type JsonSchema = Record<string, unknown>;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Whether an empty value (YAML null) is acceptable where `schema` is expected:
 * for a map or list that may be empty (no required fields, no minimum count).
 * The loader reads such a value as the default, or as an empty map or list
 * (see `emptyValuesToDefaults` in load.ts), so the published schema allows it.
 */
export function emptyValueAllowed(schema: JsonSchema): boolean {
  const t = schema.type;
  if (t === 'object') return requiredWithoutDefault(schema).length === 0;
  if (t === 'array') return !(typeof schema.minItems === 'number' && schema.minItems > 0);
  return false;
}

/**
 * The fields a user must write. TypeBox lists every non-optional property as
 * required, but one with a default is filled in by the loader when missing.
 */
export function requiredWithoutDefault(schema: JsonSchema): string[] {
  const req = Array.isArray(schema.required) ? (schema.required as string[]) : [];
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  return req.filter((k) => props[k]?.default === undefined);
}

/**
 * Adapts a validation schema to what an editor sees: the raw file, before the
 * loader fills defaults. Fields with defaults are not required, and an empty
 * value is allowed where the loader reads it as the defaults (`grpc:` with
 * nothing under it); otherwise editors would flag valid files.
 */
function forEditors(schema: JsonSchema): JsonSchema {
  if (Array.isArray(schema.required)) {
    const req = requiredWithoutDefault(schema);
    if (req.length > 0) schema.required = req;
    else delete schema.required;
  }
  if (emptyValueAllowed(schema)) schema.type = [schema.type, 'null'];
  for (const key of ['properties', 'patternProperties', 'definitions', '$defs']) {
    const m = schema[key];
    if (m && typeof m === 'object') for (const v of Object.values(m)) if (v && typeof v === 'object') forEditors(v as JsonSchema);
  }
  for (const key of ['items', 'additionalProperties', 'not', 'if', 'then', 'else']) {
    const v = schema[key];
    if (Array.isArray(v)) v.forEach((s) => s && typeof s === 'object' && forEditors(s));
    else if (v && typeof v === 'object') forEditors(v as JsonSchema);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const v = schema[key];
    if (Array.isArray(v)) v.forEach((s) => s && typeof s === 'object' && forEditors(s));
  }
  return schema;
}

/** A plain JSON copy: drops TypeBox's symbol keys and anything not representable in JSON. */
function plain(schema: TSchema | JsonSchema): JsonSchema {
  return JSON.parse(JSON.stringify(schema)) as JsonSchema;
}

const SECTION_DESCRIPTIONS: Record<SectionKey, string> = {
  receivers: 'Receivers, by id (`type` or `type/name`). An empty value means all defaults.',
  processors: 'Processors, by id (`type` or `type/name`). An empty value means all defaults.',
  exporters: 'Exporters, by id (`type` or `type/name`). An empty value means all defaults.',
};

/**
 * JSON Schema (draft-07) of the whole config file, for editors: each section
 * maps `^type(/name)?$` to that type's config schema, unknown keys are
 * rejected, and descriptions and defaults are carried through. Output is
 * deterministic (types sorted) so the committed file can be checked for staleness.
 */
export function buildConfigSchema(factories: Factories): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const { key, kind } of COMPONENT_SECTIONS) {
    const list = [...(factories[key] as Array<{ type: string; configSchema: TSchema }>)].sort((a, b) =>
      a.type < b.type ? -1 : a.type > b.type ? 1 : 0,
    );
    const patternProperties: Record<string, JsonSchema> = {};
    for (const f of list) {
      const s = forEditors(plain(f.configSchema));
      patternProperties[`^${escapeRegex(f.type)}(/.+)?$`] = { title: `${f.type} ${kind}`, ...s };
    }
    properties[key] = {
      type: ['object', 'null'],
      description: SECTION_DESCRIPTIONS[key],
      patternProperties,
      additionalProperties: false,
    };
  }
  properties.service = forEditors(plain(ServiceSchema));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'sidecar-collector configuration',
    description:
      'Generated by `npm run schema` from the component factories and config/schema.ts; do not edit. See config/README.md.',
    type: 'object',
    properties,
    required: ['service'],
    additionalProperties: false,
  };
}

/** The exact text of config/schema.json for these factories. */
export function schemaText(factories: Factories): string {
  return JSON.stringify(buildConfigSchema(factories), null, 2) + '\n';
}
