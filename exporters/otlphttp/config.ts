import { Type, type Static } from '@sinclair/typebox';
import { helperProperties, TlsSchema, HeadersSchema, CompressionSchema } from '../exporterhelper/config.js';

export const OtlpHttpExporterConfigSchema = Type.Object(
  {
    endpoint: Type.String({
      default: 'http://localhost:4318',
      description: 'Base URL of the OTLP/HTTP backend; "/v1/traces" is appended unless traces_endpoint is set.',
    }),
    traces_endpoint: Type.Optional(Type.String({ description: 'Full URL for traces, used as is.' })),
    encoding: Type.Union([Type.Literal('proto'), Type.Literal('json')], {
      default: 'proto',
      description: 'Body encoding: protobuf (application/x-protobuf) or OTLP/JSON (application/json).',
    }),
    tls: TlsSchema,
    headers: HeadersSchema,
    compression: CompressionSchema,
    ...helperProperties,
  },
  { additionalProperties: false, default: {}, description: 'Sends spans over OTLP/HTTP.' },
);

export type OtlpHttpExporterConfig = Static<typeof OtlpHttpExporterConfigSchema>;

export function tracesUrl(cfg: Pick<OtlpHttpExporterConfig, 'endpoint' | 'traces_endpoint'>): string {
  if (cfg.traces_endpoint !== undefined && cfg.traces_endpoint !== '') return cfg.traces_endpoint;
  return cfg.endpoint.replace(/\/+$/, '') + '/v1/traces';
}
