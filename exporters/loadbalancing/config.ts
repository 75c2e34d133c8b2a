/**
 * Config of the `loadbalancing` exporter, in the OpenTelemetry Collector's
 * shape: `routing_key`, `protocol.otlp` (any `otlp` exporter option except
 * `endpoint`) and exactly one `resolver`. Two options are this collector's
 * own: `reroute_after` and `probe_interval` (a backend that stays down).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, parseDuration } from '../../config/duration.js';
import type { ConfigProblem } from '../../collector/component.js';
import { helperProperties, TlsSchema, HeadersSchema, CompressionSchema, validateHelperConfig } from '../exporterhelper/config.js';

export const OtlpProtocolSchema = Type.Object(
  {
    tls: TlsSchema,
    headers: HeadersSchema,
    compression: CompressionSchema,
    ...helperProperties,
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'Options of the OTLP/gRPC exporter created for each backend (every `otlp` exporter option except endpoint). With sending_queue.storage: disk each backend gets its own queue file.',
  },
);

export const StaticResolverSchema = Type.Object(
  {
    hostnames: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Backends as host:port (a missing port means 4317).' }),
  },
  { additionalProperties: false, description: 'A fixed list of backends.' },
);

export const DnsResolverSchema = Type.Object(
  {
    hostname: Type.String({ minLength: 1, description: 'DNS name whose A/AAAA records are the backends (a headless Service).' }),
    port: Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: '^[0-9]{1,5}$' })], {
      default: 4317,
      description: 'Port of every backend.',
    }),
    interval: Duration('5s', 'Time between two resolutions.'),
    timeout: Duration('1s', 'Time limit of one resolution; on failure or timeout the last good answer stays.'),
  },
  { additionalProperties: false, description: 'Backends from the A/AAAA records of a name, resolved periodically.' },
);

export const K8sResolverSchema = Type.Object(
  {
    service: Type.String({
      minLength: 1,
      description: 'The Service as name.namespace (namespace defaults to the pod\'s own); its EndpointSlices are watched.',
    }),
    ports: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), { default: [4317], minItems: 1, description: 'Ports to send to on each ready endpoint.' }),
    timeout: Duration('1s', 'Time limit of one list call to the API server.'),
  },
  { additionalProperties: false, description: 'Ready endpoints of a Service, from its EndpointSlices (list + watch through the API server).' },
);

export const ResolverSchema = Type.Object(
  {
    static: Type.Optional(StaticResolverSchema),
    dns: Type.Optional(DnsResolverSchema),
    k8s: Type.Optional(K8sResolverSchema),
  },
  { additionalProperties: false, description: 'Where the backends come from: exactly one of static, dns, k8s.' },
);

export const LoadBalancingConfigSchema = Type.Object(
  {
    routing_key: Type.Union([Type.Literal('traceID'), Type.Literal('service')], {
      default: 'traceID',
      description: 'traceID: all spans of a trace go to one backend. service: all spans of a service.name go to one backend.',
    }),
    protocol: Type.Object({ otlp: OtlpProtocolSchema }, { additionalProperties: false, default: {}, description: 'How to send to each backend.' }),
    resolver: ResolverSchema,
    reroute_after: Duration(
      '30s',
      'A backend that has failed every send for this long is taken out of the ring: what is queued for it is re-routed to the new owners of its keys, until a probe succeeds (0 = never; data waits for the backend).',
    ),
    probe_interval: Duration('5s', 'How often a backend taken out of the ring is probed (an empty export request).'),
  },
  { additionalProperties: false, description: 'Routes spans by trace id (or service) to a set of OTLP backends with consistent hashing.' },
);

export type LoadBalancingConfig = Static<typeof LoadBalancingConfigSchema>;
export type OtlpProtocolConfig = Static<typeof OtlpProtocolSchema>;

export function validateLoadBalancingConfig(cfg: LoadBalancingConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = validateHelperConfig(cfg.protocol.otlp).map((p) => ({ ...p, path: ['protocol', 'otlp', ...p.path] }));
  const set = (['static', 'dns', 'k8s'] as const).filter((k) => cfg.resolver[k] !== undefined);
  if (set.length === 0) problems.push({ path: ['resolver'], message: 'set exactly one resolver: static, dns or k8s' });
  if (set.length > 1) problems.push({ path: ['resolver', set[1]], message: `only one resolver may be set (found ${set.join(', ')})` });
  const hosts = cfg.resolver.static?.hostnames ?? [];
  hosts.forEach((h, i) => {
    if (!/^[^/\s:]+(:[0-9]{1,5})?$|^\[[0-9a-fA-F:.]+\](:[0-9]{1,5})?$/.test(h)) {
      problems.push({ path: ['resolver', 'static', 'hostnames', i], message: `expected host or host:port, got "${h}"` });
    }
  });
  if (cfg.resolver.k8s && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/.test(cfg.resolver.k8s.service)) {
    problems.push({ path: ['resolver', 'k8s', 'service'], message: `expected a Service as name or name.namespace, got "${cfg.resolver.k8s.service}"` });
  }
  if (parseDuration(cfg.probe_interval) <= 0) problems.push({ path: ['probe_interval'], message: 'probe_interval must be greater than 0' });
  if (cfg.resolver.dns && parseDuration(cfg.resolver.dns.interval) <= 0) {
    problems.push({ path: ['resolver', 'dns', 'interval'], message: 'interval must be greater than 0' });
  }
  return problems;
}

/** The Collector's rule: a backend without a port gets 4317. */
export function endpointWithPort(endpoint: string): string {
  if (endpoint.startsWith('[')) return /\]:[0-9]+$/.test(endpoint) ? endpoint : `${endpoint}:4317`;
  return endpoint.includes(':') ? endpoint : `${endpoint}:4317`;
}
