/**
 * Restore (hydrate) one volume of one backup into a directory: stream the index, recreate
 * every entry, verify every chunk while writing, then set modes and times bottom-up.
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { chmod, chown, lchown, lstat, lutimes, mkdir, open, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { UserError } from '../errors.js';
import { withPath } from '../fs-errors.js';
import { checkBackupId, checkRestoreId, checkVolumeName, restoreProgressKey } from '../vault/layout.js';
import { DirectFileWriter } from '../vault/file-store.js';
import type { VaultStore } from '../vault/store.js';
import { ChunkError, hashHere, readChunkRuns, type ChunkHasher } from './chunk-reader.js';
import { ChunkerPool } from './chunker-pool.js';
import { displayPath, IndexCorruptError, IndexReader, type IndexEntry } from './index-format.js';
import { hasIndexCommitment, indexMismatches, readVolumeSummary, type VolumeSummary } from './summary.js';
import { Semaphore } from '../vault/semaphore.js';
import { ProgressReporter, type ProgressOptions } from './progress.js';

export interface RestoreOptions {
  readonly vault: VaultStore;
  readonly volume: string;
  readonly backupId: string;
  /** An empty (or missing) directory, or one an interrupted restore of the same backup left. */
  readonly target: string;
  /** Set owners and groups as recorded (needs root). @default false */
  readonly preserveOwnership?: boolean;
  /** Files written at once. @default 4 */
  readonly concurrency?: number;
  /** Threads that verify chunk hashes; 0 hashes on the calling thread. @default os.availableParallelism() */
  readonly workers?: number;
  readonly onProgress?: (progress: { files: number; bytesWritten: number }) => void;
  /** Monotonic milliseconds, for the duration. @default performance.now */
  readonly clock?: () => number;
  /**
   * Write progress to the vault every few seconds and at the end, under the restore this
   * hydration belongs to (`restoreProgressKey(restoreId, volume)`; see progress.ts).
   * @default none written
   */
  readonly progress?: ProgressOptions & { readonly restoreId: string };
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
 * hydration, the restored file count and bytes against the summary (`RestoreIncompleteError`).
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
  const summary = await readVolumeSummary(vault, backupId, volume);
  // The index knows the totals: the summary records its files and their bytes.
  reporter?.start({ files: summary.stats.files, bytes: summary.stats.bytesTotal });
  const what = `index of backup ${backupId} volume ${volume}`;
  // The chain before anything is created: an index that lost lines is still valid gzip and
  // sorted JSON, so only the summary's commitment tells it from a complete one.
  await checkIndexCommitment(vault, summary, what);
  const marker = join(target, RESTORE_MARKER);
  const resuming = await prepareTarget(target, marker, { backupId, volume });

  const reader = new IndexReader(await vault.openRead(summary.indexKey), what);
  const targetBuf = Buffer.from(target);
  const slots = new Semaphore(options.concurrency ?? 4);
  // Hashing is the restore's main CPU cost; the workers do it while this thread does I/O.
  const pool = options.workers === 0 ? undefined : new ChunkerPool(options.workers ? { workers: options.workers } : {});
  const hasher: ChunkHasher = pool ? (data, lengths) => pool.hashChunks(data, lengths) : hashHere;
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  const counts = { files: 0, directories: 0, symlinks: 0, bytesWritten: 0, filesResumed: 0 };
  // Progress: files finished (written or kept), and bytes written so far plus those of kept files.
  const done = { files: 0, bytes: 0 };
  const onBytes = (n: number): void => {
    done.bytes += n;
    reporter?.update(done);
  };
  const dirs: { entry: IndexEntry; abs: Buffer }[] = [];
  const absolute = (p: Buffer): Buffer => (p.length === 0 ? targetBuf : Buffer.concat([targetBuf, Buffer.from('/'), p]));

  // A directory's mode and times are applied once every file started inside it is written
  // (a read-only directory must stay writable until then, and writing a file changes its
  // directory's mtime), without stopping the restore of the next directory meanwhile: Milvus
  // volumes keep one file per directory, so a barrier here would serialize the restore.
  const finalizers = new Set<Promise<void>>();
  const finishDir = (): void => {
    const { entry, abs } = dirs.pop()!;
    const task = Promise.all([...inflight])
      .then(() => (failure === undefined ? applyMetadata(abs, entry, options.preserveOwnership ?? false) : undefined))
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => finalizers.delete(task));
    finalizers.add(task);
  };

  try {
    for await (const entry of reader.entries()) {
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
          if (entry.path.length > 0) makeDir(abs, entry);
          dirs.push({ entry, abs });
          break;
        case 'symlink':
          counts.symlinks++;
          await makeSymlink(abs, entry, options.preserveOwnership ?? false);
          break;
        case 'file': {
          counts.files++;
          if (failure !== undefined) throw failure;
          await slots.acquire();
          // The slot bounds the bytes in flight, so it is given back as soon as the file's
          // data is on disk: its mode and times are set while the next file streams.
          let held = true;
          const release = (): void => {
            if (held) slots.release();
            held = false;
          };
          const task = restoreFile(vault, abs, entry, { ownership: options.preserveOwnership ?? false, resuming, hasher, onDataWritten: release, onBytes })
            .then((r) => {
              done.files++;
              if (r === 'resumed') {
                counts.filesResumed++;
                onBytes(entry.size);
              } else counts.bytesWritten += entry.size;
              options.onProgress?.({ files: counts.files, bytesWritten: counts.bytesWritten });
            })
            .catch((err: unknown) => {
              failure ??= err;
            })
            .finally(() => {
              release();
              inflight.delete(task);
            });
          inflight.add(task);
          break;
        }
      }
    }
    while (dirs.length > 1) finishDir();
    await Promise.all([...inflight]);
    await Promise.all([...finalizers]);
    if (failure !== undefined) throw failure;
    // The root last, and the marker just before it: until here a re-run resumes.
    const root = dirs.pop();
    if (!root) throw new IndexCorruptError(what, 'it has no root entry');
    checkRestoredAgainst(summary, target, counts.files, reader.counts.bytes);
    await rm(marker, { force: true });
    await applyMetadata(root.abs, root.entry, options.preserveOwnership ?? false);
  } finally {
    await Promise.allSettled([...inflight, ...finalizers]);
    await reader.close().catch(() => {});
    await pool?.close();
  }
  return { volume, backupId, ...counts, durationSeconds: (clock() - started) / 1000 };
}

