/**
 * Build step: bundles the collector into dist/collector/sidecar.mjs, which
 * `npm start` and the image run, plus one chunk per lazily imported module in
 * dist/collector/chunks/.
 *
 * - One file instead of ~100 modules: loading them one by one cost about 140 ms
 *   of start-up on this machine (~370 ms -> ~250 ms to ready; BENCHMARKS.md).
 * - Code splitting: each factory imports its implementation with a dynamic
 *   `import()` (collector/component.ts `lazyModule`), and esbuild puts each into
 *   its own chunk, so a config that does not use, say, the disk queue never
 *   loads its code. V8 keeps the source text of every loaded script in the heap,
 *   so code that is not loaded costs no memory at all.
 * - The native better-sqlite3 module, protobufjs and Ajv stay external: they are
 *   required from node_modules only when first used (disk storage, OTLP/JSON,
 *   a config schema that was not precompiled).
 *
 *   node dist/collector/bundle.js
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

export function bundle(distCollector: string): string {
  const outfile = path.join(distCollector, 'sidecar.mjs');
  fs.rmSync(path.join(distCollector, 'chunks'), { recursive: true, force: true });
  buildSync({
    entryPoints: { sidecar: path.join(distCollector, 'main.js') },
    outdir: distCollector,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['better-sqlite3', 'ajv', 'protobufjs'],
    // CommonJS dependencies call require(); give each ESM chunk one.
    banner: { js: "import { createRequire as __sidecarRequire } from 'node:module'; const require = __sidecarRequire(import.meta.url);" },
    logLevel: 'warning',
    legalComments: 'none',
  });
  return outfile;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = bundle(path.dirname(fileURLToPath(import.meta.url)));
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}
