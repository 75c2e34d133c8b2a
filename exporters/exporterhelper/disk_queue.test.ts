/**
 * sending_queue.storage: disk: requests survive shutdown and crashes, are
 * replayed in order, and a long outage is bounded by max_bytes with the
 * configured behaviour and exact counts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { QueuedExporter, type SendFn } from './exporter.js';
import { helperProperties, validateHelperConfig } from './config.js';
import { FakeTimers, flush } from './testing.js';
import { DiskRequestQueue } from './disk_queue.js';
import type { ExportRequest } from './queue.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { CollectorError, RetryableError } from '../../collector/errors.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';
import { InjectedFault, StorageError } from '../../storage/db.js';
import { releaseQueue } from '../../storage/registry.js';
import { tempDir, removeDir, canMountTmpfs, mountTmpfs, unmount } from '../../storage/testdata/helpers.js';

const schema = Type.Object(helperProperties, { additionalProperties: false, default: {} });

/** n spans whose first span's name carries `seq`, so the order of arrival can be checked. */
function spans(n: number, seq: number) {
  const t = traceIdHex();
  return makeSpans(Array.from({ length: n }, (_, i) => ({ traceId: t, spanId: spanIdHex(), name: i === 0 ? `seq-${seq}-` : 'x' })));
}
const seqOf = (req: ExportRequest) => Number(/seq-(\d+)-/.exec(Buffer.from(req.bytes).toString('latin1'))![1]);

/** A backend that is down (retryable errors) until `up`, then records what it gets. */
class Backend {
  up = false;
  got: number[] = [];
  bytes: Buffer[] = [];
  hang = false;
  send: SendFn = (req, signal) =>
    new Promise((resolve, reject) => {
      if (this.hang) {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        return;
      }
      setImmediate(() => {
        if (!this.up) return reject(new RetryableError('backend down'));
        this.got.push(seqOf(req));
        this.bytes.push(Buffer.from(req.bytes));
        resolve();
      });
    });
}

const dirs: string[] = [];
const live: QueuedExporter[] = [];
afterEach(async () => {
  for (const e of live.splice(0)) await e.shutdown(0);
  await flush();
  for (const d of dirs.splice(0)) removeDir(d);
});
function dir(): string {
  const d = tempDir('exp-queue-');
  dirs.push(d);
  return d;
}

function make(directory: string, queue: Record<string, unknown> = {}, id = 'otlp/backend', backend = new Backend()) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const telemetry = new Telemetry();
  const cfg = withDefaults(schema, {
    sending_queue: { storage: 'disk', directory, num_consumers: 1, ...queue },
    retry_on_failure: { max_elapsed_time: '0s', initial_interval: '1s', max_interval: '1s' },
    circuit_breaker: { enabled: false },
  });
  const exp = new QueuedExporter({ id, logger: silentLogger(), telemetry, clock }, cfg, backend.send, { timers, random: () => 0.5 });
  live.push(exp);
  const metric = (name: string, labels: Record<string, string> = {}) => telemetry.total(name, labels);
  return { exp, backend, timers, telemetry, metric, clock };
}

/** Lets the exporter work until `cond`, advancing fake time by 1 s steps. */
async function until(timers: FakeTimers, cond: () => boolean, steps = 200) {
  for (let i = 0; i < steps && !cond(); i++) await timers.advance(1000);
  expect(cond()).toBe(true);
}

