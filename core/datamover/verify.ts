/**
 * Verify: every object that a backup index references exists and every chunk hashes to its
 * id. Reports every affected file, not just the first, because the answer to "what did we
 * lose" decides which backup to restore from.
 */
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { UserError } from '../errors.js';
import { parseVolumeSummaryKey, VOLUMES_PREFIX } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';
import { ChunkError, readChunks, type ChunkHasher } from './chunk-reader.js';
import { ChunkerPool } from './chunker-pool.js';
import { displayPath, IndexReader, type ChunkRef } from './index-format.js';
import { readVolumeSummary } from './summary.js';
import { Semaphore } from '../vault/semaphore.js';

export interface VerifyOptions {
  readonly vault: VaultStore;
  /** Check only this volume backup (give both or neither). */
  readonly volume?: string;
  readonly backupId?: string;
  /** Files checked at once. @default 4 */
  readonly concurrency?: number;
  readonly onProgress?: (progress: { files: number; bytesVerified: number }) => void;
  /** Monotonic milliseconds, for the duration. @default performance.now */
  readonly clock?: () => number;
}

/** One affected file (or index) and what is wrong with it. */
export interface VerifyProblem {
  readonly backupId: string;
  readonly volume: string;
  /** The file's path for people (`displayPath`), or `(index)` when the index itself is bad. */
  readonly path: string;
  readonly problem: string;
}

export interface VerifyResult {
  /** Volume backups checked. */
  readonly volumeBackups: number;
  readonly files: number;
  readonly chunks: number;
  readonly bytesVerified: number;
  readonly problems: readonly VerifyProblem[];
  readonly durationSeconds: number;
}

/**
 * Checks one volume backup, or every complete volume backup in the vault. Each referenced
 * chunk is read and hashed (a chunk shared by many backups is read once, thanks to a bounded
 * cache of verified references). Never throws for damage: it returns the problems.
 */
export async function verifyVault(options: VerifyOptions): Promise<VerifyResult> {
  const { vault } = options;
  const clock = options.clock ?? (() => performance.now());
  const started = clock();
  if ((options.volume === undefined) !== (options.backupId === undefined)) {
    throw new UserError('to verify one volume backup give both the volume and the backup id; give neither to verify the whole vault');
  }
  const targets: { volume: string; backupId: string }[] = [];
  if (options.volume !== undefined && options.backupId !== undefined) {
    targets.push({ volume: options.volume, backupId: options.backupId });
  } else {
    for await (const o of vault.list(VOLUMES_PREFIX)) {
      const parsed = parseVolumeSummaryKey(o.key);
      if (parsed) targets.push(parsed);
    }
  }

  const verified = new LRUCache<string, true>({ max: 1 << 16 });
  const problems: VerifyProblem[] = [];
  const counts = { files: 0, chunks: 0, bytesVerified: 0 };
  const slots = new Semaphore(options.concurrency ?? 4);
  const pool = new ChunkerPool();
  const hasher: ChunkHasher = (data, lengths) => pool.hashChunks(data, lengths);

  const checkFile = async (target: { volume: string; backupId: string }, path: string, refs: readonly ChunkRef[]): Promise<void> => {
    const todo = refs.filter((r) => !verified.get(`${r.pack}:${r.offset}:${r.length}:${r.hash}`));
    counts.chunks += refs.length;
    try {
      let i = 0;
      for await (const bytes of readChunks(vault, todo, hasher)) {
        const r = todo[i++]!;
        verified.set(`${r.pack}:${r.offset}:${r.length}:${r.hash}`, true);
        counts.bytesVerified += bytes.length;
      }
    } catch (err) {
      if (!(err instanceof ChunkError)) throw err;
      problems.push({ ...target, path, problem: err.message });
    }
    options.onProgress?.({ files: counts.files, bytesVerified: counts.bytesVerified });
  };

  try {
    for (const target of targets) await checkVolume(target);
  } finally {
    await pool.close();
  }
  return { volumeBackups: targets.length, ...counts, problems, durationSeconds: (clock() - started) / 1000 };

  async function checkVolume(target: { volume: string; backupId: string }): Promise<void> {
    let reader: IndexReader | undefined;
    try {
      const summary = await readVolumeSummary(vault, target.backupId, target.volume);
      reader = new IndexReader(await vault.openRead(summary.indexKey), `index of backup ${target.backupId} volume ${target.volume}`);
      const inflight = new Set<Promise<void>>();
      let failure: unknown;
      for await (const entry of reader.entries()) {
        if (entry.type !== 'file') continue;
        counts.files++;
        if (failure !== undefined) throw failure;
        await slots.acquire();
        const task = checkFile(target, displayPath(entry.path), entry.chunks ?? [])
          .catch((err: unknown) => {
            failure ??= err;
          })
          .finally(() => {
            slots.release();
            inflight.delete(task);
          });
        inflight.add(task);
      }
      await Promise.all([...inflight]);
      if (failure !== undefined) throw failure;
    } catch (err) {
      if (err instanceof UserError && options.volume !== undefined) throw err; // the one asked for does not exist
      problems.push({ ...target, path: '(index)', problem: err instanceof Error ? err.message : String(err) });
    } finally {
      await reader?.close().catch(() => {});
    }
  }
}
