/** The `otlp` exporter (OTLP/gRPC): the shared queued exporter over a node:http2 gRPC sender. */
import type { CreateSettings } from '../../collector/component.js';
import { QueuedExporter, type HelperOptions } from '../exporterhelper/exporter.js';
import type { OtlpExporterConfig } from './config.js';
import { GrpcSender } from './sender.js';

export function createOtlpExporter(settings: CreateSettings, config: OtlpExporterConfig, options: HelperOptions = {}): QueuedExporter {
  const sender = new GrpcSender(config);
  return new QueuedExporter(settings, config, sender.send, {
    ...options,
    onStart: () => sender.start(),
    onShutdown: async () => sender.close(),
  });
}
