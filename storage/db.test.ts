import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { FakeClock } from '../collector/consumertest.js';
import { makeSpans, traceIdHex } from '../test/otlp.js';
import { StorageDb, StorageError, ensureWritableDirectory } from './db.js';
import { TraceSpillStore } from './spill.js';
import { DurableQueue } from './queue.js';
import { tempDir, removeDir, silentLogger, captureLogger, canMountTmpfs, mountTmpfs, unmount } from './testdata/helpers.js';

let dir: string;
let telemetry: Telemetry;
const clock = new FakeClock(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
const toClose: Array<{ close(): unknown }> = [];

beforeEach(() => {
  dir = tempDir();
  telemetry = new Telemetry();
});
afterEach(() => {
  for (const c of toClose.splice(0)) c.close();
  removeDir(dir);
});

function openSpill(logger = silentLogger) {
  const s = TraceSpillStore.open({ directory: dir, sync: 'full', maxBytes: 1 << 26, logger, telemetry, component: 'tail_sampling', clock, deleteFlushMs: 0 });
  toClose.push(s);
  return s;
}

describe('opening the database', () => {
  it('uses WAL, the requested synchronous level, a small cache and records the layout version', () => {
    const s = openSpill();
    const db = s.sdb.db;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('cache_size', { simple: true })).toBe(-2048);
    expect(db.pragma('page_size', { simple: true })).toBe(16384);
    expect(db.prepare("SELECT version FROM schema_version WHERE store = 'spill'").pluck().get()).toBe(2);
    const q = DurableQueue.open({ directory: dir, sync: 'normal', maxBytes: 1 << 20, whenFull: 'refuse', logger: silentLogger, telemetry, component: 'otlp' });
    toClose.push(q);
    expect(q.sdb.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
  });

  it('moves a file of garbage aside, logs it, counts it, and starts fresh', async () => {
    const file = path.join(dir, 'spill.sqlite');
    const garbage = Buffer.alloc(64 * 1024);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) & 0xff;
    fs.writeFileSync(file, garbage);
    const { logger, lines } = captureLogger();
    const s = openSpill(logger);
    // The fresh store works.
    const spans = makeSpans([{ traceId: traceIdHex(), spanId: 'b000000000000001' }]);
    s.spill([{ traceId: spans[0].traceId, firstSeenMs: 1, dueMs: 2, spans }]);
    expect(s.take(spans[0].traceId)).toHaveLength(1);
    // The bad file is kept, renamed, with its bytes intact.
    const moved = fs.readdirSync(dir).filter((f) => f.startsWith('spill.sqlite.corrupt-'));
    expect(moved).toEqual(['spill.sqlite.corrupt-2024-01-02T03-04-05-678Z']);
    expect(fs.readFileSync(path.join(dir, moved[0])).equals(garbage)).toBe(true);
    expect(await telemetry.total('sidecar_storage_corrupt_files_total', { file: 'spill.sqlite' })).toBe(1);
    const line = lines.find((l) => String(l.msg).includes('corrupt'));
    expect(line).toBeDefined();
    expect(line!.level).toBe(50); // error
    expect(line!.movedTo).toBe(path.join(dir, moved[0]));
  });

  it('detects damaged pages inside a valid database (quick_check) and starts fresh', async () => {
    let s = openSpill();
    for (let i = 0; i < 50; i++) {
      const spans = makeSpans(Array.from({ length: 20 }, (_, k) => ({ traceId: traceIdHex(), spanId: (0xb000000000000000n + BigInt(i * 100 + k + 1)).toString(16), attributes: { pad: 'x'.repeat(200) } })));
      s.spill([{ traceId: spans[0].traceId, firstSeenMs: 1, dueMs: 2, spans: spans.filter((x) => x.traceId === spans[0].traceId) }]);
    }
    s.close();
    toClose.pop();
    const file = path.join(dir, 'spill.sqlite');
    const buf = fs.readFileSync(file);
    expect(buf.length).toBeGreaterThan(16384 * 4);
    // Keep the 100-byte header and first page, scribble over the b-tree pages after it.
    for (let i = 16384; i < buf.length; i += 3) buf[i] = 0xa5;
    fs.writeFileSync(file, buf);
    s = openSpill();
    expect(s.traceCount).toBe(0);
    expect(fs.readdirSync(dir).some((f) => f.startsWith('spill.sqlite.corrupt-'))).toBe(true);
    expect(await telemetry.total('sidecar_storage_corrupt_files_total')).toBe(1);
  });

  it('moves aside a file written with another layout version instead of misreading it', async () => {
    const file = path.join(dir, 'queue.sqlite');
    const db = new Database(file);
    db.exec("CREATE TABLE schema_version (store TEXT PRIMARY KEY, version INTEGER NOT NULL); INSERT INTO schema_version VALUES ('queue', 99)");
    db.close();
    const q = DurableQueue.open({ directory: dir, sync: 'normal', maxBytes: 1 << 20, whenFull: 'refuse', logger: silentLogger, telemetry, component: 'otlp', clock });
    toClose.push(q);
    expect(q.size).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('queue.sqlite.corrupt-'))).toHaveLength(1);
    expect(await telemetry.total('sidecar_storage_corrupt_files_total', { file: 'queue.sqlite' })).toBe(1);
  });

  it('a directory that cannot be created is a clear StorageError at start', () => {
    // Runs as root in CI, where chmod does not stop writes: put the path under a regular file.
    const blocker = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocker, 'x');
    let err: unknown;
    try {
      TraceSpillStore.open({ directory: path.join(blocker, 'spill'), sync: 'normal', maxBytes: 1 << 20, logger: silentLogger, telemetry, component: 'tail_sampling' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('ERR_STORAGE_DIR');
    expect((err as Error).message).toContain(path.join(blocker, 'spill'));
    // A path that is a file, not a directory.
    expect(() => ensureWritableDirectory(blocker)).toThrow(/not a directory|cannot be created/);
  });

  const isRoot = process.getuid?.() === 0;
  // As root chmod does not restrict writes; the read-only mount test below covers root.
  it.skipIf(isRoot)('a directory the process may not write is a clear StorageError (chmod; skipped as root)', () => {
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro);
    fs.chmodSync(ro, 0o555);
    try {
      expect(() => ensureWritableDirectory(ro)).toThrow(/not writable/);
    } finally {
      fs.chmodSync(ro, 0o755);
    }
  });

  const tmpfsOk = canMountTmpfs();
  it.skipIf(!tmpfsOk)('a read-only mounted directory is a clear StorageError even for root', () => {
    const ro = mountTmpfs('64k', true)!;
    try {
      let err: unknown;
      try {
        DurableQueue.open({ directory: ro, sync: 'normal', maxBytes: 1 << 20, whenFull: 'refuse', logger: silentLogger, telemetry, component: 'otlp' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe('ERR_STORAGE_DIR');
      expect((err as Error).message).toMatch(/not writable.*(EROFS|read-only)/i);
    } finally {
      unmount(ro);
    }
  });

  it('checkpoints in the worker thread, and a clean close still leaves no WAL', async () => {
    const s = TraceSpillStore.open({ directory: dir, sync: 'normal', maxBytes: 1 << 28, logger: silentLogger, telemetry, component: 'tail_sampling', clock, deleteFlushMs: 0 });
    expect(s.sdb.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const spans = makeSpans(Array.from({ length: 200 }, (_, i) => ({ traceId: traceIdHex(), spanId: (0xb000000000000000n + BigInt(i)).toString(16) })));
    for (let i = 0; i < 20 && s.sdb.checkpoints.workerPasses === 0; i++) {
      s.spill(spans.map((sp) => ({ traceId: sp.traceId, firstSeenMs: 1, dueMs: 2, spans: [sp], prevSeq: 0 })));
      await new Promise((r) => setTimeout(r, 60));
    }
    expect(s.sdb.checkpoints.workerPasses).toBeGreaterThan(0);
    expect(s.sdb.callTimes.count).toBeGreaterThan(0);
    s.close();
    expect(fs.existsSync(path.join(dir, 'spill.sqlite-wal'))).toBe(false);
    const again = TraceSpillStore.open({ directory: dir, sync: 'normal', maxBytes: 1 << 28, logger: silentLogger, telemetry: new Telemetry(), component: 'tail_sampling', clock });
    toClose.push(again);
    expect(again.traceCount).toBe(spans.length);
  });

  it('never truncates the WAL inside a write: the worker cuts a grown WAL back to the cap after it restarted', async () => {
    const sdb = StorageDb.open(
      { directory: dir, file: 'wal.sqlite', sync: 'normal', logger: silentLogger, telemetry, component: 't', walCapBytes: 1 << 20, checkOnOpen: false },
      { store: 'blobs', version: 1, create: ['CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)'] },
    );
    toClose.push(sdb);
    expect(sdb.db.pragma('journal_size_limit', { simple: true })).toBe(-1);
    const ins = sdb.db.prepare('INSERT INTO blobs (b) VALUES (?)');
    const put = sdb.db.transaction((n: number) => {
      for (let i = 0; i < n; i++) ins.run(Buffer.alloc(16 * 1024, i & 255));
    });
    const wal = path.join(dir, 'wal.sqlite-wal');
    // One 8 MiB transaction: the WAL file grows to 8 x the cap.
    sdb.write(put, 512);
    expect(fs.statSync(wal).size).toBeGreaterThan(8 << 20);
    // Small writes: once a pass has copied everything, the next write restarts the WAL at its start,
    // and the pass after that finds few live frames in a long file and cuts its tail.
    for (let i = 0; i < 40 && sdb.checkpoints.walCuts === 0; i++) {
      await new Promise((r) => setTimeout(r, 60));
      sdb.write(put, 1);
    }
    for (let i = 0; i < 20 && fs.statSync(wal).size > 1 << 20; i++) await new Promise((r) => setTimeout(r, 60));
    expect(sdb.checkpoints.walCuts).toBeGreaterThan(0);
    expect(fs.statSync(wal).size).toBeLessThanOrEqual(1 << 20);
    // Nothing live was cut: every row is there, now and after a reopen.
    sdb.write(put, 3);
    const rows = sdb.db.prepare('SELECT count(*) FROM blobs').pluck().get() as number;
    expect(rows).toBeGreaterThan(512);
    expect(sdb.db.pragma('integrity_check', { simple: true })).toBe('ok');
    sdb.close();
    const again = new Database(path.join(dir, 'wal.sqlite'), { readonly: true });
    expect(again.prepare('SELECT count(*) FROM blobs').pluck().get()).toBe(rows);
    again.close();
  });

  it('with sync: full, deleting taken traces is not fsynced and the connection stays FULL', () => {
    const s = openSpill();
    const spans = makeSpans([{ traceId: traceIdHex(), spanId: 'b000000000000001' }]);
    s.spill([{ traceId: spans[0].traceId, firstSeenMs: 1, dueMs: 2, spans }]);
    expect(s.take(spans[0].traceId)).toHaveLength(1);
    s.flush();
    expect(s.sdb.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(s.traceCount).toBe(0);
  });

  it('times write transactions', () => {
    const s = openSpill();
    const spans = makeSpans([{ traceId: traceIdHex(), spanId: 'b000000000000001' }]);
    s.spill([{ traceId: spans[0].traceId, firstSeenMs: 1, dueMs: 2, spans }]);
    expect(s.sdb.longestWriteMs).toBeGreaterThan(0);
    expect(s.sdb).toBeInstanceOf(StorageDb);
  });
});
