/** Factory of the `debug` exporter. */
import { SIGNALS } from '../../collector/signals.js';
import type { ExporterFactory } from '../../collector/component.js';
import { DebugExporterConfigSchema } from './config.js';
import { DebugExporter } from './exporter.js';

export const debugExporterFactory: ExporterFactory<typeof DebugExporterConfigSchema> = {
  type: 'debug',
  kind: 'exporter',
  signals: SIGNALS,
  configSchema: DebugExporterConfigSchema,
  create(settings, config) {
    return new DebugExporter(settings, config);
  },
};
