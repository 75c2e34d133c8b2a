/** Factory of the `file` exporter. */
import { SIGNALS } from '../../collector/signals.js';
import type { ExporterFactory } from '../../collector/component.js';
import { FileExporterConfigSchema } from './config.js';
import { FileExporter } from './exporter.js';

export const fileExporterFactory: ExporterFactory<typeof FileExporterConfigSchema> = {
  type: 'file',
  kind: 'exporter',
  configSchema: FileExporterConfigSchema,
  signals: SIGNALS,
  create(settings, config) {
    return new FileExporter(settings, config);
  },
};
