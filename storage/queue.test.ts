import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { FakeClock } from '../collector/consumertest.js';
import { DurableQueue, QueueFullError, type DurableQueueOptions } from './queue.js';
import { DiskFullError, InjectedFault, StorageError } from './db.js';
import { tempDir, removeDir, silentLogger, canMountTmpfs, mountTmpfs, unmount } from './testdata/helpers.js';

let dir: string;
let telemetry: Telemetry;
let clock: FakeClock;
const opened: DurableQueue[] = [];

function openQueue(over: Partial<DurableQueueOptions> = {}): DurableQueue {
  const q = DurableQueue.open({
    directory: dir,
    sync: 'normal',
    maxBytes: 1 << 24,
    whenFull: 'refuse',
    logger: silentLogger,
    telemetry,
    component: 'otlp/backend',
    clock,
    ...over,
  });
  opened.push(q);
  return q;
}

/** A body of `size` bytes that carries `n` in its first 4 bytes. */
function body(n: number, size = 100): Buffer {
  const b = Buffer.alloc(size, n & 0xff);
  b.writeUInt32BE(n, 0);
  return b;
}
const seqOf = (b: Buffer) => b.readUInt32BE(0);

/** Simulates kill -9: the file is closed without committing anything pending. */
function crash(q: DurableQueue) {
  q.sdb.close();
  opened.splice(opened.indexOf(q), 1);
}

beforeEach(() => {
  dir = tempDir();
  telemetry = new Telemetry();
  clock = new FakeClock();
});
afterEach(async () => {
  for (const q of opened.splice(0)) await q.close();
  removeDir(dir);
});

