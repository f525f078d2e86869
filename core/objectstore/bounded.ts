/**
 * Runs `task` over `items` with at most `limit` running at once, and stops at the first failure:
 * no item starts after one failed, the running ones are waited for (so nothing is still writing
 * when the caller hears of the failure, which matters to a Lambda whose next run redoes the
 * page), and the first error is thrown. Results keep the items' order.
 *
 * The `Semaphore` of core/vault bounds the work; p-limit is not a dependency and would not
 * stop at the first failure by itself.
 */
import { Semaphore } from '../vault/semaphore.js';

export async function mapBounded<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const slots = new Semaphore(Math.max(1, limit));
  const results = new Array<R>(items.length);
  let failed = false;
  let first: unknown;
  await Promise.all(
    items.map(async (item, i) => {
      await slots.acquire();
      try {
        if (failed) return;
        results[i] = await task(item, i);
      } catch (err) {
        if (!failed) first = err;
        failed = true;
      } finally {
        slots.release();
      }
    }),
  );
  if (failed) throw first;
  return results;
}
