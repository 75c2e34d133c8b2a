/** Factory of the `otlphttp` exporter (OTLP/HTTP, protobuf or JSON); the sender is loaded only when a config uses it. */
import { lazyModule, type ExporterFactory } from '../../collector/component.js';
import { validateHelperConfig } from '../exporterhelper/config.js';
import { OtlpHttpExporterConfigSchema, signalUrl } from './config.js';
import { SIGNALS } from '../../collector/signals.js';

const impl = lazyModule('otlphttp', () => import('./exporter.js'));

export const otlpHttpExporterFactory: ExporterFactory<typeof OtlpHttpExporterConfigSchema> = {
  type: 'otlphttp',
  kind: 'exporter',
  configSchema: OtlpHttpExporterConfigSchema,
  signals: SIGNALS,
  validate(config) {
    const problems = validateHelperConfig(config);
    for (const signal of SIGNALS) {
      const key = config[`${signal}_endpoint`] !== undefined ? `${signal}_endpoint` : 'endpoint';
      if (key === 'endpoint' && signal !== 'traces') continue; // reported once, for traces
      try {
        const u = new URL(signalUrl(config, signal));
        if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push({ path: [key], message: `URL scheme must be http or https, got "${u.protocol}"` });
      } catch {
        problems.push({ path: [key], message: `not a valid URL: "${key === 'endpoint' ? config.endpoint : config[key as 'traces_endpoint']}"` });
      }
    }
    return problems;
  },
  load: impl.load,
  create(settings, config) {
    return impl.get().createOtlpHttpSignalExporter(settings, config);
  },
};
