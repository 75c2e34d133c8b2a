/** Builds the exporter and its resolver from a validated config. */
import type { CreateSettings } from '../../collector/component.js';
import { parseDuration } from '../../config/duration.js';
import type { LoadBalancingConfig } from './config.js';
import { LoadBalancingExporter, type LoadBalancingOptions } from './exporter.js';
import type { Resolver } from './resolvers/resolver.js';
import { StaticResolver } from './resolvers/static.js';
import { DnsResolver } from './resolvers/dns.js';
import { K8sResolver } from './resolvers/k8s.js';

export function createResolver(settings: CreateSettings, cfg: LoadBalancingConfig): Resolver {
  const r = cfg.resolver;
  if (r.static) return new StaticResolver(r.static.hostnames);
  if (r.dns) {
    return new DnsResolver({
      hostname: r.dns.hostname,
      port: r.dns.port,
      intervalMs: parseDuration(r.dns.interval),
      timeoutMs: parseDuration(r.dns.timeout),
      logger: settings.logger,
    });
  }
  if (r.k8s) return new K8sResolver({ service: r.k8s.service, ports: r.k8s.ports, timeoutMs: parseDuration(r.k8s.timeout), logger: settings.logger });
  throw new Error('loadbalancing: no resolver configured');
}

export function createLoadBalancingExporter(
  settings: CreateSettings,
  cfg: LoadBalancingConfig,
  opts: Partial<LoadBalancingOptions> = {},
): LoadBalancingExporter {
  return new LoadBalancingExporter(settings, cfg, { resolver: opts.resolver ?? createResolver(settings, cfg), ...opts });
}
