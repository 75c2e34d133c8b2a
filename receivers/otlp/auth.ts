/**
 * Bearer-token authentication: the token is read from a file (re-read when
 * it changes, like the TLS files) and compared with the request's
 * `Authorization: Bearer <token>` in constant time (SHA-256 of both, then
 * timingSafeEqual, so neither the content nor the length leaks through
 * timing).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export class BearerToken {
  private expected: Buffer;

  constructor(readonly file: string) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`auth.bearer_token_file: cannot read ${file}: ${(e as Error).message}`);
    }
    this.expected = BearerToken.parse(text, file);
  }

  private static parse(text: string, file: string): Buffer {
    const token = text.trim();
    if (token === '') throw new Error(`auth.bearer_token_file: ${file} is empty`);
    return digest(token);
  }

  /** Re-reads the file; true when the token changed. Throws (old token kept) when unreadable or empty. */
  async reload(): Promise<boolean> {
    const next = BearerToken.parse(await readFile(this.file, 'utf8'), this.file);
    if (next.equals(this.expected)) return false;
    this.expected = next;
    return true;
  }

  /** Checks an `authorization` header value. */
  verify(header: string | undefined): boolean {
    if (header === undefined || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(digest(header.slice(7).trim()), this.expected);
  }
}
