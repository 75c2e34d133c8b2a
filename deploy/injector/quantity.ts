/**
 * Kubernetes resource quantities ("50m", "64Mi", "1Gi", "0.5", "1e3").
 * Enough of apimachinery's resource.Quantity grammar to check manifests and to
 * derive the sidecar's heap size from its memory limit.
 */

const SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

// sign, digits with optional fraction, then a binary/decimal SI suffix or a decimal exponent.
const QUANTITY = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$/;

/** Parses a quantity into a plain number (cores for CPU, bytes for memory); undefined when malformed. */
export function parseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) ? q : undefined;
  if (typeof q !== 'string') return undefined;
  const m = QUANTITY.exec(q);
  if (!m) return undefined;
  const value = parseFloat(m[2]) * (m[1] === '-' ? -1 : 1);
  const suffix = m[3] ?? '';
  if (suffix.startsWith('e') || suffix.startsWith('E')) return value * 10 ** parseInt(suffix.slice(1), 10);
  return value * SUFFIX[suffix];
}
