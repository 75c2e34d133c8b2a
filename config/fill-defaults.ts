/**
 * Fills in the defaults a JSON Schema declares, in place, the way the config
 * loader's validators do (Ajv `useDefaults`): a property that is missing and
 * whose schema has a `default` gets a copy of it; then objects recurse into
 * their `properties` and lists into `items`. Branches of `anyOf` / `oneOf` are
 * not entered (Ajv does not fill those either).
 *
 * For configs built in code at run time (the normalize preset's rules). It
 * replaces TypeBox's `Value.Default` there: that one walked about 2,000 schema
 * and value nodes at every start, enough work for V8 to optimize TypeBox's type
 * guards, which pages the optimizing compiler's code (~3.5 MiB of RSS) into an
 * idle collector. `withDefaults` (defaults.ts) stays for tests and benchmarks.
 */
interface SchemaNode {
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode | SchemaNode[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function fillDefaults<T>(schema: object, value: T): T {
  const s = schema as SchemaNode;
  const v: unknown = value === undefined && s.default !== undefined ? structuredClone(s.default) : value;
  if (isPlainObject(v) && s.properties) {
    for (const key of Object.keys(s.properties)) {
      const filled = fillDefaults(s.properties[key], v[key]);
      if (filled !== undefined) v[key] = filled;
    }
  } else if (Array.isArray(v) && isPlainObject(s.items)) {
    for (const item of v) fillDefaults(s.items, item);
  }
  return v as T;
}
