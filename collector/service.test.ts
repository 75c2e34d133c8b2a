import { describe, expect, it } from 'vitest';
import { loadImplementations, type ServiceConfig } from './service.js';

describe('loadImplementations', () => {
  it('loads the implementation of every type the pipeline uses, and of no other', async () => {
    const loaded: string[] = [];
    const factory = (type: string) => ({ type, load: async () => void loaded.push(type) });
    const entry = (id: string, type: string) => [id, { id, type, config: {}, factory: factory(type) }] as const;
    const config = {
      receivers: new Map([entry('otlp', 'otlp')]),
      processors: new Map([entry('batch', 'batch'), entry('tail_sampling', 'tail_sampling')]),
      exporters: new Map([entry('file', 'file'), entry('otlp', 'otlp-exporter')]),
      service: { pipelines: { traces: { receivers: ['otlp'], processors: ['batch'], exporters: ['file'] } }, shutdownTimeoutMs: 1000 },
    } as unknown as ServiceConfig;
    await loadImplementations(config);
    expect(loaded.sort()).toEqual(['batch', 'file', 'otlp']);
  });
});
