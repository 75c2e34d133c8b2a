/**
 * Process-wide bookkeeping of open storage files, so that two components never
 * use one file behind each other's back:
 *
 * - Durable queues are shared by path with a reference count. A config reload
 *   builds the new exporter before the old one has stopped; both then lease
 *   from the same queue (no item is handed out twice) and the file is closed
 *   when the last user releases it.
 * - Spill files are claimed exclusively. A tail-sampling processor that finds
 *   its file claimed (the previous pipeline of a reload is still draining into
 *   it) runs memory-only and takes the file over once it is released.
 */
import path from 'node:path';
import { DurableQueue, type DurableQueueOptions } from './queue.js';

const claims = new Set<string>();
const queues = new Map<string, { queue: DurableQueue; refs: number }>();

function key(directory: string, file: string): string {
  return path.resolve(directory, file);
}

/** Claims a spill file; false when another live component holds it. */
export function claimFile(directory: string, file: string): boolean {
  const k = key(directory, file);
  if (claims.has(k)) return false;
  claims.add(k);
  return true;
}

export function releaseFile(directory: string, file: string): void {
  claims.delete(key(directory, file));
}

/** Opens (or shares) the durable queue at directory/file. Release it with `releaseQueue`. */
export function acquireQueue(opts: DurableQueueOptions & { file: string }): DurableQueue {
  const k = key(opts.directory, opts.file);
  const e = queues.get(k);
  if (e !== undefined) {
    e.refs++;
    return e.queue;
  }
  const queue = DurableQueue.open(opts);
  queues.set(k, { queue, refs: 1 });
  return queue;
}

/** Drops one reference; the last one closes the queue (committing what is pending). */
export async function releaseQueue(queue: DurableQueue): Promise<void> {
  for (const [k, e] of queues) {
    if (e.queue !== queue) continue;
    if (--e.refs > 0) return;
    queues.delete(k);
    await queue.close();
    return;
  }
  await queue.close();
}

/** A file name safe on every filesystem, derived from a component id (`otlp/backend` -> `otlp_backend`). */
export function fileNameFor(prefix: string, componentId: string): string {
  return `${prefix}-${componentId.replace(/[^A-Za-z0-9._-]/g, '_')}.sqlite`;
}
