import { Type, type Static } from '@sinclair/typebox';
import { helperProperties, TlsSchema, HeadersSchema, CompressionSchema } from '../exporterhelper/config.js';

export const OtlpExporterConfigSchema = Type.Object(
  {
    endpoint: Type.String({
      default: 'localhost:4317',
      description: 'host:port of the OTLP/gRPC backend. An "http://" prefix means plaintext, "https://" TLS.',
    }),
    tls: TlsSchema,
    headers: HeadersSchema,
    compression: CompressionSchema,
    ...helperProperties,
  },
  { additionalProperties: false, default: {}, description: 'Sends spans over OTLP/gRPC.' },
);

export type OtlpExporterConfig = Static<typeof OtlpExporterConfigSchema>;
