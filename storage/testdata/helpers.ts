/** Test helpers for the storage tests: temp dirs, loggers, tmpfs mounts. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export function tempDir(prefix = 'sidecar-storage-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export const silentLogger: Logger = pino({ level: 'silent' });

/** A logger that keeps every line it writes (parsed JSON). */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** Mounts a tmpfs of `size` (e.g. '2m') on a fresh directory; undefined when mounting is not possible. */
export function mountTmpfs(size: string, readOnly = false): string | undefined {
  const dir = tempDir('sidecar-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    removeDir(dir);
    return undefined;
  }
}

/** True when a tmpfs can be mounted here (root with mount permission); leaves nothing mounted. */
export function canMountTmpfs(): boolean {
  const dir = mountTmpfs('64k');
  if (dir === undefined) return false;
  unmount(dir);
  return true;
}

export function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } finally {
    removeDir(dir);
  }
}
