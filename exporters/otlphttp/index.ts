/** Factory of the `otlphttp` exporter (OTLP/HTTP, protobuf or JSON); the sender is loaded only when a config uses it. */
import { lazyModule, type ExporterFactory } from '../../collector/component.js';
import { validateHelperConfig } from '../exporterhelper/config.js';
import { OtlpHttpExporterConfigSchema, tracesUrl } from './config.js';

const impl = lazyModule('otlphttp', () => import('./exporter.js'));

export const otlpHttpExporterFactory: ExporterFactory<typeof OtlpHttpExporterConfigSchema> = {
  type: 'otlphttp',
  kind: 'exporter',
  configSchema: OtlpHttpExporterConfigSchema,
  validate(config) {
    const problems = validateHelperConfig(config);
    const key = config.traces_endpoint !== undefined ? 'traces_endpoint' : 'endpoint';
    try {
      const u = new URL(tracesUrl(config));
      if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push({ path: [key], message: `URL scheme must be http or https, got "${u.protocol}"` });
    } catch {
      problems.push({ path: [key], message: `not a valid URL: "${key === 'endpoint' ? config.endpoint : config.traces_endpoint}"` });
    }
    return problems;
  },
  load: impl.load,
  create(settings, config) {
    return impl.get().createOtlpHttpExporter(settings, config);
  },
};
