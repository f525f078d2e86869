/**
 * Kubernetes resource quantities (`1000Gi`, `500G`, `1.5Ti`), the notation users already write
 * for PVC sizes. Only the byte-sized suffixes make sense for capacities, so milli (`m`) and
 * exponent forms are rejected.
 */
const MULTIPLIERS: Record<string, number> = {
  '': 1,
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

const QUANTITY = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

/** What the error message shows as allowed. */
export const QUANTITY_HINT = 'a Kubernetes quantity such as 1000Gi, 500G or 2Ti (suffixes Ki Mi Gi Ti Pi Ei k M G T P E)';

/** Parses a quantity into bytes, or returns `undefined` when it is not one. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * MULTIPLIERS[match[2] ?? '']!;
  return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined;
}
