/**
 * Factories of the `loadbalancing` exporter, registered under both spellings
 * the Collector accepts (`loadbalancing`, `load_balancing`). The
 * implementation (and the gRPC client) is loaded only when a config uses it.
 */
import { lazyModule, type CreateSettings, type ExporterFactory } from '../../collector/component.js';
import { LoadBalancingConfigSchema, validateLoadBalancingConfig, type LoadBalancingConfig } from './config.js';

const impl = lazyModule('loadbalancing', () => import('./create.js'));

function factory(type: string, schema: typeof LoadBalancingConfigSchema): ExporterFactory<typeof LoadBalancingConfigSchema> {
  return {
    type,
    kind: 'exporter',
    configSchema: schema,
    validate: validateLoadBalancingConfig,
    load: impl.load,
    create(settings: CreateSettings, config: LoadBalancingConfig) {
      return impl.get().createLoadBalancingExporter(settings, config);
    },
  };
}

export const loadBalancingExporterFactory = factory('loadbalancing', LoadBalancingConfigSchema);
/** The same schema under its own description (precompiled validators are keyed by schema hash). */
export const loadBalancingAliasExporterFactory = factory('load_balancing', {
  ...LoadBalancingConfigSchema,
  description: 'The loadbalancing exporter under the spelling newer Collector releases use.',
});
