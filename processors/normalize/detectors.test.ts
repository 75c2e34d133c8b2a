import { describe, it, expect } from 'vitest';
import { Detectors, DETECTOR_NAMES, luhnValid, sanitizeUrl, type DetectorName } from './detectors.js';
import { Templater } from './template.js';
import { harness, spansFor, readSpans } from './testdata/fixtures.js';

const MASK = '[REDACTED]';
const all = new Detectors([...DETECTOR_NAMES]);
const redact = (s: string, d: Detectors = all) => d.redact(s, () => MASK);
const bytes = (s: string) => new TextEncoder().encode(s);
const pre = (s: string, d: Detectors = all) => {
  const b = bytes(s);
  return d.mayMatchBytes(b, 0, b.length);
};

describe('detectors', () => {
  it('e-mail addresses, also percent-encoded', () => {
    expect(redact('mail alice.smith+tag@mail.example.co.uk now')).toBe(`mail ${MASK} now`);
    expect(redact('?email=bob%40example.com&x=1')).toBe(`?email=${MASK}&x=1`);
    expect(redact('not an email: a@b, @handle, x@localhost')).toBe('not an email: a@b, @handle, x@localhost');
  });

  it('credit cards: Luhn-checked, spaced or dashed, embedded among other numbers', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(redact('card 4111 1111 1111 1111 ok')).toBe(`card ${MASK} ok`);
    expect(redact('card 5555-5555-5555-4444.')).toBe(`card ${MASK}.`);
    expect(redact('order 42 4111111111111111')).toBe(`order 42 ${MASK}`);
    expect(redact('378282246310005')).toBe(MASK);
    // Not cards: fails Luhn, timestamps (start with 1), too long.
    expect(redact('4111111111111112 1700000000000000000 41111111111111111111111')).toBe('4111111111111112 1700000000000000000 41111111111111111111111');
  });

  it('bearer tokens and JWTs', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    expect(redact(`Authorization: Bearer ${jwt}`)).toBe(`Authorization: Bearer ${MASK}`);
    expect(redact(`token=${jwt}&x=1`)).toBe(`token=${MASK}&x=1`);
    expect(redact('bearer%20abc123def456ghi789')).toBe(`bearer%20${MASK}`);
    expect(redact('Bearer Bearer abc123def456ghi789')).toBe(`Bearer Bearer ${MASK}`);
    expect(redact('Bearer v6.14.22 Bearer 2024-01-04')).toBe('Bearer v6.14.22 Bearer 2024-01-04');
    expect(redact('the bearer of bad news; Bearer information')).toBe('the bearer of bad news; Bearer information');
  });

  it('IPv4 and IPv6 addresses', () => {
    expect(redact('from 192.168.1.20:443 and 10.0.0.1')).toBe(`from ${MASK}:443 and ${MASK}`);
    expect(redact('peer [2001:db8::1]:8080, ::1 and fe80::1ff:fe23:4567:890a')).toBe(`peer [${MASK}]:8080, ${MASK} and ${MASK}`);
    expect(redact('at 12:30:45 std::vector a:b:c 256.1.1.1')).toBe('at 12:30:45 std::vector a:b:c 256.1.1.1');
  });

  it('only enabled detectors run', () => {
    const emailOnly = new Detectors(['email']);
    expect(redact('x@example.com 10.0.0.1', emailOnly)).toBe(`${MASK} 10.0.0.1`);
    expect(pre('10.0.0.1 4111111111111111', emailOnly)).toBe(false);
  });

  it('the byte pre-check never misses what the exact pass finds', () => {
    for (const s of ['a@b.io', 'x%40y.com', '4111 1111 1111 1111', 'Bearer abcdefgh1234567890', 'eyJabc.def.ghi', '1.2.3.4', '::1']) {
      expect(pre(s)).toBe(true);
    }
    expect(pre('plain text with nothing')).toBe(false);
  });
});

describe('URL sanitization', () => {
  it('redacts credentials and sensitive parameters only', () => {
    const n: string[] = [];
    const params = new Set(['token', 'x-amz-signature']);
    expect(sanitizeUrl('https://u:p@h/p?Token=1&q=2&X-Amz-Signature=s#f', false, false, params, (d) => n.push(d))).toBe(
      'https://REDACTED:REDACTED@h/p?Token=REDACTED&q=2&X-Amz-Signature=REDACTED#f',
    );
    expect(n).toEqual(['url_userinfo', 'url_query', 'url_query']);
    expect(sanitizeUrl('https://h/p', false, true, params, () => {})).toBe('https://h/p');
  });
});

