import { describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { fillDefaults } from './fill-defaults.js';
import { withDefaults } from './defaults.js';
import { Rule } from '../processors/normalize/config.js';
import { RECOMMENDED_RULES, recommendedRules } from '../processors/normalize/preset.js';

describe('fillDefaults', () => {
  it('fills missing properties, recursing into objects and list items, and keeps what is set', () => {
    const schema = Type.Object({
      a: Type.Number({ default: 1 }),
      b: Type.Object({ c: Type.String({ default: 'x' }), d: Type.Optional(Type.String()) }, { default: {} }),
      list: Type.Array(Type.Object({ n: Type.Integer({ default: 5 }) }), { default: [] }),
      kept: Type.Optional(Type.Boolean()),
    });
    expect(fillDefaults(schema, {})).toEqual({ a: 1, b: { c: 'x' }, list: [] });
    expect(fillDefaults(schema, { a: 2, b: { d: 'y' }, list: [{}, { n: 7 }], kept: false })).toEqual({
      a: 2,
      b: { c: 'x', d: 'y' },
      list: [{ n: 5 }, { n: 7 }],
      kept: false,
    });
  });

  it('copies defaults, so filled values never share the schema objects', () => {
    const schema = Type.Object({ keys: Type.Array(Type.String(), { default: ['a'] }) });
    const v = fillDefaults(schema, {} as { keys: string[] });
    v.keys.push('b');
    expect(fillDefaults(schema, {})).toEqual({ keys: ['a'] });
  });

  it("gives the recommended preset's rules exactly what TypeBox's Value.Default gives them", () => {
    expect(recommendedRules()).toEqual(RECOMMENDED_RULES.map((r) => withDefaults(Rule, r)));
  });
});
