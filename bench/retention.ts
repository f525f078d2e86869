/**
 * A simulated year of retention (issue 11, §7): what the vault holds after daily incremental
 * backups with GFS retention and garbage collection, against the least it could hold and
 * against full copies. A measurement, not a timed test: it reports, and fails only when a
 * correctness check fails.
 *
 *   npm run bench:retention -- [--days 365] [--seed 20270101] [--churn 0.01] [--size-mib 64] [--json] [--keep]
 *
 * 1. The dataset: the PVC of a standalone MinIO (`export-production-milvus-minio-0`) in MinIO's
 *    on-disk layout (local/milvus/object-store.ts), holding a Milvus bucket: flushed segments of
 *    two collections, each with an insert binlog per field (row id, timestamp, primary key, a
 *    128-dim vector), a primary-key stats log, an HNSW index file, and for some a delta log.
 *    Sizes follow the row count (100 to 2000 rows a segment, log-uniform), content is seeded
 *    AES-CTR output (incompressible, as real binlogs are).
 * 2. Every day at 02:00 UTC from 2027-01-01 (a fixed clock): compaction has replaced about
 *    `--churn` of the segment files since the last backup (whole segments deleted, new ones with
 *    new ids and the same row count written; the fraction carries over, so the average is
 *    exact); then the backup as the workflow runs it: Prepare's `backupRetainUntil` over the
 *    plan's records, the record `InProgress`, `backupVolume` into a `FileVaultStore` whose lock
 *    clock is the fixed clock, the record `Available` with its component, size and lock.
 * 3. At 12:00 the retention run: `applyPolicy` and `collectGarbageStep` (core/retention/
 *    workflow.ts) with a run that holds every plan lock, looping GC until every prefix is done.
 *    The plan is examples/production.yaml's (latest 7, weekly 4 on Sunday, monthly 12 on the
 *    1st, yearly 2 in January, maxAgeDays 730, vault floor 7 days).
 * 4. At the end: the vault's bytes (packs and metadata apart; the file vault's lock journal,
 *    which S3 has no equivalent of, on its own line), the minimum (distinct chunk bytes the kept
 *    backups' indexes reference), what full copies of the kept backups would take, and why the
 *    vault holds more than the minimum (packs partly live, packs dead but still locked).
 * 5. Correctness: `verifyVault` with readData must find no problem, and every kept backup must
 *    restore byte-exact against the manifest of the tree on its day. Exit 1 otherwise.
 *
 * S3 requests: the vault is wrapped in a counter that maps each port call to the requests
 * S3VaultStore (core/vault/s3-store.ts) sends for it, on a versioned, Object-Locked bucket with
 * one version per key (the file vault has no versions):
 *   put, putFile      PutObject; above the part size (16 MiB) CreateMultipartUpload + one
 *                     UploadPart per part + CompleteMultipartUpload (lib-storage's Upload)
 *   get, getRange, openRead   GetObject
 *   head              HeadObject
 *   list              ListObjectsV2, one per 1000 keys read (at least one)
 *   extendRetention   GetObjectRetention, + PutObjectRetention when the date moves
 *   deleteMany        ListObjectVersions once per directory holding several of the keys (one page
 *                     per 1000 objects in it) or per lone key, then DeleteObjects per 1000 keys
 *                     that exist (the versions; refused ones are refused inside the batch)
 *   delete            ListObjectVersions + HeadObject per version + DeleteObjects
 *   setLegalHold      PutObjectLegalHold
 *   markArchivable    PutObjectTagging (on) or DeleteObjectTagging (off); isArchivable GetObjectTagging
 *   thaw              HeadObject, + RestoreObject when it starts a thaw
 *   flush             nothing
 * The year's counts are split by phase (backup, retention, gc); the final checks' are apart.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { integer, share } from './options.js';
import { InMemoryCatalog } from '../core/catalog/memory.js';
import { loadConfigFile } from '../core/config/parse.js';
import { resolvePlan, type ResolvedPlan } from '../core/config/resolve.js';
import { backupVolume } from '../core/datamover/backup.js';
import { IndexReader } from '../core/datamover/index-format.js';
import { RESTORE_MARKER, restoreVolume } from '../core/datamover/restore.js';
import { verifyVault } from '../core/datamover/verify.js';
import type { GcProgress, PlanOutcome, RetentionRun } from '../core/retention/contracts.js';
import { backupRetainUntil } from '../core/retention/locking.js';
import { applyPolicy, collectGarbageStep, DEFAULT_RETENTION_TIMINGS, retentionRunId } from '../core/retention/workflow.js';
import { FileVaultStore } from '../core/vault/file-store.js';
import { PACKS_PREFIX, packIdFromKey, volumeIndexKey } from '../core/vault/layout.js';
import type { DeleteManyResult, ObjectInfo, PutOptions, ThawOptions, ThawResult, VaultStore } from '../core/vault/store.js';
import { defaultBackupName } from '../core/workflow/prepare.js';
import { DataType, encodeBinlog, EventType } from '../local/milvus/binlog.js';
import { FieldId, hybridTimestamp, objectKeys } from '../local/milvus/meta.js';
import { MinioDrives } from '../local/milvus/object-store.js';
import { DeterministicRandom, deterministicBytes } from '../local/milvus/random.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const MiB = 1024 * 1024;
const DAY_MS = 86_400_000;
const PLAN = 'milvus-production-backup';
/** The MinIO PVC of a standalone Milvus release `production-milvus` (core/discovery's naming). */
const VOLUME = 'export-production-milvus-minio-0';
const BUCKET = 'milvus-bucket';
const ROOT_PATH = 'files';
/** The first backup: a Friday, and the 1st of January, so it starts a month and a year. */
const FIRST_DAY = Date.UTC(2027, 0, 1);
/** S3VaultStore's default part size: larger objects go up as multipart uploads. */
const PART_SIZE = 16 * MiB;
const VECTOR_DIM = 128;

