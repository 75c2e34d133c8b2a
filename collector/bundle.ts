/**
 * Build step: bundles the collector into one file, dist/collector/sidecar.mjs,
 * which `npm start` and the image run. Loading ~100 modules one by one costs
 * about 140 ms of start-up on this machine; the bundle starts in ~230 ms
 * instead of ~370 ms (BENCHMARKS.md). The native better-sqlite3 module and
 * Ajv (loaded only when a config schema was not precompiled) stay external.
 *
 *   node dist/collector/bundle.js
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

export function bundle(distCollector: string): string {
  const outfile = path.join(distCollector, 'sidecar.mjs');
  buildSync({
    entryPoints: [path.join(distCollector, 'main.js')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['better-sqlite3', 'ajv'],
    // CommonJS dependencies call require(); give the ESM bundle one.
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
