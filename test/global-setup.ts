/**
 * Compiles the project once before the suite: tests that start the collector
 * (or the load-test harness) as a child process run `dist/`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], {
      cwd: root,
      stdio: 'pipe',
    });
    execFileSync(process.execPath, [path.join(root, 'dist', 'config', 'write-validators.js')], { cwd: root, stdio: 'pipe' });
    execFileSync(process.execPath, [path.join(root, 'dist', 'collector', 'bundle.js')], { cwd: root, stdio: 'pipe' });
  } catch (err) {
    const out = String((err as { stdout?: Buffer }).stdout ?? '');
    throw new Error(`TypeScript build failed before the tests:\n${out}`);
  }
}
