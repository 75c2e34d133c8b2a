/** Factory of the `otlp` exporter (OTLP/gRPC). Its implementation is loaded only when a config uses it. */
import { SIGNALS } from '../../collector/signals.js';
import { lazyModule, type ExporterFactory } from '../../collector/component.js';
import { validateHelperConfig } from '../exporterhelper/config.js';
import { OtlpExporterConfigSchema, parseGrpcEndpoint } from './config.js';

const impl = lazyModule('otlp', () => import('./exporter.js'));

export const otlpExporterFactory: ExporterFactory<typeof OtlpExporterConfigSchema> = {
  type: 'otlp',
  kind: 'exporter',
  configSchema: OtlpExporterConfigSchema,
  signals: SIGNALS,
  validate(config) {
    const problems = validateHelperConfig(config);
    const ep = parseGrpcEndpoint(config.endpoint);
    if (!/^[^/\s]+:[0-9]{1,5}$/.test(ep.address)) {
      problems.push({ path: ['endpoint'], message: `endpoint must be host:port, got "${config.endpoint}"` });
    }
    return problems;
  },
  load: impl.load,
  create(settings, config) {
    return impl.get().createOtlpSignalExporter(settings, config);
  },
};
