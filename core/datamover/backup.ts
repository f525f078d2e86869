/**
 * Backup of one volume (a directory, in production the read-only mount of a PVC cloned from a
 * VolumeSnapshot) into the vault: walk, chunk, deduplicate, pack, upload, index, summarize.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { LRUCache } from 'lru-cache';
import { UserError } from '../errors.js';
import { withPath } from '../fs-errors.js';
import { backupProgressKey, checkBackupId, checkVolumeName, packKey, volumeIndexKey, volumeSummaryKey } from '../vault/layout.js';
import { DOWNLOAD_ATTEMPTS, ObjectNotFoundError, type VaultStore } from '../vault/store.js';
import { ChunkerPool } from './chunker-pool.js';
import { CHUNKER_ID, DEFAULT_CHUNKER, type ChunkerParams } from './fastcdc.js';
import { comparePaths, displayPath, IndexCorruptError, indexDownloadFailure, IndexReader, IndexReadError, IndexWriter, TRY_AGAIN, type ChunkRef, type IndexEntry } from './index-format.js';
import { Packer } from './packer.js';
import { findParent, hasIndexCommitment, indexMismatches, namedRun, readVolumeSummary, SummaryCorruptError, SUMMARY_FORMAT, type BackupStats, type ReadSummary, type SkippedParent, type VolumeSummary } from './summary.js';
import { commitsToSummary } from '../vault/backup-index.js';
import { Semaphore } from '../vault/semaphore.js';
import { countTreeInThread, MAX_SKIPPED_NAMED, walkTree, type TreeCount, type WalkEntry } from './walk.js';
import { ProgressReporter, type ProgressOptions } from './progress.js';

export interface BackupOptions {
  /** The directory to back up. */
  readonly source: string;
  readonly vault: VaultStore;
  readonly volume: string;
  readonly backupId: string;
  /** When the backup was taken: recorded, and used to pick the parent. */
  readonly now: Date;
  /** Re-read every file instead of trusting size and mtime against the parent. @default false */
  readonly full?: boolean;
  /**
   * Take as the parent only a backup whose `backup.json` commits to its summary (see
   * `commitsToSummary`): a summary nothing committed is passed over for an older one. The
   * workflow's exports set it. The export role may create summaries, indexes and packs, so
   * without it a summary put into the vault under an unused backup id, with an index whose
   * entries match the volume's files by size and mtime, would hand its chunks to every later
   * backup: restores of those would write its bytes, and pass every hash. Backups made without
   * the workflow have no `backup.json`, so the CLI leaves it off by default. @default false
   */
  readonly committedParent?: boolean;
  /**
   * Names this export run, the same across the retries of one Job (the workflow passes the
   * Job's UID, which the API server draws at random when the Job is created). It is written into
   * the index header and the summary, and an earlier attempt's index or summary is resumed from
   * only when it carries the same: backup ids can be foretold, so one planted under the id of a
   * backup yet to run is refused (`ForeignExportObjectError`) instead of finished and
   * committed. The workflow's FinishExport checks the summary for it too. @default none: an
   * earlier attempt's objects are resumed from whatever run wrote them
   */
  readonly runId?: string;
  /** Object Lock date for new objects; reused packs are extended to it. @default no lock */
  readonly retainUntil?: Date;
  /** Hashing threads. @default one per core, at most 8 (chunker-pool.ts defaultHashThreads) */
  readonly workers?: number;
  /** Pack uploads in flight. @default 3 */
  readonly uploadConcurrency?: number;
  /** @default 16 MiB */
  readonly packSize?: number;
  /** @default DEFAULT_CHUNKER */
  readonly chunker?: ChunkerParams;
  /** Where the index is staged before upload. @default os.tmpdir() */
  readonly tmpDir?: string;
  /** Called after each entry with the counters so far (the CLI throttles it). */
  readonly onProgress?: (stats: BackupStats) => void;
  /** Monotonic milliseconds, for the duration. @default performance.now */
  readonly clock?: () => number;
  /**
   * Write progress to the vault (`backupProgressKey`) every few seconds while the backup runs
   * and once at its end, against the files and bytes counted by a walk of their own, on another
   * thread while the backup copies (see progress.ts, walk.ts).
   * @default none written (and no counting walk)
   */
  readonly progress?: ProgressOptions;
  /**
   * Stops the backup when aborted (the CLI aborts it on SIGINT and SIGTERM): files being read stop
   * at their next segment, no index or summary is written, the progress report says `failed`, and
   * the promise rejects with the signal's reason. The packs already written stay, referenced by
   * nothing, for garbage collection (or a re-run, which reuses none of them: it reads again).
   */
  readonly signal?: AbortSignal;
  /**
   * How the totals for progress are counted, while the backup copies. For tests, which need to
   * decide when the count ends. @default countTreeInThread
   */
  readonly countTree?: (root: string) => TreeCount;
  /**
   * How far the walk may run ahead of the oldest unfinished file: entries and their file bytes.
   * For tests, which need a window small enough to fill. @default 4,096 entries, 4 GiB
   */
  readonly pendingWindow?: { readonly entries: number; readonly bytes: number };
}

