/** Reads the PEM files a TLS config names (at exporter start, so a missing file fails the start). */
import { promises as fsp } from 'node:fs';
import type { TlsConfig } from './config.js';

export interface TlsMaterial {
  ca: Buffer | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
}

export async function loadTlsFiles(tls: TlsConfig): Promise<TlsMaterial> {
  const read = async (what: string, p: string | undefined) => {
    if (p === undefined || p === '') return undefined;
    try {
      return await fsp.readFile(p);
    } catch (e) {
      throw new Error(`tls.${what}: cannot read ${p}: ${(e as Error).message}`);
    }
  };
  return { ca: await read('ca_file', tls.ca_file), cert: await read('cert_file', tls.cert_file), key: await read('key_file', tls.key_file) };
}
