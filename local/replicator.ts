/**
 * The embedded default's stand-in for S3 replication: copies a vault into a DR region's vault,
 * object by object, each once it has been seen for `lagSeconds`, with its Object Lock
 * retain-until date and legal hold, as S3 replication copies an object with its lock
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-what-is-isnot-replicated.html).
 * Like S3 replication it only adds: deletes in the source (retention, garbage collection) are
 * not replicated, and it knows nothing of backups — an object arrives when its turn comes,
 * so a backup can be half there. Stopping it is what a region outage does to replication.
 *
 * Where it differs from S3: a retention date extended in the source after an object was copied
 * is not carried over (S3 replicates the lock an object version had when it was replicated).
 */
import type { VaultStore } from '../core/vault/store.js';

export interface ReplicatorOptions {
  /** How long an object waits after the replicator first saw it. @default 0 */
  readonly lagSeconds?: number;
  readonly now?: () => Date;
  /** Keys held back (a replication that fails for those objects); default none. */
  readonly holdBack?: (key: string) => boolean;
}

/** What one pass copied, and what it left for a later one. */
export interface ReplicationPass {
  readonly copied: number;
  /** Objects seen but still inside the lag, or held back. */
  readonly waiting: number;
}

export class LocalReplicator {
  private readonly seen = new Map<string, number>();
  private readonly lagMs: number;
  private readonly now: () => Date;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** The wait between passes, and how {@link stop} cuts it short. */
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly source: VaultStore,
    private readonly target: VaultStore,
    private readonly options: ReplicatorOptions = {},
  ) {
    this.lagMs = (options.lagSeconds ?? 0) * 1000;
    this.now = options.now ?? (() => new Date());
  }

  /** One pass over the source: copies every object whose lag has passed and the target lacks. */
  async sync(): Promise<ReplicationPass> {
    let copied = 0;
    let waiting = 0;
    const now = this.now().getTime();
    for await (const object of this.source.list('')) {
      if (this.stopped) break;
      const firstSeen = this.seen.get(object.key) ?? now;
      this.seen.set(object.key, firstSeen);
      if (await this.target.head(object.key)) continue;
      if (now - firstSeen < this.lagMs || this.options.holdBack?.(object.key)) {
        waiting++;
        continue;
      }
      const info = await this.source.head(object.key);
      if (!info) continue; // deleted since it was listed: nothing to replicate
      const body = await this.source.get(object.key);
      // S3 replication gives the replica the version's lock as it is; one that has passed locks
      // nothing, and a put naming it is refused (the pass may have run past it since it began).
      const retainUntil = info.retainUntil && info.retainUntil.getTime() > this.now().getTime() ? info.retainUntil : undefined;
      await this.target.put(object.key, body, retainUntil ? { retainUntil } : {});
      if (info.legalHold) await this.target.setLegalHold(object.key, true);
      copied++;
    }
    return { copied, waiting };
  }

  /**
   * Passes every `intervalMs` until {@link stop}. The timer between passes keeps the process
   * alive, as a replicating region should (`local replicate` runs until Ctrl-C).
   */
  start(intervalMs: number): void {
    const loop = async (): Promise<void> => {
      while (!this.stopped) {
        await this.sync();
        if (this.stopped) break;
        await new Promise<void>((r) => {
          this.wake = r;
          this.timer = setTimeout(r, intervalMs);
        });
      }
    };
    this.running = loop();
  }

  /** Stops replicating (a region outage): the pass under way ends after its current object. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.running;
  }
}
