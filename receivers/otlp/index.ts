import type { ReceiverFactory } from '../../collector/component.js';
import { OtlpReceiverSchema } from './config.js';
import { OtlpReceiver } from './receiver.js';

export const otlpReceiverFactory: ReceiverFactory<typeof OtlpReceiverSchema> = {
  kind: 'receiver',
  type: 'otlp',
  configSchema: OtlpReceiverSchema,
  signals: ['traces', 'logs', 'metrics'],
  validate(config) {
    const p = config.protocols;
    if (!p.grpc && !p.http) return [{ path: ['protocols'], message: 'enable at least one protocol (grpc or http)' }];
    return [];
  },
  create(settings, config, next, consumers) {
    return new OtlpReceiver(settings, config, next, consumers);
  },
};

export { OtlpReceiver };
