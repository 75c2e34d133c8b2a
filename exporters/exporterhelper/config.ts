/**
 * Config pieces shared by every network exporter: `timeout`, `retry_on_failure`,
 * `sending_queue`, `circuit_breaker`, plus `tls`, `headers` and `compression`.
 * Exporters spread `helperProperties` into their own TypeBox object.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, parseDuration } from '../../config/duration.js';
import type { ConfigProblem } from '../../collector/component.js';

export const RetryOnFailureSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Retry failed sends that the backend marks retryable.' }),
    initial_interval: Duration('5s', 'Wait after the first failure.'),
    max_interval: Duration('30s', 'Upper bound of the wait between two attempts.'),
    multiplier: Type.Number({ default: 1.5, minimum: 1, description: 'Factor applied to the wait after each failure.' }),
    randomization_factor: Type.Number({
      default: 0.5,
      minimum: 0,
      maximum: 1,
      description: 'Jitter: each wait is drawn uniformly from [wait*(1-f), wait*(1+f)].',
    }),
    max_elapsed_time: Duration('300s', 'Give up on a request after this much time spent trying it (0 = never give up).'),
  },
  { additionalProperties: false, default: {}, description: 'Exponential backoff for retryable failures.' },
);

export const MiB = 1024 * 1024;

export const SendingQueueSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Queue requests in memory between the pipeline and the senders.' }),
    num_consumers: Type.Integer({ default: 2, minimum: 1, description: 'Concurrent sends.' }),
    queue_size: Type.Integer({ default: 1000, minimum: 1, description: 'Capacity in requests (batches).' }),
    max_bytes: Type.Integer({ default: 64 * MiB, minimum: 1, description: 'Capacity in encoded bytes (memory), or the budget of the queue file (storage: disk).' }),
    block_on_overflow: Type.Boolean({
      default: false,
      description: 'When full, wait for room (up to block_timeout) instead of refusing at once.',
    }),
    block_timeout: Duration('5s', 'With block_on_overflow, the longest a caller waits for room before it is refused.'),
    storage: Type.Union([Type.Literal('memory'), Type.Literal('disk')], {
      default: 'memory',
      description:
        'memory: requests are lost on restart. disk: requests are kept in a SQLite file under `directory` until the backend accepts them, replayed in order after a restart (at-least-once); bounded by max_bytes.',
    }),
    directory: Type.String({ default: '', description: 'With storage: disk, the directory of the queue file (one file per exporter, named after its id). Required for disk.' }),
    when_full: Type.Union([Type.Literal('refuse'), Type.Literal('drop_oldest')], {
      default: 'refuse',
      description:
        'With storage: disk, when max_bytes is reached: refuse new data with a retryable error, or drop the oldest requests not being sent (counted as queue_full drops).',
    }),
    sync: Type.Union([Type.Literal('normal'), Type.Literal('full')], {
      default: 'normal',
      description: 'With storage: disk. normal: a request is in the WAL before consume() resolves (survives kill -9); full: also fsynced (survives power loss).',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Bounded queue between the pipeline and the senders; a refusal is a retryable error for the caller.' },
);

export const CircuitBreakerSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Stop sending to a failing backend and probe it one request at a time.' }),
    failure_threshold: Type.Integer({ default: 5, minimum: 1, description: 'Consecutive retryable failures that open the circuit.' }),
  },
  { additionalProperties: false, default: {} },
);

export const TlsSchema = Type.Object(
  {
    insecure: Type.Boolean({ default: false, description: 'Plaintext connection (no TLS).' }),
    ca_file: Type.Optional(Type.String({ description: 'PEM file of CA certificates that verify the server (default: system roots).' })),
    cert_file: Type.Optional(Type.String({ description: 'PEM client certificate for mutual TLS (with key_file).' })),
    key_file: Type.Optional(Type.String({ description: 'PEM client private key for mutual TLS (with cert_file).' })),
    insecure_skip_verify: Type.Boolean({ default: false, description: 'Do not verify the server certificate (testing only).' }),
  },
  { additionalProperties: false, default: {} },
);

export const HeaderValueSchema = Type.Union([
  Type.String(),
  Type.Object(
    { file: Type.String({ description: 'Read the value from this file (trimmed), re-read when the file changes.' }) },
    { additionalProperties: false },
  ),
]);

export const HeadersSchema = Type.Record(Type.String(), HeaderValueSchema, {
  default: {},
  description: 'Extra headers (gRPC metadata) sent with every request. A value may be { file: PATH } for rotating tokens.',
});

export const CompressionSchema = Type.Union([Type.Literal('gzip'), Type.Literal('none')], {
  default: 'gzip',
  description: 'Compression of request bodies.',
});

export const IsolateRejectedSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'When the backend refuses a batch as invalid (HTTP 400, gRPC INVALID_ARGUMENT), send its halves instead, recursively, so only the spans it truly rejects are dropped (counted as backend_rejected).',
    }),
    max_extra_requests: Type.Integer({
      default: 64,
      minimum: 1,
      description:
        'Requests one refused batch may cost beyond the first. One bad span in 8192 needs at most 26 (two per halving, 13 halvings); when the budget is spent, a part still refused is dropped whole.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Find the bad spans of a batch the backend refuses as invalid, instead of dropping the whole batch.' },
);

/** The options every queued, retrying exporter has. */
export const helperProperties = {
  timeout: Duration('5s', 'Time limit of one send attempt.'),
  retry_on_failure: RetryOnFailureSchema,
  sending_queue: SendingQueueSchema,
  circuit_breaker: CircuitBreakerSchema,
  isolate_rejected: IsolateRejectedSchema,
};

export type RetryConfig = Static<typeof RetryOnFailureSchema>;
export type QueueConfig = Static<typeof SendingQueueSchema>;
export type CircuitBreakerConfig = Static<typeof CircuitBreakerSchema>;
export type IsolateRejectedConfig = Static<typeof IsolateRejectedSchema>;
export type TlsConfig = Static<typeof TlsSchema>;
export type HeadersConfig = Static<typeof HeadersSchema>;

export interface HelperConfig {
  timeout: string | number;
  retry_on_failure: RetryConfig;
  sending_queue: QueueConfig;
  circuit_breaker: CircuitBreakerConfig;
  /** Absent: on, with the schema's defaults. */
  isolate_rejected?: IsolateRejectedConfig;
}

/** Problems a schema cannot express, shared by the network exporters. */
export function validateHelperConfig(cfg: HelperConfig & { tls?: TlsConfig }): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const r = cfg.retry_on_failure;
  if (parseDuration(r.initial_interval) > parseDuration(r.max_interval)) {
    problems.push({ path: ['retry_on_failure', 'initial_interval'], message: 'initial_interval must not exceed max_interval' });
  }
  if (parseDuration(cfg.timeout) <= 0) problems.push({ path: ['timeout'], message: 'timeout must be greater than 0' });
  const q = cfg.sending_queue;
  if (q.storage === 'disk') {
    if (q.directory === '') problems.push({ path: ['sending_queue', 'directory'], message: 'storage: disk needs a directory' });
    if (!q.enabled) problems.push({ path: ['sending_queue', 'enabled'], message: 'storage: disk needs the sending queue enabled' });
  }
  const tls = cfg.tls;
  if (tls && (tls.cert_file === undefined) !== (tls.key_file === undefined)) {
    problems.push({ path: ['tls', tls.cert_file === undefined ? 'cert_file' : 'key_file'], message: 'cert_file and key_file must be set together' });
  }
  return problems;
}
