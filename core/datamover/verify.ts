/**
 * Verify: walks the integrity chain of a vault and reports every break, not just the first,
 * because the answer to "what did we lose" decides which backup to restore from.
 *
 * The chain: a workflow backup's `backup.json` commits to each volume summary (SHA-256 of its
 * bytes) and to every captured manifest; each summary commits to its index (SHA-256, size,
 * entry and file counts, file bytes); the index commits to its chunks (SHA-256 of each). Two
 * modes: the default, structural, hashes the small documents and the indexes, checks every
 * pack once for presence and length (a HEAD or a stat) and compares the counts; `readData`
 * also reads and hashes every chunk. A document written before the chain, without the
 * commitments, is reported as unverifiable: it never passes silently.
 *
 * A backup of an S3-backed Milvus holds a copy of its bucket, a further link: `backup.json`
 * (`objects`) commits to the copy's commit by SHA-256 and counts, the commit to each manifest
 * page, each page names the copied objects (`milvus-objects/...`) with their sizes. Verify reads
 * the commit and every page, and checks every copied object once for presence and size (a HEAD),
 * in both modes: the vault has no digest of a copied object's content to hash against (its name
 * is a digest of its source key, size and ETag), and a restore copies each on the condition of
 * the ETag the manifest recorded.
 */
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { UserError } from '../errors.js';
import { checkBackupRecord, type ChainBreak } from '../vault/backup-index.js';
import { backupRecordKey, BACKUPS_PREFIX, InvalidKeyPartError, PACKS_PREFIX, packKey, parseBackupObjectKey, parseVolumeSummaryKey, VOLUMES_PREFIX, volumeSummaryKey } from '../vault/layout.js';
import { ObjectArchivedError, ObjectChecksumMismatchError, ObjectNotFoundError, type VaultStore } from '../vault/store.js';
import { ChunkError, readChunks, type ChunkHasher } from './chunk-reader.js';
import { ChunkerPool } from './chunker-pool.js';
import { displayPath, IndexCorruptError, IndexReader, type ChunkRef } from './index-format.js';
import { hasIndexCommitment, indexMismatches, readVolumeSummaryHashed, sha256Hex, SummaryCorruptError, type VolumeSummary } from './summary.js';
import { Semaphore } from '../vault/semaphore.js';
import { mapBounded } from '../objectstore/bounded.js';
import { ObjectManifestCorruptError } from '../objectstore/manifest.js';
import { isMissingObject, readCommit, readCommittedPage } from '../objectstore/committed.js';
import type { BackupIndexDocument } from '../vault/backup-index.js';

export interface VerifyOptions {
  readonly vault: VaultStore;
  /** Check only this volume backup (give both or neither). */
  readonly volume?: string;
  readonly backupId?: string;
  /** Read and hash every chunk, not only check that its pack is there. @default false */
  readonly readData?: boolean;
  /**
   * With `backupId`: the SHA-256 of its `backup.json` as the backup's catalog record holds it
   * (`indexSha256`). The vault alone cannot tell a document written over the one Finalize wrote
   * (on S3 a newer version) from it; with this, one that does not hash to it is a break, and
   * nothing it commits to is trusted. @default the document is taken as it is
   */
  readonly indexSha256?: string;
  /** Files (read-data) or pack checks (structural) at once. @default 4 */
  readonly concurrency?: number;
  readonly onProgress?: (progress: { files: number; bytesVerified: number }) => void;
  /** Monotonic milliseconds, for the duration. @default performance.now */
  readonly clock?: () => number;
}

/**
 * One break of the chain: an affected file, or a missing or altered object (see `ChainBreak`);
 * for a bucket copy, `object-manifest` (its commit or a manifest page) or `milvus-object` (a
 * copied object, `path` its vault key).
 */
export type VerifyProblem = Omit<ChainBreak, 'kind'> & { readonly kind: ChainBreak['kind'] | 'object-manifest' | 'milvus-object' };
export type { BreakKind } from '../vault/backup-index.js';

/**
 * A workflow backup with an inventory but neither `backup.json` nor a failure mark: it is still
 * running, or its execution died before it could mark it (or its `backup.json` was deleted).
 * From the vault alone these cannot be told apart, so it is listed, not counted as a break.
 */
