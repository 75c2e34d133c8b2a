/**
 * Templating of span names and URL paths: path segments that are ids become
 * placeholders, so `/users/123/orders/9f8e7d6c5b4a39281706f5e4d3c2b1a0`
 * becomes `/users/{id}/orders/{id}`.
 *
 * A segment is the text between delimiters (`/`, whitespace, `,`, `;`, `:`,
 * `=`, `&`). Only the part before `?` or `#` of a URL-like value is templated;
 * the rest is kept as it is.
 */

export interface TemplatePattern {
  regex: RegExp;
  placeholder: string;
}

export interface TemplateOptions {
  numeric: boolean;
  uuid: boolean;
  /** Segments of at least this many hex digits become the placeholder; 0 turns it off. */
  hexMinLength: number;
  placeholder: string;
  /** User patterns, applied first to the whole text (global). */
  patterns: TemplatePattern[];
}

const UUID_RE = /^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$/;

function isDelimiter(c: number): boolean {
  return c === 0x2f || c === 0x20 || c === 0x09 || c === 0x2c || c === 0x3b || c === 0x3a || c === 0x3d || c === 0x26;
}

export class Templater {
  private readonly o: TemplateOptions;
  constructor(o: TemplateOptions) {
    this.o = o;
  }

  get hasPatterns(): boolean {
    return this.o.patterns.length > 0;
  }

  /**
   * Conservative pre-check over raw bytes: false when templating cannot change
   * the text. User patterns need the decoded text, so they always say true.
   */
  mayChangeBytes(buf: Uint8Array, start: number, end: number, urlLike: boolean): boolean {
    if (this.o.patterns.length > 0) return true;
    const hexMin = this.o.uuid ? Math.min(8, this.o.hexMinLength || 8) : this.o.hexMinLength;
    let hexRun = 0;
    for (let i = start; i < end; i++) {
      const b = buf[i];
      if (b >= 0x30 && b <= 0x39) return true;
      if (urlLike && (b === 0x3f || b === 0x23)) return false;
      if (hexMin > 0 && ((b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46))) {
        if (++hexRun >= hexMin) return true;
      } else hexRun = 0;
    }
    return false;
  }

  /** Returns the templated text (the same string when nothing changed). */
  apply(s: string, urlLike: boolean): string {
    let head = s;
    let tail = '';
    if (urlLike) {
      let cut = s.indexOf('?');
      const h = s.indexOf('#');
      if (h >= 0 && (cut < 0 || h < cut)) cut = h;
      if (cut >= 0) {
        head = s.slice(0, cut);
        tail = s.slice(cut);
      }
    }
    let out = head;
    for (const p of this.o.patterns) {
      p.regex.lastIndex = 0;
      out = out.replace(p.regex, (m) => (m === '' ? m : p.placeholder));
    }
    out = this.segments(out);
    return out === head ? s : out + tail;
  }

  private segments(s: string): string {
    let out = '';
    let last = 0;
    let segStart = 0;
    const n = s.length;
    for (let i = 0; i <= n; i++) {
      if (i < n && !isDelimiter(s.charCodeAt(i))) continue;
      if (i > segStart && this.isId(s, segStart, i)) {
        out += s.slice(last, segStart) + this.o.placeholder;
        last = i;
      }
      segStart = i + 1;
    }
    return last === 0 ? s : out + s.slice(last);
  }

  private isId(s: string, start: number, end: number): boolean {
    const len = end - start;
    let digits = 0;
    let hex = 0;
    for (let i = start; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) {
        digits++;
        hex++;
      } else if ((c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) hex++;
    }
    if (this.o.numeric && digits === len) return true;
    if (this.o.hexMinLength > 0 && hex === len && len >= this.o.hexMinLength) return true;
    if (this.o.uuid && (len === 36 || len === 32) && UUID_RE.test(s.slice(start, end))) return true;
    return false;
  }
}