export interface BackupResult extends BackupStats {
  readonly volume: string;
  readonly backupId: string;
  readonly parentBackupId: string | null;
  /** The newest earlier backup, passed over because its index is damaged: this backup read everything. */
  readonly parentSkipped: SkippedParent | null;
  readonly indexKey: string;
  readonly durationSeconds: number;
  /**
   * Present when an earlier attempt of this volume backup (a Job retried after its pod was
   * killed) had got far enough: `summary` when it had finished, `index` when it had written the
   * index but not the summary, which this attempt then wrote. Nothing was read or uploaded again.
   */
  readonly resumed?: 'summary' | 'index';
}

// Entries whose index lines may wait at once, and the bytes of their files. The index must be
// written in walk order, so finished entries queue behind the oldest unfinished one, and the
// walk goes on ahead of it only this far. Far enough that the other workers keep busy while one
// reads a big file at the head: at 64 entries (dirs included: MinIO keeps a directory per
// object) the walk stopped ~16 small files behind the small-files bench's 256 MiB etcd db, and
// one of two workers sat idle for the 0.6 s the db took. An entry waiting is its metadata and
// chunk list, never file data: under a kilobyte for a small file, ~150 bytes per chunk (at least
// 512 KiB each by default) for a big one, a few MB at these bounds; the 4 GiB bounds that
// metadata, not memory. What holds memory is bounded elsewhere: each worker's segments in flight
// (chunker-pool.ts `window`), the packs being filled (one, plus one per lane: packer.ts
// MAX_LANES), sealed and uploaded (uploadConcurrency, and one per file in flight at most while
// its upload waits for a slot), their spare buffers (as many as upload slots and lanes, plus
// one) and the known-chunk cache (KNOWN_CHUNKS). With both workers busy more of those are in
// flight at once: peak RSS of the small-files bench ~195 -> ~245 MB.
const MAX_PENDING_ENTRIES = 4096;
const MAX_PENDING_BYTES = 4 * 1024 * 1024 * 1024;
// Chunk ids remembered for deduplication beyond the parent's entry for the same path. Bounded
// so memory does not grow with the volume: about 26 MB, or 128 GiB of data at 1 MiB chunks.
const KNOWN_CHUNKS = 1 << 17;

/**
 * Backs up the directory `source` as volume `volume` of backup `backupId`. Incremental by
 * default: the newest earlier backup of the volume is merge-joined with the walk, and files
 * whose size and mtime are unchanged keep their chunk list without being read. Files that did
 * change are chunked with FastCDC on worker threads; chunks already known (from the parent's
 * entry for the same path, or seen recently) are referenced, new ones are packed and uploaded.
 * Reused packs get their Object Lock extended to `retainUntil`. The index and then the summary
 * are written last, so an interrupted backup leaves no summary and is never used as a parent.
 * The summary commits to the index (SHA-256, size, entry and file counts, file bytes), so a
 * verify or a restore can tell an index that lost lines from a complete one.
 */
export async function backupVolume(options: BackupOptions): Promise<BackupResult> {
  checkVolumeName(options.volume);
  checkBackupId(options.backupId);
  const reporter =
    options.progress && new ProgressReporter(options.vault, backupProgressKey(options.backupId, options.volume), { kind: 'export', volume: options.volume, backupId: options.backupId }, options.progress);
  try {
    let result: BackupResult;
    try {
      result = await backupWith(options, reporter);
    } catch (err) {
      if (!(err instanceof ParentPackUnusableError)) throw err;
      options.signal?.throwIfAborted();
      // The parent references a pack the vault no longer has, or no longer has whole (deleted or
      // cut short out of band, a lifecycle rule, damage): nothing of this attempt was committed,
      // so read the whole volume again, without that parent, and say why in the summary (as for
      // a parent whose index is damaged).
      result = await backupWith({ ...options, full: true }, reporter, { backupId: err.parentBackupId, reason: `its pack ${err.key} ${err.problem}` });
    }
    await reporter?.finish('done', { files: result.files, bytes: result.bytesTotal });
    return result;
  } catch (err) {
    await reporter?.finish('failed');
    throw err;
  }
}

/**
 * A pack the parent's index references is missing or too short for the chunks taken from it,
 * found while looking it up before this backup's index was written: the backup is done again
 * without the parent.
 */
