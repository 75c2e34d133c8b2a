/**
 * Header values for network exporters. A value is a string, or { file: PATH }
 * for tokens that rotate (a mounted Secret): the file is read on first use and
 * again whenever its mtime or size changes (one stat per request).
 */
import { promises as fsp } from 'node:fs';
import { RetryableError } from '../../collector/errors.js';
import type { HeadersConfig } from './config.js';

interface FileHeader {
  name: string;
  path: string;
  value: string;
  mtimeMs: number;
  size: number;
}

export class HeaderSource {
  /** Fixed headers, names lowercased. */
  readonly fixed: Array<[string, string]>;
  private readonly files: FileHeader[];

  constructor(cfg: HeadersConfig) {
    this.fixed = [];
    this.files = [];
    for (const [k, v] of Object.entries(cfg)) {
      const name = k.toLowerCase();
      if (typeof v === 'string') this.fixed.push([name, v]);
      else this.files.push({ name, path: v.file, value: '', mtimeMs: -1, size: -1 });
    }
  }

  get hasFiles(): boolean {
    return this.files.length > 0;
  }

  /** Current values of the file-backed headers. Throws a RetryableError when a file cannot be read. */
  async fileHeaders(): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for (const f of this.files) {
      try {
        const st = await fsp.stat(f.path);
        if (st.mtimeMs !== f.mtimeMs || st.size !== f.size) {
          f.value = (await fsp.readFile(f.path, 'utf8')).trim();
          f.mtimeMs = st.mtimeMs;
          f.size = st.size;
        }
      } catch (e) {
        throw new RetryableError(`cannot read header "${f.name}" from ${f.path}: ${(e as Error).message}`);
      }
      out.push([f.name, f.value]);
    }
    return out;
  }
}
