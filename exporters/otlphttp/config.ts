import type { Signal } from '../../collector/signals.js';
import { Type, type Static } from '@sinclair/typebox';
import { helperProperties, TlsSchema, HeadersSchema, CompressionSchema } from '../exporterhelper/config.js';

export const OtlpHttpExporterConfigSchema = Type.Object(
  {
    endpoint: Type.String({
      default: 'http://localhost:4318',
      description: 'Base URL of the OTLP/HTTP backend; "/v1/traces", "/v1/logs" or "/v1/metrics" is appended unless that signal\'s *_endpoint is set.',
    }),
    traces_endpoint: Type.Optional(Type.String({ description: 'Full URL for traces, used as is.' })),
    logs_endpoint: Type.Optional(Type.String({ description: 'Full URL for logs, used as is.' })),
    metrics_endpoint: Type.Optional(Type.String({ description: 'Full URL for metrics, used as is.' })),
    encoding: Type.Union([Type.Literal('proto'), Type.Literal('json')], {
      default: 'proto',
      description: 'Body encoding: protobuf (application/x-protobuf) or OTLP/JSON (application/json).',
    }),
    tls: TlsSchema,
    headers: HeadersSchema,
    compression: CompressionSchema,
    ...helperProperties,
  },
  { additionalProperties: false, default: {}, description: 'Sends spans, log records and metrics over OTLP/HTTP.' },
);

export type OtlpHttpExporterConfig = Static<typeof OtlpHttpExporterConfigSchema>;

export function tracesUrl(cfg: Pick<OtlpHttpExporterConfig, 'endpoint' | 'traces_endpoint'>): string {
  return signalUrl(cfg, 'traces');
}

/** The URL of a signal: its `*_endpoint` as is, else `endpoint` + `/v1/<signal>`. */
export function signalUrl(cfg: Partial<Pick<OtlpHttpExporterConfig, 'traces_endpoint' | 'logs_endpoint' | 'metrics_endpoint'>> & { endpoint: string }, signal: Signal): string {
  const own = cfg[`${signal}_endpoint`];
  if (own !== undefined && own !== '') return own;
  return cfg.endpoint.replace(/\/+$/, '') + `/v1/${signal}`;
}
