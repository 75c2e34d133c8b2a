/**
 * Every collector config carried by a ConfigMap in these manifests loads with
 * the real loader (schema, defaults, semantic validation), so the examples
 * cannot drift from the config schema. Disk budgets stay under the emptyDir.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfigText } from '../../config/load.js';

type Obj = Record<string, any>;
const dir = import.meta.dirname;
const FILES = ['native-sidecar.yaml', 'classic-sidecar.yaml', 'loadtest.yaml', 'shared-decisions.yaml'];

function collectorConfigs(file: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
    const o = doc.toJS() as Obj | null;
    if (o?.kind !== 'ConfigMap' || typeof o.data?.['config.yaml'] !== 'string') continue;
    const text = o.data['config.yaml'] as string;
    if (!/^\s*service:/m.test(text)) continue; // the injector's own config is not a collector config
    out.push([o.metadata.name, text]);
  }
  return out;
}

describe.each(FILES)('%s', (file) => {
  const configs = collectorConfigs(file);
  it('has a collector ConfigMap', () => expect(configs.length).toBeGreaterThan(0));

  it.each(configs)('ConfigMap %s: config.yaml loads with the real loader', (_name, text) => {
    const cfg = loadConfigText(text, `${file}:config.yaml`, { env: {} });
    const ts = cfg.processors.get('tail_sampling')?.config as Obj | undefined;
    const otlp = cfg.exporters.get('otlp')!.config as Obj;
    expect(otlp.sending_queue.storage).toBe('disk');
    const spill = ts?.buffer?.disk?.max_bytes ?? 0;
    // Both files live on the same 1Gi emptyDir (the SQLite files can grow ~1.5x their budget at most).
    expect(otlp.sending_queue.max_bytes + spill).toBeLessThanOrEqual(2 ** 30 * 0.8);
    if (ts) expect(ts.buffer.disk.directory).not.toBe(otlp.sending_queue.directory);
  });
});
