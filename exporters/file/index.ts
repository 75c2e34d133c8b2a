/** Factory of the `file` exporter. */
import type { ExporterFactory } from '../../collector/component.js';
import { FileExporterConfigSchema } from './config.js';
import { FileExporter } from './exporter.js';

export const fileExporterFactory: ExporterFactory<typeof FileExporterConfigSchema> = {
  type: 'file',
  kind: 'exporter',
  configSchema: FileExporterConfigSchema,
  create(settings, config) {
    return new FileExporter(settings, config);
  },
};
