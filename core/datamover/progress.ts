/**
 * Progress of one data-mover run (an export or a hydration of one volume), as a small JSON
 * object in the vault that the workflow and the CLI read without pulling the Job's logs:
 * `progress/backups/<backupId>/<pvc>.json` for an export, `progress/restores/<restoreId>/<pvc>.json`
 * for a hydration (core/vault/layout.ts owns both keys).
 *
 * A run writes progress when asked (`progress` of `backupVolume`, `progress.restoreId` of
 * `restoreVolume`). Cheap on purpose: one PUT of a few hundred bytes at most every `intervalMs`
 * (5 s by default), and a last one when the run ends. Writing progress never fails the copy: a
 * failed write is logged once and the copy goes on. The object carries counters and times
 * only, no paths and nothing from the environment.
 *
 * The vault is a versioned, Object-Locked bucket, so each PUT leaves the previous report as a
 * noncurrent version, locked for the bucket's default retention unless the PUT says otherwise:
 * days to years of thousands of locked versions per long run (a 10-hour export writes ~7,200).
 * So every write carries its own short lock, {@link PROGRESS_RETENTION_MS} (one day) from its
 * time: S3 lets a PUT's explicit retain-until date override the bucket's default for that
 * version, shorter too ("If your request to place an object version in a bucket contains an
 * explicit retention mode and period, those settings override any bucket default settings for
 * that object version", Amazon S3 developer guide, object-lock-overview.md; it needs
 * `s3:PutObjectRetention`, which infra grants on the progress keys). Once that day has passed,
 * the vault's lifecycle rule for `progress/` removes a noncurrent report a day after it was
 * replaced and expires the current one some days after its last write (infra/constructs/vault.ts).
 * A day rather than minutes: the lock is measured on the Job's clock and S3 refuses a date
 * already past, and the lifecycle counts in days anyway. The write says `replaceWhileLocked`,
 * so the local directory and in-memory vaults, which have no versions, replace the locked
 * report as S3 does rather than refuse the next one.
 */
import type { VaultStore } from '../vault/store.js';
import { ObjectNotFoundError } from '../vault/store.js';

export const PROGRESS_FORMAT = 'milvus-guard/progress';

/** What a progress object says about one volume's export or hydration. */
export interface VolumeProgress {
  readonly format: typeof PROGRESS_FORMAT;
  /** `export`: the data mover backs the volume up; `hydrate`: it restores it from the vault. */
  readonly kind: 'export' | 'hydrate';
  readonly volume: string;
  readonly backupId: string;
  /** The restore, for a hydration. */
  readonly restoreId?: string;
  /**
   * `counting`: the totals are being counted (an export copies meanwhile: `bytesDone` may grow);
   * `copying` once they are known (or could not be counted: totals null); then `done` or `failed`.
   */
  readonly phase: 'counting' | 'copying' | 'done' | 'failed';
  /** ISO time the run started and the time of this object. */
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly filesDone: number;
  /** Null while the totals are not known yet (counting). */
  readonly filesTotal: number | null;
  /** Bytes read (export: unchanged files count as done unread) or written (hydrate). */
  readonly bytesDone: number;
  readonly bytesTotal: number | null;
  /** Bytes per second since the copy started; null before a second has passed. */
  readonly bytesPerSecond: number | null;
  /** Seconds left at that rate; null when unknown, 0 when done. */
  readonly etaSeconds: number | null;
}

/** How a data-mover run reports progress to the vault. */
export interface ProgressOptions {
  /** Minimum milliseconds between two writes (the last one is always written). @default 5000 */
  readonly intervalMs?: number;
  /** Wall-clock time, for the throttle, the rate and the times in the object. @default () => new Date() */
  readonly now?: () => Date;
  /** Where the one line about a failed progress write goes. @default stderr */
  readonly log?: (line: string) => void;
}

/** The default interval between two progress writes. */
export const PROGRESS_INTERVAL_MS = 5000;

/** How long each progress write is locked (its own retain-until date; see the module's TSDoc). */
export const PROGRESS_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Writes the progress of one run to `key`, throttled to one write per interval, never more than
 * one in flight, and never throwing: a failed write is logged once (naming the key and the
 * error) and later writes are still tried.
 */
export class ProgressReporter {
  private readonly intervalMs: number;
  private readonly now: () => Date;
  private readonly log: (line: string) => void;
  private readonly started: Date;
  private copyStarted: Date | undefined;
  private lastWrite = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  /** The first failure to write progress, said once the run ends well (a failed run's own error says what is wrong). */
  private failure: string | undefined;
  private totals: { files: number; bytes: number } | undefined;
  /** Why the totals could not be counted, said once the run ends well. */
  private countFailure: string | undefined;
  private ended = false;
  private done = { files: 0, bytes: 0 };
  /** Writes that reached the vault (for tests and the final log). */
  writes = 0;

  constructor(
    private readonly vault: VaultStore,
    private readonly key: string,
    private readonly identity: Pick<VolumeProgress, 'kind' | 'volume' | 'backupId' | 'restoreId'>,
    options: ProgressOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? PROGRESS_INTERVAL_MS;
    this.now = options.now ?? (() => new Date());
    this.log = options.log ?? ((line) => void process.stderr.write(`${line}\n`));
    this.started = this.now();
  }

  /** Writes a first object (phase `counting`) so a reader sees the run has started. */
  counting(): void {
    this.write(this.snapshot('counting'));
  }

  /** The bytes the run reports against, once known. */
  get bytesTotal(): number | undefined {
    return this.totals?.bytes;
  }

  /**
   * The copy starts now (the rate is measured from here), against `totals` when they are known
   * already; otherwise they follow with `counted` and the phase stays `counting` until then.
   */
  start(totals?: { files: number; bytes: number }): void {
    this.copyStarted = this.now();
    if (totals) this.counted(totals);
  }