export interface RetentionBenchOptions {
  readonly days: number;
  readonly seed: number;
  /** Share of the segment files compaction replaces per day. */
  readonly churn: number;
  /** The dataset's size at the start. */
  readonly sizeMiB: number;
  /** The config whose plan `milvus-production-backup` is used. @default examples/production.yaml */
  readonly config?: string;
  /** Keep the working directory (its path is in the report). @default false */
  readonly keep?: boolean;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

export type Phase = 'backup' | 'retention' | 'gc' | 'checks';
export const REQUEST_KINDS = [
  'PutObject',
  'CreateMultipartUpload',
  'UploadPart',
  'CompleteMultipartUpload',
  'GetObject',
  'HeadObject',
  'ListObjectsV2',
  'GetObjectRetention',
  'PutObjectRetention',
  'ListObjectVersions',
  'DeleteObjects',
  'PutObjectLegalHold',
  'PutObjectTagging',
  'DeleteObjectTagging',
  'GetObjectTagging',
  'RestoreObject',
] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

export interface DaySample {
  readonly day: number;
  readonly date: string;
  readonly datasetBytes: number;
  readonly filesReplaced: number;
  readonly bytesUploaded: number;
  readonly backupsKept: number;
  readonly packs: number;
  readonly packBytes: number;
  readonly packsDeleted: number;
}

export interface RetentionBenchReport {
  readonly options: { days: number; seed: number; churn: number; sizeMiB: number };
  readonly workDir: string;
  readonly dataset: { bytes: number; files: number; segments: number; startBytes: number; startFiles: number };
  readonly churn: { filesPerDay: number; bytesPerDay: number; shareOfFiles: number; shareOfBytes: number };
  readonly backups: { taken: number; kept: number; expired: number; keptRules: Record<string, number>; keptIds: string[] };
  readonly vault: { packBytes: number; packs: number; metadataBytes: number; metadataObjects: number; totalBytes: number; lockJournalBytes: number };
  readonly minimumBytes: number;
  readonly fullCopiesBytes: number;
  /** total vault bytes / minimum (target ≤ 1.05). */
  readonly overMinimum: number;
  /** pack bytes / minimum: garbage in the data alone. */
  readonly packsOverMinimum: number;
  /** full copies / total vault bytes (target ≥ 5). */
  readonly savingVsFull: number;
  readonly targets: { overMinimum: boolean; savingVsFull: boolean };
  /** Why the vault holds more than the minimum. */
  readonly garbage: {
    readonly packsFullyLive: number;
    readonly packsPartlyLive: number;
    readonly deadBytesInPartlyLivePacks: number;
    readonly packsUnreferenced: number;
    readonly unreferencedBytes: number;
    readonly unreferencedLockedUntil: string | null;
    readonly objectsOfExpiredBackupsLocked: number;
  };
  readonly requests: Record<Exclude<Phase, 'checks'> | 'total' | 'checks', Record<RequestKind, number>>;
  readonly checks: { verifyProblems: string[]; restored: number; restoreFailures: string[]; passed: boolean };
  readonly seconds: { total: number; year: number; backup: number; retention: number; gc: number; checks: number };
  readonly series: DaySample[];
}

// ---------------------------------------------------------------------------------------------
// S3 requests, counted per vault call

const zeroCounts = (): Record<RequestKind, number> => Object.fromEntries(REQUEST_KINDS.map((k) => [k, 0])) as Record<RequestKind, number>;

/**
 * The vault port in front of another, counting the S3 requests S3VaultStore would send for each
 * call (the mapping is in this file's header). Lookups it needs for the count (does a key
 * exist, how many objects share a directory) go to the inner vault and are not counted.
 */
export class S3RequestCounter implements VaultStore {
  phase: Phase = 'backup';
  readonly counts: Record<Phase, Record<RequestKind, number>> = { backup: zeroCounts(), retention: zeroCounts(), gc: zeroCounts(), checks: zeroCounts() };

  constructor(
    private readonly inner: VaultStore,
    private readonly partSize = PART_SIZE,
  ) {}

