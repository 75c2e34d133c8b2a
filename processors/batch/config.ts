import { Type, type Static } from '@sinclair/typebox';
import { Duration, parseDuration } from '../../config/duration.js';
import type { ConfigProblem } from '../../collector/component.js';

export const BatchConfigSchema = Type.Object(
  {
    send_batch_size: Type.Integer({
      minimum: 0,
      default: 8192,
      description:
        'Number of spans after which a batch is sent, regardless of the timeout. 0 disables the size trigger (only the timeout, send_batch_max_size and send_batch_max_bytes send).',
    }),
    send_batch_max_size: Type.Integer({
      minimum: 0,
      default: 0,
      description:
        'Upper bound on spans in one batch; larger inputs are split. 0 means no limit. When set it must be at least send_batch_size.',
    }),
    send_batch_max_bytes: Type.Integer({
      minimum: 0,
      default: 0,
      description:
        'Byte-size trigger and bound: a batch is sent once its spans reach this many encoded bytes, and no batch holds more (a single larger span goes alone). 0 turns it off.',
    }),
    timeout: Duration(
      '200ms',
      'Time after the first span of a batch arrives at which the batch is sent whatever its size. 0 sends every input at once (still split by the max options).',
    ),
    max_pending_spans: Type.Integer({
      minimum: 1,
      default: 65536,
      description:
        'Most spans the processor holds at once: buffered, handed downstream and not yet settled, and held for re-sending after the next stage refused them. Beyond it new data is refused with a retryable error (an input arriving while nothing is pending is always taken).',
    }),
    max_pending_bytes: Type.Integer({
      minimum: 0,
      default: 67108864,
      description: 'Most encoded span bytes held at once (same accounting as max_pending_spans). 0 means no byte bound.',
    }),
  },
  { additionalProperties: false, default: {} },
);

export type BatchConfig = Static<typeof BatchConfigSchema>;

export function validateBatchConfig(c: BatchConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (c.send_batch_max_size > 0 && c.send_batch_max_size < c.send_batch_size) {
    problems.push({
      path: ['send_batch_max_size'],
      message: `send_batch_max_size (${c.send_batch_max_size}) must be 0 or at least send_batch_size (${c.send_batch_size})`,
    });
  }
  const biggestBatch = Math.max(c.send_batch_size, c.send_batch_max_size);
  if (c.max_pending_spans < biggestBatch) {
    problems.push({
      path: ['max_pending_spans'],
      message: `max_pending_spans (${c.max_pending_spans}) must be at least the batch size (${biggestBatch}), or batches could never fill`,
    });
  }
  if (c.max_pending_bytes > 0 && c.send_batch_max_bytes > 0 && c.max_pending_bytes < c.send_batch_max_bytes) {
    problems.push({
      path: ['max_pending_bytes'],
      message: `max_pending_bytes (${c.max_pending_bytes}) must be 0 or at least send_batch_max_bytes (${c.send_batch_max_bytes})`,
    });
  }
  try {
    parseDuration(c.timeout);
  } catch (e) {
    problems.push({ path: ['timeout'], message: (e as Error).message });
  }
  return problems;
}
