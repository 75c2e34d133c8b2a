/** Minimal Prometheus text-format parsing: enough to read counters and gauges by name and labels. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

export class Metrics {
  constructor(readonly samples: Sample[]) {}

  static parse(text: string): Metrics {
    return new Metrics(parseProm(text));
  }

  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }

  /** Sum over every sample of `name` whose labels include `filter`. */
  sum(name: string, filter?: Record<string, string>): number {
    let n = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (filter && !Object.entries(filter).every(([k, v]) => s.labels[k] === v)) continue;
      n += s.value;
    }
    return n;
  }

  /** First of several names that exists (the peer Collector's names differ across versions). */
  sumAny(names: string[], filter?: Record<string, string>): number {
    for (const n of names) if (this.has(n)) return this.sum(n, filter);
    return 0;
  }

  /** Sums of `name` grouped by one label. */
  by(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) {
      if (s.name !== name) continue;
      const k = s.labels[label] ?? '';
      out[k] = (out[k] ?? 0) + s.value;
    }
    return out;
  }

  value(name: string): number | undefined {
    return this.samples.find((s) => s.name === name)?.value;
  }
}
