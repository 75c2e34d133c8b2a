import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileExporterFactory } from './index.js';
import { FileExporterConfigSchema } from './config.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { jsonToProtobuf } from '../../collector/pdata/otlp-json.js';
import { scanExportRequest } from '../../collector/pdata/spans.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';

function spans(n: number) {
  const t = traceIdHex();
  return makeSpans(Array.from({ length: n }, () => ({ traceId: t, spanId: spanIdHex(), name: 'write-me', attributes: { k: 'v' } })));
}

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'file-exp-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function create(cfg: Record<string, unknown>) {
  const telemetry = new Telemetry();
  const exp = fileExporterFactory.create({ id: 'file', logger: silentLogger(), telemetry, clock: new FakeClock() }, withDefaults(FileExporterConfigSchema, cfg));
  return { exp, telemetry };
}

describe('file exporter', () => {
  it('writes one OTLP/JSON request per line, creating the directory', async () => {
    const file = path.join(tmp, 'a', 'b', 'traces.jsonl');
    const { exp, telemetry } = create({ path: file });
    await exp.start();
    const b1 = spans(2);
    const b2 = spans(3);
    await exp.consume(b1);
    await exp.consume(b2);
    await exp.shutdown();
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    const back = lines.map((l) => scanExportRequest(jsonToProtobuf(l)).spans);
    expect(back[0].map((s) => s.spanId)).toEqual(b1.map((s) => s.spanId));
    expect(back[1].map((s) => `${s.traceId}/${s.spanId}`)).toEqual(b2.map((s) => `${s.traceId}/${s.spanId}`));
    expect(await telemetry.total('otelcol_exporter_sent_spans_total', { exporter: 'file' })).toBe(5);
    await expect(exp.consume(spans(1))).rejects.toMatchObject({ code: 'ERR_SHUTTING_DOWN' });
  });

  it('rotates by size and keeps max_backups files', async () => {
    const file = path.join(tmp, 'traces.jsonl');
    const { exp } = create({ path: file, rotation: { max_megabytes: 2000 / (1024 * 1024), max_backups: 2 } });
    await exp.start();
    const all: string[] = [];
    for (let i = 0; i < 12; i++) {
      const b = spans(2);
      all.push(...b.map((s) => s.spanId));
      await exp.consume(b);
    }
    await exp.shutdown();
    const names = fs.readdirSync(tmp).sort();
    expect(names).toEqual(['traces.jsonl', 'traces.jsonl.1', 'traces.jsonl.2']);
    for (const n of names) expect(fs.statSync(path.join(tmp, n)).size).toBeLessThanOrEqual(2000);
    // The newest data is in the live file, older in .1, older still in .2: together a suffix of what was written.
    const kept = ['traces.jsonl.2', 'traces.jsonl.1', 'traces.jsonl'].flatMap((n) =>
      fs.readFileSync(path.join(tmp, n), 'utf8').split('\n').filter(Boolean).flatMap((l) => scanExportRequest(jsonToProtobuf(l)).spans.map((s) => s.spanId)),
    );
    expect(kept).toEqual(all.slice(all.length - kept.length));
    expect(kept.length).toBeLessThan(all.length);
  });

  it('counts a write error as dropped spans with a reason', async (ctx) => {
    if (!fs.existsSync('/dev/full')) {
      ctx.skip('/dev/full is not available: write-error test skipped');
      return;
    }
    const { exp, telemetry } = create({ path: '/dev/full' });
    await exp.start();
    await exp.consume(spans(3));
    await exp.shutdown();
    expect(await telemetry.droppedByReason()).toEqual({ export_write_error: 3 });
    expect(await telemetry.total('otelcol_exporter_send_failed_spans_total', { exporter: 'file' })).toBe(3);
  });
});
