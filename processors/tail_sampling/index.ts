/** Factory for the `tail_sampling` processor. */
import { lazyModule, type ProcessorFactory } from '../../collector/component.js';
import { TailSamplingConfigSchema, validateTailSamplingConfig, TAIL_SAMPLING_LIVE_SETTINGS } from './config.js';

export { TailSamplingConfigSchema, validateTailSamplingConfig, type TailSamplingConfig } from './config.js';

const impl = lazyModule('tail_sampling', () => import('./processor.js'));

export const tailSamplingProcessorFactory: ProcessorFactory<typeof TailSamplingConfigSchema> = {
  type: 'tail_sampling',
  kind: 'processor',
  configSchema: TailSamplingConfigSchema,
  validate: validateTailSamplingConfig,
  liveSettings: TAIL_SAMPLING_LIVE_SETTINGS,
  load: impl.load,
  create(settings, config, next) {
    return new (impl.get().TailSamplingProcessor)(settings, config, next);
  },
};
