/**
 * What controllers share, and the manager that runs them. Controllers are level-based: each
 * `reconcile` pass looks at the whole store and makes one step of progress, reporting whether
 * it changed anything. The manager runs passes after writes (coalesced) and on a short tick,
 * one pass at a time, and `settle()` runs them until nothing changes and no container
 * process is running, which makes tests deterministic without sleeps.
 */
import type { ClusterFaults } from '../faults.js';
import type { ObjectStore } from '../server/store.js';
import type { Timeline } from '../timeline.js';
import type { VolumeDirs } from '../volumes.js';

/** Collaborators every controller may use. */
export interface ControllerContext {
  store: ObjectStore;
  dirs: VolumeDirs;
  faults: ClusterFaults;
  timeline: Timeline;
  now: () => Date;
  /** Work that outlives a pass (a running container); `settle()` waits for it. */
  track(work: Promise<unknown>): void;
}

/** One controller. */
export interface Controller {
  readonly name: string;
  /** One pass; resolves true when it wrote something (so another pass is worthwhile). */
  reconcile(): Promise<boolean>;
}

/** Runs controllers after writes, on a tick, and on demand until quiescent. */
export class ControllerManager {
  private readonly controllers: Controller[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private running: Promise<void> = Promise.resolve();
  private pending = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError: unknown;

  constructor(private readonly tickMs: number) {}

  /** Adds a controller (passes run them in the order added). */
  add(controller: Controller): void {
    this.controllers.push(controller);
  }

  /** Work that outlives a pass; `settle()` waits for it. */
  track(work: Promise<unknown>): void {
    const tracked = work.catch(() => undefined).finally(() => {
      this.inFlight.delete(tracked);
      this.kick();
    });
    this.inFlight.add(tracked);
  }

  /** Starts the tick. */
  start(): void {
    this.timer = setInterval(() => this.kick(), this.tickMs);
    this.timer.unref();
  }

  /** Requests a pass soon (coalesces bursts of writes into one pass). */
  kick(): void {
    if (this.stopped || this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      void this.pass();
    });
  }

  /** Runs one pass of every controller, serialized with other passes. */
  pass(): Promise<boolean> {
    const result = this.running.then(async () => {
      let changed = false;
      for (const controller of this.controllers) {
        if (this.stopped) break;
        try {
          changed = (await controller.reconcile()) || changed;
        } catch (err) {
          // A failing controller must not stop the others; settle() reports it.
          this.lastError = err;
        }
      }
      return changed;
    });
    this.running = result.then(() => undefined, () => undefined);
    return result;
  }

  /**
   * Runs passes until one changes nothing and no container process is running. Rejects after
   * `timeoutMs` (default 30 s) or with the error a controller threw during settling.
   */
  async settle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.lastError = undefined;
    for (;;) {
      const changed = await this.pass();
      if (this.lastError) throw this.lastError;
      if (!changed && this.inFlight.size === 0) {
        // One more pass: a process that just finished may have left work behind.
        if (!(await this.pass())) return;
      }
      if (Date.now() > deadline) throw new Error(`the local cluster did not settle within ${timeoutMs} ms`);
      if (this.inFlight.size > 0) await Promise.race([...this.inFlight, new Promise((r) => setTimeout(r, 50))]);
    }
  }

  /** Stops ticking and waits for the pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Promises of the work still running (for shutdown). */
  get work(): Promise<unknown>[] {
    return [...this.inFlight];
  }
}
