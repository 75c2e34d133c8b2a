/**
 * `npm start`, the image's entrypoint and the load-test harness run the
 * collector with the same node flags: the CPU and memory figures in
 * BENCHMARKS.md are measured with the harness's, so a launcher that drops one
 * would run a collector nobody measured.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { SIDECAR_NODE_FLAGS } from '../loadtest/collector.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = 'dist/collector/sidecar.mjs';

/** The node flags in front of the bundle on a command line (after `exec` in a shell script). */
function flagsBefore(argv: string[]): string[] {
  if (argv[0] === 'exec') argv = argv.slice(1);
  const i = argv.indexOf(BUNDLE);
  expect(i, `${BUNDLE} in ${argv.join(' ')}`).toBeGreaterThan(0);
  expect(argv[0]).toBe('node');
  return argv.slice(1, i);
}

describe('collector launch flags', () => {
  test('npm start', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const argv = pkg.scripts.start.split(/\s+/);
    // npm runs the script under `sh -c`; `exec` makes node that process, so a signal sent to npm reaches the collector.
    expect(argv[0]).toBe('exec');
    expect(flagsBefore(argv)).toEqual(SIDECAR_NODE_FLAGS);
  });

  test("the image's entrypoint", () => {
    const line = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '));
    expect(line).toBeDefined();
    expect(flagsBefore(JSON.parse(line!.slice('ENTRYPOINT '.length)) as string[])).toEqual(SIDECAR_NODE_FLAGS);
  });
});
