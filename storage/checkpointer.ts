/**
 * WAL checkpoints off the event loop.
 *
 * A checkpoint copies the pages the WAL holds back into the database file and
 * fsyncs both files: with SQLite's automatic checkpoint that ran inside
 * whichever write happened to cross the threshold, and blocked the event loop
 * for the copy and both fsyncs (tens of ms on a busy disk). Here every store
 * opens its file with `wal_autocheckpoint = 0` and one worker thread per
 * process, with its own better-sqlite3 connection per file, runs
 * `wal_checkpoint(PASSIVE)` (never blocks the writer; copies what no reader
 * still needs) after writes, at most every `minIntervalMs`.
 *
 * The WAL only starts over from its beginning when a write begins after a
 * checkpoint that copied everything. Under writes that never pause, the
 * worker's passes are always a little behind, and the WAL would keep growing.
 * When it has grown past the cap, the main thread asks for a closing pass: the
 * worker repeats passes while each copies less (a pass copies what was written
 * during the previous one), then raises `hold`, waits for the write in
 * progress to commit, copies the last few frames, and lowers `hold`. A write
 * that starts while `hold` is up waits for it (`enterWrite`), at most
 * HOLD_WAIT_MAX_MS; that wait is the only time the event loop waits for a
 * checkpoint. If the pass takes longer (a slow fsync), the write goes ahead and
 * the WAL starts over after a later closing pass instead. Otherwise the next
 * write restarts the WAL.
 *
 * The WAL file is never truncated inside a write on the event loop (the main
 * connection has `journal_size_limit = -1`): freeing blocks that a checkpoint
 * fsynced costs ~0.2 ms per MiB here, and a write that restarted a WAL which had
 * overshot the cap under non-stop writes spent 10-20 ms (up to 136 ms) in that
 * ftruncate: the longest storage calls measured. Instead, when a pass finds the
 * WAL restarted (few frames in use) but its file still longer than `keepBytes`,
 * the worker cuts the file's tail itself, 4 MiB per ftruncate (each ~1 ms: a
 * write on the main thread waits for at most one, on the inode lock). The tail
 * holds no live frames: live frames sit at the start of a restarted WAL, and the
 * worker cuts only after a pass during which the main thread did not write, and
 * stops as soon as it starts or finishes one (flag[2], flag[4]), so the live
 * region cannot have grown past what the pass saw (a quarter of the cap at most).
 *
 * The worker is created on first use and unref'd (it never keeps the process
 * alive). Its connection exists only during a pass; `StorageDb.close()` waits
 * for a pass in flight (`waitIdle`) so the main connection is the last one and
 * its close checkpoints and removes the WAL as before. If the worker cannot be
 * started, stores fall back to SQLite's automatic checkpoint.
 */
import type { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

/** CommonJS source of the worker (eval'd, so it also works from the bundle). */
const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.sqlite);
// flag[0]: a pass is in flight; flag[1]: hold (writers wait); flag[2]: the main thread is inside a write;
// flag[3]: frames in the WAL after the last pass (read by the main thread without waiting for a message);
// flag[4]: writes the main thread has finished (a counter).
const CUT_CHUNK = 4 * 1024 * 1024;
/**
 * Cuts the WAL file down to keepBytes when its live frames (liveBytes, as the pass read them) sit well
 * below that; returns bytes cut. writes0: the main thread's write counter before the pass began, or -1
 * when a write was in progress then. Any write since (begun or finished) means the live part may have
 * grown past what the pass saw: no cut.
 */
