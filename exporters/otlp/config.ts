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

export interface ParsedEndpoint {
  address: string;
  /** Plaintext forced by an http:// prefix, TLS forced by https://, else undefined. */
  insecure: boolean | undefined;
}

export function parseGrpcEndpoint(endpoint: string): ParsedEndpoint {
  if (endpoint.startsWith('http://')) return { address: endpoint.slice(7).replace(/\/+$/, ''), insecure: true };
  if (endpoint.startsWith('https://')) return { address: endpoint.slice(8).replace(/\/+$/, ''), insecure: false };
  return { address: endpoint, insecure: undefined };
}
