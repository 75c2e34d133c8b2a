/** Small fake factories for the config tests, so they do not depend on the real components. */
import { Type } from '@sinclair/typebox';
import type { ExporterFactory, ProcessorFactory, ReceiverFactory } from '../../collector/component.js';
import { Duration } from '../duration.js';
import type { Factories } from '../schema.js';

const notUsed = (): never => {
  throw new Error('fake factory: create is not used in config tests');
};

const Endpoint = (def: string) => Type.String({ default: def, description: 'host:port to listen on.' });

export const otlpReceiver: ReceiverFactory = {
  type: 'otlp',
  kind: 'receiver',
  configSchema: Type.Object(
    {
      protocols: Type.Object(
        {
          grpc: Type.Object(
            {
              endpoint: Endpoint('127.0.0.1:4317'),
              max_recv_msg_size_mib: Type.Integer({ minimum: 1, maximum: 128, default: 4 }),
            },
            { additionalProperties: false, default: {} },
          ),
          http: Type.Object({ endpoint: Endpoint('127.0.0.1:4318') }, { additionalProperties: false, default: {} }),
        },
        { additionalProperties: false, default: {} },
      ),
    },
    { additionalProperties: false, default: {} },
  ),
  create: notUsed,
};

export const batchProcessor: ProcessorFactory = {
  type: 'batch',
  kind: 'processor',
  configSchema: Type.Object(
    {
      send_batch_size: Type.Integer({ minimum: 1, default: 512, description: 'Spans per batch.' }),
      timeout: Duration('200ms', 'Longest a span waits for its batch.'),
    },
    { additionalProperties: false, default: {} },
  ),
  create: notUsed,
};

/** Has a validate() that checks what a schema cannot: regexes compile. */
export const filterProcessor: ProcessorFactory = {
  type: 'filter',
  kind: 'processor',
  configSchema: Type.Object(
    {
      rules: Type.Array(
        Type.Object({ attribute: Type.String(), regex: Type.String() }, { additionalProperties: false }),
        { default: [] },
      ),
    },
    { additionalProperties: false, default: {} },
  ),
  validate(config: unknown) {
    const problems: Array<{ path: Array<string | number>; message: string }> = [];
    (config as { rules: Array<{ regex: string }> }).rules.forEach((r, i) => {
      try {
        new RegExp(r.regex);
      } catch {
        problems.push({ path: ['rules', i, 'regex'], message: `invalid regular expression ${JSON.stringify(r.regex)}` });
      }
    });
    return problems;
  },
  create: notUsed,
};

/** Policies as a union of maps told apart by `type`, as a sampling processor might declare them. */
export const samplerProcessor: ProcessorFactory = {
  type: 'sampler',
  kind: 'processor',
  configSchema: Type.Object(
    {
      policies: Type.Array(
        Type.Union([
          Type.Object(
            { name: Type.String(), type: Type.Literal('latency'), threshold_ms: Type.Integer({ minimum: 0 }) },
            { additionalProperties: false },
          ),
          Type.Object(
            {
              name: Type.String(),
              type: Type.Literal('probabilistic'),
              sampling_percentage: Type.Number({ minimum: 0, maximum: 100 }),
            },
            { additionalProperties: false },
          ),
        ]),
        { default: [] },
      ),
    },
    { additionalProperties: false, default: {} },
  ),
  create: notUsed,
};

export const otlpExporter: ExporterFactory = {
  type: 'otlp',
  kind: 'exporter',
  configSchema: Type.Object(
    {
      endpoint: Type.String({ description: 'host:port of the backend.' }),
      compression: Type.Union([Type.Literal('gzip'), Type.Literal('none')], { default: 'gzip' }),
      timeout: Duration('5s', 'Per-request timeout.'),
      headers: Type.Record(Type.String(), Type.String(), { default: {} }),
      tls: Type.Object(
        { insecure: Type.Boolean({ default: false }), ca_file: Type.Optional(Type.String()) },
        { additionalProperties: false, default: {} },
      ),
      sending_queue: Type.Object(
        { queue_size: Type.Integer({ minimum: 1, maximum: 100000, default: 1000 }) },
        { additionalProperties: false, default: {} },
      ),
    },
    { additionalProperties: false, default: {} },
  ),
  create: notUsed,
};

export const fileExporter: ExporterFactory = {
  type: 'file',
  kind: 'exporter',
  configSchema: Type.Object(
    {
      path: Type.String({ default: './data/traces.jsonl' }),
      rotation: Type.Object(
        { max_megabytes: Type.Integer({ minimum: 1, default: 100 }) },
        { additionalProperties: false, default: {} },
      ),
    },
    { additionalProperties: false, default: {} },
  ),
  create: notUsed,
};

export const debugExporter: ExporterFactory = {
  type: 'debug',
  kind: 'exporter',
  configSchema: Type.Object(
    { verbosity: Type.Union([Type.Literal('basic'), Type.Literal('normal'), Type.Literal('detailed')], { default: 'basic' }) },
    { additionalProperties: false, default: {} },
  ),
  create: notUsed,
};

export const fakeFactories: Factories = {
  receivers: [otlpReceiver],
  processors: [batchProcessor, filterProcessor, samplerProcessor],
  exporters: [otlpExporter, fileExporter, debugExporter],
};