class ParentPackUnusableError extends Error {
  constructor(
    readonly parentBackupId: string,
    readonly key: string,
    readonly problem: string,
    cause: PackUnusableError,
  ) {
    super(`backup ${parentBackupId} references ${key}, which ${problem}`, { cause });
    this.name = 'ParentPackUnusable';
  }
}

/** A pack an index references is not in the vault, or holds fewer bytes than the index needs. */
class PackUnusableError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key} ${problem}`);
    this.name = 'PackUnusable';
  }
}

/** `damagedParent`: a parent passed over (with `options.full`), to be named in the summary. */
async function backupWith(options: BackupOptions, reporter: ProgressReporter | undefined, damagedParent?: SkippedParent): Promise<BackupResult> {
  const { vault, volume, backupId } = options;
  const clock = options.clock ?? (() => performance.now());
  const started = clock();
  const sourceStats = await stat(options.source).catch(() => undefined);
  if (!sourceStats?.isDirectory()) throw new UserError(`source ${options.source} is not a directory; pass the mounted volume's directory`);

  const earlier = await earlierAttempt(vault, volume, backupId, options);
  // The vault has answered: say the run has started (its totals are not counted yet).
  reporter?.counting();
  if (earlier) {
    reporter?.start({ files: earlier.files, bytes: earlier.bytesTotal });
    return { ...earlier, durationSeconds: (clock() - started) / 1000 };
  }

  const tmp = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'milvus-guard-index-'));
  let parent: VolumeSummary | undefined;
  let parentSkipped: SkippedParent | undefined = damagedParent;
  let prevReader: IndexReader | undefined;
  try {
    const committed = options.committedParent ? (c: ReadSummary) => commitsToSummary(vault, c.summary.backupId, volume, c.sha256) : undefined;
    const candidate = options.full ? undefined : await findParent(vault, volume, backupId, options.now, committed);
    const staged = candidate ? await stageParentIndex(vault, candidate, tmp) : undefined;
    options.signal?.throwIfAborted();
    if (staged && 'reason' in staged) parentSkipped = { backupId: candidate!.backupId, reason: staged.reason };
    else if (staged) {
      parent = candidate;
      prevReader = new IndexReader(createReadStream(staged.file), `index of backup ${candidate!.backupId} volume ${volume}`);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const chunkerParams = options.chunker ?? DEFAULT_CHUNKER;
  const chunkerId = `${CHUNKER_ID}/${chunkerParams.minSize}-${chunkerParams.avgSize}-${chunkerParams.maxSize}`;
  // The parent's boundaries can stand in for the rolling hash only if it chunked the same way.
  const sameChunker = prevReader ? (await prevReader.readHeader()).chunker === chunkerId : false;
  const packer = new Packer(vault, {
    ...(options.packSize ? { packSize: options.packSize } : {}),
    ...(options.uploadConcurrency ? { concurrency: options.uploadConcurrency } : {}),
    ...(options.retainUntil ? { retainUntil: options.retainUntil } : {}),
  });
  // Set when the backup has failed: files still being read stop at their next segment, so no
  // pack is written (and, on an Object Lock vault, locked) for a backup that will not exist.
  let stopped: BackupStoppedError | undefined;
  // New files are read straight into the packs (each hashing thread fills one of its own), so
  // their chunks are not copied again; a changed file is read into the thread's own buffers, as
  // most of its chunks are in the vault already. A stopped backup gives no more targets: one
  // could seal a pack for an upload already draining.
  const pool = new ChunkerPool({ params: chunkerParams, ...(options.workers ? { workers: options.workers } : {}), readTarget: (lane, bytes) => (stopped ? undefined : packer.target(lane, bytes)) });
  const known = new LRUCache<string, ChunkRef>({ max: KNOWN_CHUNKS });
  // Packs from earlier backups that this one references, each with the furthest byte a chunk
  // taken from it ends at: each must still hold that many bytes, and its lock may need extending.
  const reusedPacks = new Map<string, number>();
  const stats = { files: 0, directories: 0, symlinks: 0, skipped: 0, bytesTotal: 0, bytesScanned: 0, bytesUploaded: 0, filesUnchanged: 0, chunksNew: 0, chunksReused: 0, packsUploaded: 0, packsRetentionExtended: 0, skippedFiles: [] as string[] };
  const snapshot = (): BackupStats => ({ ...stats, bytesUploaded: packer.bytesUploaded, packsUploaded: packer.packsUploaded });
  // Progress: files whose index entry is written, and bytes read plus those of unchanged files
  // (done without reading them), so an incremental backup also ends at 100%.
  const done = { files: 0, unchangedBytes: 0 };
  const report = (): void => reporter?.update({ files: done.files, bytes: stats.bytesScanned + done.unchangedBytes });

  const reuse = (ref: ChunkRef): void => {
    stats.chunksReused++;
    if (!packer.isNew(ref.pack)) reusedPacks.set(ref.pack, Math.max(reusedPacks.get(ref.pack) ?? 0, ref.offset + ref.length));
  };

  const chunkFile = async (w: WalkEntry, base: Omit<IndexEntry, 'chunks' | 'size'>, prev?: readonly ChunkRef[]): Promise<IndexEntry> => {
    const refs: ChunkRef[] = [];
    const size = await pool.chunkFile(w.absolute, async (segment) => {
      // Chunks read into a pack's memory are claimed in the order they were read: every
      // packer.add below runs before this callback first awaits (see ChunkerPool's readTarget).
      if (stopped) throw stopped;
      options.signal?.throwIfAborted();
      let offset = 0;
      for (let i = 0; i < segment.hashes.length; i++) {
        const hash = segment.hashes[i]!;
        const length = segment.lengths[i]!;
        let ref = known.get(hash);
        if (ref && ref.length === length) {
          reuse(ref);
        } else {
          ref = packer.add(hash, segment.data.subarray(offset, offset + length));
          known.set(hash, ref);
          stats.chunksNew++;
        }
        refs.push(ref);
        offset += length;
      }
      stats.bytesScanned += segment.data.length;
      report();
      await packer.drain();
    }, prev ? { lengths: prev.map((c) => c.length), hashes: prev.map((c) => c.hash) } : undefined, Number(w.stats.size));
    return { ...base, size, chunks: refs };
  };

  const pending: Promise<IndexEntry>[] = [];
  const windowEntries = options.pendingWindow?.entries ?? MAX_PENDING_ENTRIES;
  const windowBytes = options.pendingWindow?.bytes ?? MAX_PENDING_BYTES;
  // The file bytes of each pending entry (0 for a directory or a symlink), and their sum.
  const pendingSizes: number[] = [];
  let pendingBytes = 0;
  const indexFile = join(tmp, 'index.jsonl.gz');
  const writer = new IndexWriter(indexFile, { volume, backupId, chunker: chunkerId, ...(options.runId === undefined ? {} : { runId: options.runId }) });
  const flushHead = async (): Promise<void> => {
    pendingBytes -= pendingSizes.shift()!;
    const entry = await pending.shift()!;
    await writer.write(entry);
    if (entry.type === 'file') done.files++;
    report();
    options.onProgress?.(snapshot());
  };
  const enqueue = (entry: Promise<IndexEntry>, bytes = 0): void => {
    entry.catch(() => {}); // awaited in order by flushHead; this only silences the early rejection
    pending.push(entry);
    pendingSizes.push(bytes);
    pendingBytes += bytes;
  };

  let count: TreeCount | undefined;
  try {
    // The totals are counted on a thread of their own while the copy goes on (walk.ts).
    if (reporter) {
      reporter.start();
      const failed = (err: unknown): void => reporter.countFailed(err instanceof Error ? err.message : String(err));
      try {
        count = (options.countTree ?? countTreeInThread)(options.source);
        count.totals.then((totals) => reporter.counted(totals), failed);
      } catch (err) {
        failed(err); // no thread to count on: progress goes without a percentage, the backup on
      }
    }
    let prev = prevReader ? await prevReader.next() : undefined;
    for (const w of walkTree(options.source)) {
      options.signal?.throwIfAborted();
      while (prev && comparePaths(prev.path, w.path) < 0) prev = await prevReader!.next();
      const match = prev && comparePaths(prev.path, w.path) === 0 ? prev : undefined;
      const base = { path: w.path, mode: Number(w.stats.mode & 0o7777n), uid: Number(w.stats.uid), gid: Number(w.stats.gid), mtimeNs: w.stats.mtimeNs };
      switch (w.type) {
        case 'other':
          stats.skipped++;
          if (stats.skippedFiles.length < MAX_SKIPPED_NAMED) stats.skippedFiles.push(displayPath(w.path));
          continue;
        case 'dir':
          stats.directories++;
          enqueue(Promise.resolve({ ...base, type: 'dir', size: 0 }));
          break;
        case 'symlink':
          stats.symlinks++;
          enqueue(Promise.resolve({ ...base, type: 'symlink', size: w.target!.length, target: w.target! }));
          break;
        case 'file': {
          stats.files++;
          const size = Number(w.stats.size);
          stats.bytesTotal += size;
          if (match?.type === 'file' && match.chunks && match.size === size && match.mtimeNs === w.stats.mtimeNs) {
            stats.filesUnchanged++;
            done.unchangedBytes += size;
            match.chunks.forEach(reuse);
            enqueue(Promise.resolve({ ...base, type: 'file', size, chunks: match.chunks }), size);
          } else {
            // A changed file mostly keeps its old chunks (an in-place edit): make them known.
            for (const c of match?.chunks ?? []) known.set(c.hash, c);
            enqueue(chunkFile(w, { ...base, type: 'file' }, sameChunker && match?.type === 'file' ? match.chunks : undefined), size);
          }
          break;
        }
      }
      while (pending.length >= windowEntries || pendingBytes > windowBytes) await flushHead();
    }
    while (pending.length > 0) await flushHead();
    await packer.finish();
    await writer.close();
    // The packs are durable before an index names them: a retried Job trusts an index it finds
    // (earlierAttempt), and a file vault reports a failed fsync of a pack only here. Written
    // after a failed flush, the index would commit the retry to a pack that is not on the disk.
    await vault.flush();

    // Every reused pack is looked up, so that one deleted, cut short or tampered away out of
    // band is found by the next backup, which reads the volume again and writes it anew, rather
    // than carried on by every later one until a restore needs it. Packs are shared, so each
    // must also stay locked as long as the longest-lived backup that references it. Every pack
    // the parent references is already locked until at least the parent's date, so nothing needs
    // extending when the parent outlives this backup. Before the index, so that an unusable pack
    // found here leaves nothing committed (see ParentPackUnusableError): after it, every retry
    // found the same index and failed the same way.
    const parentCovers = parent?.retainUntil && options.retainUntil && Date.parse(parent.retainUntil) >= options.retainUntil.getTime();
    try {
      stats.packsRetentionExtended = await settlePacks(vault, reusedPacks, parentCovers ? undefined : options.retainUntil, options.signal);
    } catch (err) {
      if (err instanceof PackUnusableError && parent) throw new ParentPackUnusableError(parent.backupId, err.key, err.problem, err);
      throw err;
    }

    // Stopped while the last packs went up: nothing is committed.
    options.signal?.throwIfAborted();
    const indexKey = volumeIndexKey(backupId, volume);
    // The index and the summary are written once (see PutOptions.ifAbsent): a retried Job that
    // finds them resumes from them (earlierAttempt), it never writes them anew.
    await vault.putFile(indexKey, indexFile, { ifAbsent: true, ...(options.retainUntil ? { retainUntil: options.retainUntil } : {}) });
    // The summary commits to the index exactly as uploaded (see summary.ts, the integrity chain).
    const index = writer.commitment();
    const indexSize = index.size;

    const result = { ...snapshot(), bytesUploaded: packer.bytesUploaded + indexSize };
    await writeSummary(vault, options, { parentBackupId: parent?.backupId ?? null, ...(parentSkipped ? { parentSkipped } : {}), indexKey, index, stats: result });
    return { volume, backupId, parentBackupId: parent?.backupId ?? null, parentSkipped: parentSkipped ?? null, indexKey, ...result, durationSeconds: (clock() - started) / 1000 };
  } catch (err) {
    // Files not started yet are dropped, not read (the walk may be thousands of files ahead);
    // those being read stop at their next segment, and settle, so no worker keeps writing after
    // we return.
    stopped = new BackupStoppedError(err);
    pool.cancelQueued(stopped);
    await Promise.allSettled(pending);
    // The index is staged through a stream, whose ENOSPC names no file: name the staged index.
    throw withPath(err, indexFile);
  } finally {
    await count?.stop();
    await pool.close();
    await prevReader?.close().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * An earlier attempt of this volume backup (a Job's pod that was killed, then retried) left an
 * index or summary that cannot be used, and the vault keeps what a backup wrote: this backup
 * cannot be finished. A new backup (a new id) is not affected.
 */
export class EarlierAttemptUnusableError extends Error {
  constructor(backupId: string, volume: string, problem: string, cause: unknown) {
    super(
      `backup ${backupId} of volume ${volume} cannot be finished: an earlier attempt of it (or another writer) left what this attempt cannot use and may not replace (${problem}); ` +
        'run a new backup, which gets a new id, and milvus-guard datamover verify to see the damage',
      { cause },
    );
    this.name = 'EarlierAttemptUnusable';
  }
}

/**
 * The vault holds an index or summary under this backup's id that another export run wrote (see
 * `BackupOptions.runId`): a Job of this backup id before this one, or an object put there before
 * the backup ran by someone holding the export role. It may not be taken over, nor replaced.
 */
export class ForeignExportObjectError extends Error {
  constructor(backupId: string, volume: string, key: string, expected: string, found: unknown) {
    super(
      `backup ${backupId} of volume ${volume} cannot be finished: ${key} in the vault was not written by this export run ` +
        `(${namedRun(found)}, this run is ${JSON.stringify(expected)}), and the vault keeps it; ` +
        "run a new backup, which gets a new id, and find who else writes with the data mover's role (the bucket's CloudTrail data events name the writer)",
    );
    this.name = 'ForeignExportObject';
  }
}

/** Throws {@link ForeignExportObjectError} when this backup has a run id and `found` is another. */
function checkRun(options: BackupOptions, key: string, found: string | undefined): void {
  if (options.runId !== undefined && found !== options.runId) throw new ForeignExportObjectError(options.backupId, options.volume, key, options.runId, found);
}

/** What the files of a backup that failed are given up with; the backup's own error says why. */
export class BackupStoppedError extends Error {
  constructor(cause: unknown) {
    super('the backup stopped after an error', { cause });
    this.name = 'BackupStopped';
  }
}

/**
 * Writes the volume summary, which declares the export complete: everything it points at is
 * made durable first, and the summary itself after.
 */
async function writeSummary(vault: VaultStore, options: BackupOptions, fields: Pick<VolumeSummary, 'parentBackupId' | 'parentSkipped' | 'indexKey' | 'index' | 'stats'>): Promise<void> {
  await vault.flush();
  const summary: VolumeSummary = {
    format: SUMMARY_FORMAT,
    volume: options.volume,
    backupId: options.backupId,
    createdAt: options.now.toISOString(),
    retainUntil: options.retainUntil?.toISOString() ?? null,
    ...fields,
    ...(options.runId === undefined ? {} : { runId: options.runId }),
  };
  await vault.put(volumeSummaryKey(options.backupId, options.volume), Buffer.from(`${JSON.stringify(summary, null, 2)}\n`), { ifAbsent: true, ...(options.retainUntil ? { retainUntil: options.retainUntil } : {}) });
  await vault.flush();
}

/**
 * What an earlier attempt of this very volume backup left, when it is enough to finish without
 * reading the volume again. A Job whose pod was killed is retried (`backoffLimit`), and the
 * attempt before may have written the index, or the index and the summary, each locked until the
 * backup's retain-until date. They are written only where nothing is (`ifAbsent`; the vault's
 * bucket policy holds the role to it), so they cannot be written again, and need not be: the
 * source is the same read-only snapshot clone. So:
 * - the summary is there and reads: the volume backup is complete; its counters are returned;
 * - only the index is there, reads to its end, and every pack it references holds the bytes it
 *   points at: the summary is written, committing to that index; its packs' locks (and the
 *   index's) are extended as a backup's would be;
 * - nothing there: undefined, and the backup runs from the start;
 * - a summary or an index another run wrote (`options.runId` given, and the object names another
 *   run or none): {@link ForeignExportObjectError}, at once, before any of its packs is touched;
 * - a summary or an index there that cannot be used (damaged, or an index whose packs are
 *   missing or cut short): {@link EarlierAttemptUnusableError}, at once. The index and summary
 *   are written only where nothing is (`ifAbsent`), so reading the volume again would end in a
 *   write the vault refuses, hours later. A read that failed below the index (`IndexReadError`,
 *   a connection reset) says nothing about it: the index is read again
 *   ({@link DOWNLOAD_ATTEMPTS} tries in all), then the error is thrown, and the Job's retry
 *   comes back here.
 */
async function earlierAttempt(vault: VaultStore, volume: string, backupId: string, options: BackupOptions): Promise<Omit<BackupResult, 'durationSeconds'> | undefined> {
  const indexKey = volumeIndexKey(backupId, volume);
  const summaryKey = volumeSummaryKey(backupId, volume);
  if (await vault.head(summaryKey)) {
    let done: VolumeSummary | undefined;
    try {
      done = await readVolumeSummary(vault, backupId, volume);
    } catch (err) {
      if (err instanceof SummaryCorruptError) throw new EarlierAttemptUnusableError(backupId, volume, `its summary ${summaryKey} is damaged (${err.message})`, err);
      // Gone since the lookup: what the index says decides.
      if (!(err instanceof UserError)) throw err;
    }
    if (done) {
      checkRun(options, summaryKey, done.runId);
      // The run id is no secret (the index header holds it): a summary carrying it may yet have
      // been written by someone else, between this run's index and its summary. Finished from,
      // it must commit to the index there, and count what that index holds.
      if (hasIndexCommitment(done)) {
        const { index } = await readEarlierIndexOrFail(vault, indexKey, backupId, volume, options);
        const differences = indexMismatches(done.index, index);
        if (done.stats.files !== index.files) differences.push(`it counts ${done.stats.files} regular files where its index holds ${index.files}`);
        if (done.stats.bytesTotal !== index.bytes) differences.push(`it counts ${done.stats.bytesTotal} file bytes where its index holds ${index.bytes}`);
        if (differences.length > 0) throw new EarlierAttemptUnusableError(backupId, volume, `its summary ${summaryKey} does not match the index ${indexKey}: ${differences.join('; ')}`, undefined);
      } else if (options.runId !== undefined) {
        throw new EarlierAttemptUnusableError(backupId, volume, `its summary ${summaryKey} commits to no index, as every summary of a run does`, undefined);
      }
      return { volume, backupId, parentBackupId: done.parentBackupId, parentSkipped: done.parentSkipped ?? null, indexKey: done.indexKey, ...done.stats, resumed: 'summary' };
    }
  }
  if (!(await vault.head(indexKey))) return undefined;
  const { packs, stats, index } = await readEarlierIndexOrFail(vault, indexKey, backupId, volume, options);
  // Every pack holds the bytes the index points at: one cut short (a file vault's disk lost
  // what it had not yet written) is not trusted.
  try {
    stats.packsRetentionExtended = await settlePacks(vault, packs, options.retainUntil, options.signal);
  } catch (err) {
    if (err instanceof PackUnusableError) throw new EarlierAttemptUnusableError(backupId, volume, `its index ${indexKey} references ${err.key}, which ${err.problem}`, err);
    throw err;
  }
  if (options.retainUntil) {
    // The index's own lock too: on a file vault it is a journal line appended after the index
    // was linked, which an attempt killed (or out of space) in between never wrote.
    await vault.extendRetention(indexKey, options.retainUntil);
  }
  options.signal?.throwIfAborted();
  await writeSummary(vault, options, { parentBackupId: null, indexKey, index, stats });
  return { volume, backupId, parentBackupId: null, parentSkipped: null, indexKey, ...stats, resumed: 'index' };
}

/**
 * {@link readEarlierIndex}, read again when the download is cut short (as the parent's index
 * is): a damaged or missing index ends this backup (EarlierAttemptUnusable), one of another run
 * too (ForeignExportObject, from its header); a read that failed every time fails it, and the
 * Job's retry comes back here.
 */
async function readEarlierIndexOrFail(vault: VaultStore, indexKey: string, backupId: string, volume: string, options: BackupOptions): Promise<Awaited<ReturnType<typeof readEarlierIndex>>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readEarlierIndex(vault, indexKey, (runId) => checkRun(options, indexKey, runId));
    } catch (err) {
      if (err instanceof IndexCorruptError) throw new EarlierAttemptUnusableError(backupId, volume, `its index ${indexKey} is damaged (${err.message})`, err);
      if (err instanceof ObjectNotFoundError) throw new EarlierAttemptUnusableError(backupId, volume, `its index ${indexKey} is missing`, err);
      if (!(err instanceof IndexReadError)) throw err;
      const failure = indexDownloadFailure(`index ${indexKey}`, err, attempt);
      if (failure !== TRY_AGAIN) throw failure;
    }
  }
}

/** Reads the index an earlier attempt left to its end: its packs, the statistics it holds and its commitment. */
async function readEarlierIndex(vault: VaultStore, indexKey: string, checkHeader: (runId: string | undefined) => void) {
  const reader = new IndexReader(await vault.openRead(indexKey), `index ${indexKey}`);
  /** Each pack the index references, with the end of the furthest chunk it reads there. */
  const packs = new Map<string, number>();
  const stats = { files: 0, directories: 0, symlinks: 0, skipped: 0, bytesTotal: 0, bytesScanned: 0, bytesUploaded: 0, filesUnchanged: 0, chunksNew: 0, chunksReused: 0, packsUploaded: 0, packsRetentionExtended: 0 };
  try {
    // Whose index it is, before its entries are read and any of its packs is looked up or has
    // its lock extended.
    checkHeader((await reader.readHeader()).runId);
    for (let e = await reader.next(); e !== undefined; e = await reader.next()) {
      if (e.type === 'dir') stats.directories++;
      else if (e.type === 'symlink') stats.symlinks++;
      else {
        stats.files++;
        stats.bytesTotal += e.size;
        for (const c of e.chunks ?? []) {
          stats.chunksReused++;
          packs.set(c.pack, Math.max(packs.get(c.pack) ?? 0, c.offset + c.length));
        }
      }
    }
    return { packs, stats, index: { ...(await reader.digest()), ...reader.counts } };
  } finally {
    await reader.close().catch(() => {});
  }
}

/**
 * Downloads the index of `parent` into `dir` and reads it once in full, comparing it with what
 * the parent's summary commits to (SHA-256, size, entries, files, bytes). Resolves to the staged
 * file, to be merge-joined with the walk, or to the reason the parent cannot be trusted: its
 * index is missing, does not read (gzip, JSON, order), or differs from the commitment. A parent
 * that is not trusted is not used at all — its chunk references could point at the wrong bytes,
 * and the backup reads everything instead. A summary written before the integrity chain commits
 * to nothing: its index is used if it reads. An error reaching the vault is thrown, not a
 * reason: a transient failure is not damage.
 */
/** What IndexCorruptError's message ends with: a parent passed over gives only the damage as its reason. */
const DAMAGE_ADVICE = /; the index is damaged, restore from another backup$/;

async function stageParentIndex(vault: VaultStore, parent: VolumeSummary, dir: string): Promise<{ readonly file: string } | { readonly reason: string }> {
  const key = parent.indexKey;
  const file = join(dir, 'parent-index.jsonl.gz');
  try {
    await download(vault, key, file);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return { reason: `its index ${key} is missing` };
    if (err instanceof IndexCorruptError) return { reason: err.message.replace(DAMAGE_ADVICE, '') };
    throw err;
  }
  const reader = new IndexReader(createReadStream(file), `index ${key}`);
  try {
    await reader.readHeader();
    while ((await reader.next()) !== undefined);
    const digest = await reader.digest();
    if (hasIndexCommitment(parent)) {
      const differences = indexMismatches(parent.index, { ...digest, ...reader.counts });
      if (differences.length > 0) return { reason: `its index ${key} does not match its summary: ${differences.join('; ')}` };
    }
    return { file };
  } catch (err) {
    // IndexCorruptError says "…; the index is damaged, restore from another backup": only the damage matters here.
    if (err instanceof IndexCorruptError) return { reason: err.message.replace(DAMAGE_ADVICE, '') };
    throw err;
  } finally {
    await reader.close().catch(() => {});
  }
}

/**
 * Downloads index `key` into `file`, from the start again when the download is cut short (the
 * SDK retries requests, not bodies), {@link DOWNLOAD_ATTEMPTS} times in all; then
 * `IndexReadError`. A failure writing `file` is thrown at once, with its path.
 */
async function download(vault: VaultStore, key: string, file: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const source = await vault.openRead(key);
    // pipeline() rejects with the first failure and destroys the other stream with it too, so
    // the stream that failed first says whether the download was cut short or the disk failed.
    const staged = createWriteStream(file);
    let readFailed = false;
    let writeFailedFirst = false;
    source.once('error', () => (readFailed = true));
    staged.once('error', () => (writeFailedFirst ||= !readFailed));
    try {
      await pipeline(source, staged);
      return;
    } catch (err) {
      // A download that closed before its end without an error is rejected as a premature close.
      if (writeFailedFirst && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw withPath(err, file);
      const failure = indexDownloadFailure(`index ${key}`, err, attempt);
      if (failure !== TRY_AGAIN) throw failure;
    }
  }
}

/**
 * Looks up every pack of `packs` (pack id to the furthest byte the index needs from it): throws
 * `PackUnusableError` for a pack the vault does not have or holds shorter. With `until`, each is
 * then kept locked at least that long; resolves to how many locks were extended. The lookup is
 * a HEAD, which reports the current lock too, so a pack already locked long enough costs that one
 * request, and one that is not only the extension on top (on S3, PutObjectRetention).
 */
async function settlePacks(vault: VaultStore, packs: ReadonlyMap<string, number>, until: Date | undefined, signal?: AbortSignal): Promise<number> {
  let extended = 0;
  await eachPack(packs.keys(), signal, async (id) => {
    const key = packKey(id);
    const info = await vault.head(key);
    if (!info) throw new PackUnusableError(key, 'is missing');
    const end = packs.get(id)!;
    if (info.size < end) throw new PackUnusableError(key, `holds ${info.size} bytes where its chunks end at byte ${end}`);
    if (!until || (info.retainUntil && info.retainUntil >= until)) return;
    try {
      if (await vault.extendRetention(key, until, info)) extended++;
    } catch (err) {
      // Deleted between the lookup and the extension.
      if (err instanceof ObjectNotFoundError) throw new PackUnusableError(key, 'is missing');
      throw err;
    }
  });
  return extended;
}

/**
 * Runs `call` for every pack, 8 at a time, until `signal` aborts; every call has settled before
 * the first failure is thrown (none goes on behind the caller).
 */
async function eachPack(packs: Iterable<string>, signal: AbortSignal | undefined, call: (id: string) => Promise<void>): Promise<void> {
  const slots = new Semaphore(8);
  const work = [...packs].map(async (id) => {
    await slots.acquire();
    try {
      signal?.throwIfAborted();
      await call(id);
    } finally {
      slots.release();
    }
  });
  const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

