/**
 * Prints the Node flag that sizes the V8 heap from the container memory limit,
 * for a start script:
 *
 *   exec node $(node dist/processors/memory_limiter/heap-size-cli.js --buffer-mib 64) dist/collector/sidecar.mjs
 *
 * Prints nothing when the process has no container limit (Node's default heap
 * sizing then applies). Options: --fraction F (default 0.75), --buffer-mib N
 * (default 0), --min-mib N (default 64), --limit-bytes N (skip cgroup lookup).
 */
import { readCgroupMemoryLimit } from './cgroup.js';
import { heapSizeForLimit } from './heap.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const explicit = arg('--limit-bytes');
const limit = explicit !== undefined ? Number(explicit) : readCgroupMemoryLimit().bytes;
if (limit !== undefined && limit > 0) {
  const mib = heapSizeForLimit(limit, {
    fraction: arg('--fraction') !== undefined ? Number(arg('--fraction')) : undefined,
    bufferBytes: arg('--buffer-mib') !== undefined ? Number(arg('--buffer-mib')) * 1024 * 1024 : undefined,
    minMiB: arg('--min-mib') !== undefined ? Number(arg('--min-mib')) : undefined,
  });
  process.stdout.write(`--max-old-space-size=${mib}\n`);
}
