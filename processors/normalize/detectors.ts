/**
 * Built-in secret detectors and URL sanitization.
 *
 * Every detector has a cheap conservative pre-check over raw UTF-8 bytes
 * (`mayMatchBytes`) so the hot path never decodes a value no detector could
 * match, and an exact pass over strings (`redact`) used only when that
 * pre-check fires. The exact passes are linear-time: e-mail addresses are
 * found by expanding around '@' by hand, the regexes have no nested
 * quantifiers.
 */
import { isIPv6 } from 'node:net';

export const DETECTOR_NAMES = ['email', 'credit_card', 'bearer', 'jwt', 'ipv4', 'ipv6'] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

/** Produces the replacement for a detected secret (mask text or hash). */
export type Replacer = (secret: string, detector: string) => string;

// Byte classes for the pre-check.
const C_DIGIT = 1;
const C_AT = 2;
const C_COLON = 3;
const C_DOT = 4;
const C_UPPER_J = 5;
const C_B = 6;
const C_PCT = 8;
const CLS = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) CLS[c] = C_DIGIT;
CLS[0x40] = C_AT;
CLS[0x3a] = C_COLON;
CLS[0x2e] = C_DOT;
CLS[0x4a] = C_UPPER_J; // the J of "eyJ" (rarer than e)
CLS[0x62] = C_B;
CLS[0x42] = C_B;
CLS[0x25] = C_PCT;

let scratch = new Uint8Array(256);

function lowerIs(buf: Uint8Array, i: number, end: number, word: string): boolean {
  if (i + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if ((buf[i + k] | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}

export class Detectors {
  readonly names: readonly DetectorName[];
  private readonly email: boolean;
  private readonly card: boolean;
  private readonly bearer: boolean;
  private readonly jwt: boolean;
  private readonly ipv4: boolean;
  private readonly ipv6: boolean;

  constructor(names: readonly DetectorName[]) {
    this.names = names;
    this.email = names.includes('email');
    this.card = names.includes('credit_card');
    this.bearer = names.includes('bearer');
    this.jwt = names.includes('jwt');
    this.ipv4 = names.includes('ipv4');
    this.ipv6 = names.includes('ipv6');
  }

  get empty(): boolean {
    return this.names.length === 0;
  }

  /**
   * False when no enabled detector can match buf[start, end). True may be a
   * false alarm (the exact pass decides).
   */
  mayMatchBytes(buf: Uint8Array, start: number, end: number): boolean {
    const card = this.card;
    const email = this.email;
    const jwt = this.jwt;
    const bearer = this.bearer;
    const ipv4 = this.ipv4;
    const ipv6 = this.ipv6;
    let cardRun = 0;
    let ipDots = 0;
    let ipPrevDigit = false;
    let colons = 0;
    let i = start;
    while (i < end) {
      let c = CLS[buf[i]];
      if (c === 0) {
        // Skip a run of unremarkable bytes (letters, spaces mostly), then reset the run states once.
        do i++;
        while (i < end && (c = CLS[buf[i]]) === 0);
        if (i >= end) break;
        cardRun = 0;
        ipDots = 0;
        ipPrevDigit = false;
      }
      switch (c) {
        case C_DIGIT: {
          if (++cardRun >= 13 && card) return true;
          if (ipDots >= 3 && ipv4) return true;
          ipPrevDigit = true;
          // A single space or dash between digits continues a card-number run.
          const nx = i + 1 < end ? buf[i + 1] : 0;
          if ((nx === 0x20 || nx === 0x2d) && i + 2 < end && CLS[buf[i + 2]] === C_DIGIT) {
            i++;
            ipDots = 0;
            ipPrevDigit = false;
          }
          break;
        }
        case C_DOT:
          cardRun = 0;
          if (ipPrevDigit) ipDots++;
          else ipDots = 0;
          ipPrevDigit = false;
          break;
        case C_AT:
          if (email) return true;
          cardRun = 0;
          ipDots = 0;
          ipPrevDigit = false;
          break;
        case C_PCT:
          if (email && i + 2 < end && buf[i + 1] === 0x34 && buf[i + 2] === 0x30) return true;
          cardRun = 0;
          ipDots = 0;
          ipPrevDigit = false;
          break;
        case C_COLON:
          if (++colons >= 2 && ipv6) return true;
          cardRun = 0;
          ipDots = 0;
          ipPrevDigit = false;
          break;
        case C_UPPER_J:
          if (jwt && i >= start + 2 && buf[i - 1] === 0x79 && buf[i - 2] === 0x65) return true;
          cardRun = 0;
          ipDots = 0;
          ipPrevDigit = false;
          break;
        case C_B:
          if (bearer && lowerIs(buf, i, end, 'bearer')) return true;
          cardRun = 0;
          ipDots = 0;
          ipPrevDigit = false;
          break;
      }
      i++;
    }
    return false;
  }

  /** The same pre-check over a decoded string (characters above 0xff count as unremarkable). */
  mayMatchString(s: string): boolean {
    const n = s.length;
    const b = scratch.length >= n ? scratch : (scratch = new Uint8Array(Math.max(n, scratch.length * 2)));
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      b[i] = c > 0xff ? 0x78 : c;
    }
    return this.mayMatchBytes(b, 0, n);
  }

  /** True when an int attribute could be a card number. */
  intMayMatch(v: bigint): boolean {
    return this.card && v >= 1_000_000_000_000n && v < 10_000_000_000_000_000_000n;
  }

  /** Replaces every detected secret in s; returns s itself when nothing was found. */
  redact(s: string, replace: Replacer): string {
    if (!this.mayMatchString(s)) return s;
    let out = s;
    if (this.bearer && /bearer/i.test(out)) out = redactBearer(out, replace);
    if (this.jwt && out.includes('eyJ')) out = out.replace(JWT_RE, (m) => replace(m, 'jwt'));
    if (this.email && (out.includes('@') || out.includes('%40'))) out = redactEmails(out, replace);
    if (this.card && /[2-6]/.test(out)) out = redactCards(out, replace);
    if (this.ipv6 && out.includes(':')) out = out.replace(IPV6_CANDIDATE_RE, (m) => (/[0-9A-Fa-f]/.test(m) && isIPv6(m) ? replace(m, 'ipv6') : m));
    if (this.ipv4 && out.includes('.')) out = out.replace(IPV4_RE, (m) => replace(m, 'ipv4'));
    return out;
  }
}

const BEARER_RE = /\b(bearer)([ \t]+|%20|\+)/gi;
const JWT_RE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;
const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4_RE = new RegExp(`(?<![0-9])(?:${OCTET}\\.){3}${OCTET}(?![0-9])`, 'g');
const IPV6_CANDIDATE_RE = /(?<![0-9A-Za-z:._-])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![0-9A-Za-z:])/g;

function isTokenChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || c === 0x2b || c === 0x2f
  );
}

