/** Factory for the `tail_sampling` processor. */
import type { ProcessorFactory } from '../../collector/component.js';
import { TailSamplingConfigSchema, validateTailSamplingConfig } from './config.js';
import { TailSamplingProcessor, TAIL_SAMPLING_LIVE_SETTINGS } from './processor.js';

export { TailSamplingProcessor, type DecisionRecord, type TailSamplingDeps } from './processor.js';
export { TailSamplingConfigSchema, validateTailSamplingConfig, type TailSamplingConfig } from './config.js';
export { MemoryTraceStore, PendingTrace, type TraceStore, SPAN_OVERHEAD_BYTES, TRACE_OVERHEAD_BYTES } from './store.js';

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
