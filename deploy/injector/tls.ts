/**
 * Serving certificate that follows its files. A Secret mounted as a volume is
 * updated by the kubelet's symlink swap and cert-manager rotates it well before
 * expiry, so the files are re-read on an interval (reading two small files is
 * cheaper and more robust than trusting mtimes or inotify through symlinks).
 * A changed pair that does not form a valid key/certificate (caught half-way
 * through a rotation) is ignored until the next check; the old context stays.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

export class CertificateFiles {
  private current: KeyPair;

  constructor(
    readonly certFile: string,
    readonly keyFile: string,
    private readonly logger: Logger,
  ) {
    // At start an unreadable or invalid pair is fatal: main exits with the message.
    const pair = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
    createSecureContext(pair); // throws on a mismatched or malformed pair
    this.current = pair;
  }

  /** Options for https.createServer / server.setSecureContext. */
  options(): SecureContextOptions {
    return { cert: this.current.cert, key: this.current.key };
  }

  /**
   * Re-reads both files. Returns the new options when they changed and form a
   * valid pair, otherwise null (unchanged, unreadable or invalid: logged).
   */
  async check(): Promise<SecureContextOptions | null> {
    let next: KeyPair;
    try {
      const [cert, key] = await Promise.all([readFile(this.certFile), readFile(this.keyFile)]);
      next = { cert, key };
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'cannot read TLS files; keeping the current certificate');
      return null;
    }
    if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key)) return null;
    try {
      createSecureContext(next);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'TLS files changed but do not form a valid pair yet; keeping the current certificate');
      return null;
    }
    this.current = next;
    return this.options();
  }
}
