/** Factory of the `debug` exporter. */
import { lazyModule, type ExporterFactory } from '../../collector/component.js';
import { DebugExporterConfigSchema } from './config.js';

const impl = lazyModule('debug', () => import('./exporter.js'));

export const debugExporterFactory: ExporterFactory<typeof DebugExporterConfigSchema> = {
  type: 'debug',
  kind: 'exporter',
  configSchema: DebugExporterConfigSchema,
  load: impl.load,
  create(settings, config) {
    return new (impl.get().DebugExporter)(settings, config);
  },
};
