/**
 * OpenTelemetry consistent probability sampling in the W3C `tracestate`
 * (OTEP 235, specification trace/tracestate-probability-sampling.md).
 *
 * The `ot` list member holds `;`-separated `key:value` sub-keys; `th` is the
 * 56-bit rejection threshold T in up to 14 hex digits with trailing zeros
 * dropped. Keep probability p = (2^56 - T) / 2^56. Thresholds are handled as
 * BigInt (they do not fit in a double); this runs only for kept spans.
 */

export const MAX_TH = 1n << 56n;

/** Threshold for keep probability p (0 < p <= 1): T = 2^56 - round(p * 2^56), at most 2^56 - 1. */
export function thresholdForProbability(p: number): bigint {
  if (!(p > 0)) return MAX_TH - 1n;
  if (p >= 1) return 0n;
  let keep = BigInt(Math.round(p * 2 ** 56));
  if (keep < 1n) keep = 1n;
  return MAX_TH - keep;
}

/** Adjusted count (1 / p) of a threshold. */
export function adjustedCount(t: bigint): number {
  return Number(MAX_TH) / Number(MAX_TH - t);
}

/** `th` value: 14 hex digits with trailing zeros dropped ("0" for T = 0). */
export function encodeThreshold(t: bigint): string {
  if (t === 0n) return '0';
  return t.toString(16).padStart(14, '0').replace(/0+$/, '');
}

/** Parses a `th` value; undefined when malformed. */
export function parseThreshold(v: string): bigint | undefined {
  if (v.length === 0 || v.length > 14 || !/^[0-9a-f]+$/.test(v)) return undefined;
  return BigInt('0x' + v.padEnd(14, '0'));
}

/** Splits a tracestate into its list members (trimmed, empty ones removed). */
function members(ts: string): string[] {
  const out: string[] = [];
  for (const m of ts.split(',')) {
    const t = m.trim();
    if (t !== '') out.push(t);
  }
  return out;
}

/** Value of list member `key`, or undefined. */
export function traceStateValue(ts: string, key: string): string | undefined {
  if (ts === '') return undefined;
  for (const m of members(ts)) {
    const eq = m.indexOf('=');
    if (eq > 0 && m.slice(0, eq) === key) return m.slice(eq + 1);
  }
  return undefined;
}

/** The `th` threshold in a tracestate's `ot` member, or undefined. */
export function incomingThreshold(ts: string): bigint | undefined {
  const ot = traceStateValue(ts, 'ot');
  if (ot === undefined) return undefined;
  for (const sub of ot.split(';')) {
    if (sub.startsWith('th:')) return parseThreshold(sub.slice(3));
  }
  return undefined;
}

/** The `rv` randomness (56 bits, 14 hex digits) in the `ot` member, or undefined. */
export function incomingRandomness(ts: string): string | undefined {
  const ot = traceStateValue(ts, 'ot');
  if (ot === undefined) return undefined;
  for (const sub of ot.split(';')) {
    if (sub.startsWith('rv:') && /^[0-9a-f]{14}$/.test(sub.slice(3))) return sub.slice(3);
  }
  return undefined;
}

/**
 * Returns the tracestate with `th` set to `t`, or erased when `t` is
 * undefined. Other `ot` sub-keys and other vendors' members are kept; a
 * modified `ot` member moves to the front (W3C), an `ot` left empty goes away.
 */
export function withThreshold(ts: string, t: bigint | undefined): string {
  const list = members(ts);
  let ot: string | undefined;
  const others: string[] = [];
  for (const m of list) {
    if (ot === undefined && m.startsWith('ot=')) ot = m.slice(3);
    else others.push(m);
  }
  const subs = ot === undefined ? [] : ot.split(';').filter((s) => s !== '' && !s.startsWith('th:'));
  if (t !== undefined) subs.unshift('th:' + encodeThreshold(t));
  if (subs.length === 0) return others.join(',');
  return ['ot=' + subs.join(';'), ...others].join(',');
}
