import { Type, type Static } from '@sinclair/typebox';

export const GrpcSchema = Type.Object(
  {
    endpoint: Type.String({ default: '127.0.0.1:4317', description: 'host:port to listen on. Localhost by default: only the pod\'s own containers can send.' }),
    max_recv_msg_size_mib: Type.Number({ default: 4, exclusiveMinimum: 0, maximum: 256, description: 'Largest request accepted, in MiB; larger requests get RESOURCE_EXHAUSTED.' }),
    max_concurrent_streams: Type.Integer({ default: 100, minimum: 1, description: 'HTTP/2 streams per connection.' }),
    window_size_mib: Type.Number({
      default: 8,
      minimum: 0.0625,
      maximum: 2047,
      description: 'HTTP/2 flow-control window per stream and per connection, in MiB (the protocol default is 64 KiB). A larger window lets a client send a large request without waiting for WINDOW_UPDATE round trips.',
    }),
  },
  { additionalProperties: false },
);

export const HttpSchema = Type.Object(
  {
    endpoint: Type.String({ default: '127.0.0.1:4318', description: 'host:port to listen on.' }),
    max_request_body_size: Type.Integer({ default: 20 * 1024 * 1024, minimum: 1024, description: 'Largest body accepted in bytes, before and after decompression; larger bodies get 413.' }),
    traces_url_path: Type.String({ default: '/v1/traces', pattern: '^/', description: 'URL path for trace exports.' }),
    logs_url_path: Type.String({ default: '/v1/logs', pattern: '^/', description: 'URL path for log exports (served when a logs pipeline lists the receiver).' }),
    metrics_url_path: Type.String({ default: '/v1/metrics', pattern: '^/', description: 'URL path for metric exports (served when a metrics pipeline lists the receiver).' }),
  },
  { additionalProperties: false },
);

export const OtlpReceiverSchema = Type.Object(
  {
    protocols: Type.Object(
      {
        grpc: Type.Optional(GrpcSchema),
        http: Type.Optional(HttpSchema),
      },
      {
        additionalProperties: false,
        default: { grpc: {}, http: {} },
        description: 'Which protocols to serve. Omit a protocol to disable it; omit `protocols` to serve both with defaults.',
      },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type OtlpReceiverConfig = Static<typeof OtlpReceiverSchema>;
export type GrpcConfig = Static<typeof GrpcSchema>;
export type HttpConfig = Static<typeof HttpSchema>;

/** Splits "host:port" (IPv6 as "[::1]:4317"). */
export function splitHostPort(endpoint: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(endpoint);
  if (!m) throw new Error(`invalid endpoint "${endpoint}": want host:port`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}