export interface UnfinishedBackup {
  readonly backupId: string;
  /** The `backup.json` it does not have (yet). */
  readonly path: string;
}

export interface VerifyResult {
  readonly mode: 'structural' | 'read-data';
  /** Workflow backups (`backup.json`) checked. */
  readonly backups: number;
  /** Volume backups checked. */
  readonly volumeBackups: number;
  readonly files: number;
  readonly chunks: number;
  /** Distinct packs checked for presence (structural mode). */
  readonly packs: number;
  /** Copied Milvus objects of bucket copies headed for presence and size (one the backup checked before shares is not headed again). */
  readonly milvusObjects: number;
  readonly bytesVerified: number;
  readonly problems: readonly VerifyProblem[];
  /** Workflow backups not finished (see {@link UnfinishedBackup}); whole-vault runs only. */
  readonly unfinished: readonly UnfinishedBackup[];
  readonly durationSeconds: number;
}

/** The vault URL names nothing, or nothing this tool wrote. */
export class VaultNotRecognisedError extends UserError {
  constructor(url: string) {
    super(`vault ${url} does not exist or holds no milvus-guard backup (nothing under ${VOLUMES_PREFIX}, ${BACKUPS_PREFIX} or ${PACKS_PREFIX}); check --vault`);
    this.name = 'VaultNotRecognised';
  }
}

/** Files named per missing pack in a structural report. */
const FILES_PER_PACK = 3;

/** Where one pack is needed: how far into it chunks reach, and the first files that need it. */
interface PackUse {
  readonly key: string;
  readonly backupId: string;
  readonly volume: string;
  end: number;
  files: number;
  readonly firstFiles: string[];
}

