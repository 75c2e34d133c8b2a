import type { ReceiverFactory } from '../../collector/component.js';
import { OtlpReceiverSchema } from './config.js';
import { OtlpReceiver } from './receiver.js';

export const otlpReceiverFactory: ReceiverFactory<typeof OtlpReceiverSchema> = {
  kind: 'receiver',
  type: 'otlp',
  configSchema: OtlpReceiverSchema,
  validate(config) {
    const p = config.protocols;
    if (!p.grpc && !p.http) return [{ path: ['protocols'], message: 'enable at least one protocol (grpc or http)' }];
    return [];
  },
  create(settings, config, next) {
    return new OtlpReceiver(settings, config, next);
  },
};

export { OtlpReceiver };
