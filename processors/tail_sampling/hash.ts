/**
 * The Collector's `probabilistic` policy, bit for bit: FNV-1a 64 over the
 * salt's UTF-8 bytes followed by the 16 trace-id bytes; the trace is sampled
 * when that hash is at most a threshold computed from the percentage the way
 * the Collector computes it (internal/sampling/probabilistic.go):
 *
 *   threshold = uint64( bigFloat(MaxUint64) * bigFloat(float64(pct / 100)) )
 *
 * where the product is rounded to 64 significant bits (the precision of the
 * big.Float holding MaxUint64; round to nearest even) and then truncated to
 * an integer, saturating at MaxUint64. `collectorThreshold` reproduces that
 * with exact BigInt arithmetic; the per-trace hash runs on two 32-bit halves
 * (no BigInt, no allocation).
 */

export const DEFAULT_HASH_SALT = 'default-hash-seed';
const MAX_U64 = (1n << 64n) - 1n;

/** Exact decomposition of a finite positive double: value = mant * 2^exp. */
function decompose(x: number): [bigint, number] {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const hi = dv.getUint32(0);
  const lo = dv.getUint32(4);
  const biasedExp = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biasedExp === 0) return [frac, -1074];
  return [frac | (1n << 52n), biasedExp - 1075];
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** The Collector's calculateThreshold(ratio), ratio = sampling_percentage / 100 (a float64 division). */
export function collectorThreshold(ratio: number): bigint {
  if (!(ratio > 0)) return 0n; // 0, negative (big.Float.Uint64 gives 0) and NaN
  if (!Number.isFinite(ratio)) return MAX_U64;
  const [mant, exp] = decompose(ratio);
  let n = MAX_U64 * mant;
  let e = exp;
  const bits = bitLength(n);
  if (bits > 64) {
    // Round n to 64 significant bits, ties to even (big.Float's default mode).
    const s = BigInt(bits - 64);
    let q = n >> s;
    const r = n - (q << s);
    const half = 1n << (s - 1n);
    if (r > half || (r === half && (q & 1n) === 1n)) q += 1n;
    n = q;
    e += bits - 64;
  }
  let v = e >= 0 ? n << BigInt(e) : n >> BigInt(-e);
  if (v > MAX_U64) v = MAX_U64;
  return v;
}

const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[97 + i] = 10 + i;
  NIBBLE[65 + i] = 10 + i;
}

/** FNV-1a 64 with the salt already absorbed; `hash(traceIdHex)` leaves the result in `hi` / `lo`. */
export class SaltedFnv64 {
  private readonly seedHi: number;
  private readonly seedLo: number;
  hi = 0;
  lo = 0;

  constructor(salt: string) {
    // FNV-1a 64 offset basis 0xcbf29ce484222325.
    this.hi = 0xcbf29ce4;
    this.lo = 0x84222325;
    for (const b of new TextEncoder().encode(salt)) this.step(b);
    this.seedHi = this.hi;
    this.seedLo = this.lo;
  }

  /** h = (h ^ b) * 0x100000001b3 mod 2^64, on 32-bit halves. */
  private step(b: number): void {
    const lo = (this.lo ^ b) >>> 0;
    const hi = this.hi;
    const t = lo * 0x1b3; // < 2^41: exact
    const carry = Math.floor(t / 4294967296);
    this.lo = t >>> 0;
    this.hi = (Math.imul(hi, 0x1b3) + ((lo << 8) >>> 0) + carry) >>> 0;
  }

  /** Hashes the 16 bytes of a 32-character hex trace id. */
  hash(traceIdHex: string): void {
    this.hi = this.seedHi;
    this.lo = this.seedLo;
    for (let i = 0; i < 32; i += 2) {
      const b = (NIBBLE[traceIdHex.charCodeAt(i) & 127] << 4) | NIBBLE[traceIdHex.charCodeAt(i + 1) & 127];
      this.step(b & 0xff);
    }
  }

  /** The last hash as a bigint (tests and debugging). */
  value(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

/** Keep/drop exactly as the Collector's probabilistic policy decides it. */
export class CollectorProbabilistic {
  private readonly fnv: SaltedFnv64;
  readonly threshold: bigint;
  private readonly thHi: number;
  private readonly thLo: number;

  constructor(samplingPercentage: number, hashSalt: string) {
    this.fnv = new SaltedFnv64(hashSalt === '' ? DEFAULT_HASH_SALT : hashSalt);
    this.threshold = collectorThreshold(samplingPercentage / 100);
    this.thHi = Number(this.threshold >> 32n);
    this.thLo = Number(this.threshold & 0xffffffffn);
  }

  /** True when hash(salt, traceId) <= threshold. */
  sampled(traceIdHex: string): boolean {
    const f = this.fnv;
    f.hash(traceIdHex);
    return f.hi < this.thHi || (f.hi === this.thHi && f.lo <= this.thLo);
  }

  hashOf(traceIdHex: string): bigint {
    this.fnv.hash(traceIdHex);
    return this.fnv.value();
  }
}
