/**
 * Server TLS from files that follow their changes on disk.
 *
 * At start the files are read synchronously and must form a valid context
 * (a missing or mismatched file stops the start with the key that names it).
 * Afterwards `FileWatch` calls `reload()` when a file's directory changes (a
 * Kubernetes Secret volume's `..data` swap) or on `reload_interval`; a new
 * set that does not form a valid context (a swap caught half-way) is ignored
 * until the next change, so the server never loses its certificate. The
 * owner hands the new options to `setSecureContext`: connections already open
 * keep their session, new handshakes get the new certificate; no listener is
 * closed, so no valid request is refused during the swap.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import type { ServerTlsConfig } from './config.js';

interface Material {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

const VERSIONS = { '1.2': 'TLSv1.2', '1.3': 'TLSv1.3' } as const;

export class ServerTlsFiles {
  private current: Material;
  private readonly minVersion: 'TLSv1.2' | 'TLSv1.3';

  constructor(readonly cfg: ServerTlsConfig) {
    this.minVersion = VERSIONS[cfg.min_version];
    const read = (key: string, file: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (e) {
        throw new Error(`tls.${key}: cannot read ${file}: ${(e as Error).message}`);
      }
    };
    const m: Material = { cert: read('cert_file', cfg.cert_file), key: read('key_file', cfg.key_file), ca: cfg.client_ca_file ? read('client_ca_file', cfg.client_ca_file) : undefined };
    try {
      createSecureContext(this.contextOf(m));
    } catch (e) {
      throw new Error(`tls: ${cfg.cert_file}, ${cfg.key_file}${m.ca ? ', ' + cfg.client_ca_file : ''} do not form a valid TLS context: ${(e as Error).message}`);
    }
    this.current = m;
  }

  /** The files to watch. */
  get files(): string[] {
    return [this.cfg.cert_file, this.cfg.key_file, ...(this.cfg.client_ca_file ? [this.cfg.client_ca_file] : [])];
  }

  get mutual(): boolean {
    return this.current.ca !== undefined;
  }

  /** Options for https.createServer / http2.createSecureServer. */
  serverOptions(): TlsOptions {
    return { ...this.contextOf(this.current), requestCert: this.mutual, rejectUnauthorized: this.mutual };
  }

  /**
   * Re-reads the files. Resolves with the options for setSecureContext when
   * they changed and form a valid context; null when unchanged; throws (the
   * caller logs and counts) when unreadable or invalid, keeping the old ones.
   */
  async reload(): Promise<SecureContextOptions | null> {
    const c = this.cfg;
    const [cert, key, ca] = await Promise.all([readFile(c.cert_file), readFile(c.key_file), c.client_ca_file ? readFile(c.client_ca_file) : undefined]);
    const cur = this.current;
    if (cert.equals(cur.cert) && key.equals(cur.key) && (ca === undefined || (cur.ca !== undefined && ca.equals(cur.ca)))) return null;
    const next: Material = { cert, key, ca };
    const opts = this.contextOf(next);
    createSecureContext(opts); // throws on a mismatched pair (caught half-way through a rotation)
    this.current = next;
    return opts;
  }

  private contextOf(m: Material): SecureContextOptions {
    return { cert: m.cert, key: m.key, ca: m.ca, minVersion: this.minVersion };
  }
}