/**
 * Reads the whole index once and compares it with the summary's commitment (SHA-256, size,
 * entries, files, bytes); throws `IndexCorruptError` naming every difference. A summary
 * written before the integrity chain commits to nothing: the check after hydration
 * ({@link checkRestoredAgainst}) still compares its file count and bytes.
 */
async function checkIndexCommitment(vault: VaultStore, summary: VolumeSummary, what: string): Promise<void> {
  if (!hasIndexCommitment(summary)) return;
  const reader = new IndexReader(await vault.openRead(summary.indexKey), what);
  try {
    while ((await reader.next()) !== undefined);
    const digest = await reader.digest();
    if (!digest) throw new IndexCorruptError(what, 'it could not be read to its end');
    const differences = indexMismatches(summary.index, { ...digest, ...reader.counts });
    if (differences.length > 0) throw new IndexCorruptError(what, `it does not match the volume summary: ${differences.join('; ')}`);
  } finally {
    await reader.close().catch(() => {});
  }
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

async function applyMetadata(abs: Buffer, entry: IndexEntry, ownership: boolean): Promise<void> {
  if (ownership) await chown(abs, entry.uid, entry.gid);
  await chmod(abs, entry.mode);
  const t = nsToSeconds(entry.mtimeNs);
  await utimes(abs, t, t);
}

interface FileJob {
  readonly ownership: boolean;
  /** Files may be left from an interrupted run; otherwise the target started empty. */
  readonly resuming: boolean;
  readonly hasher: ChunkHasher;
  /** Called once the content is written and closed, before metadata is applied. */
  readonly onDataWritten: () => void;
  /** Called with the length of each run of bytes written (for progress). */
  readonly onBytes?: (bytes: number) => void;
}

async function restoreFile(vault: VaultStore, abs: Buffer, entry: IndexEntry, job: FileJob): Promise<'written' | 'resumed'> {
  const { ownership, hasher } = job;
  const name = displayPath(entry.path);
  if (job.resuming && (await alreadyRestored(abs, entry))) return 'resumed';
  // Restored files bypass the page cache: nothing here reads them back (see DirectFileWriter).
  const writer = await DirectFileWriter.create(abs, { mode: 0o600 });
  let ok = false;
  try {
    let written = 0;
    for await (const run of readChunkRuns(vault, entry.chunks ?? [], hasher)) {
      for (const bytes of run) {
        await writer.write(bytes);
        written += bytes.length;
        job.onBytes?.(bytes.length);
      }
    }
    if (written !== entry.size) throw new RestoreError(name, `its chunks add up to ${written} bytes, the index says ${entry.size}`);
    await writer.close();
    ok = true;
    job.onDataWritten();
  } catch (err) {
    if (err instanceof ChunkError) throw new RestoreError(name, `${err.message}; the vault is damaged, run datamover verify and restore from another backup`, { cause: err });
    // A write through a file handle fails without a path (ENOSPC): name the file.
    throw withPath(err, abs);
  } finally {
    if (!ok) {
      await writer.abort().catch(() => {});
      await rm(abs, { force: true });
    }
  }
  await applyMetadata(abs, entry, ownership);
  return 'written';
}

/** A file left by an interrupted run counts as done only if size, mtime and content match. */
async function alreadyRestored(abs: Buffer, entry: IndexEntry): Promise<boolean> {
  const s = await lstat(abs, { bigint: true }).catch(() => undefined);
  if (!s?.isFile() || Number(s.size) !== entry.size) return false;
  const drift = s.mtimeNs - entry.mtimeNs;
  if (drift > 1000n || drift < -1000n) return false;
  const fh = await open(abs, 'r');
  try {
    let position = 0;
    for (const ref of entry.chunks ?? []) {
      const buf = Buffer.allocUnsafe(ref.length);
      const { bytesRead } = await fh.read(buf, 0, ref.length, position);
      if (bytesRead !== ref.length || createHash('sha256').update(buf).digest('hex') !== ref.hash) return false;
      position += ref.length;
    }
    return true;
  } finally {
    await fh.close();
  }
}
