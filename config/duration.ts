/** Durations in config are Go-style strings ("30s", "500ms", "1m30s") or numbers of milliseconds. */
import { Type } from '@sinclair/typebox';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$';

/** Schema for a duration option; `def` is the default as written in YAML (for docs). */
export function Duration(def: string, description: string) {
  return Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Number({ minimum: 0 })], {
    default: def,
    description: `${description} A duration: "30s", "500ms", "1m", or a number of milliseconds.`,
  });
}

/** Parses a duration (already validated by the schema) into milliseconds. */
export function parseDuration(v: string | number): number {
  if (typeof v === 'number') return v;
  if (v === '0') return 0;
  let total = 0;
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(v)) !== null) {
    total += parseFloat(m[1]) * UNIT_MS[m[2]];
    consumed += m[0].length;
  }
  if (consumed !== v.length || consumed === 0) throw new Error(`invalid duration "${v}"`);
  return total;
}
