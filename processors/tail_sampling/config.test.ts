import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { withDefaults } from '../../config/defaults.js';
import { TailSamplingConfigSchema, validateTailSamplingConfig, type TailSamplingConfig } from './config.js';
import { tailSamplingProcessorFactory } from './index.js';
import { processorFactories } from '../../collector/components.js';

const ajv = new Ajv({ strict: false, allErrors: true });
const check = ajv.compile(TailSamplingConfigSchema);

function load(raw: unknown): { schemaErrors: string[]; problems: ReturnType<typeof validateTailSamplingConfig>; cfg: TailSamplingConfig } {
  const cfg = withDefaults(TailSamplingConfigSchema, raw);
  const ok = check(cfg);
  const schemaErrors = ok ? [] : (check.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  return { schemaErrors, problems: ok ? validateTailSamplingConfig(cfg) : [], cfg };
}

describe('tail_sampling config', () => {
  it('is registered as the tail_sampling processor', () => {
    expect(processorFactories).toContain(tailSamplingProcessorFactory);
    expect(tailSamplingProcessorFactory.type).toBe('tail_sampling');
  });

  it('accepts a Collector configuration unchanged, with defaults filled in', () => {
    const raw = parse(readFileSync(new URL('./testdata/config.yaml', import.meta.url), 'utf8'));
    const { schemaErrors, problems, cfg } = load(raw);
    expect(schemaErrors).toEqual([]);
    expect(problems).toEqual([]);
    expect(cfg.buffer.max_bytes).toBe(64 * 1024 * 1024);
    expect(cfg.tick_interval).toBe('100ms');
    expect(cfg.policies[3].probabilistic?.hash_salt).toBe('');
  });

  it('has the Collector defaults', () => {
    const { cfg } = load({ policies: [{ name: 'a', type: 'always_sample' }] });
    expect(cfg.decision_wait).toBe('30s');
    expect(cfg.num_traces).toBe(50000);
    expect(cfg.decision_cache).toEqual({ sampled_cache_size: 0, non_sampled_cache_size: 0 });
    expect(cfg.sample_on_first_match).toBe(false);
  });

  it('rejects an unknown policy type and unknown keys in the schema', () => {
    const a = load({ policies: [{ name: 'x', type: 'sometimes_sample' }] });
    expect(a.schemaErrors.join('\n')).toMatch(/\/policies\/0\/type must be equal to one of the allowed values/);
    const b = load({ policies: [{ name: 'x', type: 'latency', latency: { treshold_ms: 5 } }] });
    expect(b.schemaErrors.join('\n')).toMatch(/\/policies\/0\/latency must NOT have additional properties/);
    const c = load({ policies: [{ name: 'x', type: 'probabilistic', probabilistic: { sampling_percentage: 150 } }] });
    expect(c.schemaErrors.join('\n')).toMatch(/\/policies\/0\/probabilistic\/sampling_percentage must be <= 100/);
    const d = load({ policies: [{ name: 'x', type: 'and', and: { and_sub_policy: [{ name: 'y', type: 'composite' }] } }] });
    expect(d.schemaErrors.join('\n')).toMatch(/\/policies\/0\/and\/and_sub_policy\/0\/type/);
    expect(load({}).schemaErrors.join('\n')).toMatch(/policies/);
  });

  it('reports semantic problems with the policy name and the key', () => {
    const { schemaErrors, problems } = load({
      policies: [
        { name: 'ok', type: 'always_sample' },
        { name: 'ottl', type: 'ottl_condition', ottl_condition: { span: ['x'] } },
        {
          name: 'routes',
          type: 'string_attribute',
          string_attribute: { key: 'http.route', values: ['/ok', '(unclosed'], enabled_regex_matching: true },
        },
        { name: 'nums', type: 'numeric_attribute', numeric_attribute: { key: 'n' } },
        { name: 'ok', type: 'always_sample' },
        {
          name: 'comp',
          type: 'composite',
          composite: {
            max_total_spans_per_second: 100,
            composite_sub_policy: [{ name: 'inner', type: 'status_code', status_code: { status_codes: [] } }],
            rate_allocation: [{ policy: 'nope', percent: 60 }, { policy: 'inner', percent: 50 }],
          },
        },
        { name: 'lat', type: 'latency', latency: { threshold_ms: 500, upper_threshold_ms: 100 } },
        { name: 'empty-drop', type: 'drop', drop: { drop_sub_policy: [] } },
      ],
    });
    expect(schemaErrors).toEqual([]);
    const byPath = new Map(problems.map((p) => [JSON.stringify(p.path), p.message]));
    expect(byPath.get('["policies",1,"type"]')).toMatch(/policy "ottl" .*not supported/);
    expect(byPath.get('["policies",2,"string_attribute","values",1]')).toMatch(/policy "routes" \(string_attribute\): regular expression "\(unclosed" does not compile/);
    expect(byPath.get('["policies",3,"numeric_attribute"]')).toMatch(/policy "nums".*min_value or max_value/);
    expect(byPath.get('["policies",4,"name"]')).toMatch(/duplicate policy name "ok"/);
    expect(byPath.get('["policies",5,"composite","rate_allocation",0,"policy"]')).toMatch(/policy "comp".*"nope"/);
    expect(byPath.get('["policies",5,"composite","rate_allocation"]')).toMatch(/110/);
    expect(byPath.get('["policies",5,"composite","composite_sub_policy",0,"status_code","status_codes"]')).toMatch(/policy "inner"/);
    expect(byPath.get('["policies",6,"latency","upper_threshold_ms"]')).toMatch(/policy "lat"/);
    expect(byPath.get('["policies",7,"drop","drop_sub_policy"]')).toMatch(/policy "empty-drop"/);
  });

  it('reports an unknown status code with the policy name', () => {
    const cfg = withDefaults(TailSamplingConfigSchema, { policies: [{ name: 'err', type: 'status_code', status_code: { status_codes: ['ERROR', 'FAILED'] } }] });
    expect(check(cfg)).toBe(false); // the schema's enum catches it
    const problems = validateTailSamplingConfig(cfg); // and validate() names the policy
    expect(problems).toEqual([{ path: ['policies', 0, 'status_code', 'status_codes', 1], message: expect.stringMatching(/policy "err".*unknown status code "FAILED"/) }]);
  });
});