interface Target {
  readonly volume: string;
  readonly backupId: string;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export { checkBackupRecord };

const ANCHORED_RECORD_MISSING = "is missing, where the backup's record holds its SHA-256: it was deleted";

/**
 * `backup.json` of `backupId` when it hashes to `indexSha256` (the record's), read once so that
 * the bytes checked are the bytes judged; otherwise the break that says it does not.
 */
async function anchoredRecord(vault: VaultStore, backupId: string, indexSha256: string): Promise<{ readonly body: Buffer } | { readonly problem: VerifyProblem }> {
  const path = backupRecordKey(backupId);
  let body: Buffer;
  try {
    body = await vault.get(path);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return { problem: { kind: 'backup', backupId, path, problem: ANCHORED_RECORD_MISSING } };
    if (err instanceof ObjectChecksumMismatchError) return { problem: { kind: 'backup', backupId, path, problem: err.problem } };
    throw err;
  }
  const sha256 = sha256Hex(body);
  if (sha256 === indexSha256) return { body };
  return { problem: { kind: 'backup', backupId, path, problem: `is not the document the backup wrote: its SHA-256 is ${sha256}, the backup's record holds ${indexSha256}` } };
}

/**
 * Checks one volume backup, or the whole vault: every `backup.json` and what it commits to,
 * every volume summary and its index, and every chunk (present in structural mode, hashed with
 * `readData`; a chunk shared by many backups is checked once). An index without a summary is a
 * break too, but not in a workflow backup that is unfinished (an inventory, neither
 * `backup.json` nor a failure mark: running, or its execution died); those are listed in
 * `unfinished`, their exports not yet checked against a summary. Throws
 * {@link VaultNotRecognisedError} for a vault that holds nothing of ours, and the error of a
 * read that shows no damage (a download cut short every time it is tried, a request the vault
 * refuses or fails): no verdict. Never throws for damage: it returns the problems.
 */
export async function verifyVault(options: VerifyOptions): Promise<VerifyResult> {
  const { vault } = options;
  const clock = options.clock ?? (() => performance.now());
  const started = clock();
  const readData = options.readData ?? false;
  if ((options.volume === undefined) !== (options.backupId === undefined)) {
    throw new UserError('to verify one volume backup give both the volume and the backup id; give neither to verify the whole vault');
  }
  if (options.indexSha256 !== undefined && options.backupId === undefined) throw new UserError("the SHA-256 of backup.json checks one backup's: give its backup id and volume too");
  const problems: VerifyProblem[] = [];
  const targets = new Map<string, Target>();
  const addTarget = (t: Target): void => void targets.set(`${t.backupId}\0${t.volume}`, t);
  const records = new Set<string>();
  const unfinished: UnfinishedBackup[] = [];
  try {
    if (options.volume !== undefined && options.backupId !== undefined) {
      addTarget({ volume: options.volume, backupId: options.backupId });
      if (await vault.head(backupRecordKey(options.backupId))) records.add(options.backupId);
      else if (options.indexSha256 !== undefined) {
        problems.push({ kind: 'backup', backupId: options.backupId, path: backupRecordKey(options.backupId), problem: ANCHORED_RECORD_MISSING });
      }
    } else {
      const workflowBackups = new Set<string>();
      // Backups that failed: what they left is unfinished, not damaged.
      const failed = new Set<string>();
      const indexes: Target[] = [];
      let packs = false;
      for await (const o of vault.list(VOLUMES_PREFIX)) {
        const parsed = parseVolumeSummaryKey(o.key);
        if (parsed) addTarget(parsed);
      }
      for await (const o of vault.list(BACKUPS_PREFIX)) {
        const parsed = parseBackupObjectKey(o.key);
        if (parsed?.kind === 'record') records.add(parsed.backupId);
        else if (parsed?.kind === 'inventory') workflowBackups.add(parsed.backupId);
        else if (parsed?.kind === 'failed') failed.add(parsed.backupId);
        else if (parsed?.kind === 'index') indexes.push({ backupId: parsed.backupId, volume: parsed.volume! });
      }
      for await (const o of vault.list(PACKS_PREFIX)) {
        packs = o.key.length > 0;
        break;
      }
      if (targets.size === 0 && records.size === 0 && workflowBackups.size === 0 && indexes.length === 0 && !packs) throw new VaultNotRecognisedError(vault.url);
      // A backup that is running has exported some volumes (an index, perhaps no summary yet)
      // and no backup.json: not damage. Whether its execution is alive only the catalog knows.
      for (const id of [...workflowBackups].sort()) {
        if (!records.has(id) && !failed.has(id)) unfinished.push({ backupId: id, path: backupRecordKey(id) });
      }
      const unfinishedIds = new Set(unfinished.map((u) => u.backupId));
      for (const t of indexes) {
        if (!targets.has(`${t.backupId}\0${t.volume}`) && !failed.has(t.backupId) && !unfinishedIds.has(t.backupId)) {
          problems.push({ kind: 'summary', backupId: t.backupId, volume: t.volume, path: volumeSummaryKey(t.backupId, t.volume), problem: 'is missing: the volume has an index but no summary (an interrupted export, or the summary was deleted)' });
        }
      }
    }
  } catch (err) {
    // S3 answers a bucket that does not exist with NoSuchBucket: as much the user's to fix.
    if ((err as { name?: string } | undefined)?.name === 'NoSuchBucket') throw new VaultNotRecognisedError(vault.url);
    throw err;
  }

  // The copied objects found whole in the previous backup's copy: a backup's copy shares most
  // objects with the one before it (backups are checked in id order, so a plan's in time order),
  // and those are not headed again. Two backups' keys in memory, not the vault's.
  const objectsChecked = { previous: new Set<string>() };
  const copyCounts = { objects: 0 };
  for (const backupId of [...records].sort()) {
    let body: Buffer | undefined;
    if (backupId === options.backupId && options.indexSha256 !== undefined) {
      const anchored = await anchoredRecord(vault, backupId, options.indexSha256);
      if ('problem' in anchored) {
        problems.push(anchored.problem);
        // Its commitments are not the backup's: the volume is checked on its own below.
        continue;
      }
      body = anchored.body;
    }
    const record = await checkBackupRecord(vault, backupId, body ? { body } : {});
    problems.push(...record.problems);
    if (record.document?.objects) problems.push(...(await checkObjectCopy(vault, backupId, record.document.objects, options.concurrency ?? 16, objectsChecked, copyCounts)));
    // A summary backup.json lists but that is gone was reported there; do not report it twice.
    for (const p of record.problems) if (p.kind === 'summary' && p.volume !== undefined && /is missing/.test(p.problem)) targets.delete(`${backupId}\0${p.volume}`);
  }

  const verified = new LRUCache<string, true>({ max: 1 << 16 });
  const packUses = new Map<string, PackUse>();
  const counts = { files: 0, chunks: 0, bytesVerified: 0 };
  const slots = new Semaphore(options.concurrency ?? 4);
  const pool = readData ? new ChunkerPool() : undefined;
  const hasher: ChunkHasher = (data, lengths) => pool!.hashChunks(data, lengths);

  const checkFile = async (target: Target, path: string, refs: readonly ChunkRef[]): Promise<void> => {
    const todo = refs.filter((r) => !verified.get(`${r.pack}:${r.offset}:${r.length}:${r.hash}`));
    try {
      let i = 0;
      for await (const bytes of readChunks(vault, todo, hasher)) {
        const r = todo[i++]!;
        verified.set(`${r.pack}:${r.offset}:${r.length}:${r.hash}`, true);
        counts.bytesVerified += bytes.length;
      }
    } catch (err) {
      // A pack whose bytes fail the store's checksum on every download is as broken as a chunk
      // that hashes wrong; a download cut short every time is no verdict (thrown, see below).
      // An archived pack cannot be read until it is thawed: this file is not verified, the rest are.
      if (err instanceof ObjectArchivedError) problems.push({ kind: 'unverifiable', ...target, path, problem: `its data is in an archived pack, which cannot be read until it is thawed (${err.message})` });
      else if (err instanceof ChunkError) problems.push({ kind: 'chunk', ...target, path, problem: err.message });
      // Verify's own list: the object and what is wrong, without the advice to run verify.
      else if (err instanceof ObjectChecksumMismatchError) problems.push({ kind: 'chunk', ...target, path, problem: `object ${err.key} ${err.problem}` });
      else throw err;
    }
    options.onProgress?.({ files: counts.files, bytesVerified: counts.bytesVerified });
  };

  const notePacks = (target: Target, path: string, refs: readonly ChunkRef[]): void => {
    const seen = new Set<string>();
    for (const ref of refs) {
      let use = packUses.get(ref.pack);
      if (!use) {
        use = { key: packKey(ref.pack), ...target, end: 0, files: 0, firstFiles: [] };
        packUses.set(ref.pack, use);
      }
      use.end = Math.max(use.end, ref.offset + ref.length);
      if (seen.has(ref.pack)) continue;
      seen.add(ref.pack);
      use.files++;
      if (use.firstFiles.length < FILES_PER_PACK) use.firstFiles.push(`${target.backupId}/${target.volume}:${path}`);
    }
  };

  try {
    for (const target of targets.values()) await checkVolume(target);
  } finally {
    await pool?.close();
  }
  if (!readData) await checkPacks();
  return {
    mode: readData ? 'read-data' : 'structural',
    backups: records.size,
    volumeBackups: targets.size,
    ...counts,
    packs: packUses.size,
    milvusObjects: copyCounts.objects,
    // One break can be seen from two links (a summary backup.json lists and an orphaned index): once.
    problems: problems.filter((p, i) => problems.findIndex((q) => q.kind === p.kind && q.path === p.path && q.volume === p.volume) === i),
    unfinished,
    durationSeconds: (clock() - started) / 1000,
  };

  async function checkVolume(target: Target): Promise<void> {
    const summaryKey = volumeSummaryKey(target.backupId, target.volume);
    let summary: VolumeSummary;
    try {
      summary = (await readVolumeSummaryHashed(vault, target.backupId, target.volume)).summary;
    } catch (err) {
      if (err instanceof UserError) {
        if (options.volume !== undefined) throw err; // the one asked for does not exist
        problems.push({ kind: 'summary', ...target, path: summaryKey, problem: 'is missing' });
        return;
      }
      // A summary whose bytes fail the store's checksum on every download is as damaged as one
      // that does not parse.
      if (err instanceof SummaryCorruptError || err instanceof ObjectChecksumMismatchError) {
        problems.push({ kind: 'summary', ...target, path: summaryKey, problem: err instanceof ObjectChecksumMismatchError ? err.problem : err.message });
        return;
      }
      throw err;
    }
    if (!hasIndexCommitment(summary)) problems.push({ kind: 'unverifiable', ...target, path: summaryKey, problem: 'commits to no index hash, entry count or bytes (written before the integrity chain)' });

    const what = `index of backup ${target.backupId} volume ${target.volume}`;
    let reader: IndexReader | undefined;
    try {
      reader = new IndexReader(await vault.openRead(summary.indexKey), what);
      const header = await reader.readHeader();
      if (header.backupId !== target.backupId || header.volume !== target.volume) {
        problems.push({ kind: 'index', ...target, path: summary.indexKey, problem: `its header names backup ${header.backupId} volume ${header.volume}` });
        return;
      }
      const inflight = new Set<Promise<void>>();
      let failure: unknown;
      try {
        for await (const entry of reader.entries()) {
          if (entry.type !== 'file') continue;
          counts.files++;
          const refs = entry.chunks ?? [];
          counts.chunks += refs.length;
          const path = displayPath(entry.path);
          const total = refs.reduce((n, r) => n + r.length, 0);
          if (total !== entry.size) problems.push({ kind: 'index', ...target, path: summary.indexKey, problem: `file ${path} has chunks adding up to ${total} bytes, but its size is ${entry.size}` });
          if (!readData) {
            notePacks(target, path, refs);
            continue;
          }
          if (failure !== undefined) throw failure;
          await slots.acquire();
          const task = checkFile(target, path, refs)
            .catch((err: unknown) => {
              failure ??= err;
            })
            .finally(() => {
              slots.release();
              inflight.delete(task);
            });
          inflight.add(task);
        }
      } finally {
        // However the loop ends, no chunk check is left running (its pool closes after this).
        await Promise.all([...inflight]);
      }
      if (failure !== undefined) throw failure;
      if (!readData) options.onProgress?.({ files: counts.files, bytesVerified: counts.bytesVerified });
      const digest = await reader.digest();
      let indexBroken = false;
      if (hasIndexCommitment(summary)) {
        const differences = indexMismatches(summary.index, { ...digest, ...reader.counts });
        indexBroken = differences.length > 0;
        if (indexBroken) problems.push({ kind: 'index', ...target, path: summary.indexKey, problem: `does not match its summary: ${differences.join('; ')}` });
      }
      // A restore checks what it wrote against the summary's statistics, so verify does too
      // (when the index is intact, else that break explains it): a summary with an altered
      // count and no backup.json above it was otherwise passed while its restore failed.
      const stats = summary.stats as Partial<VolumeSummary['stats']> | undefined;
      if (!indexBroken && (stats?.files !== reader.counts.files || stats?.bytesTotal !== reader.counts.bytes)) {
        problems.push({ kind: 'summary', ...target, path: summaryKey, problem: `records ${stats?.files} files (${stats?.bytesTotal} bytes) where its index holds ${reader.counts.files} files (${reader.counts.bytes} bytes): it was altered, a restore of it fails` });
      }
    } catch (err) {
      // Only damage is a problem of the index. Anything else (a read cut short, a vault that
      // refuses or fails the request, an archived pack) says nothing about it: verify cannot give
      // its verdict, and says so (thrown) rather than report damage that may not be there.
      if (err instanceof ObjectNotFoundError) problems.push({ kind: 'index', ...target, path: summary.indexKey, problem: 'is missing' });
      else if (err instanceof InvalidKeyPartError) problems.push({ kind: 'index', ...target, path: summary.indexKey, problem: `references a malformed pack id (${err.message})` });
      else if (err instanceof IndexCorruptError) problems.push({ kind: 'index', ...target, path: summary.indexKey, problem: messageOf(err) });
      else throw err;
    } finally {
      await reader?.close().catch(() => {});
    }
  }

  /** Heads every pack once, a few at a time; a pack shorter than its furthest chunk is as broken as a missing one. */
  async function checkPacks(): Promise<void> {
    const uses = [...packUses.values()];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < uses.length) {
        const use = uses[next++]!;
        const info = await vault.head(use.key);
        const broken = !info ? 'is missing' : info.size < use.end ? `is ${info.size} bytes, but chunks are read up to byte ${use.end}` : undefined;
        if (!broken) continue;
        const more = use.files - use.firstFiles.length;
        problems.push({ kind: 'pack', backupId: use.backupId, volume: use.volume, path: use.key, problem: `${broken} (needed by ${use.firstFiles.join(', ')}${more > 0 ? ` and ${more} more file(s)` : ''})` });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 16, uses.length)) }, worker));
  }
}