/**
 * "Bearer <token>" (also %20 or + as the space). A token is long and
 * random-looking: 20+ token characters, or 16+ with both letters and digits;
 * "the bearer of bad news" is left alone. Scanning resumes right after the
 * word, so "Bearer Bearer <token>" still loses the token.
 */
function redactBearer(s: string, replace: Replacer): string {
  BEARER_RE.lastIndex = 0;
  let out = '';
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = BEARER_RE.exec(s)) !== null) {
    const ts = m.index + m[0].length;
    let te = ts;
    while (te < s.length && isTokenChar(s.charCodeAt(te))) te++;
    while (te < s.length && s.charCodeAt(te) === 0x3d) te++;
    const token = s.slice(ts, te);
    const n = token.replace(/=+$/, '').length;
    const ok = n >= 20 || (n >= 16 && /[0-9]/.test(token) && /[A-Za-z]/.test(token));
    if (!ok) {
      BEARER_RE.lastIndex = ts;
      continue;
    }
    out += s.slice(last, ts) + replace(token, 'bearer');
    last = te;
    BEARER_RE.lastIndex = te;
  }
  return last === 0 ? s : out + s.slice(last);
}

function isLocalChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5f || c === 0x25 || c === 0x2b || c === 0x2d;
}
function isDomainChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d;
}
function isAlpha(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

/** Finds user@domain.tld (also with '@' written as %40) by expanding around each '@'. */
function redactEmails(s: string, replace: Replacer): string {
  let out = '';
  let last = 0;
  let i = 0;
  const n = s.length;
  while (i < n) {
    const a1 = s.indexOf('@', i);
    const a2 = s.indexOf('%40', i);
    let at: number;
    let atLen: number;
    if (a1 < 0 && a2 < 0) break;
    if (a2 < 0 || (a1 >= 0 && a1 < a2)) {
      at = a1;
      atLen = 1;
    } else {
      at = a2;
      atLen = 3;
    }
    let ls = at;
    while (ls > last && isLocalChar(s.charCodeAt(ls - 1))) ls--;
    // "%40" inside the local part of a previous candidate: do not swallow an encoded '@' as local text.
    let de = at + atLen;
    while (de < n && isDomainChar(s.charCodeAt(de))) de++;
    while (de > at + atLen && (s.charCodeAt(de - 1) === 0x2e || s.charCodeAt(de - 1) === 0x2d)) de--;
    const domain = s.slice(at + atLen, de);
    if (ls < at && validDomain(domain)) {
      out += s.slice(last, ls) + replace(s.slice(ls, de), 'email');
      last = de;
      i = de;
    } else i = at + atLen;
  }
  return last === 0 ? s : out + s.slice(last);
}

function validDomain(d: string): boolean {
  if (d.length < 4) return false;
  const labels = d.split('.');
  if (labels.length < 2) return false;
  for (const l of labels) if (l.length === 0) return false;
  const tld = labels[labels.length - 1];
  if (tld.length < 2) return false;
  for (let k = 0; k < tld.length; k++) if (!isAlpha(tld.charCodeAt(k))) return false;
  return true;
}

/**
 * Preference between overlapping card-number candidates (lower wins): the
 * issued lengths 19, 16, 15, 13 first (a 19-digit card contains a Luhn-valid
 * 16-digit prefix one time in ten), then the rare 14, 17, 18.
 */
const CARD_LENGTH_RANK: Record<number, number> = { 19: 0, 16: 1, 15: 2, 13: 3, 14: 4, 17: 5, 18: 6 };

const CARD_RUN_RE = /(?<![0-9])[0-9](?:[ -]?[0-9]){12,}(?![0-9])/g;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

/** A card number: 13-19 digits, first digit 2-6 (the card networks' ranges), Luhn-valid. */
function isCardDigits(d: string): boolean {
  if (d.length < 13 || d.length > 19) return false;
  const f = d.charCodeAt(0);
  if (f < 0x32 || f > 0x36) return false;
  return luhnValid(d);
}

/**
 * Finds runs of digits with single space/dash separators, then the longest
 * card-number sub-run made of whole groups, so "order 42 4111 1111 1111 1111"
 * still loses the card.
 */
function redactCards(s: string, replace: Replacer): string {
  return s.replace(CARD_RUN_RE, (run) => {
    const groups: Array<[number, number]> = [];
    let gs = 0;
    for (let i = 0; i <= run.length; i++) {
      const c = i < run.length ? run.charCodeAt(i) : 0x20;
      if (c === 0x20 || c === 0x2d) {
        if (i > gs) groups.push([gs, i]);
        gs = i + 1;
      }
    }
    // Every whole-group sub-run that is a card number; prefer common card
    // lengths, then the earliest start, and take non-overlapping ones.
    const cands: Array<[number, number, number]> = [];
    for (let i = 0; i < groups.length; i++) {
      let digits = '';
      for (let j = i; j < groups.length; j++) {
        digits += run.slice(groups[j][0], groups[j][1]);
        if (digits.length > 19) break;
        if (isCardDigits(digits)) cands.push([i, j, CARD_LENGTH_RANK[digits.length]]);
      }
    }
    if (cands.length === 0) return run;
    cands.sort((a, b) => a[2] - b[2] || a[0] - b[0]);
    const taken: Array<[number, number]> = [];
    for (const [i, j] of cands) if (!taken.some(([a, b]) => i <= b && j >= a)) taken.push([i, j]);
    taken.sort((a, b) => a[0] - b[0]);
    let out = '';
    let last = 0;
    for (const [i, j] of taken) {
      const from = groups[i][0];
      const to = groups[j][1];
      out += run.slice(last, from) + replace(run.slice(from, to), 'credit_card');
      last = to;
    }
    return last === 0 ? run : out + run.slice(last);
  });
}

// ------------------------------------------------------------------ URLs

export const DEFAULT_SENSITIVE_PARAMS = [
  'access_token',
  'api_key',
  'apikey',
  'auth',
  'authorization',
  'client_secret',
  'code',
  'id_token',
  'key',
  'password',
  'passwd',
  'pwd',
  'refresh_token',
  'secret',
  'session',
  'sessionid',
  'sig',
  'signature',
  'token',
  'awsaccesskeyid',
  'x-amz-credential',
  'x-amz-security-token',
  'x-amz-signature',
  'x-goog-credential',
  'x-goog-signature',
];

export const URL_REDACTED = 'REDACTED';

/**
 * Sanitizes a URL (or a bare query string when queryOnly): credentials in
 * the userinfo become REDACTED:REDACTED and the values of sensitive (or all)
 * query parameters become REDACTED, as the semantic conventions recommend.
 */
export function sanitizeUrl(
  s: string,
  queryOnly: boolean,
  allParams: boolean,
  params: ReadonlySet<string>,
  count: (detector: string) => void,
): string {
  let out = s;
  if (!queryOnly) {
    const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/.exec(out);
    if (m !== null && m[2] !== `${URL_REDACTED}:${URL_REDACTED}`) {
      out = m[1] + `${URL_REDACTED}:${URL_REDACTED}@` + out.slice(m[0].length);
      count('url_userinfo');
    }
  }
  let qs: number;
  if (queryOnly) qs = 0;
  else {
    const q = out.indexOf('?');
    if (q < 0) return out;
    qs = q + 1;
  }
  let qe = out.indexOf('#', qs);
  if (qe < 0) qe = out.length;
  if (qe <= qs) return out;
  const parts = out.slice(qs, qe).split('&');
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const value = p.slice(eq + 1);
    if (value === '' || value === URL_REDACTED) continue;
    const name = p.slice(0, eq);
    if (!allParams && !params.has(decodeName(name))) continue;
    parts[i] = name + '=' + URL_REDACTED;
    changed = true;
    count('url_query');
  }
  if (!changed) return out;
  return out.slice(0, qs) + parts.join('&') + out.slice(qe);
}

function decodeName(n: string): string {
  let d = n;
  if (n.includes('%') || n.includes('+')) {
    try {
      d = decodeURIComponent(n.replace(/\+/g, ' '));
    } catch {
      d = n;
    }
  }
  return d.toLowerCase();
}

/** Pre-check for URL sanitization over raw bytes: a query or userinfo may be present. */
export function urlMayNeedSanitizing(buf: Uint8Array, start: number, end: number, queryOnly: boolean): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b === 0x3f || b === 0x40 || (queryOnly && b === 0x3d)) return true;
  }
  return false;
}
