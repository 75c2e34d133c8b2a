import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { receiverFactories, processorFactories, exporterFactories } from '../collector/components.js';
import { buildConfigSchema, schemaText } from './schema.js';
import { fakeFactories } from './testdata/factories.js';

const STALE = 'config/schema.json is stale: run npm run build && npm run schema';

describe('config/schema.json', () => {
  it('matches the schema generated from the factories registered now', () => {
    const file = new URL('./schema.json', import.meta.url);
    const committed = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const current = schemaText({ receivers: receiverFactories, processors: processorFactories, exporters: exporterFactories });
    if (committed !== current) expect.fail(STALE);
  });
});

describe('buildConfigSchema', () => {
  const schema = buildConfigSchema(fakeFactories) as any;
  // Validate the way an editor does: no coercion, no defaults.
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  const accepts = (yaml: string) => validate(parse(yaml));

  it('maps each section to the component schemas by type and rejects anything else', () => {
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['service']);
    expect(Object.keys(schema.properties)).toEqual(['receivers', 'processors', 'exporters', 'service']);
    expect(Object.keys(schema.properties.exporters.patternProperties)).toEqual(['^debug(/.+)?$', '^file(/.+)?$', '^otlp(/.+)?$']);
    expect(schema.properties.exporters.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties.processors.patternProperties)).toEqual(['^batch(/.+)?$', '^filter(/.+)?$', '^sampler(/.+)?$']);
  });

  it('carries defaults, descriptions and titles through, for autocompletion', () => {
    const otlp = schema.properties.exporters.patternProperties['^otlp(/.+)?$'];
    expect(otlp.title).toBe('otlp exporter');
    expect(otlp.properties.compression.default).toBe('gzip');
    expect(otlp.properties.endpoint.description).toBe('host:port of the backend.');
    expect(otlp.properties.timeout.default).toBe('5s');
    expect(schema.properties.service.properties.shutdown_timeout.default).toBe('10s');
    expect(schema.properties.service.properties.telemetry.properties.metrics.properties.address.default).toBe('127.0.0.1:8888');
  });

  it('allows an empty value where the loader reads it as the defaults, and only there', () => {
    const grpc = schema.properties.receivers.patternProperties['^otlp(/.+)?$'].properties.protocols.properties.grpc;
    expect(grpc.type).toEqual(['object', 'null']);
    // The otlp exporter requires an endpoint, so an empty value is not a valid config for it.
    expect(schema.properties.exporters.patternProperties['^otlp(/.+)?$'].type).toBe('object');
    const pipeline = schema.properties.service.properties.pipelines.patternProperties['^(traces|logs|metrics)(/[^/\\s]+)?$'];
    expect(pipeline.properties.receivers.type).toBe('array');
    expect(pipeline.properties.processors.type).toEqual(['array', 'null']);
  });

  const service = 'service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp/backend]\n';

  it('accepts what the loader accepts', () => {
    expect(
      accepts(
        'receivers:\n  otlp:\n    protocols:\n      grpc:\n      http:\n' +
          'processors:\n  batch/fast:\n    timeout: 50ms\n' +
          'exporters:\n  otlp/backend:\n    endpoint: backend:4317\n    tls: { insecure: true }\n' +
          service,
      ),
    ).toBe(true);
  });

  it.each([
    ['an unknown top-level key', 'receivers:\n  otlp:\nextensions: {}\n' + service],
    ['an unknown component type', 'receivers:\n  otlp:\n  zipkin:\n' + service],
    ['an unknown component field', 'exporters:\n  otlp/backend:\n    endpont: x\n' + service],
    ['a missing required field', 'exporters:\n  otlp/backend:\n    compression: none\n' + service],
    ['a value of the wrong type', 'exporters:\n  otlp/backend:\n    endpoint: x\n    sending_queue: { queue_size: lots }\n' + service],
    ['a bad duration', 'exporters:\n  otlp/backend:\n    endpoint: x\n    timeout: 2 seconds\n' + service],
    ['an empty receivers list', 'service:\n  pipelines:\n    traces:\n      receivers: []\n      exporters: [debug]\n'],
    ['no service', 'receivers:\n  otlp:\n'],
  ])('rejects %s', (_name, yaml) => {
    expect(accepts(yaml)).toBe(false);
  });
});
