/**
 * A counting semaphore. Used instead of p-limit because producers must *wait for a free slot
 * before producing more* (read more data, start another fsync): that wait is what bounds
 * memory and keeps libuv's thread pool free, and p-limit only queues work.
 */
export class Semaphore {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly slots: number) {
    this.free = slots;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}
