/** Option parsers the benchmark scripts share: a bad value is one line naming what is allowed. */
import { InvalidArgumentError } from 'commander';

/** An integer of at least `min`. */
export const integer =
  (min: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer of at least ${min}`);
    return n;
  };

/** A share above 0 and at most 1. */
export const share = (value: string): number => {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a share above 0 and at most 1 (0.05 is 5%)');
  return n;
};