function cutTail(wal, flag, writes0, liveBytes, keepBytes) {
  if (writes0 < 0 || liveBytes * 4 > keepBytes) return 0;
  const quiet = () => Atomics.load(flag, 2) === 0 && Atomics.load(flag, 4) === writes0;
  if (!quiet()) return 0;
  let fd;
  let cut = 0;
  try {
    fd = fs.openSync(wal, 'r+');
    let size = fs.fstatSync(fd).size;
    // Stop once the main thread writes again: a later quiet pass looks again.
    while (size > keepBytes && quiet()) {
      const to = Math.max(keepBytes, size - CUT_CHUNK);
      fs.ftruncateSync(fd, to);
      cut += size - to;
      size = to;
    }
  } catch {
    /* the WAL is gone (closed) or unreadable: nothing to cut */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return cut;
}
parentPort.on('message', (m) => {
  const flag = new Int32Array(m.flag);
  const t0 = performance.now();
  // Before the pass reads the WAL's size: flag[2] first, so a write that begins after it shows in one of the two.
  const writes0 = Atomics.load(flag, 2) === 0 ? Atomics.load(flag, 4) : -1;
  let out = { id: m.id, log: -1, checkpointed: -1, ms: 0, holdMs: 0, cutBytes: 0, error: '' };
  let db;
  try {
    db = new Database(m.file, { fileMustExist: true });
    // A checkpoint copies pages straight from the WAL to the file: it needs no page cache.
    db.pragma('cache_size = -64');
    let r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    if (m.close) {
      // Converge: each pass copies what was written during the previous one.
      for (let i = 0; i < 6; i++) {
        const p0 = performance.now();
        r = db.pragma('wal_checkpoint(PASSIVE)')[0];
        if (performance.now() - p0 < 4) break;
      }
      const h0 = performance.now();
      Atomics.store(flag, 1, 1);
      while (Atomics.load(flag, 2) !== 0) Atomics.wait(flag, 2, 1, 20);
      try {
        r = db.pragma('wal_checkpoint(PASSIVE)')[0];
      } finally {
        Atomics.store(flag, 1, 0);
        Atomics.notify(flag, 1);
        out.holdMs = performance.now() - h0;
      }
    }
    out.log = r.log;
    out.checkpointed = r.checkpointed;
    if (!m.close && r.log >= 0 && m.keepBytes > 0) out.cutBytes = cutTail(m.file + '-wal', flag, writes0, r.log * (m.pageSize + 24) + 32, m.keepBytes);
    // After a closing pass the next write starts the WAL over.
    Atomics.store(flag, 3, m.close || r.log < 0 ? 0 : r.log);
  } catch (err) {
    out.error = String((err && err.message) || err);
  } finally {
    try { if (db) db.close(); } catch {}
    out.ms = performance.now() - t0;
    Atomics.store(flag, 0, 0);
    Atomics.notify(flag, 0);
  }
  parentPort.postMessage(out);
});
`;

export interface CheckpointResult {
  /** Frames in the WAL, and frames copied to the database file, after the pass (-1 on error). */
  log: number;
  checkpointed: number;
  ms: number;
  /** How long writers were held for the closing pass (0 for an ordinary pass). */
  holdMs: number;
  /** Bytes cut off the WAL file's tail after the pass (the WAL had restarted; see above). */
  cutBytes: number;
  error: string;
}

/** One file's side of the shared worker. */
export interface CheckpointClient {
  /**
   * Asks for a pass if none is in flight and the last one ended at least
   * minIntervalMs ago; `close`: a closing pass that lets the WAL start over.
   */
  request(now: number, close: boolean): void;
  /** Before a write transaction: waits while a closing pass holds writers (at most HOLD_WAIT_MAX_MS). */
  enterWrite(): void;
  /** After a write transaction (committed or not). */
  exitWrite(): void;
  /** True while a pass runs in the worker. */
  readonly busy: boolean;
  /** Frames in the WAL after the last pass (also known to a caller that never yields to the event loop). */
  readonly walFrames: number;
  /** Blocks (Atomics.wait) until no pass is in flight, at most `timeoutMs`. */
  waitIdle(timeoutMs: number): void;
  /** Main-thread writes finished so far (the worker stops cutting the WAL's tail when it moves). */
  readonly writes: number;
  /** Stops receiving results; waits for a pass in flight. */
  close(): void;
}

/** Longest a write waits for a closing pass (usually 1-10 ms: the last frames and two fsyncs). */
const HOLD_WAIT_MAX_MS = 6;

let worker: Worker | undefined;
let workerFailed = false;
let nextId = 1;
const clients = new Map<number, (r: CheckpointResult) => void>();
/** Busy flags of passes in flight: cleared if the worker dies so nobody waits for it. */
const inFlight = new Set<Int32Array>();

function workerGone(w: Worker): void {
  if (worker === w) worker = undefined;
  for (const f of inFlight) {
    for (const i of [0, 1]) {
      Atomics.store(f, i, 0);
      Atomics.notify(f, i);
    }
  }
  inFlight.clear();
}

function getWorker(): Worker | undefined {
  if (worker !== undefined || workerFailed) return worker;
  try {
    const requireHere = createRequire(import.meta.url);
    const sqlite = requireHere.resolve('better-sqlite3');
    // Required here, not imported: a collector without disk storage never loads worker_threads (idle RSS).
    const { Worker: WorkerClass } = requireHere('node:worker_threads') as typeof import('node:worker_threads');
    // A small isolate: the worker only runs SQLite calls (its heap limits save a few MiB of RSS).
    const w = new WorkerClass(WORKER_SRC, {
      eval: true,
      workerData: { sqlite },
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8, codeRangeSizeMb: 4, stackSizeMb: 1 },
    });
    w.on('message', (r: CheckpointResult & { id: number }) => clients.get(r.id)?.(r));
    w.on('error', () => {
      // Stores keep working: with no worker they checkpoint on the main thread past the cap.
      workerFailed = true;
      workerGone(w);
    });
    w.on('exit', () => workerGone(w));
    // After the listeners (adding one refs the worker again): it never keeps the process alive.
    w.unref();
    worker = w;
  } catch {
    workerFailed = true;
  }
  return worker;
}

/** True when the checkpoint worker can be (or is) running. */
export function checkpointWorkerAvailable(): boolean {
  return getWorker() !== undefined;
}

/**
 * Registers `file` with the checkpoint worker. `onResult` gets every pass's
 * outcome (on the main thread). Undefined when no worker can run.
 */
export function checkpointClient(
  file: string,
  minIntervalMs: number,
  wal: { pageSize: number; keepBytes: number },
  onResult: (r: CheckpointResult) => void,
): CheckpointClient | undefined {
  const w = getWorker();
  if (w === undefined) return undefined;
  const id = nextId++;
  const flagBuf = new SharedArrayBuffer(20);
  const flag = new Int32Array(flagBuf);
  let lastEnd = 0;
  let open = true;
  clients.set(id, (r) => {
    inFlight.delete(flag);
    lastEnd = performance.now();
    if (open) onResult(r);
  });
  const waitIdle = (timeoutMs: number): void => {
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(flag, 0) !== 0) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      Atomics.wait(flag, 0, 1, left);
    }
  };
  return {
    request(now: number, close: boolean): void {
      if (!open || Atomics.load(flag, 0) !== 0 || now - lastEnd < minIntervalMs) return;
      const cur = worker;
      if (cur === undefined) return;
      Atomics.store(flag, 0, 1);
      inFlight.add(flag);
      lastEnd = now; // until the result arrives, do not ask again
      cur.postMessage({ id, file, flag: flagBuf, close, pageSize: wal.pageSize, keepBytes: wal.keepBytes });
    },
    enterWrite(): void {
      for (;;) {
        Atomics.store(flag, 2, 1);
        if (Atomics.load(flag, 1) === 0) return;
        // A closing pass holds writers: step back and wait for it, briefly. If its fsyncs take longer
        // (a slow disk), write anyway: the pass stays correct, the WAL just does not start over this time.
        Atomics.store(flag, 2, 0);
        Atomics.notify(flag, 2);
        if (Atomics.wait(flag, 1, 1, HOLD_WAIT_MAX_MS) === 'timed-out') {
          Atomics.store(flag, 2, 1);
          return;
        }
      }
    },
    exitWrite(): void {
      Atomics.add(flag, 4, 1);
      Atomics.store(flag, 2, 0);
      Atomics.notify(flag, 2);
    },
    get busy(): boolean {
      return Atomics.load(flag, 0) !== 0;
    },
    get walFrames(): number {
      return Atomics.load(flag, 3);
    },
    get writes(): number {
      return Atomics.load(flag, 4);
    },
    waitIdle,
    close(): void {
      open = false;
      waitIdle(10_000);
      clients.delete(id);
    },
  };
}
