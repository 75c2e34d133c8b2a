/**
 * The build precompiles every config schema (config/write-validators.ts); the
 * collector in dist/ loads those instead of compiling at start. These tests
 * check that the build covers every registered schema and that a precompiled
 * validator answers exactly as a freshly compiled one.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { receiverFactories, processorFactories, exporterFactories } from '../collector/components.js';
import { AJV_OPTIONS, schemaHash } from './load.js';
import { ServiceSchema } from './schema.js';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'config', 'validators');
const index = JSON.parse(readFileSync(path.join(dist, 'index.json'), 'utf8')) as Record<string, string>;
const requireDist = createRequire(path.join(dist, 'index.json'));

const all: Array<[string, object]> = [
  ['service', ServiceSchema],
  ...[...receiverFactories, ...processorFactories, ...exporterFactories].map((f) => [`${f.kind}-${f.type}`, f.configSchema] as [string, object]),
];

describe('precompiled config validators', () => {
  it.each(all)('the build has a validator for %s matching its current schema', (name, schema) => {
    expect(index[schemaHash(schema)]).toBe(`${name}.cjs`);
  });

  it('answers like a freshly compiled validator: defaults, coercion and errors', () => {
    const schema = processorFactories.find((f) => f.type === 'tail_sampling')!.configSchema;
    type V = ((d: unknown) => boolean) & { errors?: Array<{ instancePath: string; keyword: string }> | null };
    const mod = requireDist(`./${index[schemaHash(schema)]}`) as { default?: V } & V;
    const pre = (mod.default ?? mod) as V;
    const fresh = new Ajv(AJV_OPTIONS).compile(schema) as V;
    const good = () => ({ decision_wait: '10s', num_traces: '500', policies: [{ name: 'e', type: 'status_code', status_code: { status_codes: ['ERROR'] } }] });
    const a = good();
    const b = good();
    expect(pre(a)).toBe(true);
    expect(fresh(b)).toBe(true);
    expect(a).toEqual(b); // same defaults filled, same coercion ("500" -> 500)
    expect((a as { num_traces: unknown }).num_traces).toBe(500);
    const bad = () => ({ policies: [{ name: 'x', type: 'latency', latency: { threshold_ms: 'slow' } }], decison_wait: '1s' });
    expect(pre(bad())).toBe(false);
    expect(fresh(bad())).toBe(false);
    const key = (e: { instancePath: string; keyword: string }) => `${e.instancePath}:${e.keyword}`;
    expect(pre.errors!.map(key).sort()).toEqual(fresh.errors!.map(key).sort());
  });
});