describe('templater', () => {
  const t = new Templater({ numeric: true, uuid: true, hexMinLength: 16, placeholder: '{id}', patterns: [] });
  it('replaces ids and keeps everything else', () => {
    expect(t.apply('/users/123/orders/9f8e7d6c5b4a3928', true)).toBe('/users/{id}/orders/{id}');
    expect(t.apply('/v1/items/ABCDEF01-2345-6789-abcd-ef0123456789?page=2', true)).toBe('/v1/items/{id}?page=2');
    expect(t.apply('/api/v2/users/me', true)).toBe('/api/v2/users/me');
    expect(t.apply('SELECT 1', false)).toBe('SELECT {id}');
  });
});

// ------------------------------------------------------------------ fuzz

/** mulberry32: a small seeded PRNG so failures reproduce. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const chars = (r: Rand, set: string, n: number) => Array.from({ length: n }, () => pick(r, set.split(''))).join('');
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const ALNUM = LOWER + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const B64URL = ALNUM + '-_';
const HEX = '0123456789abcdef';

function genEmail(r: Rand): string {
  const local = chars(r, LOWER, 1) + chars(r, LOWER + '0123456789._-', int(r, 0, 10)) + chars(r, LOWER, 1);
  const labels = Array.from({ length: int(r, 1, 3) }, () => chars(r, LOWER, 1) + chars(r, LOWER + '0123456789', int(r, 0, 8)));
  const at = r() < 0.15 ? '%40' : '@';
  return `${local}${at}${labels.join('.')}.${chars(r, LOWER, int(r, 2, 6))}`;
}

function luhnDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return String(d);
  throw new Error('unreachable');
}

function genCard(r: Rand): string {
  const [prefix, len] = pick(r, [
    ['4', 16],
    ['4', 13],
    ['51', 16],
    ['55', 16],
    ['2221', 16],
    ['34', 15],
    ['37', 15],
    ['6011', 16],
    ['35', 19],
  ] as Array<[string, number]>);
  const body = prefix + chars(r, '0123456789', len - prefix.length - 1);
  const num = body + luhnDigit(body);
  const sep = pick(r, ['', ' ', '-']);
  if (sep === '') return num;
  return num.match(/.{1,4}/g)!.join(sep);
}

function genIPv4(r: Rand): string {
  return Array.from({ length: 4 }, () => String(int(r, 0, 255))).join('.');
}

function genIPv6(r: Rand): string {
  const groups = Array.from({ length: 8 }, () => chars(r, HEX, int(r, 1, 4)));
  const form = int(r, 0, 3);
  if (form === 0) return groups.join(':');
  if (form === 1) return `${groups.slice(0, int(r, 1, 4)).join(':')}::${groups.slice(6).join(':')}`;
  if (form === 2) return `::${groups[7]}`;
  return `${groups[0]}:${groups[1]}::`;
}

interface Secret {
  text: string;
  expected: string;
  detector: DetectorName;
}

function genSecret(r: Rand): Secret {
  switch (int(r, 0, 5)) {
    case 0: {
      const t = genEmail(r);
      return { text: t, expected: MASK, detector: 'email' };
    }
    case 1:
      return { text: genCard(r), expected: MASK, detector: 'credit_card' };
    case 2: {
      const tok = chars(r, B64URL + '.~+/', int(r, 20, 60));
      return { text: `${pick(r, ['Bearer', 'bearer', 'BEARER'])} ${tok}`, expected: '', detector: 'bearer' };
    }
    case 3: {
      const jwt = `eyJ${chars(r, B64URL, int(r, 10, 40))}.eyJ${chars(r, B64URL, int(r, 10, 80))}.${chars(r, B64URL, int(r, 0, 64))}`;
      return { text: jwt, expected: MASK, detector: 'jwt' };
    }
    case 4:
      return { text: genIPv4(r), expected: MASK, detector: 'ipv4' };
    default:
      return { text: genIPv6(r), expected: MASK, detector: 'ipv6' };
  }
}

const WORDS = ['the', 'order', 'was', 'shipped', 'bearer', 'Bearer', 'of', 'news', 'key', 'eye', 'beyond', 'checkout', 'e-mail', 'user_name', 'node.js', 'retry', 'std', 'vector', 'payment', 'declined', 'information', 'at', 'for', 'version'];

function genOrdinary(r: Rand): string {
  const out: string[] = [];
  for (let i = int(r, 1, 6); i > 0; i--) {
    out.push(pick(r, WORDS));
    if (r() < 0.35) {
      // A word, then one ordinary number-like token (never two numeric tokens side by side).
      out.push(
        pick(r, [
          String(int(r, 0, 999999)),
          `v${int(r, 0, 20)}.${int(r, 0, 20)}.${int(r, 0, 99)}`,
          `${String(int(r, 0, 23)).padStart(2, '0')}:${String(int(r, 0, 59)).padStart(2, '0')}:${String(int(r, 0, 59)).padStart(2, '0')}`,
          `2024-${String(int(r, 1, 12)).padStart(2, '0')}-${String(int(r, 1, 28)).padStart(2, '0')}`,
          `${int(r, 0, 999)}.${String(int(r, 0, 99)).padStart(2, '0')}`,
        ]),
      );
    }
  }
  return out.join(' ');
}

/** Fixed by default so failures reproduce; NORMALIZE_FUZZ_SEED=<n> explores other inputs. */
const SEED = Number(process.env.NORMALIZE_FUZZ_SEED ?? 0x5eed);

