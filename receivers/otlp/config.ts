import { Type, type Static } from '@sinclair/typebox';
import { Duration } from '../../config/duration.js';

/**
 * Server TLS in the Collector's keys (config/configtls ServerConfig): a key
 * pair, optionally the CA that client certificates must chain to (mutual
 * TLS), the lowest protocol version, and how often to re-read the files
 * (besides re-reading them whenever their directory changes).
 */
export const ServerTlsSchema = Type.Object(
  {
    cert_file: Type.String({ description: 'PEM certificate chain the receiver presents. Required with `tls`.' }),
    key_file: Type.String({ description: 'PEM private key of cert_file. Required with `tls`.' }),
    client_ca_file: Type.Optional(
      Type.String({ description: 'PEM CA certificates that client certificates must chain to. When set, a client without a valid certificate is refused during the handshake (mutual TLS).' }),
    ),
    min_version: Type.Union([Type.Literal('1.2'), Type.Literal('1.3')], { default: '1.2', description: 'Lowest TLS version accepted.' }),
    reload_interval: Duration('0s', 'Also re-read the files on this interval (0: only when their directory changes, e.g. a Kubernetes Secret volume update).'),
  },
  { additionalProperties: false, description: 'Serve TLS. Files are re-read when they change on disk; connections already open keep their certificate.' },
);

export const AuthSchema = Type.Object(
  {
    bearer_token_file: Type.String({
      description: 'File holding the token clients must send as `Authorization: Bearer <token>` (surrounding whitespace ignored; re-read when it changes). Other requests get 401 / UNAUTHENTICATED.',
    }),
  },
  { additionalProperties: false, description: 'Require a bearer token on every request.' },
);

const Common = {
  tls: Type.Optional(ServerTlsSchema),
  auth: Type.Optional(AuthSchema),
  idle_timeout: Duration('60s', 'Close a connection with no request in progress for this long (SDKs export every few seconds and reconnect when needed; 0: never).'),
  max_connections: Type.Integer({ default: 256, minimum: 0, description: 'Open connections accepted at once; new connections beyond it are closed at once and counted (0: no limit).' }),
};

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
    ...Common,
    read_timeout: Duration('30s', 'A call whose request message has not fully arrived this long after its headers is reset (CANCEL) and counted (0: never).'),
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
    ...Common,
    read_header_timeout: Duration('10s', 'Close a connection whose request headers have not fully arrived this long after the request began (slowloris; 0: never).'),
    read_timeout: Duration('30s', 'Close a connection whose request (headers and body) has not fully arrived this long after it began (0: never).'),
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
export type ServerTlsConfig = Static<typeof ServerTlsSchema>;
export type AuthConfig = Static<typeof AuthSchema>;

/** Splits "host:port" (IPv6 as "[::1]:4317"). */
export function splitHostPort(endpoint: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(endpoint);
  if (!m) throw new Error(`invalid endpoint "${endpoint}": want host:port`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

/** True when `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}
