/** The `otlphttp` exporter: the shared queued exporter over an HTTP sender (protobuf or JSON). */
import type { CreateSettings } from '../../collector/component.js';
import { QueuedExporter, type HelperOptions } from '../exporterhelper/exporter.js';
import type { OtlpHttpExporterConfig } from './config.js';
import { HttpSender } from './sender.js';

export function createOtlpHttpExporter(settings: CreateSettings, config: OtlpHttpExporterConfig, options: HelperOptions = {}): QueuedExporter {
  const sender = new HttpSender(config, settings.clock);
  return new QueuedExporter(settings, config, sender.send, {
    ...options,
    onStart: () => sender.start(),
    onShutdown: async () => sender.close(),
  });
}
