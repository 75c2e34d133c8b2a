/** Factory of the `otlp` exporter (OTLP/gRPC). */
import type { ExporterFactory } from '../../collector/component.js';
import { QueuedExporter, type HelperOptions } from '../exporterhelper/exporter.js';
import { validateHelperConfig } from '../exporterhelper/config.js';
import { OtlpExporterConfigSchema, type OtlpExporterConfig } from './config.js';
import { GrpcSender, parseGrpcEndpoint } from './sender.js';

export function createOtlpExporter(
  settings: Parameters<ExporterFactory['create']>[0],
  config: OtlpExporterConfig,
  options: HelperOptions = {},
): QueuedExporter {
  const sender = new GrpcSender(config);
  return new QueuedExporter(settings, config, sender.send, {
    ...options,
    onStart: () => sender.start(),
    onShutdown: async () => sender.close(),
  });
}

export const otlpExporterFactory: ExporterFactory<typeof OtlpExporterConfigSchema> = {
  type: 'otlp',
  kind: 'exporter',
  configSchema: OtlpExporterConfigSchema,
  validate(config) {
    const problems = validateHelperConfig(config);
    const ep = parseGrpcEndpoint(config.endpoint);
    if (!/^[^/\s]+:[0-9]{1,5}$/.test(ep.address)) {
      problems.push({ path: ['endpoint'], message: `endpoint must be host:port, got "${config.endpoint}"` });
    }
    return problems;
  },
  create(settings, config) {
    return createOtlpExporter(settings, config);
  },
};