  get url(): string {
    return this.inner.url;
  }

  private add(kind: RequestKind, n = 1): void {
    this.counts[this.phase][kind] += n;
  }

  private write(size: number): void {
    if (size <= this.partSize) return this.add('PutObject');
    this.add('CreateMultipartUpload');
    this.add('UploadPart', Math.ceil(size / this.partSize));
    this.add('CompleteMultipartUpload');
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    this.write(body.length);
    await this.inner.put(key, body, options);
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<void> {
    this.write((await stat(path)).size);
    await this.inner.putFile(key, path, options);
  }

  async get(key: string): Promise<Buffer> {
    this.add('GetObject');
    return this.inner.get(key);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.add('GetObject');
    return this.inner.getRange(key, offset, length);
  }

  async openRead(key: string): Promise<Readable> {
    this.add('GetObject');
    return this.inner.openRead(key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    this.add('HeadObject');
    return this.inner.head(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // One ListObjectsV2 page per 1000 keys, counted when the page would be fetched.
    let n = 0;
    for await (const o of this.inner.list(prefix)) {
      if (n % 1000 === 0) this.add('ListObjectsV2');
      n++;
      yield o;
    }
    if (n === 0) this.add('ListObjectsV2');
  }

  async flush(): Promise<void> {
    await this.inner.flush();
  }

  async extendRetention(key: string, until: Date): Promise<boolean> {
    this.add('GetObjectRetention');
    const changed = await this.inner.extendRetention(key, until);
    if (changed) this.add('PutObjectRetention');
    return changed;
  }

  async delete(key: string): Promise<void> {
    this.add('ListObjectVersions');
    if (await this.inner.head(key)) {
      this.add('HeadObject');
      this.add('DeleteObjects');
    }
    await this.inner.delete(key);
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    const unique = [...new Set(keys)];
    const byDir = new Map<string, string[]>();
    for (const key of unique) {
      const dir = key.slice(0, key.lastIndexOf('/') + 1);
      byDir.set(dir, [...(byDir.get(dir) ?? []), key]);
    }
    let existing = 0;
    for (const [dir, inDir] of byDir) {
      if (inDir.length > 1 && dir !== '') {
        let objects = 0;
        for await (const _ of this.inner.list(dir)) objects++;
        this.add('ListObjectVersions', Math.max(1, Math.ceil(objects / 1000)));
      } else this.add('ListObjectVersions', inDir.length);
      for (const key of inDir) if (await this.inner.head(key)) existing++;
    }
    this.add('DeleteObjects', Math.ceil(existing / 1000));
    return this.inner.deleteMany(keys);
  }

  async setLegalHold(key: string, on: boolean): Promise<void> {
    this.add('PutObjectLegalHold');
    await this.inner.setLegalHold(key, on);
  }

  async markArchivable(key: string, on: boolean): Promise<void> {
    this.add(on ? 'PutObjectTagging' : 'DeleteObjectTagging');
    await this.inner.markArchivable(key, on);
  }

  async isArchivable(key: string): Promise<boolean> {
    this.add('GetObjectTagging');
    return this.inner.isArchivable(key);
  }

  async thaw(key: string, options: ThawOptions): Promise<ThawResult> {
    this.add('HeadObject');
    const result = await this.inner.thaw(key, options);
    if (result === 'started') this.add('RestoreObject');
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// The dataset: a MinIO PVC holding a Milvus bucket

interface Segment {
  readonly id: bigint;
  readonly collection: bigint;
  readonly rows: number;
  readonly keys: string[];
  bytes: number;
}

/**
 * The MinIO volume and its compaction. Objects are written with MinioDrives (xl.meta with the
 * data inline up to 128 KiB, else `<data dir>/part.1`); a deleted object's directory goes, with
 * its parents once empty, as MinIO removes them.
 */
class MinioDataset {
  private readonly drives: MinioDrives;
  private readonly segments: Segment[] = [];
  private nextId = 449_000_000_000_200_000n;
  private readonly random: DeterministicRandom;

  constructor(
    readonly root: string,
    private readonly seed: number,
  ) {
    this.drives = new MinioDrives([root], BUCKET);
    this.random = new DeterministicRandom(seed, 'bench-retention/compaction');
  }

  get files(): number {
    return this.segments.reduce((n, s) => n + s.keys.length, 0);
  }

  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Segments until the bucket holds `bytes`. */
  async build(bytes: number, at: Date): Promise<void> {
    await this.drives.format(deterministicUuid(this.seed));
    while (this.bytes < bytes) {
      const collection = 449_000_000_000_000_001n + BigInt(this.random.int(2)) * 10n;
      await this.writeSegment(collection, this.rows(), at);
    }
  }

  /** Log-uniform row counts from 100 to 2000: segment files from a few KiB to about 1 MiB. */
  private rows(): number {
    const r = this.random.int(1_000_000) / 1_000_000;
    return Math.round(Math.exp(Math.log(100) + r * (Math.log(2000) - Math.log(100))));
  }

  private id(): bigint {
    return this.nextId++;
  }

  /**
   * One flushed segment: four insert binlogs, a stats log, an HNSW index file and, for about a
   * third of the segments, a delta log. Returns its files' bytes.
   */
  private async writeSegment(collection: bigint, rows: number, at: Date): Promise<Segment> {
    const partition = collection + 1n;
    const segment: Segment = { id: this.id(), collection, rows, keys: [], bytes: 0 };
    const ts = hybridTimestamp(at.getTime());
    const [coll, part, seg] = [String(collection), String(partition), String(segment.id)];
    const put = async (key: string, data: Buffer): Promise<void> => {
      await this.drives.putObject(key, data, at);
      segment.keys.push(key);
      segment.bytes += data.length;
    };
    const payload = (key: string, length: number): Buffer => deterministicBytes(this.seed, `bench-retention/${key}`, length);
    const fields = [
      { id: FieldId.RowId, type: DataType.Int64, size: rows * 8 },
      { id: FieldId.Timestamp, type: DataType.Int64, size: rows * 8 },
      { id: FieldId.PrimaryKey, type: DataType.Int64, size: rows * 8 },
      { id: FieldId.Vector, type: DataType.FloatVector, size: rows * VECTOR_DIM * 4 },
    ];
    for (const f of fields) {
      const key = objectKeys.insertLog(ROOT_PATH, coll, part, seg, f.id, String(this.id()));
      const d = { eventType: EventType.Insert, collectionId: collection, partitionId: partition, segmentId: segment.id, fieldId: BigInt(f.id), startTimestamp: ts, endTimestamp: ts, dataType: f.type, numRows: rows, originalSize: f.size };
      await put(key, encodeBinlog(d, payload(key, f.size)));
    }
    const statsKey = objectKeys.statsLog(ROOT_PATH, coll, part, seg, FieldId.PrimaryKey, String(this.id()));
    await put(statsKey, payload(statsKey, Math.min(8192, 64 + rows)));
    const indexKey = objectKeys.indexFile(ROOT_PATH, String(this.id()), '1', part, seg, 'HNSW');
    await put(indexKey, payload(indexKey, Math.round(rows * VECTOR_DIM * 4 * 1.1)));
    if (this.random.int(3) === 0) {
      const deleted = 1 + this.random.int(Math.max(1, Math.round(rows / 20)));
      const key = objectKeys.deltaLog(ROOT_PATH, coll, part, seg, String(this.id()));
      const d = { eventType: EventType.Delete, collectionId: collection, partitionId: partition, segmentId: segment.id, fieldId: -1n, startTimestamp: ts, endTimestamp: ts, dataType: DataType.Int64, numRows: deleted, originalSize: deleted * 16 };
      await put(key, encodeBinlog(d, payload(key, deleted * 16)));
    }
    this.segments.push(segment);
    return segment;
  }

  private debt = 0;

  /**
   * Compaction since the last backup: replaces random segments (all their files) with new ones
   * of the same row count under new ids, until `share` of the files were replaced on average.
   * Returns the files and bytes written.
   */
  async compact(share: number, at: Date): Promise<{ files: number; bytes: number }> {
    this.debt += share * this.files;
    let files = 0;
    let bytes = 0;
    while (this.debt > 0 && this.segments.length > 0) {
      const [old] = this.segments.splice(this.random.int(this.segments.length), 1);
      this.debt -= old!.keys.length;
      for (const key of old!.keys) await this.removeObject(key);
      const fresh = await this.writeSegment(old!.collection, old!.rows, at);
      files += fresh.keys.length;
      bytes += fresh.bytes;
    }
    return { files, bytes };
  }

  private async removeObject(key: string): Promise<void> {
    const bucket = join(this.root, BUCKET);
    let dir = join(bucket, key);
    await rm(dir, { recursive: true, force: true });
    // MinIO removes the parents a delete leaves empty.
    for (dir = dirname(dir); dir.startsWith(bucket) && dir !== bucket; dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }
}

function deterministicUuid(seed: number): string {
  const h = createHash('sha256').update(`bench-retention/${seed}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// ---------------------------------------------------------------------------------------------
// Manifests: what a restore must reproduce

/** Per path: type, mode, size, SHA-256 and mtime (µs). File hashes are cached by path, size and mtime. */
class Manifests {
  private readonly hashes = new Map<string, string>();

  async of(root: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const seen = new Set<string>();
    const visit = async (abs: string, rel: string): Promise<void> => {
      const s = await lstat(abs, { bigint: true });
      const mtimeUs = (s.mtimeNs / 1000n).toString();
      const mode = (s.mode & 0o7777n).toString(8);
      if (s.isDirectory()) {
        out.set(rel, `dir ${mode} ${mtimeUs}`);
        for (const name of (await readdir(abs)).sort()) {
          if (rel === '' && name === RESTORE_MARKER) continue;
          await visit(join(abs, name), rel === '' ? name : `${rel}/${name}`);
        }
      } else if (s.isFile()) {
        const cacheKey = `${rel}\0${s.size}\0${s.mtimeNs}`;
        seen.add(cacheKey);
        let hash = this.hashes.get(cacheKey);
        if (hash === undefined) {
          hash = createHash('sha256').update(await readFile(abs)).digest('hex');
          this.hashes.set(cacheKey, hash);
        }
        out.set(rel, `file ${mode} ${s.size} ${hash} ${mtimeUs}`);
      } else out.set(rel, `other ${mode}`);
    };
    await visit(root, '');
    return out;
  }

  /** Hashes a manifest of a restored tree without caching (its files are new). */
  async fresh(root: string): Promise<Map<string, string>> {
    return new Manifests().of(root);
  }
}

function manifestDiff(want: Map<string, string>, got: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [path, w] of want) if (got.get(path) !== w) out.push(`${path || '/'}: want ${w}, got ${got.get(path) ?? 'nothing'}`);
  for (const path of got.keys()) if (!want.has(path)) out.push(`${path}: not in the backup`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The year

const iso = (ms: number): string => new Date(ms).toISOString();

/** Runs the simulated year and the checks; returns the report (never throws for a failed check). */
export async function runRetentionBench(o: RetentionBenchOptions): Promise<RetentionBenchReport> {
  const log = o.log ?? (() => {});
  const started = performance.now();
  const config = await loadConfigFile(o.config ?? join(REPO, 'examples', 'production.yaml'));
  const plan: ResolvedPlan = resolvePlan(config, PLAN);
  const work = await mkdtemp(join(tmpdir(), 'milvus-guard-bench-retention-'));
  const source = join(work, 'minio');
  const vaultDir = join(work, 'vault');
  await mkdir(source, { recursive: true });
  await mkdir(vaultDir, { recursive: true });

  let clock = new Date(FIRST_DAY);
  const fileVault = new FileVaultStore(vaultDir, { now: () => clock });
  const vault = new S3RequestCounter(fileVault);
  const catalog = new InMemoryCatalog();
  const dataset = new MinioDataset(source, o.seed);
  const manifests = new Manifests();
  /** The tree's manifest on the day of each backup not yet expired. */
  const kept = new Map<string, Map<string, string>>();
  const series: DaySample[] = [];
  const seconds = { backup: 0, retention: 0, gc: 0 };
  let replaced = { files: 0, bytes: 0 };
  let expired = 0;
  let objectsLocked = 0;

  log(`building the dataset in ${source} (${o.sizeMiB} MiB, seed ${o.seed})`);
  await dataset.build(o.sizeMiB * MiB, new Date(FIRST_DAY + 3600_000));
  const start = { bytes: dataset.bytes, files: dataset.files };
  log(`dataset: ${dataset.segmentCount} segments, ${dataset.files} files, ${(dataset.bytes / MiB).toFixed(1)} MiB`);

  const yearStarted = performance.now();
  for (let day = 0; day < o.days; day++) {
    const midnight = FIRST_DAY + day * DAY_MS;
    let today = { files: 0, bytes: 0 };
    if (day > 0) {
      today = await dataset.compact(o.churn, new Date(midnight + 3600_000));
      replaced = { files: replaced.files + today.files, bytes: replaced.bytes + today.bytes };
    }

    // The backup at 02:00, as Prepare, Export and Finalize record it.
    let t = performance.now();
    vault.phase = 'backup';
    clock = new Date(midnight + 2 * 3600_000);
    const startedAt = clock.toISOString();
    const backupId = defaultBackupName(PLAN, startedAt);
    const executionId = `arn:aws:states:us-east-1:000000000000:execution:milvus-guard-backup:${backupId}`;
    const retainUntil = backupRetainUntil(plan, await catalog.listBackups({ plan: PLAN }), { backupId, startedAt });
    await catalog.createBackup({ backupId, plan: PLAN, cluster: plan.cluster.name, namespace: plan.plan.namespace, vault: plan.vault.name, executionId, status: 'InProgress', startedAt, retainUntil: retainUntil.toISOString() });
    kept.set(backupId, await manifests.of(source));
    const result = await backupVolume({ source, vault, volume: VOLUME, backupId, now: clock, retainUntil, workers: 1, tmpDir: work });
    await catalog.updateBackup(backupId, {
      status: 'Available',
      completedAt: clock.toISOString(),
      durationSeconds: result.durationSeconds,
      sizeBytes: result.bytesTotal,
      bytesUploaded: result.bytesUploaded,
      components: [{ pvc: VOLUME, role: 'object-storage', status: 'Exported', bytesTotal: result.bytesTotal, bytesUploaded: result.bytesUploaded, files: result.files }],
    });
    seconds.backup += performance.now() - t;

    // The retention run at 12:00, holding every plan lock of the vault.
    t = performance.now();
    vault.phase = 'retention';
    clock = new Date(midnight + 12 * 3600_000);
    const run: RetentionRun = {
      runId: retentionRunId(clock.toISOString(), `bench-${day}`),
      executionId: `arn:aws:states:us-east-1:000000000000:execution:milvus-guard-retention:${day}`,
      now: clock.toISOString(),
      dryRun: false,
      vault: plan.vault.name,
      plans: [PLAN],
      locked: [PLAN],
      skipped: [],
      collectGarbage: true,
    };
    const outcome: PlanOutcome = await applyPolicy({ catalog, vault }, run, plan, await catalog.listBackups({ plan: PLAN }), { keepSnapshots: DEFAULT_RETENTION_TIMINGS.keepSnapshots });
    for (const e of outcome.expired) kept.delete(e.backupId);
    expired += outcome.expired.length;
    objectsLocked += outcome.objectsLocked;
    seconds.retention += performance.now() - t;

    t = performance.now();
    vault.phase = 'gc';
    let gc: GcProgress | undefined;
    // No minimum age: the simulated days run on their own clock, while the file vault stamps the
    // packs with the real time, so the age of a pack here is meaningless (and every simulated day
    // before the real date would keep them all).
    do gc = await collectGarbageStep({ vault, catalog, now: () => new Date(run.now), retention: { ...DEFAULT_RETENTION_TIMINGS, gcMinAgeSeconds: 0 } }, run, gc);
    while (gc.next !== undefined);
    seconds.gc += performance.now() - t;

    let packs = 0;
    let packBytes = 0;
    for await (const p of fileVault.list(PACKS_PREFIX)) {
      packs++;
      packBytes += p.size;
    }
    series.push({ day, date: iso(midnight).slice(0, 10), datasetBytes: dataset.bytes, filesReplaced: today.files, bytesUploaded: result.bytesUploaded, backupsKept: outcome.kept.length, packs, packBytes, packsDeleted: gc.packsDeleted });
    if (day % 30 === 0 || day === o.days - 1) {
      log(`${iso(midnight).slice(0, 10)} day ${day + 1}/${o.days}: kept ${outcome.kept.length}, ${packs} packs ${(packBytes / MiB).toFixed(1)} MiB, uploaded ${(result.bytesUploaded / MiB).toFixed(2)} MiB, GC deleted ${gc.packsDeleted} packs`);
    }
  }
  const yearSeconds = (performance.now() - yearStarted) / 1000;

  // --- the end of the year: what the vault holds, what it must hold ---------------------------
  const checksStarted = performance.now();
  vault.phase = 'checks';
  const records = await catalog.listBackups({ plan: PLAN });
  const keptRecords = records.filter((r) => r.status === 'Available');
  const keptRules: Record<string, number> = {};
  for (const r of keptRecords) for (const rule of r.retention?.rules ?? []) keptRules[rule.split(' ')[0]!] = (keptRules[rule.split(' ')[0]!] ?? 0) + 1;

  const chunkLength = new Map<string, number>();
  const livePerPack = new Map<string, Map<number, number>>();
  for (const r of keptRecords) {
    const reader = new IndexReader(await fileVault.openRead(volumeIndexKey(r.backupId, VOLUME)), `index of ${r.backupId}`);
    try {
      await reader.readHeader();
      for await (const entry of reader.entries()) {
        for (const c of entry.chunks ?? []) {
          chunkLength.set(c.hash, c.length);
          let ranges = livePerPack.get(c.pack);
          if (!ranges) livePerPack.set(c.pack, (ranges = new Map()));
          ranges.set(c.offset, c.length);
        }
      }
    } finally {
      await reader.close().catch(() => {});
    }
  }
  const minimumBytes = [...chunkLength.values()].reduce((n, l) => n + l, 0);

  const v = { packBytes: 0, packs: 0, metadataBytes: 0, metadataObjects: 0 };
  const garbage = { packsFullyLive: 0, packsPartlyLive: 0, deadBytesInPartlyLivePacks: 0, packsUnreferenced: 0, unreferencedBytes: 0, unreferencedLockedUntil: null as string | null, objectsOfExpiredBackupsLocked: objectsLocked };
  for await (const obj of fileVault.list('')) {
    const packId = packIdFromKey(obj.key);
    if (!packId) {
      v.metadataBytes += obj.size;
      v.metadataObjects++;
      continue;
    }
    v.packBytes += obj.size;
    v.packs++;
    const live = [...(livePerPack.get(packId)?.values() ?? [])].reduce((n, l) => n + l, 0);
    if (live === 0) {
      garbage.packsUnreferenced++;
      garbage.unreferencedBytes += obj.size;
      const until = (await fileVault.head(obj.key))?.retainUntil?.toISOString() ?? null;
      if (until && (!garbage.unreferencedLockedUntil || until > garbage.unreferencedLockedUntil)) garbage.unreferencedLockedUntil = until;
    } else if (live < obj.size) {
      garbage.packsPartlyLive++;
      garbage.deadBytesInPartlyLivePacks += obj.size - live;
    } else garbage.packsFullyLive++;
  }
  const lockJournalBytes = await stat(join(vaultDir, '.object-lock', 'journal.jsonl')).then((s) => s.size, () => 0);
  const totalBytes = v.packBytes + v.metadataBytes;
  const fullCopiesBytes = keptRecords.reduce((n, r) => n + (r.sizeBytes ?? 0), 0);

  // --- correctness: the vault verifies, every kept backup restores byte-exact ------------------
  log(`verifying the vault (read-data) and restoring the ${keptRecords.length} kept backups`);
  const verifyProblems: string[] = [];
  const verified = await verifyVault({ vault, readData: true, concurrency: 2 });
  for (const p of verified.problems) verifyProblems.push(JSON.stringify(p));
  const restoreFailures: string[] = [];
  let restored = 0;
  for (const r of keptRecords) {
    const want = kept.get(r.backupId);
    if (!want) {
      restoreFailures.push(`${r.backupId}: kept, but the benchmark dropped its manifest (it was reported expired)`);
      continue;
    }
    const target = join(work, 'restore', r.backupId);
    try {
      await restoreVolume({ vault, volume: VOLUME, backupId: r.backupId, target, workers: 0 });
      const diff = manifestDiff(want, await manifests.fresh(target));
      if (diff.length > 0) restoreFailures.push(`${r.backupId}: ${diff.length} differences, first: ${diff.slice(0, 3).join('; ')}`);
      else restored++;
    } catch (err) {
      restoreFailures.push(`${r.backupId}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  }
  for (const id of kept.keys()) if (!keptRecords.some((r) => r.backupId === id)) restoreFailures.push(`${id}: a manifest is kept for it but its record is not Available`);
  const checksSeconds = (performance.now() - checksStarted) / 1000;

  const total = zeroCounts();
  for (const phase of ['backup', 'retention', 'gc'] as const) for (const k of REQUEST_KINDS) total[k] += vault.counts[phase][k];
  const overMinimum = minimumBytes > 0 ? totalBytes / minimumBytes : Number.POSITIVE_INFINITY;
  const savingVsFull = totalBytes > 0 ? fullCopiesBytes / totalBytes : 0;
  const days = Math.max(1, o.days - 1);
  const report: RetentionBenchReport = {
    options: { days: o.days, seed: o.seed, churn: o.churn, sizeMiB: o.sizeMiB },
    workDir: work,
    dataset: { bytes: dataset.bytes, files: dataset.files, segments: dataset.segmentCount, startBytes: start.bytes, startFiles: start.files },
    churn: { filesPerDay: replaced.files / days, bytesPerDay: replaced.bytes / days, shareOfFiles: replaced.files / days / start.files, shareOfBytes: replaced.bytes / days / start.bytes },
    backups: { taken: o.days, kept: keptRecords.length, expired, keptRules, keptIds: keptRecords.map((r) => r.backupId) },
    vault: { ...v, totalBytes, lockJournalBytes },
    minimumBytes,
    fullCopiesBytes,
    overMinimum,
    packsOverMinimum: minimumBytes > 0 ? v.packBytes / minimumBytes : Number.POSITIVE_INFINITY,
    savingVsFull,
    targets: { overMinimum: overMinimum <= 1.05, savingVsFull: savingVsFull >= 5 },
    garbage,
    requests: { backup: vault.counts.backup, retention: vault.counts.retention, gc: vault.counts.gc, total, checks: vault.counts.checks },
    checks: { verifyProblems, restored, restoreFailures, passed: verifyProblems.length === 0 && restoreFailures.length === 0 },
    seconds: { total: (performance.now() - started) / 1000, year: yearSeconds, backup: seconds.backup / 1000, retention: seconds.retention / 1000, gc: seconds.gc / 1000, checks: checksSeconds },
    series,
  };
  if (!o.keep) await rm(work, { recursive: true, force: true });
  return report;
}

// ---------------------------------------------------------------------------------------------
// Output

const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
const ratio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(3)}x` : 'n/a');

function table(head: string[], lines: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [row(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n');
}

/** The report as Markdown tables: the result, why the vault holds more than the minimum, S3 requests. */
export function formatReport(r: RetentionBenchReport): string {
  const rules = Object.entries(r.backups.keptRules).map(([k, n]) => `${k} ${n}`).join(', ');
  const main = table(
    ['measure', 'value'],
    [
      ['dataset at the end', `${mib(r.dataset.bytes)} in ${r.dataset.files} files (${r.dataset.segments} segments); start ${mib(r.dataset.startBytes)}, ${r.dataset.startFiles} files`],
      ['compaction per day', `${r.churn.filesPerDay.toFixed(1)} files (${(r.churn.shareOfFiles * 100).toFixed(2)}%), ${mib(r.churn.bytesPerDay)} (${(r.churn.shareOfBytes * 100).toFixed(2)}% of the bytes)`],
      ['backups taken / kept / expired', `${r.backups.taken} / ${r.backups.kept} / ${r.backups.expired} (rules of the kept: ${rules})`],
      ['vault: packs', `${mib(r.vault.packBytes)} in ${r.vault.packs} packs`],
      ['vault: metadata (indexes, summaries)', `${mib(r.vault.metadataBytes)} in ${r.vault.metadataObjects} objects`],
      ['vault: total', mib(r.vault.totalBytes)],
      ['minimum (distinct chunks of kept backups)', mib(r.minimumBytes)],
      ['vault / minimum (target <= 1.05)', `${ratio(r.overMinimum)} ${r.targets.overMinimum ? 'met' : 'MISSED'} (packs alone ${ratio(r.packsOverMinimum)})`],
      ['full copies of the kept backups', mib(r.fullCopiesBytes)],
      ['full copies / vault (target >= 5)', `${ratio(r.savingVsFull)} ${r.targets.savingVsFull ? 'met' : 'MISSED'}`],
      ['S3 requests in the year', `${Object.values(r.requests.total).reduce((n, c) => n + c, 0)} (${((Object.values(r.requests.total).reduce((n, c) => n + c, 0)) / r.backups.taken).toFixed(0)} a day)`],
      ['file vault lock journal (no S3 equivalent)', mib(r.vault.lockJournalBytes)],
    ],
  );
  const g = r.garbage;
  const why = table(
    ['packs', 'count', 'bytes not referenced by a kept backup'],
    [
      ['fully live', String(g.packsFullyLive), '0'],
      ['partly live (GC deletes whole packs only)', String(g.packsPartlyLive), mib(g.deadBytesInPartlyLivePacks)],
      ['unreferenced, still locked', String(g.packsUnreferenced), `${mib(g.unreferencedBytes)}${g.unreferencedLockedUntil ? ` (locked until at most ${g.unreferencedLockedUntil})` : ''}`],
    ],
  );
  const kinds = REQUEST_KINDS.filter((k) => r.requests.total[k] + r.requests.checks[k] > 0);
  const requests = table(
    ['S3 request', 'backup', 'retention', 'gc', 'year total', 'per day', 'final checks'],
    kinds.map((k) => [k, String(r.requests.backup[k]), String(r.requests.retention[k]), String(r.requests.gc[k]), String(r.requests.total[k]), (r.requests.total[k] / r.backups.taken).toFixed(1), String(r.requests.checks[k])]),
  );
  const monthly = r.series.filter((s, i) => s.date.endsWith('-01') || i === r.series.length - 1);
  const series = table(
    ['date', 'dataset', 'kept', 'packs', 'pack bytes', 'uploaded that day'],
    monthly.map((s) => [s.date, mib(s.datasetBytes), String(s.backupsKept), String(s.packs), mib(s.packBytes), mib(s.bytesUploaded)]),
  );
  const c = r.checks;
  const checks = [
    `verify --read-data: ${c.verifyProblems.length === 0 ? 'no problems' : `${c.verifyProblems.length} PROBLEMS`}`,
    `restores byte-exact: ${c.restored} of ${r.backups.kept}${c.restoreFailures.length ? ` (${c.restoreFailures.length} FAILED)` : ''}`,
    ...c.verifyProblems.map((p) => `  verify: ${p}`),
    ...c.restoreFailures.map((f) => `  restore: ${f}`),
  ].join('\n');
  const s = r.seconds;
  const time = `time: ${s.total.toFixed(1)} s in all; the year ${s.year.toFixed(1)} s (backups ${s.backup.toFixed(1)} s, retention ${s.retention.toFixed(1)} s, GC ${s.gc.toFixed(1)} s); final checks ${s.checks.toFixed(1)} s`;
  return [
    `simulated ${r.options.days} days, seed ${r.options.seed}, churn ${r.options.churn}, ${r.options.sizeMiB} MiB at the start, plan ${PLAN} of examples/production.yaml`,
    '',
    main,
    '',
    why,
    '',
    requests,
    '',
    series,
    '',
    checks,
    time,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// CLI


async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('bench:retention')
    .description('a simulated year of daily backups, retention and garbage collection')
    .option('--days <n>', 'days to simulate', integer(1), 365)
    .option('--seed <n>', 'seed of the dataset and of compaction', integer(0), 20270101)
    .option('--churn <share>', 'share of the segment files compaction replaces per day', share, 0.01)
    .option('--size-mib <n>', 'size of the MinIO dataset at the start', integer(1), 64)
    .option('--json', 'print the report as JSON instead of tables', false)
    .option('--keep', 'keep the working directory (dataset and vault)', false)
    .parse([...argv]);
  const o = program.opts<{ days: number; seed: number; churn: number; sizeMib: number; json: boolean; keep: boolean }>();
  const report = await runRetentionBench({ days: o.days, seed: o.seed, churn: o.churn, sizeMiB: o.sizeMib, keep: o.keep, log: (l) => void process.stderr.write(`${l}\n`) });
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  if (o.keep) process.stderr.write(`kept ${report.workDir}\n`);
  if (!report.targets.overMinimum || !report.targets.savingVsFull) process.stderr.write('a target was missed (reported above; not a failure of the run)\n');
  return report.checks.passed ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main(process.argv);
