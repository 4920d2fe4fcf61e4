// Nearest-rank quantiles: the one way the benchmark picks a middle (of an even count, the lower one) or a tail.

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN; // NaN: a section not run
}
