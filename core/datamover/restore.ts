/**
 * Restore (hydrate) one volume of one backup into a directory: stream the index, recreate
 * every entry, verify every chunk while writing, then set modes and times bottom-up.
 *
 * Where the time goes, and so how it is split: the main thread streams the index, creates
 * directories and reads packs (touching chunks of a batch of files in one ranged read, into
 * the read slots of one shared memory, restore-writers.ts RestoreArena); writer threads, two
 * per core, verify each chunk's SHA-256 and write the files with synchronous system calls; a
 * large file is split into extents written by all of them at once. Restored files are not
 * fsynced one by one: a restore killed midway is re-run (the marker stays until the end, and a
 * re-run keeps only files whose size, mtime and every chunk hash match), and an fsync per file
 * would cost a device flush per file, most of the restore's time on a volume of small files.
 * Small files go through the page cache, written back in the background as the restore goes
 * (BackgroundWriteback), and one final `sync -f` of the target's file system writes the rest
 * before the marker goes ({@link flushFileSystem}), so a volume without a marker is on its
 * device (restic's restore exits with its files still in the page cache).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, constants as fsConstants, fchmodSync, fchownSync, ftruncateSync, futimesSync, lstatSync, mkdirSync, openSync, unlinkSync, utimesSync } from 'node:fs';
import { lchown, lstat, lutimes, mkdir, open, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { UserError } from '../errors.js';
import { withPath } from '../fs-errors.js';
import { checkBackupId, checkRestoreId, checkVolumeName, restoreProgressKey, volumeSummaryKey } from '../vault/layout.js';
import { packKey } from '../vault/layout.js';
import { ObjectNotFoundError, ShortReadError, type VaultStore } from '../vault/store.js';
import { ChunkError } from './chunk-reader.js';
import { alignedBuffer, DIRECT_MIN_BYTES, RestoreArena, RestoreWriters, sharedAlignedBuffer, WASM_PAGE, type WriterFailure, type WriterOp, type WriterResult } from './restore-writers.js';
import { displayPath, IndexCorruptError, indexDownloadFailure, IndexReader, TRY_AGAIN, type IndexEntry } from './index-format.js';
import { hasIndexCommitment, indexMismatches, readVolumeSummaryHashed, SummaryCorruptError, type IndexCommitment, type IndexSeen, type VolumeSummary } from './summary.js';
import { ProgressReporter, type ProgressOptions } from './progress.js';

const execFileAsync = promisify(execFile);

export interface RestoreOptions {
  readonly vault: VaultStore;
  readonly volume: string;
  readonly backupId: string;
  /** An empty (or missing) directory, or one an interrupted restore of the same backup left. */
  readonly target: string;
  /** Set owners and groups as recorded (needs root). @default false */
  readonly preserveOwnership?: boolean;
  /**
   * The SHA-256 `backup.json` commits to for this volume's summary (the restore workflow passes
   * it from the document it verified): a summary that does not hash to it is refused before the
   * target is touched, so a summary written after the backup, with an index and packs of its
   * own, cannot choose what is restored. @default not checked (a hand-run restore)
   */
  readonly summarySha256?: string;
  /**
   * Ranged reads of packs in flight at once, each holding one 8 MiB buffer: the memory bound
   * (see FileFeeder). @default writer threads + 2, at least 10 and at most 16
   */
  readonly concurrency?: number;
  /**
   * Threads that verify and write files (restore-writers.ts); 0 does it on the calling thread.
   * @default 4 × os.availableParallelism() where the volume's files average 1 MiB or more,
   * else 2 ×; at least 4 and at most 16
   */
  readonly workers?: number;
  /**
   * Files of at least this many bytes are split into extents written by several writers at
   * once (see FileFeeder). @default SPLIT_BYTES (32 MiB); tests set it low
   */
  readonly splitBytes?: number;
  /**
   * Start writing the page cache back to the device (in the background) after this many bytes
   * of small files were written through it (see BackgroundWriteback). @default WRITEBACK_BYTES
   */
  readonly writebackBytes?: number;
  readonly onProgress?: (progress: { files: number; bytesWritten: number }) => void;
  /** Monotonic milliseconds, for the duration. @default performance.now */
  readonly clock?: () => number;
  /**
   * Write progress to the vault every few seconds and at the end, under the restore this
   * hydration belongs to (`restoreProgressKey(restoreId, volume)`; see progress.ts).
   * @default none written
   */
  readonly progress?: ProgressOptions & { readonly restoreId: string };
  /**
   * Stops the restore when aborted (the CLI aborts it on SIGINT and SIGTERM): no more files or
   * ranges are started, those being written are closed and removed, the target keeps its resume
   * marker (a re-run resumes), the progress report says `failed`, and the promise rejects with the
   * signal's reason.
   */
  readonly signal?: AbortSignal;
}

export interface RestoreResult {
  readonly volume: string;
  readonly backupId: string;
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Bytes written (files found complete from an interrupted run are not rewritten). */
  readonly bytesWritten: number;
  /** Files an interrupted run had already restored, checked and kept. */
  readonly filesResumed: number;
  readonly durationSeconds: number;
}

/** A file could not be restored; the message names it. */
export class RestoreError extends Error {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`cannot restore ${path}: ${message}`, options);
    this.name = 'RestoreError';
    this.path = path;
  }
}

/**
 * A hydration that finished without restoring what the volume summary records: the index lost
 * entries (or the summary does not belong to it). The restore is not complete; its marker stays.
 */
export class RestoreIncompleteError extends RestoreError {
  constructor(target: string, message: string) {
    super(target, message);
    this.name = 'RestoreIncomplete';
  }
}

/**
 * Added to every open of a restored file: a symbolic link as the file itself fails with ELOOP
 * instead of being followed (see the writer's NOFOLLOW; `targetError` says what to do).
 */
const NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

/** Name of the file that marks a restore in progress (removed when the restore completes). */
export const RESTORE_MARKER = '.milvus-guard-restore.json';
const SLASH = 0x2f;

/**
 * Seconds for utimes. Node passes a double down to libuv, which truncates to nanoseconds; a
 * double near 1.7e9 s resolves ~240 ns, so aim at the middle of the microsecond and get the
 * microsecond exactly (the sub-microsecond rest cannot survive the trip through a double).
 */
function nsToSeconds(ns: bigint): number {
  const us = ns / 1000n - (ns < 0n && ns % 1000n !== 0n ? 1n : 0n);
  return (Number(us) + 0.5) / 1e6;
}

function isParent(dir: Buffer, path: Buffer): boolean {
  if (dir.length === 0) return true;
  return path.length > dir.length && path[dir.length] === SLASH && path.subarray(0, dir.length).equals(dir);
}

function checkRelativePath(path: Buffer, what: string): void {
  if (path.length === 0) return;
  for (const part of path.toString('latin1').split('/')) {
    if (part === '' || part === '.' || part === '..') throw new IndexCorruptError(what, `unsafe path ${JSON.stringify(displayPath(path))}`);
  }
}

/**
 * Restores volume `volume` of backup `backupId` into `target`. Every chunk is hashed before
 * it is written; a missing or damaged chunk stops the restore with a `RestoreError` naming the
 * file (whose partial content is removed). Modes, times and (optionally) owners are applied to
 * directories after their contents. The restore leaves a marker in `target` while it runs: a
 * second run of the same restore keeps files that are already complete (size, mtime and
 * every chunk hash match) and carries on, instead of starting over. Before creating anything it
 * checks the index against the summary's commitment (`IndexCorruptError` on a mismatch); after
 * hydration, that the index it restored from was that same object (`IndexCorruptError`, marker
 * kept) and the restored file count and bytes against the summary (`RestoreIncompleteError`).
 * A read of the index that fails below it (`IndexReadError`) is not damage: a re-run resumes.
 */