describe('DurableQueue', () => {
  it('enqueues in order, leases oldest first, and survives close/reopen in order', async () => {
    let q = openQueue();
    const ids = await Promise.all([1, 2, 3, 4, 5].map((n) => q.enqueue(body(n), n * 10)));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(q.size).toBe(5);
    expect(q.spanCount).toBe(150);
    const leased = q.lease(2);
    expect(leased.map((i) => seqOf(i.body))).toEqual([1, 2]);
    expect(leased.map((i) => i.spanCount)).toEqual([10, 20]);
    expect(leased.every((i) => !i.redelivered)).toBe(true);
    expect(q.ack(leased[0].id)).toBe(true);
    expect(q.ack(leased[0].id)).toBe(false);
    expect(q.ack(leased[1].id)).toBe(true);
    await q.close();

    q = openQueue();
    expect(q.size).toBe(3);
    expect(q.spanCount).toBe(120);
    const rest = q.lease(10);
    expect(rest.map((i) => seqOf(i.body))).toEqual([3, 4, 5]);
    expect(rest[2].body.equals(body(5))).toBe(true);
  });

  it('at-least-once: items leased but not acked before a crash come back, flagged and counted', async () => {
    let q = openQueue();
    await Promise.all([1, 2, 3].map((n) => q.enqueue(body(n), 1)));
    const leased = q.lease(2);
    expect(leased).toHaveLength(2);
    await q.flush(); // the lease mark is committed with the next group commit
    q.ack(leased[0].id); // acked, but the delete is not committed before the crash
    crash(q);

    q = openQueue();
    expect(q.size).toBe(3);
    const again = q.lease(3);
    expect(again.map((i) => [seqOf(i.body), i.redelivered])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    expect(await telemetry.total('sidecar_queue_redelivered_total')).toBe(2);
  });

  it('an enqueue that resolved is on disk even if the process dies right after', async () => {
    let q = openQueue();
    const id = await q.enqueue(body(7), 3);
    const p = q.enqueue(body(8), 3); // not yet committed at the "kill"
    crash(q);
    await expect(p).rejects.toBeInstanceOf(StorageError); // its group commit never ran
    q = openQueue();
    const items = q.lease(10);
    expect(items.map((i) => [i.id, seqOf(i.body)])).toEqual([[id, 7]]);
  });

  it('nack returns an item to its place in order', async () => {
    const q = openQueue();
    await Promise.all([1, 2, 3, 4].map((n) => q.enqueue(body(n), 1)));
    const [a, b] = q.lease(2);
    expect(q.nack(b.id)).toBe(true);
    expect(q.lease(1).map((i) => seqOf(i.body))).toEqual([2]);
    expect(q.nack(a.id)).toBe(true);
    expect(q.nack(a.id)).toBe(false);
    expect(q.lease(10).map((i) => seqOf(i.body))).toEqual([1, 3, 4]);
    expect(q.readyCount).toBe(0);
  });

  it('peek does not lease', async () => {
    const q = openQueue();
    await q.enqueue(body(1), 1);
    expect(q.peek(5).map((i) => seqOf(i.body))).toEqual([1]);
    expect(q.lease(5)).toHaveLength(1);
  });

  it('refuse policy: an item beyond max_bytes is rejected with a retryable QueueFullError, nothing dropped', async () => {
    const q = openQueue({ maxBytes: 1000, whenFull: 'refuse' });
    for (let n = 1; n <= 3; n++) await q.enqueue(body(n, 300), 5);
    const err = await q.enqueue(body(4, 300), 5).catch((e) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('ERR_QUEUE_FULL');
    expect(q.size).toBe(3);
    expect(await telemetry.total('sidecar_spans_dropped_total')).toBe(0);
    expect(await telemetry.total('sidecar_queue_refused_items_total')).toBe(1);
    // Acking makes room again.
    q.ack(q.lease(1)[0].id);
    await expect(q.enqueue(body(5, 300), 5)).resolves.toBeGreaterThan(0);
  });

  it('drop_oldest policy: drops the oldest items not in flight, counting their spans as queue_full', async () => {
    const q = openQueue({ maxBytes: 1000, whenFull: 'drop_oldest' });
    for (let n = 1; n <= 3; n++) await q.enqueue(body(n, 300), n); // 1,2,3 spans
    const inFlight = q.lease(1)[0]; // item 1 is being sent: never dropped
    await q.enqueue(body(4, 300), 4); // drops item 2
    await q.enqueue(body(5, 300), 5); // drops item 3
    expect(await telemetry.droppedByReason()).toEqual({ queue_full: 5 });
    expect(q.size).toBe(3);
    q.nack(inFlight.id);
    expect(q.lease(10).map((i) => seqOf(i.body))).toEqual([1, 4, 5]);
    // Nothing left to drop (all leased): refused, not dropped.
    await expect(q.enqueue(body(6, 300), 6)).rejects.toBeInstanceOf(QueueFullError);
    expect(await telemetry.droppedByReason()).toEqual({ queue_full: 5 });
    // An item larger than the whole budget is refused outright.
    await expect(q.enqueue(body(7, 2000), 7)).rejects.toBeInstanceOf(QueueFullError);
    // The drops are on disk.
    await q.close();
    const q2 = openQueue({ maxBytes: 1000, whenFull: 'drop_oldest' });
    expect(q2.lease(10).map((i) => seqOf(i.body))).toEqual([1, 4, 5]);
  });

  it('group commit: enqueues of one tick share a transaction; transactions are cut at maxTxnBytes', async () => {
    const q = openQueue({ maxTxnBytes: 10_000 });
    let writes = 0;
    q.sdb.faultHook = () => {
      writes++;
      return undefined;
    };
    await Promise.all(Array.from({ length: 50 }, (_, n) => q.enqueue(body(n, 100), 1)));
    expect(writes).toBe(1);
    writes = 0;
    await Promise.all(Array.from({ length: 50 }, (_, n) => q.enqueue(body(n, 1000), 1)));
    expect(writes).toBe(5); // 10 items of 1000 bytes per transaction
    expect(q.size).toBe(100);
  });

  it('disk full: enqueues are rejected with DiskFullError, fail fast for a while, then recover', async () => {
    const q = openQueue({ diskFullRetryMs: 2000 });
    await q.enqueue(body(1), 1);
    let calls = 0;
    q.sdb.faultHook = () => {
      calls++;
      return new InjectedFault('SQLITE_FULL');
    };
    const err = await q.enqueue(body(2), 1).catch((e) => e);
    expect(err).toBeInstanceOf(DiskFullError);
    expect(err.reason).toBe('enospc');
    expect(err.retryable).toBe(true);
    await expect(q.enqueue(body(3), 1)).rejects.toBeInstanceOf(DiskFullError);
    expect(calls).toBe(1); // the second was refused without touching SQLite
    q.sdb.faultHook = undefined;
    clock.advance(2000);
    await expect(q.enqueue(body(4), 1)).resolves.toBeGreaterThan(0);
    expect(q.lease(10).map((i) => seqOf(i.body))).toEqual([1, 4]);
    expect(await telemetry.total('sidecar_storage_disk_full_total')).toBe(1);
  });

  const tmpfsOk = canMountTmpfs();
  it.skipIf(!tmpfsOk)('on a real full disk (tmpfs) enqueues fail with DiskFullError and succeed again when space returns', async () => {
    const fsDir = mountTmpfs('4m')!;
    let q: DurableQueue | undefined;
    try {
      q = DurableQueue.open({ directory: fsDir, sync: 'full', maxBytes: 1 << 30, whenFull: 'refuse', logger: silentLogger, telemetry, component: 'otlp', clock });
      const filler = path.join(fsDir, 'filler');
      const st = fs.statfsSync(fsDir);
      fs.writeFileSync(filler, Buffer.alloc(st.bavail * st.bsize - 300 * 1024));
      const ok: number[] = [];
      let err: unknown;
      for (let n = 0; n < 1000 && err === undefined; n++) {
        try {
          await q.enqueue(body(n, 16 * 1024), 1);
          ok.push(n);
        } catch (e) {
          err = e;
        }
      }
      expect(err).toBeInstanceOf(DiskFullError);
      expect(ok.length).toBeGreaterThan(2);
      fs.rmSync(filler);
      clock.advance(5000);
      await q.enqueue(body(5000, 16 * 1024), 1);
      ok.push(5000);
      await q.close();
      q = DurableQueue.open({ directory: fsDir, sync: 'full', maxBytes: 1 << 30, whenFull: 'refuse', logger: silentLogger, telemetry, component: 'otlp', clock });
      expect(q.lease(10_000).map((i) => seqOf(i.body))).toEqual(ok);
    } finally {
      await q?.close();
      unmount(fsDir);
    }
  });

  it('a closed queue refuses with a StorageError', async () => {
    const q = openQueue();
    await q.close();
    await q.close(); // idempotent
    await expect(q.enqueue(body(1), 1)).rejects.toBeInstanceOf(StorageError);
  });
});
