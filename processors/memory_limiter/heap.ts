/**
 * Sizing the V8 heap from the pod's memory limit. `--max-old-space-size` only
 * bounds V8's old generation; RSS also holds the young generation, code, the
 * runtime itself, and every Buffer (span bytes live outside the V8 heap). So
 * the heap gets a fraction of the limit, less the bytes the pipeline is
 * configured to hold in Buffers (queue and batch byte budgets).
 */
const MIB = 1024 * 1024;

export interface HeapSizeOptions {
  /** Share of the limit for the V8 heap before subtracting buffers. Default 0.75. */
  fraction?: number;
  /** Bytes held outside the heap by configuration (queue / batch byte budgets). Default 0. */
  bufferBytes?: number;
  /** Never go below this many MiB. Default 64. */
  minMiB?: number;
}

/**
 * The value for `node --max-old-space-size=<MiB>` given a memory limit in bytes:
 * floor((limit * fraction - bufferBytes) / MiB), at least `minMiB`.
 * Example: 256 MiB limit, 64 MiB of queue budget: 192 - 64 = 128.
 */
export function heapSizeForLimit(limitBytes: number, opts: HeapSizeOptions = {}): number {
  const fraction = opts.fraction ?? 0.75;
  const bufferBytes = opts.bufferBytes ?? 0;
  const minMiB = opts.minMiB ?? 64;
  if (!(limitBytes > 0) || !Number.isFinite(limitBytes)) throw new RangeError(`heapSizeForLimit: invalid limit ${limitBytes}`);
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`heapSizeForLimit: fraction must be in (0, 1], got ${fraction}`);
  const mib = Math.floor((limitBytes * fraction - bufferBytes) / MIB);
  return Math.max(minMiB, mib);
}