export async function restoreVolume(options: RestoreOptions): Promise<RestoreResult> {
  checkVolumeName(options.volume);
  checkBackupId(options.backupId);
  const restoreId = options.progress && checkRestoreId(options.progress.restoreId);
  const reporter = restoreId
    ? new ProgressReporter(options.vault, restoreProgressKey(restoreId, options.volume), { kind: 'hydrate', volume: options.volume, backupId: options.backupId, restoreId }, options.progress)
    : undefined;
  try {
    const result = await restoreWith(options, reporter);
    await reporter?.finish('done', { files: result.files, bytes: reporter.bytesTotal ?? 0 });
    return result;
  } catch (err) {
    await reporter?.finish('failed');
    throw err;
  }
}

async function restoreWith(options: RestoreOptions, reporter: ProgressReporter | undefined): Promise<RestoreResult> {
  const { vault, volume, backupId, target } = options;
  const clock = options.clock ?? (() => performance.now());
  const started = clock();
  const { summary, sha256 } = await readVolumeSummaryHashed(vault, backupId, volume);
  if (options.summarySha256 !== undefined && sha256 !== options.summarySha256) {
    throw new SummaryCorruptError(
      `${volumeSummaryKey(backupId, volume)} in ${vault.url} is not the summary backup ${backupId} commits to: its SHA-256 is ${sha256}, backup.json commits to ${options.summarySha256} (it was written after the backup); restore from another backup`,
    );
  }
  // The index knows the totals: the summary records its files and their bytes.
  reporter?.start({ files: summary.stats.files, bytes: summary.stats.bytesTotal });
  const what = `index of backup ${backupId} volume ${volume}`;
  // The chain before anything is created: an index that lost lines is still valid gzip and
  // sorted JSON, so only the summary's commitment tells it from a complete one.
  await checkIndexCommitment(vault, summary, what);
  const marker = join(target, RESTORE_MARKER);
  const reader = new IndexReader(await vault.openRead(summary.indexKey), what);
  let resuming: boolean;
  try {
    // Its header too: an index this version cannot read is refused before the target is touched.
    await reader.readHeader();
    resuming = await prepareTarget(target, marker, { backupId, volume });
    await refuseFoldedCase(target, marker);
  } catch (err) {
    await reader.close().catch(() => {});
    throw err;
  }
  const ownership = options.preserveOwnership ?? false;
  /** The resume check's buffer, made at the first file an interrupted run left. */
  let check: ResumeCheck | undefined;

  const targetBuf = Buffer.from(target);
  const threads = options.workers ?? defaultWriterThreads(summary.stats.files > 0 ? summary.stats.bytesTotal / summary.stats.files : 0);
  let arena: RestoreArena;
  let writers: RestoreWriters;
  try {
    // One memory for the read buffers and the writers' scratch (restore-writers.ts RestoreArena).
    arena = new RestoreArena(options.concurrency ?? defaultReadsInFlight(Math.max(threads, 1)), SLOT_BYTES, Math.max(threads, 1));
    writers = new RestoreWriters(threads, arena);
  } catch (err) {
    await reader.close().catch(() => {});
    throw err;
  }
  const counts = { files: 0, directories: 0, symlinks: 0, bytesWritten: 0, filesResumed: 0 };
  const writeback = new BackgroundWriteback(target, options.writebackBytes ?? WRITEBACK_BYTES);
  // Progress: files finished (written or kept), and bytes written so far plus those of kept files.
  const done = { files: 0, bytes: 0 };
  const onBytes = (n: number): void => {
    done.bytes += n;
    reporter?.update(done);
  };
  // The caller's progress callback formats text: once per file made it a visible cost on
  // volumes of small files, so it is called at most every PROGRESS_MS (and at the end).
  let lastProgress = -Infinity;
  const progress = (force = false): void => {
    if (!options.onProgress) return;
    const now = clock();
    if (!force && now - lastProgress < PROGRESS_MS) return;
    lastProgress = now;
    options.onProgress({ files: counts.files, bytesWritten: counts.bytesWritten });
  };
  const files = new FileFeeder(vault, writers, arena, options.splitBytes ?? SPLIT_BYTES, (file, result) => {
    done.files++;
    if (result === 'resumed') {
      counts.filesResumed++;
      onBytes(file.entry.size);
    } else {
      counts.bytesWritten += file.entry.size;
      if (file.entry.size < DIRECT_MIN_BYTES) writeback.add(file.entry.size);
    }
    progress();
  }, onBytes);
  // `made`: the directory exists or a writer was told to create it (see `case 'file'`).
  const dirs: { entry: IndexEntry; abs: Buffer; made: boolean }[] = [];
  const absolute = (p: Buffer): Buffer => (p.length === 0 ? targetBuf : Buffer.concat([targetBuf, Buffer.from('/'), p]));

  // A directory's mode and times are applied once every file started inside it is written
  // (a read-only directory must stay writable until then, and writing a file changes its
  // directory's mtime), without stopping the restore of the next directory meanwhile: Milvus
  // volumes keep one file per directory, so a barrier here would serialize the restore.
  const finalizers = new Set<Promise<void>>();
  const finishDir = (): void => {
    const { entry, abs, made } = dirs.pop()!;
    const task = files
      .whenAllSettled()
      .then(() => {
        if (files.failure !== undefined) return;
        // No file inside it created it (an empty directory, or one of directories only).
        if (!made) mkdirSync(abs, { recursive: true, mode: 0o700 });
        applyMetadataSync(abs, entry, ownership);
      })
      .catch((err: unknown) => {
        files.failure ??= err;
      })
      .finally(() => finalizers.delete(task));
    finalizers.add(task);
  };

  // An abort stops the feeder as a failure does: no further file or range is started.
  const stop = (): void => {
    files.failure ??= options.signal!.reason;
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const entry of reader.entries()) {
      options.signal?.throwIfAborted();
      checkRelativePath(entry.path, what);
      while (dirs.length > 0 && !isParent(dirs[dirs.length - 1]!.entry.path, entry.path)) finishDir();
      if (entry.path.length > 0) {
        const parent = dirs[dirs.length - 1];
        const slash = entry.path.lastIndexOf(SLASH);
        if (!parent || !parent.entry.path.equals(slash < 0 ? Buffer.alloc(0) : entry.path.subarray(0, slash))) {
          throw new IndexCorruptError(what, `${JSON.stringify(displayPath(entry.path))} has no directory entry before it`);
        }
      } else if (entry.type !== 'dir') {
        throw new IndexCorruptError(what, 'the root entry is not a directory');
      }
      const abs = absolute(entry.path);
      switch (entry.type) {
        case 'dir':
          counts.directories++;
          // Resuming, something may be in the way: checked here. On a fresh target the first
          // file inside has its writer create it (see below).
          if (entry.path.length > 0 && resuming) makeDir(abs, entry);
          dirs.push({ entry, abs, made: entry.path.length === 0 || resuming });
          break;
        case 'symlink':
          counts.symlinks++;
          // Its directory may be one a writer has been told to create and not yet created.
          if (!resuming) {
            mkdirSync(dirs[dirs.length - 1]!.abs, { recursive: true, mode: 0o700 });
            for (const d of dirs) d.made = true;
          }
          await makeSymlink(abs, entry, ownership);
          break;
        case 'file': {
          counts.files++;
          if (files.failure !== undefined) throw files.failure;
          // Directories not yet made are created by this file's writer before it opens the
          // file, off the main thread: a Milvus bucket has about three directories per file, and
          // mkdir took ~90 µs on ext4 when this was measured, a third of the main thread's time
          // on a volume of small files. That was with inodes freed minutes before, which an ext4
          // without a journal scans past (see bench/datamover.ts emptyTree); on a fresh one it
          // takes ~25 µs, and directories made on the main thread measured no different (4
          // interleaved small-files restores each way). A sibling file on another writer that
          // gets there first creates them too.
          const mkdirs: Buffer[] = [];
          for (const d of dirs) {
            if (d.made) continue;
            mkdirs.push(d.abs);
            d.made = true;
          }
          const file: RestoreFile = { entry, abs, name: displayPath(entry.path), ownership, mkdirs };
          if (resuming && (await alreadyRestored(abs, entry, (check ??= resumeCheck())))) files.resumed(file);
          else await files.add(file);
          break;
        }
      }
    }
    await files.flush();
    while (dirs.length > 1) finishDir();
    await files.settled();
    await Promise.all([...finalizers]);
    if (files.failure !== undefined) throw files.failure;
    // The root last, and the marker just before it: until here a re-run resumes.
    const root = dirs.pop();
    if (!root) throw new IndexCorruptError(what, 'it has no root entry');
    await checkIndexReadAgainst(reader, summary, what);
    checkRestoredAgainst(summary, target, counts.files, reader.counts.bytes);
    // Files under 1 MiB and every inode went through the page cache: they reach the device
    // before the marker goes, so a node lost after the Job succeeded (before the unmount would
    // have written them back) cannot leave a volume without a marker and with short files.
    await writeback.settled();
    await flushFileSystem(target);
    await rm(marker, { force: true });
    applyMetadataSync(root.abs, root.entry, ownership);
    progress(true);
  } catch (err) {
    files.failure ??= err;
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', stop);
    files.cancel();
    await files.settled().catch(() => {});
    await Promise.allSettled([...finalizers]);
    // Whatever a failure left open is incomplete: closed and removed (a re-run rewrites it).
    if (files.failure !== undefined) {
      await writers.abort();
      files.removeUnfinished();
    }
    await reader.close().catch(() => {});
    await writers.close();
    await writeback.settled().catch(() => {});
  }
  return { volume, backupId, ...counts, durationSeconds: (clock() - started) / 1000 };
}

