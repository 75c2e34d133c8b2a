/** Factory for the `tail_sampling` processor. */
import type { ProcessorFactory } from '../../collector/component.js';
import { TailSamplingConfigSchema, validateTailSamplingConfig, TAIL_SAMPLING_LIVE_SETTINGS } from './config.js';
import { TailSamplingProcessor } from './processor.js';

export { TailSamplingConfigSchema, validateTailSamplingConfig, type TailSamplingConfig } from './config.js';

export const tailSamplingProcessorFactory: ProcessorFactory<typeof TailSamplingConfigSchema> = {
  type: 'tail_sampling',
  kind: 'processor',
  configSchema: TailSamplingConfigSchema,
  validate: validateTailSamplingConfig,
  liveSettings: TAIL_SAMPLING_LIVE_SETTINGS,
  create(settings, config, next) {
    return new TailSamplingProcessor(settings, config, next);
  },
};
