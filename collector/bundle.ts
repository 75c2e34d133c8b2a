/**
 * Build step: bundles the collector into dist/collector/sidecar.mjs, which
 * `npm start` and the image run, plus one chunk per lazily imported module in
 * dist/collector/chunks/.
 *
 * - One file instead of ~100 modules: loading them one by one cost about 140 ms
 *   of start-up on this machine (~370 ms -> ~250 ms to ready; BENCHMARKS.md).
 * - Code splitting: a factory whose implementation has a heavy dependency
 *   imports it with a dynamic `import()` (collector/component.ts `lazyModule`),
 *   and esbuild puts it into its own chunk, so a config that does not use, say,
 *   the `otlp` exporter never loads its gRPC client. V8 keeps the source text of every
 *   loaded script in the heap, so code that is not loaded costs no memory at
 *   all. Few chunks on purpose: every import between them is a module
 *   resolution at start (see withRequire below).
 * - The native better-sqlite3 module, protobufjs and Ajv stay external: they are
 *   required from node_modules only when first used (disk storage, OTLP/JSON,
 *   a config schema that was not precompiled).
 * - The config loader (config/load.ts with the YAML parser) is not in the
 *   bundle: it goes to dist/config/loader.cjs, which collector/config-loader.ts
 *   evaluates for each load and then lets go, so an idle collector holds none
 *   of its code.
 *
 *   node dist/collector/bundle.js
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/** Resolves `spec` imported from a file named `importer` to a module with the given source. */
function replaceImport(name: string, importer: RegExp, spec: string, contents: string): Plugin {
  return {
    name,
    setup(b) {
      b.onResolve({ filter: new RegExp(`^${spec.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`) }, (args) =>
        importer.test(args.importer) ? { path: spec, namespace: name } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: name }, () => ({ contents, loader: 'js' }));
    },
  };
}

export async function bundle(distCollector: string): Promise<string> {
  const outfile = path.join(distCollector, 'sidecar.mjs');
  fs.rmSync(path.join(distCollector, 'chunks'), { recursive: true, force: true });
  const result = await build({
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
    // collector/config-loader.ts falls back to the loader module when run unbundled; the bundle evaluates dist/config/loader.cjs instead.
    plugins: [
      replaceImport('no-static-loader', /config-loader\.js$/, '../config/load.js', 'export const loadConfigFile = undefined;'),
      // pino requires thread-stream (and with it worker_threads and assert) for pino.transport(), which the collector
      // never uses (it logs to stdout through sonic-boom): not loading them saves ~0.3 MiB of idle RSS.
      replaceImport(
        'no-pino-transport',
        /pino[\\/]lib[\\/]transport\.js$/,
        'thread-stream',
        "module.exports = class ThreadStream { constructor() { throw new Error('pino transports are not available in the collector bundle'); } };",
      ),
    ],
    logLevel: 'warning',
    legalComments: 'none',
    // Whitespace and syntax only: V8 keeps the source text of every loaded
    // script in the heap and preparses all of it at load, so the main chunk
    // going from 0.8 to 0.5 MB is memory every process keeps. Names are not
    // minified, so stack traces stay readable; the linked source maps
    // (node --enable-source-maps) lead back to dist/*.js and on to the .ts.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    sourcesContent: false,
    write: false,
  });
  const maps = new Map(result.outputFiles.filter((o) => o.path.endsWith('.map')).map((o) => [o.path, o.text] as const));
  for (const out of result.outputFiles) {
    if (out.path.endsWith('.map')) continue;
    const { code, insertedLine } = withRequire(out.text);
    fs.mkdirSync(path.dirname(out.path), { recursive: true });
    fs.writeFileSync(out.path, code);
    const map = maps.get(`${out.path}.map`);
    if (map !== undefined) fs.writeFileSync(`${out.path}.map`, insertedLine < 0 ? map : withEmptyLine(map, insertedLine));
  }
  await build({
    entryPoints: [path.join(distCollector, '..', 'config', 'load.js')],
    outfile: path.join(distCollector, '..', 'config', 'loader.cjs'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['ajv'],
    // Evaluated by collector/config-loader.ts, which passes the file's URL, TypeBox's Type and the factories.
    define: { 'import.meta.url': '__loaderUrl' },
    plugins: [
      replaceImport('factories-from-caller', /load\.js$/, '../collector/components.js', 'export const receiverFactories = [], processorFactories = [], exporterFactories = [];'),
      // TypeBox (for the service section's schema) is the caller's copy, already loaded: less to evaluate and collect per load.
      replaceImport('typebox-from-caller', /config[\\/](schema|duration)\.js$/, '@sinclair/typebox', 'export const Type = __loaderTypeBox;'),
    ],
    logLevel: 'warning',
    legalComments: 'none',
    minifyWhitespace: true,
    minifySyntax: true,
  });
  return outfile;
}

/** A source map with an unmapped line inserted at (0-based) `line` of the generated file. */
function withEmptyLine(mapText: string, line: number): string {
  const map = JSON.parse(mapText) as { mappings: string };
  const lines = map.mappings.split(';');
  lines.splice(line, 0, '');
  map.mappings = lines.join(';');
  return JSON.stringify(map);
}

/**
 * CommonJS dependencies call require(), which an ES module does not have: a
 * chunk that mentions it gets one. Only those: createRequire() resolves and
 * normalizes paths, and the ~20 chunks the default config loads each doing it
 * (on top of the loader resolving their imports) was enough path work at start
 * for V8 to optimize node's path functions, which pages the optimizing
 * compiler into an idle process (BENCHMARKS.md, idle RSS).
 */
export function withRequire(code: string): { code: string; insertedLine: number } {
  if (!/\brequire\b/.test(code)) return { code, insertedLine: -1 };
  const banner = "import { createRequire as __sidecarRequire } from 'node:module'; const require = __sidecarRequire(import.meta.url);\n";
  if (!code.startsWith('#!')) return { code: banner + code, insertedLine: 0 };
  const eol = code.indexOf('\n') + 1;
  return { code: code.slice(0, eol) + banner + code.slice(eol), insertedLine: 1 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = await bundle(path.dirname(fileURLToPath(import.meta.url)));
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}
