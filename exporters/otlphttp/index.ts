/** Factory of the `otlphttp` exporter (OTLP/HTTP, protobuf or JSON). */
import type { ExporterFactory, CreateSettings } from '../../collector/component.js';
import { QueuedExporter, type HelperOptions } from '../exporterhelper/exporter.js';
import { validateHelperConfig } from '../exporterhelper/config.js';
import { OtlpHttpExporterConfigSchema, tracesUrl, type OtlpHttpExporterConfig } from './config.js';
import { HttpSender } from './sender.js';

export function createOtlpHttpExporter(settings: CreateSettings, config: OtlpHttpExporterConfig, options: HelperOptions = {}): QueuedExporter {
  const sender = new HttpSender(config, settings.clock);
  return new QueuedExporter(settings, config, sender.send, {
    ...options,
    onStart: () => sender.start(),
    onShutdown: async () => sender.close(),
  });
}

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
  create(settings, config) {
    return createOtlpHttpExporter(settings, config);
  },
};
