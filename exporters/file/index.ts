/** Factory of the `file` exporter. */
import { lazyModule, type ExporterFactory } from '../../collector/component.js';
import { FileExporterConfigSchema } from './config.js';

const impl = lazyModule('file', () => import('./exporter.js'));

export const fileExporterFactory: ExporterFactory<typeof FileExporterConfigSchema> = {
  type: 'file',
  kind: 'exporter',
  configSchema: FileExporterConfigSchema,
  load: impl.load,
  create(settings, config) {
    return new (impl.get().FileExporter)(settings, config);
  },
};