const PROGRESS_MS = 250;

/**
 * Writer threads per core the process may use (`os.availableParallelism()`, which follows a
 * container's CPU limit; the Job sets none, so every core of the node), at least four and at
 * most MAX_WRITER_THREADS (memory: see FileFeeder), by the volume's mean file size (from its
 * summary). A writer blocks in each direct write of a large file, its core idle unless another
 * writer is hashing meanwhile, and the device sees only as many writes at once as there are
 * writers: four per core where files average 1 MiB or more (direct writes). Small files are
 * written through the page cache and cost CPU, not waits: two per core, as more threads only
 * cost memory (and written directly they were slower still: 3.3-4.0 s against 2.6-2.8 s, three
 * interleaved small-files restores each way after drop_caches, 4 and 6 writers alike).
 * Measured on 2 cores, idle machine: default profile (mean 1.8 MiB), in-process, 4 writers
 * 4.11-4.36 s, 6 writers 3.84-4.45 s, 8 writers 3.51-3.77 s, 12 writers 3.62-4.42 s;
 * small-files profile (mean 236 KiB), 8 writers within the noise of 4 (2.55-2.74 s against
 * 2.50-2.75 s) and 50 MB more peak RSS (304-311 MB).
 */
function defaultWriterThreads(meanFileBytes: number): number {
  const perCore = meanFileBytes >= DIRECT_MIN_BYTES ? 4 : 2;
  return Math.min(MAX_WRITER_THREADS, Math.max(4, perCore * availableParallelism()));
}
const MAX_WRITER_THREADS = 16;

/**
 * Ranged reads in flight (each holds one pool buffer): one per writer being written or handed
 * over, and two more so the disk always has a read queued, but at least 10 and at most
 * MAX_READS_IN_FLIGHT. Measured on 2 cores (default profile, interleaved runs): with 2 writers
 * 4 reads in flight 6.8-7.5 s, 6 reads 6.2-6.9 s, 10 reads 6.0-6.2 s; with 4 writers 10 and 14
 * reads were within the noise of each other, and 16 reads cost 50 MB more peak RSS (280 MB);
 * with 8 writers 10 and 18 reads were too (3.51-3.61 s against 3.51-3.80 s).
 */
function defaultReadsInFlight(writers: number): number {
  return Math.min(MAX_READS_IN_FLIGHT, Math.max(10, writers + 2));
}
const MAX_READS_IN_FLIGHT = 16;

/** One file of the index on its way to a writer. */
interface RestoreFile {
  readonly entry: IndexEntry;
  readonly abs: Buffer;
  readonly name: string;
  readonly ownership: boolean;
  /** Directories to create (owner-writable) before the file, outermost first. */
  readonly mkdirs: readonly Buffer[];
}

/** Bytes of one pool buffer: the largest ranged read (FastCDC's largest chunk is 4 MiB). */
const RANGE_BYTES = 8 * 1024 * 1024;
/** Slack for reading whole aligned blocks around a range (see VaultStore.getRange). */
const RANGE_SLACK = 8 * 1024;
/** One read buffer of the arena: a range and its slack, in whole WebAssembly pages. */
const SLOT_BYTES = Math.ceil((RANGE_BYTES + RANGE_SLACK) / WASM_PAGE) * WASM_PAGE;

/** A read buffer: a slot of the arena, or (`slot` undefined) one of its own for an oversized chunk. */
interface ReadBuffer {
  readonly slot: number | undefined;
  readonly view: Uint8Array;
}
/**
 * Files of at least this size are written in extents by all writers rather than by one: a
 * volume's etcd db (256 MiB in the benchmark) on one writer left the others idle while every
 * pool buffer waited on that one writer's hashing and writing.
 */
const SPLIT_BYTES = 32 * 1024 * 1024;
/**
 * A writer gets runs of consecutive files up to this many files or bytes (see FileFeeder.track).
 * Small-files profile, 4 writers, interleaved runs: one file per turn 2.9-3.2 s, runs of up to
 * 8 files 2.7-3.0 s, up to 64 files and 1 MiB 2.5-2.8 s (2 MiB and 4 MiB runs no better).
 */
const WRITER_RUN_FILES = 64;
const WRITER_RUN_BYTES = 1024 * 1024;
/** Files handed to the writers together, at most (their ranges are planned together). */
const BATCH_FILES = 512;

/** One ranged read: consecutive chunks of one pack, and who gets which. */
export interface RangePlan {
  readonly pack: string;
  readonly offset: number;
  readonly length: number;
  /** `position`: where the piece's first chunk goes in its file. */
  readonly pieces: { readonly file: FileState; readonly first: number; count: number; readonly offset: number; readonly position: number; last: boolean }[];
}

export interface FileState {
  /** Index order among the volume's files, from 1; also the writers' file id. */
  readonly id: number;
  readonly file: RestoreFile;
  readonly writer: number;
  /** Written in extents by several writers (see FileFeeder); the rest below is theirs. */
  readonly split: boolean;
  /** Extents handed to writers and not yet answered. */
  extentsPending: number;
  /** The extent holding the last chunk has been handed over. */
  lastHandedOver: boolean;
  /** Bytes the writers reported written. */
  written: number;
  failed: boolean;
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  opened: boolean;
}