  /** The totals are known (phase `copying` from now on). */
  counted(totals: { files: number; bytes: number }): void {
    if (this.ended) return; // a count that lands after the run's end changes nothing
    this.totals = totals;
    this.write(this.snapshot('copying'));
  }

  /**
   * The totals cannot be counted: the copy goes on without a percentage, and the reason is said
   * once, when the run ends well (a failed run's own error says what is wrong).
   */
  countFailed(reason: string): void {
    if (this.ended || this.countFailure !== undefined) return;
    this.countFailure = reason;
    // Copying, totals unknown: a reader shows what is done and the rate, not "counting" forever.
    this.write(this.snapshot('copying'));
  }

  /** The counters so far; written when the interval has passed since the last write. */
  update(done: { files: number; bytes: number }): void {
    this.done = done;
    if (this.inflight || this.now().getTime() - this.lastWrite < this.intervalMs) return;
    this.write(this.snapshot(this.phase()));
  }

  private phase(): 'counting' | 'copying' {
    return this.totals || this.countFailure !== undefined ? 'copying' : 'counting';
  }

  /**
   * Writes the last object (`done` or `failed`) after any write in flight; never throws. A
   * failure to write progress is said once, when the run ended well; when the run failed it is
   * not: the run's own error says what is wrong (often the same vault), in one line.
   */
  async finish(phase: 'done' | 'failed', done?: { files: number; bytes: number }): Promise<void> {
    this.ended = true;
    if (done) this.done = done;
    // A run done before its count (or whose count failed) still ends with complete totals.
    if (phase === 'done' && done) this.totals ??= done;
    await this.inflight;
    this.write(this.snapshot(phase));
    await this.inflight;
    if (phase !== 'done') return;
    if (this.countFailure) this.log(`warning: cannot count the files to copy (${this.countFailure}); progress reports showed no percentage`);
    if (this.failure) this.log(`warning: cannot write progress to ${this.key} in ${this.vault.url} (${this.failure}); the copy went on without progress reports`);
  }

  /** Resolves once the write in flight, if any, has landed or failed (never throws). */
  async settled(): Promise<void> {
    await this.inflight;
  }

  private snapshot(phase: VolumeProgress['phase']): VolumeProgress {
    const now = this.now();
    const since = this.copyStarted ? (now.getTime() - this.copyStarted.getTime()) / 1000 : 0;
    const rate = since >= 1 ? this.done.bytes / since : null;
    const left = this.totals ? Math.max(0, this.totals.bytes - this.done.bytes) : undefined;
    const eta = phase === 'done' ? 0 : left === undefined ? null : left === 0 ? 0 : rate ? Math.round(left / rate) : null;
    return {
      format: PROGRESS_FORMAT,
      ...this.identity,
      phase,
      startedAt: this.started.toISOString(),
      updatedAt: now.toISOString(),
      filesDone: this.done.files,
      filesTotal: this.totals?.files ?? null,
      bytesDone: this.done.bytes,
      bytesTotal: this.totals?.bytes ?? null,
      bytesPerSecond: rate === null ? null : Math.round(rate),
      etaSeconds: eta,
    };
  }

  private write(progress: VolumeProgress): void {
    this.lastWrite = this.now().getTime();
    const body = Buffer.from(`${JSON.stringify(progress)}\n`);
    // A short lock of its own instead of the bucket's default retention (see the module's TSDoc).
    const options = { retainUntil: new Date(this.lastWrite + PROGRESS_RETENTION_MS), replaceWhileLocked: true };
    const task = (this.inflight ?? Promise.resolve())
      .then(() => this.vault.put(this.key, body, options))
      .then(
        () => {
          this.writes++;
        },
        (err: unknown) => {
          this.failure ??= err instanceof Error ? err.message : String(err);
        },
      )
      .finally(() => {
        if (this.inflight === task) this.inflight = undefined;
      });
    this.inflight = task;
  }
}

/**
 * The progress object at `key`, or undefined when there is none (the run has not started, or
 * was made before progress reports) or it does not read as one (a reader shows nothing rather
 * than fail a `describe`).
 */
export async function readProgress(vault: VaultStore, key: string): Promise<VolumeProgress | undefined> {
  let text: string;
  try {
    text = (await vault.get(key)).toString('utf8');
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<VolumeProgress>;
    if (parsed.format !== PROGRESS_FORMAT || typeof parsed.bytesDone !== 'number' || typeof parsed.filesDone !== 'number') return undefined;
    return parsed as VolumeProgress;
  } catch {
    return undefined;
  }
}

/**
 * Every progress object under `prefix` (`backupProgressPrefix`, `restoreProgressPrefix`), by
 * volume; those that do not read are left out.
 */
export async function listProgress(vault: VaultStore, prefix: string): Promise<VolumeProgress[]> {
  const found: VolumeProgress[] = [];
  for await (const o of vault.list(prefix)) {
    if (!o.key.endsWith('.json')) continue;
    const p = await readProgress(vault, o.key);
    if (p) found.push(p);
  }
  return found.sort((a, b) => a.volume.localeCompare(b.volume));
}

/** Percent of the bytes done (files when there are no bytes), or null while the totals are unknown. */
export function progressPercent(p: Pick<VolumeProgress, 'bytesDone' | 'bytesTotal' | 'filesDone' | 'filesTotal' | 'phase'>): number | null {
  if (p.phase === 'done') return 100;
  if (p.bytesTotal === null || p.filesTotal === null) return null;
  if (p.bytesTotal > 0) return Math.min(100, (100 * p.bytesDone) / p.bytesTotal);
  return p.filesTotal > 0 ? Math.min(100, (100 * p.filesDone) / p.filesTotal) : 0;
}
