/**
 * The container's memory limit, from cgroup v2 (`memory.max`) or v1
 * (`memory/memory.limit_in_bytes`). "max", missing files and absurdly large
 * values (v1 writes 2^63 rounded down to a page for "unlimited") mean no limit;
 * the caller then falls back to total system memory.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export type LimitSource = 'cgroup2' | 'cgroup1' | 'system';

export interface CgroupLimit {
  /** The limit in bytes, or undefined when the files say there is none. */
  bytes: number | undefined;
  /** Which hierarchy answered; undefined when neither file exists. */
  source: 'cgroup2' | 'cgroup1' | undefined;
  /** The file that was read. */
  file: string | undefined;
}

/** Values at or above this (1 PiB) are "unlimited" sentinels, not limits. */
const ABSURD = 2 ** 50;

/** Parses the content of memory.max / memory.limit_in_bytes; undefined = no limit. */
export function parseCgroupMemoryValue(text: string): number | undefined {
  const t = text.trim();
  if (t === '' || t === 'max' || t === '-1') return undefined;
  if (!/^[0-9]+$/.test(t)) return undefined;
  const n = Number(t);
  if (!Number.isFinite(n) || n <= 0 || n >= ABSURD) return undefined;
  return n;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * This process's group path from /proc/self/cgroup: for cgroup v2 the "0::<path>"
 * line, for v1 the line whose controller list holds "memory". Undefined for
 * the root "/", a missing file, or no matching line.
 */
export function parseProcSelfCgroup(text: string | undefined, version: 1 | 2): string | undefined {
  if (text === undefined) return undefined;
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const controllers = line.slice(a + 1, b);
    const match = version === 2 ? line.slice(0, a) === '0' && controllers === '' : controllers.split(',').includes('memory');
    if (!match) continue;
    const p = line.slice(b + 1).trim();
    return p === '' || p === '/' ? undefined : p;
  }
  return undefined;
}

export interface CgroupPaths {
  /** Mount point of the cgroup filesystem. Default /sys/fs/cgroup. */
  root?: string;
  /** The /proc/self/cgroup file (to find the group when it is not the mount root). */
  procSelfCgroup?: string;
}

/**
 * The smallest limit among `file` in `base + groupPath` and each of its
 * ancestors up to `base` (a parent's limit binds its children too). `found`
 * is false when no such file exists at any level.
 */
function walkLimit(base: string, groupPath: string | undefined, file: string): { found: boolean; bytes: number | undefined; file: string | undefined } {
  const dirs: string[] = [];
  if (groupPath !== undefined) {
    const parts = groupPath.split('/').filter((x) => x !== '');
    for (let i = parts.length; i > 0; i--) dirs.push(`${base}/${parts.slice(0, i).join('/')}`);
  }
  dirs.push(base);
  let found = false;
  let bytes: number | undefined = undefined;
  let from: string | undefined = undefined;
  for (const d of dirs) {
    const f = `${d}/${file}`;
    const text = readText(f);
    if (text === undefined) continue;
    if (!found) from = f;
    found = true;
    const v = parseCgroupMemoryValue(text);
    if (v !== undefined && (bytes === undefined || v < bytes)) {
      bytes = v;
      from = f;
    }
  }
  return { found, bytes, file: from };
}

/**
 * Reads the memory limit of the cgroup this process runs in: cgroup v2 first
 * (`memory.max`), then v1 (`memory/memory.limit_in_bytes`). In a container
 * with its own cgroup namespace the group is the mount root; otherwise
 * /proc/self/cgroup names it, and its ancestors' limits count as well.
 */
export function readCgroupMemoryLimit(paths: CgroupPaths = {}): CgroupLimit {
  const root = paths.root ?? '/sys/fs/cgroup';
  const self = readText(paths.procSelfCgroup ?? '/proc/self/cgroup');
  const v2 = walkLimit(root, parseProcSelfCgroup(self, 2), 'memory.max');
  if (v2.found) return { bytes: v2.bytes, source: 'cgroup2', file: v2.file };
  const v1 = walkLimit(`${root}/memory`, parseProcSelfCgroup(self, 1), 'memory.limit_in_bytes');
  if (v1.found) return { bytes: v1.bytes, source: 'cgroup1', file: v1.file };
  return { bytes: undefined, source: undefined, file: undefined };
}

export interface MemoryTotal {
  bytes: number;
  source: LimitSource;
}

/**
 * The memory a percentage limit is taken of: the container limit when there
 * is one below physical memory, else total system memory.
 */
export function memoryTotal(paths: CgroupPaths & { systemBytes?: number } = {}): MemoryTotal {
  const system = paths.systemBytes ?? os.totalmem();
  const cg = readCgroupMemoryLimit(paths);
  if (cg.bytes !== undefined && cg.source !== undefined && cg.bytes < system) return { bytes: cg.bytes, source: cg.source };
  return { bytes: system, source: 'system' };
}