const SEPS = [', ', ' | ', '; ', ' (', ') ', '\n', ' "', '" ', ' <', '> ', ' ='];

describe('detector fuzz (seeded)', () => {
  it('no generated secret survives and ordinary text is left exactly as it was', () => {
    const r = prng(SEED);
    for (let iter = 0; iter < 4000; iter++) {
      const pieces: string[] = [];
      const expected: string[] = [];
      const secrets: Secret[] = [];
      for (let k = int(r, 1, 6); k > 0; k--) {
        const sep = pick(r, SEPS);
        if (r() < 0.5) {
          const w = genOrdinary(r);
          pieces.push(w, sep);
          expected.push(w, sep);
        } else {
          const s = genSecret(r);
          secrets.push(s);
          pieces.push(s.text, sep);
          expected.push(s.detector === 'bearer' ? s.text.split(' ')[0] + ' ' + MASK : s.expected, sep);
        }
      }
      const input = pieces.join('');
      const out = redact(input);
      for (const s of secrets) {
        const secretPart = s.detector === 'bearer' ? s.text.split(' ')[1] : s.text;
        if (out.includes(secretPart)) throw new Error(`secret survived (seed iter ${iter}): ${JSON.stringify(secretPart)} in ${JSON.stringify(input)}`);
      }
      expect(out, JSON.stringify(input)).toBe(expected.join(''));
      if (secrets.length > 0) expect(pre(input)).toBe(true);
    }
  });

  it('the byte pre-check is sound: whatever redact changes, the pre-check flagged', () => {
    const r = prng(SEED + 3);
    const alphabet = 'ab eyJBbearer0123456789 -.:@%40/=+_xX';
    for (const d of [all, ...DETECTOR_NAMES.map((n) => new Detectors([n]))]) {
      for (let iter = 0; iter < 3000; iter++) {
        const s = r() < 0.5 ? chars(r, alphabet, int(r, 1, 60)) : `${genOrdinary(r)} ${genSecret(r).text}${chars(r, alphabet, int(r, 0, 5))}`;
        if (redact(s, d) !== s) expect(pre(s, d), `${d.names.join(',')}: ${JSON.stringify(s)}`).toBe(true);
      }
    }
  });

  it('ordinary text alone is never changed', () => {
    const r = prng(SEED + 1);
    for (let iter = 0; iter < 4000; iter++) {
      const s = genOrdinary(r);
      expect(redact(s)).toBe(s);
    }
  });

  it('through the processor, secrets never leave in any attribute type or the span name', async () => {
    const r = prng(SEED + 2);
    const h = harness({ rules: [{ scope: ['span', 'event', 'span_name'], redact: { detectors: [...DETECTOR_NAMES] } }] });
    for (let iter = 0; iter < 150; iter++) {
      const s = [genSecret(r), genSecret(r), genSecret(r), genSecret(r), genSecret(r)];
      const ctx = (x: Secret) => `${genOrdinary(r)} ${x.text}; ${genOrdinary(r)}`;
      const spans = spansFor([
        {
          name: `op ${s[0].text} done`,
          kind: 1,
          attributes: { str: ctx(s[1]), arr: ['fine', ctx(s[2])], nested: { a: { b: [ctx(s[3])] } } },
          events: [{ name: 'e', attributes: { msg: ctx(s[4]) } }],
        },
      ]);
      const out = JSON.stringify(readSpans(await h.run(spans)));
      for (const x of s) {
        const secretPart = x.detector === 'bearer' ? x.text.split(' ')[1] : x.text;
        expect(out.includes(secretPart) || out.includes(JSON.stringify(secretPart).slice(1, -1)), secretPart).toBe(false);
      }
    }
  });
});