/**
 * Feeds files to the writer threads. Files are taken in index order in batches (up to 8 MiB of
 * content or BATCH_FILES files); the chunks of a batch, in file order, are cut into ranged reads
 * of consecutive bytes of one pack (up to 8 MiB), so a run of small files packed side by side
 * costs one read instead of one per file, on a file:// vault and on S3 alike. Each read lands in
 * a buffer of a fixed pool of shared memory and goes to the writers of the files it serves; the
 * reads overlap, the hand-overs keep index order, so each writer sees its files' pieces in order.
 *
 * A file of SPLIT_BYTES or more is not one writer's: the main thread creates it at its full
 * length, each of its ranges goes to the next writer in turn, which verifies it and writes it at
 * its place in the file (pwrite; whole blocks with direct I/O, the partial blocks at the ends,
 * which the neighbouring extents share, through the page cache), and once every extent is
 * written the main thread checks the bytes written and sets owner, mode and times (mtime last, so
 * a file left by a killed run never looks complete to a re-run, which also hashes every chunk).
 * A damaged chunk in any extent removes the file and names it.
 *
 * Memory is bounded by the arena (RestoreArena), one shared memory allocated at the start:
 * `readsInFlight` read buffers of 8 MiB (plus 64 KiB) — by default writers + 2, 10 to 16:
 * 80.6 MiB on 2 cores, never above 129 MiB — plus 2 MiB of scratch per writer thread (writers =
 * 2 or 4 × cores, 4 to 16: at most 16 MiB on 2 cores, 32 MiB in all), plus one batch of index
 * entries (at most BATCH_FILES). A read waits for a free buffer: that wait is the backpressure
 * that stops the index from being read ahead. Only a chunk larger than 8 MiB (a custom chunker;
 * FastCDC's default maximum is 4 MiB) gets a buffer of its own, for that read.
 */
class FileFeeder {
  failure: unknown;
  private batch: FileState[] = [];
  private batchBytes = 0;
  private readonly inflight = new Set<Promise<void>>();
  private readonly free: number[] = [];
  private readonly waiting: ((slot: number) => void)[] = [];
  private used = 0;
  /** Hand-overs to the writers, in order. */
  private chain: Promise<void> = Promise.resolve();
  private nextId = 1;
  private nextWriter = 0;
  private writerFiles = 0;
  private writerBytes = 0;
  private nextExtentWriter = 0;
  /** Split files created and not yet finished: removed if the restore fails. */
  private readonly unfinished = new Set<FileState>();
  private settledUpTo = 0;
  private readonly settledAbove = new Set<number>();
  private readonly waiters: { upTo: number; resolve: () => void }[] = [];

  constructor(
    private readonly vault: VaultStore,
    private readonly writers: RestoreWriters,
    private readonly arena: RestoreArena,
    private readonly splitBytes: number,
    private readonly onDone: (file: RestoreFile, result: 'written' | 'resumed') => void,
    private readonly onBytes: (n: number) => void,
  ) {}

  /** A file an interrupted run already restored. */
  resumed(file: RestoreFile): void {
    this.markSettled(this.nextId++);
    this.onDone(file, 'resumed');
  }