describe('sending_queue.storage: disk', () => {
  it('config: disk needs a directory and an enabled queue', () => {
    const problems = validateHelperConfig(withDefaults(schema, { sending_queue: { storage: 'disk', enabled: false } }) as never);
    expect(problems.map((p) => p.path.join('.'))).toEqual(['sending_queue.directory', 'sending_queue.enabled']);
  });

  it('requests left at shutdown stay on disk and are sent, in order and byte for byte, after a restart', async () => {
    const d = dir();
    const a = make(d);
    await a.exp.start();
    for (let i = 0; i < 20; i++) await a.exp.consume(spans(3, i));
    expect(a.exp.queue.durable).toBe(true);
    await a.timers.advance(3000);
    await a.exp.shutdown(0);
    expect(await a.telemetry.droppedByReason()).toEqual({});
    expect(await a.metric('otelcol_exporter_send_failed_spans_total')).toBe(0);
    expect(fs.readdirSync(d)).toContain('queue-otlp_backend.sqlite');

    const b = make(d);
    b.backend.up = true;
    await b.exp.start();
    await until(b.timers, () => b.backend.got.length >= 20);
    expect(b.backend.got).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await b.metric('otelcol_exporter_sent_spans_total')).toBe(60);
    // The request sent at least once before the restart is counted as redelivered.
    expect(await b.metric('sidecar_queue_redelivered_total')).toBe(1);
  });

  it('a request in flight at a crash is delivered again after the restart and counted as redelivered', async () => {
    const d = dir();
    const a = make(d);
    a.backend.hang = true;
    await a.exp.start();
    for (let i = 0; i < 3; i++) await a.exp.consume(spans(2, i));
    await flush();
    // kill -9: the database closes without acks or lease bookkeeping being committed.
    const dq = (a.exp.queue as DiskRequestQueue).durableQueue;
    dq.sdb.close();
    await releaseQueue(dq);
    live.splice(live.indexOf(a.exp), 1);

    const b = make(d);
    b.backend.up = true;
    await b.exp.start();
    await until(b.timers, () => b.backend.got.length >= 3);
    expect(b.backend.got).toEqual([0, 1, 2]);
    expect(await b.metric('sidecar_queue_redelivered_total')).toBeGreaterThanOrEqual(1);
  });

  it('backend down for a long stretch, when_full: refuse: nothing lost within max_bytes, beyond it refused with exact counts', async () => {
    const d = dir();
    const probe = spans(10, 0);
    const size = (await import('../../collector/pdata/encode.js')).encodeExportRequest(probe).length;
    const fit = 25;
    const a = make(d, { max_bytes: size * fit + Math.floor(size / 2) });
    await a.exp.start();
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      // Hours of outage: the exporter keeps retrying the head request; fake time moves on.
      await a.timers.advance(60_000);
      try {
        await a.exp.consume(spans(10, i));
        accepted++;
      } catch (err) {
        expect(err).toBeInstanceOf(CollectorError);
        expect((err as CollectorError).retryable).toBe(true);
        expect((err as CollectorError).code).toBe('ERR_QUEUE_FULL');
        refused++;
      }
    }
    expect(accepted).toBe(fit);
    expect(refused).toBe(40 - fit);
    expect(await a.metric('otelcol_exporter_enqueue_failed_spans_total')).toBe(refused * 10);
    expect(await a.telemetry.droppedByReason()).toEqual({});
    a.backend.up = true;
    await until(a.timers, () => a.backend.got.length >= fit);
    expect(a.backend.got).toEqual(Array.from({ length: fit }, (_, i) => i));
    expect(await a.metric('otelcol_exporter_sent_spans_total')).toBe(fit * 10);
  });

  it('backend down for a long stretch, when_full: drop_oldest: the newest requests are kept, the dropped ones counted exactly', async () => {
    const d = dir();
    const size = (await import('../../collector/pdata/encode.js')).encodeExportRequest(spans(10, 0)).length;
    const fit = 25;
    const a = make(d, { max_bytes: size * fit + Math.floor(size / 2), when_full: 'drop_oldest' });
    await a.exp.start();
    for (let i = 0; i < 40; i++) {
      await a.timers.advance(60_000);
      await a.exp.consume(spans(10, i)); // never refused
    }
    // One request is leased (being retried), so it is never dropped; the oldest others make room.
    const dropped = (await a.telemetry.droppedByReason()).queue_full ?? 0;
    expect(dropped).toBe((40 - fit) * 10);
    a.backend.up = true;
    await until(a.timers, () => a.backend.got.length >= fit);
    const got = a.backend.got;
    expect(got.length).toBe(fit);
    expect(got[0]).toBe(0); // the request in flight during the outage
    expect(got.slice(1)).toEqual(Array.from({ length: fit - 1 }, (_, i) => 40 - (fit - 1) + i)); // the newest
    expect(await a.metric('otelcol_exporter_sent_spans_total') + dropped).toBe(400);
  });

  it('two exporters with disk storage in one directory use separate files', async () => {
    const d = dir();
    const a = make(d, {}, 'otlp/a');
    const b = make(d, {}, 'otlphttp/b');
    a.backend.up = true;
    b.backend.up = true;
    await a.exp.start();
    await b.exp.start();
    await a.exp.consume(spans(1, 1));
    await b.exp.consume(spans(1, 2));
    await until(a.timers, () => a.backend.got.length === 1);
    await until(b.timers, () => b.backend.got.length === 1);
    expect(a.backend.got).toEqual([1]);
    expect(b.backend.got).toEqual([2]);
    expect(fs.readdirSync(d).filter((f) => f.endsWith('.sqlite')).sort()).toEqual(['queue-otlp_a.sqlite', 'queue-otlphttp_b.sqlite']);
  });

  it('disk full: refuses with a retryable error (counted), and accepts again once space returns', async () => {
    const d = dir();
    const a = make(d);
    await a.exp.start();
    const dq = (a.exp.queue as DiskRequestQueue).durableQueue;
    dq.sdb.faultHook = () => new InjectedFault('SQLITE_FULL');
    await expect(a.exp.consume(spans(4, 1))).rejects.toMatchObject({ retryable: true });
    expect(await a.metric('otelcol_exporter_enqueue_failed_spans_total')).toBe(4);
    dq.sdb.faultHook = undefined;
    a.clock.advance(2000);
    await expect(a.exp.consume(spans(4, 2))).resolves.toBeUndefined();
    a.backend.up = true;
    await until(a.timers, () => a.backend.got.length === 1);
    expect(a.backend.got).toEqual([2]);
  });

  it('a corrupt queue file is moved aside; the exporter starts with a fresh one', async () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'queue-otlp_backend.sqlite'), Buffer.alloc(4096, 0x33));
    const a = make(d);
    expect(await a.metric('sidecar_storage_corrupt_files_total')).toBe(1);
    a.backend.up = true;
    await a.exp.start();
    await a.exp.consume(spans(1, 7));
    await until(a.timers, () => a.backend.got.length === 1);
  });

  it('an unusable directory is a clear error when the exporter is created', () => {
    const file = path.join(dir(), 'file');
    fs.writeFileSync(file, '');
    expect(() => make(file)).toThrow(StorageError);
  });

  it.runIf(canMountTmpfs())('a read-only directory is a clear error when the exporter is created', () => {
    const ro = mountTmpfs('1m', true)!;
    try {
      expect(() => make(ro)).toThrow(/not writable/);
    } finally {
      unmount(ro);
    }
  });
});