/** Copied objects named per backup when they are missing or the wrong size; the rest are counted in one more problem. */
const OBJECTS_NAMED = 10;

/**
 * Walks one backup's bucket copy: its commit (present, matching the SHA-256 and counts
 * `backup.json` commits to), every manifest page (present, matching the commit), and every copied
 * object the pages name (present, of the recorded size; one HEAD per object, `concurrency` at
 * once, skipped when the copy checked before found it whole: `checked.previous`, which it
 * replaces with its own). Returns the breaks; never throws for damage. Counts the objects it
 * headed into `counts`.
 */
async function checkObjectCopy(
  vault: VaultStore,
  backupId: string,
  recorded: NonNullable<BackupIndexDocument['objects']>,
  concurrency: number,
  checked: { previous: Set<string> },
  counts: { objects: number },
): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  const broken = (kind: 'object-manifest' | 'milvus-object', path: string, problem: string): void => void problems.push({ kind, backupId, path, problem });
  const damage = (path: string, err: unknown, missing: string): boolean => {
    if (isMissingObject(err)) broken('object-manifest', path, missing);
    else if (err instanceof ObjectManifestCorruptError) broken('object-manifest', path, err.message);
    else return false;
    return true;
  };
  let commit;
  try {
    commit = await readCommit(vault, { backupId, sha256: recorded.sha256 });
  } catch (err) {
    if (damage(recorded.key, err, 'is missing: backup.json commits to a copy of the Milvus bucket, and its commit is gone')) return problems;
    throw err;
  }
  const objects = commit.pages.reduce((n, p) => n + p.objects, 0);
  const bytes = commit.pages.reduce((n, p) => n + p.bytes, 0);
  if (commit.pages.length !== recorded.pages || objects !== recorded.objects || bytes !== recorded.bytes) {
    broken('object-manifest', recorded.key, `lists ${commit.pages.length} pages, ${objects} objects, ${bytes} bytes where backup.json records ${recorded.pages} pages, ${recorded.objects} objects, ${recorded.bytes} bytes`);
  }
  const source = `s3://${commit.source.bucket}/${commit.source.prefix}`;
  const whole = new Set<string>();
  let unusable = 0;
  for (const page of commit.pages) {
    let entries;
    try {
      entries = await readCommittedPage(vault, backupId, page);
    } catch (err) {
      if (damage(page.key, err, `is missing: page ${page.page} of the manifest of the copy of the Milvus bucket (its ${page.objects} objects cannot be restored)`)) continue;
      throw err;
    }
    await mapBounded(entries, concurrency, async (e) => {
      const seen = `${e.vaultKey}\0${e.size}`;
      if (checked.previous.has(seen)) {
        whole.add(seen);
        return;
      }
      const info = await vault.head(e.vaultKey);
      counts.objects++;
      const problem = !info ? 'is missing' : info.size !== e.size ? `is ${info.size} bytes where the manifest records ${e.size}` : undefined;
      if (!problem) {
        whole.add(seen);
        return;
      }
      if (++unusable <= OBJECTS_NAMED) broken('milvus-object', e.vaultKey, `${problem} (the copy of ${source}${e.key}, in page ${page.page} of the manifest)`);
    });
  }
  checked.previous = whole;
  if (unusable > OBJECTS_NAMED) broken('milvus-object', `${recorded.key}`, `and ${unusable - OBJECTS_NAMED} more copied object(s) of the Milvus bucket are missing or the wrong size`);
  return problems;
}