  /**
   * Queues a file for the writers; hands a batch over once it is full (waiting for buffers:
   * backpressure). Throws the first failure of any file.
   */
  async add(file: RestoreFile): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const { entry, name } = file;
    const sum = (entry.chunks ?? []).reduce((n, c) => n + c.length, 0);
    if (sum !== entry.size) throw new RestoreError(name, `its chunks add up to ${sum} bytes, the index says ${entry.size}`);
    this.batch.push(this.track(file));
    this.batchBytes += file.entry.size;
    if (this.batchBytes >= RANGE_BYTES || this.batch.length >= BATCH_FILES) await this.flush();
  }

  /** Hands the queued files to the writers. */
  async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    const ranges = planRanges(batch);
    let next = 0;
    try {
      for (; next < ranges.length && this.failure === undefined; next++) {
        const range = ranges[next]!;
        const buffer = await this.takeBuffer(range.length);
        const read = this.read(range, buffer);
        read.catch(() => {}); // awaited in order below
        this.chain = this.chain.then(() => this.handOver(range, buffer, read));
      }
    } finally {
      // A failure stops the batch: what was not handed over is settled as failed.
      for (const range of ranges.slice(next)) for (const p of range.pieces) p.file.reject(this.failure);
    }
    // Empty files have no range: opened and closed in order too.
    const empty = batch.filter((s) => (s.file.entry.chunks ?? []).length === 0);
    if (empty.length > 0) this.chain = this.chain.then(() => this.handOverEmpty(empty));
    if (this.failure !== undefined) throw this.failure;
  }

  /** After a failure: the queued files will not be written. */
  cancel(): void {
    for (const f of this.batch) f.reject(this.failure ?? new Error('restore stopped'));
    this.batch = [];
  }

  /** Resolves once every file handed over so far is finished (written or failed). */
  async settled(): Promise<void> {
    await this.chain;
    await Promise.all([...this.inflight]);
  }

  /**
   * Resolves once every file queued so far is finished (written or failed), including those
   * still waiting in the batch. Cheap per call (a directory finishing waits on this): files are
   * numbered in index order and a low-water mark says up to which one all are settled.
   */
  whenAllSettled(): Promise<void> {
    const upTo = this.nextId - 1;
    if (this.settledUpTo >= upTo) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ upTo, resolve }));
  }

  private markSettled(id: number): void {
    this.settledAbove.add(id);
    while (this.settledAbove.delete(this.settledUpTo + 1)) this.settledUpTo++;
    while (this.waiters.length > 0 && this.waiters[0]!.upTo <= this.settledUpTo) this.waiters.shift()!.resolve();
  }

  private track(file: RestoreFile): FileState {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const split = this.writers.size > 1 && file.entry.size > 0 && file.entry.size >= this.splitBytes;
    const state: FileState = { id: this.nextId++, file, writer: this.nextWriter, split, extentsPending: 0, lastHandedOver: false, written: 0, failed: false, done, resolve, reject, opened: false };
    // Runs of neighbouring small files go to one writer (they share a ranged read): one message
    // per writer and read rather than one to every writer, and their directories on one thread.
    this.writerBytes += file.entry.size;
    if (++this.writerFiles >= WRITER_RUN_FILES || this.writerBytes >= WRITER_RUN_BYTES) {
      this.nextWriter = (this.nextWriter + 1) % this.writers.size;
      this.writerFiles = 0;
      this.writerBytes = 0;
    }
    const task = done
      .then(() => this.onDone(file, 'written'))
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.inflight.delete(task);
        this.markSettled(state.id);
      });
    this.inflight.add(task);
    return state;
  }

  private async takeBuffer(length: number): Promise<ReadBuffer> {
    // A chunk bigger than a pool buffer (a custom chunker) gets a buffer of its own.
    if (length > RANGE_BYTES) return { slot: undefined, view: new Uint8Array(sharedAlignedBuffer(length + RANGE_SLACK)) };
    const slot = this.free.pop() ?? (this.used < this.arena.slots ? this.used++ : await new Promise<number>((resolve) => this.waiting.push(resolve)));
    return { slot, view: this.arena.slot(slot) };
  }

  private giveBack(buffer: ReadBuffer): void {
    if (buffer.slot === undefined) return; // one of its own
    const next = this.waiting.shift();
    if (next) next(buffer.slot);
    else this.free.push(buffer.slot);
  }

  /** Reads a range into `buffer`; the view of the bytes within it. */
  private async read(range: RangePlan, buffer: ReadBuffer): Promise<Buffer> {
    const into = buffer.view;
    const first = range.pieces[0]!;
    const ref = first.file.file.entry.chunks![first.first]!;
    let data: Buffer;
    try {
      data = await this.vault.getRange(packKey(range.pack), range.offset, range.length, into);
    } catch (err) {
      let cause = err;
      if (err instanceof ObjectNotFoundError) cause = new ChunkError(ref, 'missing', `pack ${packKey(range.pack)} does not exist`);
      else if (err instanceof ShortReadError) cause = new ChunkError(ref, 'missing', err.message);
      if (cause instanceof ChunkError) throw damaged(first.file.file.name, cause);
      // An operating-system or network error (EIO from a file:// vault, a socket reset) gets
      // the pack, the bytes and the first file the read was for. Anything else passes as it
      // is: an AWS service error, which the CLI turns into the vault's own advice (credentials,
      // permissions, throttling), and a bug, which must keep its stack.
      if (!isSystemError(err)) throw err;
      throw new RestoreError(first.file.file.name, `cannot read ${packKey(range.pack)} (bytes ${range.offset}-${range.offset + range.length - 1}): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (data.length !== range.length) throw damaged(first.file.file.name, new ChunkError(ref, 'missing', `object ${packKey(range.pack)} returned ${data.length} bytes, wanted ${range.length}`));
    // A store that ignored `into` returned its own buffer: copy it into the shared one.
    if (data.buffer !== into.buffer) {
      into.set(data, 0);
      return Buffer.from(into.buffer, into.byteOffset, range.length);
    }
    return data;
  }

  /** Gives each writer its pieces of a read range, in order; the buffer returns to the pool once all are done with it. */
  private async handOver(range: RangePlan, buffer: ReadBuffer, read: Promise<Buffer>): Promise<void> {
    let data: Buffer;
    try {
      data = await read;
    } catch (err) {
      this.giveBack(buffer);
      this.failure ??= err;
      for (const p of range.pieces) p.file.reject(err);
      return;
    }
    if (this.failure !== undefined) {
      this.giveBack(buffer);
      for (const p of range.pieces) p.file.reject(this.failure);
      return;
    }
    const base = data.byteOffset;
    const byWriter = new Map<number, { ops: WriterOp[]; files: FileState[] }>();
    for (const piece of range.pieces) {
      const f = piece.file;
      if (f.split) {
        if (f.failed) continue;
        if (!f.opened) {
          f.opened = true;
          if (!this.createSplit(f)) continue;
        }
        // Each extent to the next writer in turn: a large file is written by all of them.
        const writer = this.nextExtentWriter;
        this.nextExtentWriter = (this.nextExtentWriter + 1) % this.writers.size;
        let slot = byWriter.get(writer);
        if (!slot) byWriter.set(writer, (slot = { ops: [], files: [] }));
        const chunks = f.file.entry.chunks!.slice(piece.first, piece.first + piece.count);
        slot.ops.push({ op: 'extent', id: f.id, path: f.file.abs, position: piece.position, offset: base + piece.offset, lengths: chunks.map((c) => c.length), hashes: chunks.map((c) => c.hash), firstChunk: piece.first });
        f.extentsPending++;
        if (piece.last) f.lastHandedOver = true;
        slot.files.push(f);
        continue;
      }
      let slot = byWriter.get(f.writer);
      if (!slot) byWriter.set(f.writer, (slot = { ops: [], files: [] }));
      if (!f.opened) {
        slot.ops.push(openOp(f));
        f.opened = true;
      }
      const chunks = f.file.entry.chunks!.slice(piece.first, piece.first + piece.count);
      slot.ops.push({ op: 'piece', id: f.id, offset: base + piece.offset, lengths: chunks.map((c) => c.length), hashes: chunks.map((c) => c.hash), firstChunk: piece.first });
      if (piece.last) slot.ops.push({ op: 'close', id: f.id });
      slot.files.push(f);
    }
    let users = byWriter.size;
    if (users === 0) this.giveBack(buffer);
    for (const [writer, { ops, files }] of byWriter) {
      // Offsets are into the arena, or into a buffer of its own (sent along).
      void this.writers.send(writer, ops, buffer.slot === undefined ? (buffer.view.buffer as SharedArrayBuffer) : undefined).then(
        (result) => {
          if (--users === 0) this.giveBack(buffer);
          this.settle(result, files);
        },
        (err: unknown) => {
          if (--users === 0) this.giveBack(buffer);
          this.failure ??= err;
          for (const f of files) this.failFile(f, err);
        },
      );
    }
  }

  private async handOverEmpty(files: FileState[]): Promise<void> {
    if (this.failure !== undefined) {
      for (const f of files) f.reject(this.failure);
      return;
    }
    const byWriter = new Map<number, FileState[]>();
    for (const f of files) byWriter.set(f.writer, [...(byWriter.get(f.writer) ?? []), f]);
    for (const [writer, list] of byWriter) {
      const ops = list.flatMap((f): WriterOp[] => [openOp(f), { op: 'close', id: f.id }]);
      void this.writers.send(writer, ops).then(
        (result) => this.settle(result, list),
        (err: unknown) => {
          this.failure ??= err;
          for (const f of list) f.reject(err);
        },
      );
    }
  }

  private settle(result: WriterResult, files: FileState[]): void {
    const byId = new Map(files.map((f) => [f.id, f]));
    for (const [id, n] of result.written) {
      this.onBytes(n);
      const f = byId.get(id);
      if (f?.split) f.written += n;
    }
    for (const failed of result.failed) {
      const f = byId.get(failed.id);
      if (!f) continue;
      const err = writerError(f.file, failed);
      this.failure ??= err;
      this.failFile(f, err);
    }
    for (const id of result.done) byId.get(id)?.resolve();
    // A split file is finished once its every extent is written (one entry per extent here).
    for (const f of files) {
      if (!f.split) continue;
      f.extentsPending--;
      if (f.extentsPending === 0 && f.lastHandedOver && !f.failed) this.finishSplit(f);
    }
  }

  /** A file that cannot be finished; a split one is removed here (no writer holds it open between extents). */
  private failFile(f: FileState, err: unknown): void {
    if (f.split && !f.failed) {
      f.failed = true;
      this.removeSplit(f);
    }
    f.reject(err);
  }

  /**
   * Creates a split file at its full length before any extent is written (extents are written
   * inside the file, never extending it, so the file system lets them run side by side). A run
   * killed before the file is finished leaves it with the right size but not the recorded mtime
   * (set last, in finishSplit), and a re-run checks every chunk's hash anyway: never kept.
   */
  private createSplit(f: FileState): boolean {
    const { abs, mkdirs, entry } = f.file;
    try {
      for (const d of mkdirs) mkdirSync(d, { recursive: true, mode: 0o700 });
      const fd = openSync(abs, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | NOFOLLOW, 0o600);
      this.unfinished.add(f);
      try {
        ftruncateSync(fd, entry.size);
      } finally {
        closeSync(fd);
      }
      return true;
    } catch (err) {
      const e = targetError(err, f.file);
      this.failure ??= e;
      this.failFile(f, e);
      return false;
    }
  }

  /** Every extent written: length checked, then owner, mode and times (last), as a writer does at close. */
  private finishSplit(f: FileState): void {
    const { abs, entry, name, ownership } = f.file;
    try {
      if (f.written !== entry.size) throw new RestoreError(name, `wrote ${f.written} bytes, the index says ${entry.size}`);
      const fd = openSync(abs, fsConstants.O_WRONLY | NOFOLLOW);
      try {
        if (ownership) fchownSync(fd, entry.uid, entry.gid);
        fchmodSync(fd, entry.mode);
        const t = nsToSeconds(entry.mtimeNs);
        futimesSync(fd, t, t);
      } finally {
        closeSync(fd);
      }
      this.unfinished.delete(f);
      f.resolve();
    } catch (err) {
      const e = err instanceof RestoreError ? err : targetError(err, f.file);
      this.failure ??= e;
      this.failFile(f, e);
    }
  }

  private removeSplit(f: FileState): void {
    if (!this.unfinished.delete(f)) return;
    try {
      unlinkSync(f.file.abs);
    } catch {
      // already gone
    }
  }

  /** After a failure, once the writers are done: split files not finished are removed. */
  removeUnfinished(): void {
    for (const f of [...this.unfinished]) this.removeSplit(f);
  }
}

function openOp(f: FileState): WriterOp {
  const { entry, abs, ownership } = f.file;
  return { op: 'open', id: f.id, path: abs, dirs: f.file.mkdirs, size: entry.size, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: nsToSeconds(entry.mtimeNs), chown: ownership };
}

/**
 * The ranged reads of a batch. A backup chunks several files at once and packs their chunks
 * as they come, so neighbouring files of the index sit in a pack close together but not in
 * index order: merging only chunks consecutive in the index cut the small-files profile into
 * reads of ~700 KiB on average (1,439 runs for 4,612 chunks), each a request of its own (an
 * S3 GET in production). So the batch's chunks are sorted by where they are in their packs and
 * touching ones merged, up to RANGE_BYTES; that plan is taken when it needs fewer reads and
 * each file still gets its chunks in order (ranges handed over by the first chunk they hold,
 * in index order). Otherwise, and always as the fallback, chunks consecutive in the index are
 * merged ({@link planInIndexOrder}). Each range lists, per file, the runs of its chunks it holds.
 * Exported for its tests.
 */
export function planRanges(files: FileState[]): RangePlan[] {
  const inOrder = planInIndexOrder(files);
  // One file (a large one fills a batch alone) gets its chunks in order already.
  if (inOrder.length <= 1 || files.length === 1) return inOrder;
  const byPack = planByPackOffset(files);
  return byPack.length < inOrder.length && deliversInOrder(byPack) ? byPack : inOrder;
}

/** Chunks consecutive in the index and in one pack merged, up to RANGE_BYTES. */
function planInIndexOrder(files: FileState[]): RangePlan[] {
  const ranges: RangePlan[] = [];
  let current: RangePlan | undefined;
  for (const f of files) {
    const chunks = f.file.entry.chunks ?? [];
    let position = 0;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!;
      const end = current ? current.offset + current.length : -1;
      if (!current || current.pack !== c.pack || c.offset !== end || current.length + c.length > RANGE_BYTES) {
        current = { pack: c.pack, offset: c.offset, length: 0, pieces: [] };
        ranges.push(current);
      }
      const last = current.pieces[current.pieces.length - 1];
      if (last && last.file === f) last.count++;
      else current.pieces.push({ file: f, first: i, count: 1, offset: current.length, position, last: false });
      (current as { length: number }).length += c.length;
      position += c.length;
    }
    // The piece holding the file's last chunk closes it.
    if (chunks.length > 0) {
      current!.pieces[current!.pieces.length - 1]!.last = true;
    }
  }
  return ranges;
}

/** Chunks sorted by pack and offset, touching ones merged up to RANGE_BYTES; ranges ordered by the first chunk (in index order) each holds. */
function planByPackOffset(files: FileState[]): RangePlan[] {
  const refs: { file: FileState; index: number; position: number; pack: string; offset: number; length: number }[] = [];
  for (const file of files) {
    let position = 0;
    (file.file.entry.chunks ?? []).forEach((c, index) => {
      refs.push({ file, index, position, pack: c.pack, offset: c.offset, length: c.length });
      position += c.length;
    });
  }
  refs.sort((a, b) => (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : a.offset - b.offset));
  // `first`: the earliest chunk a range holds, as (file id, chunk index).
  const ranges: (RangePlan & { first: [number, number] })[] = [];
  let current: (RangePlan & { first: [number, number] }) | undefined;
  for (const r of refs) {
    if (!current || current.pack !== r.pack || r.offset !== current.offset + current.length || current.length + r.length > RANGE_BYTES) {
      current = { pack: r.pack, offset: r.offset, length: 0, pieces: [], first: [r.file.id, r.index] };
      ranges.push(current);
    }
    const [id, index] = current.first;
    if (r.file.id < id || (r.file.id === id && r.index < index)) current.first = [r.file.id, r.index];
    const last = current.pieces[current.pieces.length - 1];
    if (last && last.file === r.file && last.first + last.count === r.index) last.count++;
    else current.pieces.push({ file: r.file, first: r.index, count: 1, offset: current.length, position: r.position, last: false });
    (current as { length: number }).length += r.length;
    if (r.index === (r.file.file.entry.chunks?.length ?? 0) - 1) current.pieces[current.pieces.length - 1]!.last = true;
  }
  return ranges.sort((a, b) => a.first[0] - b.first[0] || a.first[1] - b.first[1]);
}

/** Whether, handed over in this order, every file gets each of its chunks once and in order. */
function deliversInOrder(ranges: readonly RangePlan[]): boolean {
  const next = new Map<FileState, number>();
  for (const range of ranges) {
    for (const p of range.pieces) {
      if ((next.get(p.file) ?? 0) !== p.first) return false;
      next.set(p.file, p.first + p.count);
    }
  }
  return true;
}

/** An error from the operating system or a socket: it has a string code such as EIO or ECONNRESET (AWS SDK errors have `$metadata` instead). */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && !('$metadata' in err);
}

function damaged(name: string, err: ChunkError): RestoreError {
  return new RestoreError(name, `${err.message}; the vault is damaged, run datamover verify and restore from another backup`, { cause: err });
}

/** A writer's report as the error the restore throws: a damaged chunk, or a file-system error naming the file. */
function writerError(file: RestoreFile, failed: WriterFailure): unknown {
  if (failed.kind === 'mismatch') {
    const ref = file.entry.chunks![failed.chunk]!;
    return damaged(file.name, new ChunkError(ref, 'mismatch', `got ${failed.actual}`));
  }
  if (failed.code === 'ESIZE') return new RestoreError(file.name, failed.message);
  const err = Object.assign(new Error(failed.message), { code: failed.code, errno: failed.errno, syscall: failed.syscall });
  return targetError(err, file);
}

/**
 * An error of the target's file system while restoring `file`, as one line naming the file: a
 * write through a file descriptor fails without a path. Codes the user can act on get their
 * advice (fs-errors.ts: ENOSPC, EACCES...); any other system error (EIO from a failing device,
 * EFBIG, ENAMETOOLONG) a RestoreError with the system's words. Anything else is passed on.
 */
function targetError(err: unknown, file: { readonly abs: Buffer; readonly name: string }): unknown {
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ELOOP') {
    return new RestoreError(file.name, 'a symbolic link stands where the file goes, and a restore never writes through one; remove it from the target, then run the restore again', { cause: err });
  }
  const mapped = withPath(err, file.abs);
  if (mapped !== err || !isSystemError(err)) return mapped;
  return new RestoreError(file.name, `${err.message}; check the target volume, then run the restore again (it resumes where this one stopped)`, { cause: err });
}

/**
 * Compares the index object with the summary's commitment before anything is created; throws
 * `IndexCorruptError` naming every difference (`SummaryCorruptError` where the index's bytes are
 * the committed ones and only the summary's counts differ, `IndexReadError` where its download
 * is cut short every time it is tried, `RestoreError` where it matches only when read again). A summary written before the integrity chain
 * commits to nothing: the check after hydration ({@link checkRestoredAgainst}) still compares
 * its file count and bytes.
 *
 * The object's SHA-256 and size are the commitment's strength: bytes that hash as committed
 * are the index the backup wrote, entries and all. So the object is only hashed here, without
 * decompressing or decoding it (decoding the index of a volume of 4,444 files and 12,457
 * directories took 0.09–0.24 s, a tenth of its whole restore); the hydration pass decodes it.
 * Only an index that does not match is read again in full, to say what differs.
 */
async function checkIndexCommitment(vault: VaultStore, summary: VolumeSummary, what: string): Promise<void> {
  if (!hasIndexCommitment(summary)) return;
  let sha256: string;
  let size = 0;
  for (let attempt = 1; ; attempt++) {
    const hash = createHash('sha256');
    size = 0;
    const stream = await vault.openRead(summary.indexKey);
    try {
      for await (const chunk of stream) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      sha256 = hash.digest('hex');
      break;
    } catch (err) {
      // Raw bytes, nothing decoded: a download cut short is not damage, and is read again; bytes
      // that fail the store's checksum for them every time are the object's.
      const failure = indexDownloadFailure(what, err, attempt);
      if (failure !== TRY_AGAIN) throw failure;
    }
  }
  if (size === summary.index.size && sha256 === summary.index.sha256) return;
  const reader = new IndexReader(await vault.openRead(summary.indexKey), what);
  try {
    while ((await reader.next()) !== undefined);
    const digest = await reader.digest();
    // A mismatch is the index's or the summary's; a match on this second read is not damage:
    // the object was rewritten between the two reads, or the first was cut short.
    throw (
      commitmentFailure(summary, { ...digest, ...reader.counts }, what, 'before') ??
      new RestoreError(what, 'a first read of it did not match the volume summary and a second did (the object is being rewritten, or a read was cut short); nothing was created: run the restore again')
    );
  } finally {
    await reader.close().catch(() => {});
  }
}

/**
 * After the hydration pass read the index to its end: the bytes it decoded must be the ones
 * checked before it ({@link checkIndexCommitment}), or an object replaced between the two
 * reads (a file vault, a bucket without Object Lock) would have been restored unchecked.
 */
async function checkIndexReadAgainst(reader: IndexReader, summary: VolumeSummary, what: string): Promise<void> {
  if (!hasIndexCommitment(summary)) return;
  const digest = await reader.digest();
  const failure = commitmentFailure(summary, { ...digest, ...reader.counts }, what, 'after');
  if (failure) throw failure;
}

/**
 * What an index read as `seen` breaks of its summary's commitment, or undefined: the index's
 * fault (IndexCorruptError), or, where its bytes are the very ones committed to and only the
 * counts differ, the summary's (SummaryCorruptError). `when`: before anything was created, or
 * after hydration (the marker stays).
 */
function commitmentFailure(summary: VolumeSummary & { index: IndexCommitment }, seen: IndexSeen, what: string, when: 'before' | 'after'): Error | undefined {
  const differences = indexMismatches(summary.index, seen);
  if (differences.length === 0) return undefined;
  if (seen.sha256 === summary.index.sha256 && seen.size === summary.index.size) {
    const state = when === 'before' ? 'nothing was created' : 'the restore is not complete and its marker stays';
    return new SummaryCorruptError(`the summary of backup ${summary.backupId} volume ${summary.volume} commits to counts its index does not have: ${differences.join('; ')}; ${state}`);
  }
  return new IndexCorruptError(what, `${when === 'before' ? 'it does not match the volume summary' : 'it changed after it was checked'}: ${differences.join('; ')}`);
}

/** After hydration: the files restored and their bytes must be what the summary records. */
function checkRestoredAgainst(summary: VolumeSummary, target: string, files: number, bytes: number): void {
  const want = { files: summary.stats.files, bytes: summary.stats.bytesTotal };
  if (files === want.files && bytes === want.bytes) return;
  const missing = want.files - files;
  throw new RestoreIncompleteError(
    target,
    `restored ${files} files (${bytes} bytes) of backup ${summary.backupId} volume ${summary.volume}, but its summary records ${want.files} files (${want.bytes} bytes)` +
      `${missing > 0 ? `: ${missing} file(s) and ${want.bytes - bytes} bytes are missing` : ''}; the backup's index is damaged, restore from another backup`,
  );
}

/**
 * Refuses a target on a file system that ignores the case of names (APFS, ext4 or NTFS with
 * case folding): a Linux volume may hold names that differ only in case, which would land on
 * one file there, and an index's symbolic link "A" would stand where its directory "a" goes,
 * sending the files below it wherever "A" points. One lookup of the marker's name in upper case
 * tells: the same file answers it only where case is folded.
 */
async function refuseFoldedCase(target: string, marker: string): Promise<void> {
  const folded = join(target, RESTORE_MARKER.toUpperCase());
  const [own, other] = await Promise.all([lstat(marker, { bigint: true }), lstat(folded, { bigint: true }).catch(() => undefined)]);
  if (other && other.ino === own.ino && other.dev === own.dev) {
    throw new UserError(`target ${target} is on a file system that ignores the case of names, where files whose names differ only in case would overwrite each other; restore into a case-sensitive file system (ext4 or xfs without case folding)`);
  }
}

/** Makes `target` ready; true if an interrupted restore of the same backup is resumed. */
async function prepareTarget(target: string, marker: string, job: { backupId: string; volume: string }): Promise<boolean> {
  await mkdir(target, { recursive: true });
  const names = await readdir(target);
  if (names.includes(RESTORE_MARKER)) {
    let previous: { backupId?: string; volume?: string };
    try {
      previous = JSON.parse(await readFile(marker, 'utf8')) as typeof previous;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      // A run killed while it wrote the marker (the robustness run found it empty) wrote
      // nothing else yet: start afresh. Anything beside it means it is not ours to reuse.
      if (names.length > 1) throw new UserError(`target ${target} holds an unreadable ${RESTORE_MARKER} beside other files; empty the directory`);
      await writeFile(marker, `${JSON.stringify(job)}\n`);
      return false;
    }
    if (previous.backupId === job.backupId && previous.volume === job.volume) return true;
    throw new UserError(`target ${target} holds an unfinished restore of backup ${previous.backupId} volume ${previous.volume}; finish that one or empty the directory`);
  }
  // A freshly formatted ext4 volume (a new EBS PVC) holds an empty lost+found: still empty.
  const blocking = [];
  for (const name of names) {
    if (name === 'lost+found' && (await readdir(`${target}/${name}`).catch(() => ['?'])).length === 0) continue;
    blocking.push(name);
  }
  if (blocking.length > 0) throw new UserError(`target ${target} is not empty; restore into an empty directory`);
  await writeFile(marker, `${JSON.stringify(job)}\n`);
  return false;
}

/**
 * Synchronous on purpose (as the backup's walk is): the index loop must create a directory
 * before it can start the files inside it, and an async mkdir queues in libuv's thread pool
 * behind the file reads and writes (milliseconds each), while the system call takes
 * microseconds. Milvus volumes hold a few directories per file, so that wait starved the disk.
 */
function makeDir(abs: Buffer, entry: IndexEntry): void {
  try {
    // Owner-writable until its contents are in place; the recorded mode comes last.
    mkdirSync(abs, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const s = lstatSync(abs);
    if (!s.isDirectory()) throw new RestoreError(displayPath(entry.path), 'something that is not a directory is in the way');
    chmodSync(abs, 0o700 | s.mode);
  }
}

async function makeSymlink(abs: Buffer, entry: IndexEntry, ownership: boolean): Promise<void> {
  const existing = await lstat(abs).catch(() => undefined);
  if (existing?.isSymbolicLink() && (await readlink(abs, { encoding: 'buffer' })).equals(entry.target!)) {
    // left by an interrupted run
  } else {
    if (existing) await rm(abs, { recursive: true, force: true });
    await symlink(entry.target!, abs);
  }
  if (ownership) await lchown(abs, entry.uid, entry.gid);
  const t = nsToSeconds(entry.mtimeNs);
  await lutimes(abs, t, t);
}

/**
 * A directory's owner, mode and times. Synchronous for the reason `makeDir` is: three system
 * calls of microseconds each, which as promises would queue behind the reads in libuv's thread
 * pool (a Milvus bucket holds about three directories per file).
 */
function applyMetadataSync(abs: Buffer, entry: IndexEntry, ownership: boolean): void {
  if (ownership) chownSync(abs, entry.uid, entry.gid);
  chmodSync(abs, entry.mode);
  const t = nsToSeconds(entry.mtimeNs);
  utimesSync(abs, t, t);
}

/**
 * A file left by an interrupted run counts as done only if size, mtime and every chunk's hash
 * match, read from the device: with direct I/O where the file system allows it (`O_DIRECT`;
 * tmpfs refuses it, and there the page cache is the storage). Through the page cache the check
 * could keep a file the device never got: when a write-back fails (EIO, a thin volume out of
 * space: the error that stopped the run, see BackgroundWriteback), Linux marks the pages it could
 * not write clean and keeps them, so a re-run on the same node, before they are evicted, would
 * read every byte right from memory, keep the file, and finish with a final `sync -f` that has
 * nothing left to report (write-back errors are reported once).
 */
async function alreadyRestored(abs: Buffer, entry: IndexEntry, check: ResumeCheck): Promise<boolean> {
  const s = await lstat(abs, { bigint: true }).catch(() => undefined);
  if (!s?.isFile() || Number(s.size) !== entry.size) return false;
  const drift = s.mtimeNs - entry.mtimeNs;
  if (drift > 1000n || drift < -1000n) return false;
  if (check.direct) {
    try {
      return await chunksMatch(abs, entry, check.buffer, fsConstants.O_RDONLY | fsConstants.O_DIRECT! | NOFOLLOW);
    } catch (err) {
      // Refused at open or at the first read (tmpfs, some FUSE and network file systems).
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      check.direct = false;
    }
  }
  return chunksMatch(abs, entry, check.buffer, fsConstants.O_RDONLY | NOFOLLOW);
}

/** Bytes of the resume check's read buffer. */
const RESUME_READ_BYTES = 4 * 1024 * 1024;

/** The resume check's read buffer (page-aligned, for direct I/O) and whether direct reads work here. */
interface ResumeCheck {
  readonly buffer: Buffer;
  direct: boolean;
}

function resumeCheck(): ResumeCheck {
  // Without WebAssembly (node --jitless) no aligned memory: the check reads through the page cache.
  const aligned = alignedBuffer(RESUME_READ_BYTES);
  return { buffer: aligned ?? Buffer.allocUnsafe(RESUME_READ_BYTES), direct: aligned !== undefined && fsConstants.O_DIRECT !== undefined };
}

/** Reads the file in whole buffers from offset 0 (aligned, as direct I/O needs) and hashes it chunk by chunk against the index. */
async function chunksMatch(abs: Buffer, entry: IndexEntry, buffer: Buffer, flags: number): Promise<boolean> {
  const chunks = entry.chunks ?? [];
  const fh = await open(abs, flags);
  try {
    let chunk = 0;
    let inChunk = 0;
    let hash = createHash('sha256');
    for (let position = 0; position < entry.size; ) {
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return false;
      for (let at = 0; at < bytesRead; ) {
        const ref = chunks[chunk];
        if (!ref) return false;
        const take = Math.min(ref.length - inChunk, bytesRead - at);
        hash.update(buffer.subarray(at, at + take));
        at += take;
        inChunk += take;
        if (inChunk === ref.length) {
          if (hash.digest('hex') !== ref.hash) return false;
          hash = createHash('sha256');
          chunk++;
          inChunk = 0;
        }
      }
      position += bytesRead;
    }
    return chunk === chunks.length && inChunk === 0;
  } finally {
    await fh.close();
  }
}

/**
 * Bytes of small files written through the page cache between two background write-backs. The
 * kernel starts writing dirty pages back on its own only past dirty_background_ratio (10% of
 * free memory: 2.2 GiB on a 24 GiB node) or after 30 s, so without this every small file of a
 * volume waited in memory for the final `sync -f`, which then wrote them all while nothing else
 * ran (0.5 s of a 1 GiB small-files restore, measured with strace).
 */
const WRITEBACK_BYTES = 128 * 1024 * 1024;

/**
 * Starts `sync -f` of the target in a child process every `every` bytes written through the
 * page cache, one at a time, so the device writes small files back while the restore carries
 * on and the final flush finds little left. A failure of one of them fails the restore (the
 * marker stays): since Linux 5.8 syncfs reports a write-back error once, to the first caller
 * after it happened (errseq on the superblock, sampled when the file is opened), and the pages
 * that failed are left clean, so the final `sync -f` would succeed over files that never
 * reached the device.
 */
class BackgroundWriteback {
  private pending = 0;
  private running: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly target: string,
    private readonly every: number,
  ) {}

  add(bytes: number): void {
    this.pending += bytes;
    if (this.pending < this.every || this.running) return;
    this.pending = 0;
    // No `sync` command is a warning, not a failure: the final flush says it once.
    this.running = flushFileSystem(this.target, () => {})
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Waits for the write-back in progress, if any; throws the first that failed. */
  async settled(): Promise<void> {
    await this.running;
    if (this.failure !== undefined) throw this.failure;
  }
}

/**
 * Writes back every dirty page of the file system holding `dir` (`sync -f`: syncfs(2), which
 * Node does not expose): one flush for the whole restore, not one per file. A failed write-back
 * (EIO, ENOSPC on a thin volume) fails the restore, which then keeps its marker; where no `sync`
 * command exists (not the Job's image, which has coreutils) it is said, and the unmount writes back.
 */
export async function flushFileSystem(dir: string, warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<void> {
  try {
    await execFileAsync('sync', ['-f', dir], { env: process.env });
  } catch (err) {
    const e = err as Omit<NodeJS.ErrnoException, 'code'> & { code?: string | number; stderr?: string };
    if (e.code === 'ENOENT') {
      warn(`warning: no \`sync\` command to write ${dir} back to its device; the restored files reach it when the volume is unmounted`);
      return;
    }
    // The device's failure or a full thin volume, not ours: one line, and what to do. sync's own
    // words (`sync: error syncing '...': Input/output error`) where it printed any.
    const said = (e.stderr ?? '').trim().split('\n').join('; ') || (typeof e.code === 'number' ? `it exited with status ${e.code}` : e.message);
    throw new UserError(
      `cannot write the restored files in ${dir} back to their device (sync -f): ${said}; ` +
        'check the volume (free space, the device), then run the restore again: it resumes, and keeps only files whose every chunk it reads back and checks (from the device itself, with direct I/O, where the file system allows it)',
      { cause: err },
    );
  }
}
