/**
 * What the catalog knows about one backup. The zod schema is the single source of truth: the
 * DynamoDB adapter parses items with it, the local catalog parses its files with it, and
 * `backup describe -o json` prints exactly this shape.
 */
import { z } from 'zod';
import { BACKUP_WORKFLOW, RESTORE_WORKFLOW, timelineSteps } from '../workflow/steps.js';
import { RESTORE_PHASE_NAMES } from '../restore/phases.js';

/** The backup workflow's timeline steps, in the order they run (from its step table). */
export const BACKUP_STEPS = timelineSteps(BACKUP_WORKFLOW);
export const BackupStep = z.enum(BACKUP_STEPS);
export type BackupStep = z.infer<typeof BackupStep>;

/** `Expired`: retention removed the backup (its record stays, small, for history and audits). */
export const BackupStatus = z.enum(['InProgress', 'Available', 'Failed', 'Expired']);
export type BackupStatus = z.infer<typeof BackupStatus>;

/** One step of the timeline: when it started and ended, and how it went. */
export const StepEntry = z.object({
  startedAt: z.string(),
  endedAt: z.string().optional(),
  outcome: z.enum(['Succeeded', 'Failed', 'Skipped']).optional(),
  /** The Task (ASL state) that last worked on the step. */
  state: z.string().optional(),
  /** The Task whose failure ended the step, kept when later Tasks (Map iterations) start. */
  failedState: z.string().optional(),
  /** A short note: "3 collections flushed", the error of a failed step. */
  detail: z.string().optional(),
});
export type StepEntry = z.infer<typeof StepEntry>;

/** Rows of one collection when the backup was taken (after the flush was confirmed). */
export const RowCount = z.object({
  database: z.string(),
  collection: z.string(),
  rows: z.number().int().nonnegative(),
  /** How the flush was confirmed: persisted rows equal `count(*)`, or stable stats (not loaded). */
  /**
   * `count`: the live `count(*)` once the flush was confirmed; `stats`: `get_stats` of a collection
   * that was not loaded (it counts rows deleted since the last compaction); `stable-stats`:
   * backups before flush confirmation by GetFlushState.
   */
  confirmedBy: z.enum(['count', 'stats', 'stable-stats']),
  /**
   * The same count just before the flush was asked for, and once every snapshot was cut
   * (core/backup/quiesce.ts): Milvus takes writes during a backup, and a restore brings back a
   * count between the lowest and the highest of the three. Absent in older records, and where
   * the collection could not be counted the same way then.
   */
  rowsBeforeFlush: z.number().int().nonnegative().optional(),
  rowsAfterSnapshots: z.number().int().nonnegative().optional(),
  /**
   * Milvus said the collection no longer existed once every snapshot was cut: it was dropped
   * after its flush, before or after etcd's cut, so a restore may or may not have it (validation
   * accepts both). Absent otherwise.
   */
  droppedDuringBackup: z.literal(true).optional(),
  /**
   * The collection's id when the backup first looked at it (decimal digits of an int64): a
   * collection of its name with another id in a restore is one created again after it was
   * dropped during the backup. Absent in older records.
   */
  collectionId: z.string().regex(/^\d+$/).optional(),
});
export type RowCount = z.infer<typeof RowCount>;

/** One exec hook run on one pod. Output is truncated to keep the record small. */
export const HookRun = z.object({
  phase: z.enum(['pre', 'post']),
  hook: z.string(),
  pod: z.string(),
  container: z.string(),
  command: z.array(z.string()),
  attempts: z.number().int().positive(),
  outcome: z.enum(['Succeeded', 'Failed', 'FailedIgnored', 'TimedOut', 'TimedOutIgnored']),
  exitCode: z.number().int().optional(),
  stdout: z.string(),
  stderr: z.string(),
  error: z.string().optional(),
});
export type HookRun = z.infer<typeof HookRun>;

/** One protected volume: its snapshot and its export into the vault. */
export const ComponentStatus = z.object({
  pvc: z.string(),
  role: z.string(),
  snapshot: z.string().optional(),
  status: z.enum(['Pending', 'SnapshotReady', 'Exported', 'Failed']),
  bytesTotal: z.number().nonnegative().optional(),
  bytesUploaded: z.number().nonnegative().optional(),
  files: z.number().int().nonnegative().optional(),
});
export type ComponentStatus = z.infer<typeof ComponentStatus>;

/**
 * A backup's replication into one DR region's vault, as that region's replication check last
 * found it: `Complete` once every object the backup needs is there (`at`: when the check first
 * saw it so); `Pending` while some are missing; `Late` when some are still missing after the
 * replication window (S3 Replication Time Control replicates 99.99% of objects within 15 minutes).
 */
export const ReplicationEntry = z.object({
  status: z.enum(['Pending', 'Complete', 'Late']),
  at: z.string().optional(),
  checkedAt: z.string(),
  /** Objects the backup needs (its record, manifests, summaries, indexes and the packs it added). */
  objects: z.number().int().nonnegative(),
  /**
   * How many of those, in the check's order, are known to be there: a later check starts after
   * them (replicas are never deleted by replication), so a large backup's check goes on over
   * several runs instead of starting over.
   */
  confirmed: z.number().int().nonnegative().default(0),
  /** The first missing key, when the check found one (it stops there). */
  firstMissing: z.string().optional(),
  /**
   * False when the backup's Secrets were sealed with a single-Region key that this region
   * cannot use (sealed before the multi-Region sealing key): it cannot be restored here.
   */
  secretsOpenHere: z.boolean().optional(),
});
export type ReplicationEntry = z.infer<typeof ReplicationEntry>;

/**
 * One backup's replication into one region, as its own catalog item (`REPLICATION#<backup>#<region>`),
 * written only by that region's check: never by a write to the backup's item, which the primary
 * region updates (retention, holds) and which a global table's last-writer-wins would let a
 * concurrent write from another region undo.
 */
export const ReplicationRecord = ReplicationEntry.extend({
  backupId: z.string(),
  region: z.string(),
  plan: z.string(),
  /** The writer: the region's CheckReplication. */
  executionId: z.string(),
  steps: z.record(z.string(), StepEntry).default({}),
});
export type ReplicationRecord = z.infer<typeof ReplicationRecord>;
export type ReplicationRecordInput = z.input<typeof ReplicationRecord>;

/**
 * The copy of an S3-backed Milvus's bucket a backup holds (core/backup/objects.ts): where it was
 * copied from and the commit that names every object (`backups/<id>/objects/commit.json`).
 */
export const ObjectCopyRecord = z.object({
  source: z.object({ bucket: z.string(), rootPath: z.string() }),
  key: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  pages: z.number().int().nonnegative(),
  objects: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  /** Objects and bytes this backup copied; the rest were in the vault already (incremental). */
  copied: z.number().int().nonnegative(),
  bytesCopied: z.number().int().nonnegative(),
});
export type ObjectCopyRecord = z.infer<typeof ObjectCopyRecord>;

export const BackupRecord = z.object({
  backupId: z.string(),
  plan: z.string(),
  cluster: z.string(),
  namespace: z.string(),
  vault: z.string(),
  executionId: z.string(),
  status: BackupStatus,
  startedAt: z.string(),
  completedAt: z.string().optional(),
  durationSeconds: z.number().nonnegative().optional(),
  /** Bytes of the volumes' files (what a restore writes). */
  sizeBytes: z.number().nonnegative().optional(),
  /** Bytes this backup added to the vault (incremental). */
  bytesUploaded: z.number().nonnegative().optional(),
  steps: z.partialRecord(BackupStep, StepEntry).default({}),
  components: z.array(ComponentStatus).default([]),
  rowCounts: z.array(RowCount).default([]),
  /**
   * Collections listed at the flush that Milvus said were dropped before their flush was
   * confirmed: not in `rowCounts`, and no restore is expected to have them. Absent when none.
   */
  droppedBeforeFlush: z.array(z.object({ database: z.string(), collection: z.string() })).optional(),
  hooks: z.array(HookRun).default([]),
  manifests: z
    .object({
      objects: z.number().int().nonnegative(),
      secrets: z.number().int().nonnegative(),
      sealed: z.number().int().nonnegative().optional(),
      related: z.number().int().nonnegative().optional(),
      /** References capture found missing: what a restore will not have either. */
      warnings: z.array(z.string()).optional(),
    })
    .optional(),
  /** The backup's index in the vault (`backups/<id>/backup.json`). */
  indexKey: z.string().optional(),
  /**
   * SHA-256 of the bytes of `backup.json` as Finalize wrote them: the top of the integrity
   * chain, kept where the data mover cannot write. On a versioned bucket Object Lock protects
   * each version, not the key, so anyone allowed to write the vault can add a new version of
   * `backup.json` naming other manifests and summaries; a restore refuses one that does not
   * hash to this. Absent for backups finalized before it was recorded.
   */
  indexSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** When the failure path began: from then on no step creates anything in the cluster for it. */
  closingAt: z.string().optional(),
  /**
   * When the failure path or a recovery had removed the backup's export Jobs: none of its exports
   * writes to the vault after their pods' grace period (garbage collection waits no longer for them).
   */
  exportsRemovedAt: z.string().optional(),
  /** The datacoord GC pause the backup took, so a recovery can resume it with its ticket. */
  gcPause: z.object({ ticket: z.string().optional(), pausedUntil: z.string() }).optional(),
  /** The copy of the Milvus bucket, for a Milvus on external S3 (absent otherwise). */
  objectCopy: ObjectCopyRecord.optional(),
  /**
   * Object Lock retain-until of the backup's objects and the packs it references: set when the
   * backup is written, extended (never shortened) by retention when a rule keeps it longer.
   */
  retainUntil: z.string().optional(),
  /** The retention rules that kept the backup at the last evaluation (`latest`, `weekly 2026-W47`, ...). */
  retention: z.object({ rules: z.array(z.string()), evaluatedAt: z.string() }).optional(),
  /**
   * A legal hold: retention never expires the backup while it is set (`backup hold`); `null`
   * once released (`backup release`).
   */
  hold: z.object({ reason: z.string(), at: z.string() }).nullable().optional(),
  /**
   * True once retention tagged archivable the packs only this backup (and others no longer hot)
   * references, after it left the hot set (tiering by reference): they may go to GLACIER.
   */
  archivable: z.boolean().optional(),
  /**
   * When and why retention expired the backup; `cleared` once every object it owned has left
   * the vault (objects still under Object Lock are removed by a later run).
   */
  expired: z.object({ at: z.string(), reason: z.string(), cleared: z.boolean() }).optional(),
  /**
   * Per DR region: whether the backup is whole in that region's vault. Not stored on the backup's
   * item: filled from the replication records when read with them (core/dr/replication.ts
   * `withReplication`), as `backup describe` and the DR steps do.
   */
  replication: z.record(z.string(), ReplicationEntry).optional(),
  /** `step` is the timeline step, `state` the Task that failed (as the console names it). */
  failure: z.object({ step: z.string(), state: z.string().optional(), error: z.string(), cause: z.string() }).optional(),
});
export type BackupRecord = z.infer<typeof BackupRecord>;
export type BackupRecordInput = z.input<typeof BackupRecord>;

/**
 * Fields `updateBackup` may set; identity fields never change, and `replication` is set one
 * region at a time (`recordReplication`), since each DR region's check writes its own.
 */
export type BackupPatch = Partial<Omit<BackupRecord, 'backupId' | 'plan' | 'executionId' | 'startedAt' | 'steps' | 'replication'>>;

// ---- restores ----------------------------------------------------------------------------

/** The restore workflow's timeline steps, in the order they run (from its step table). */
export const RESTORE_STEPS = timelineSteps(RESTORE_WORKFLOW);
export const RestoreStep = z.enum(RESTORE_STEPS);
export type RestoreStep = z.infer<typeof RestoreStep>;

export const RestoreStatus = z.enum(['InProgress', 'Completed', 'Failed']);
export type RestoreStatus = z.infer<typeof RestoreStatus>;

/** One restored volume. */
export const RestoredVolume = z.object({
  pvc: z.string(),
  role: z.string(),
  status: z.enum(['Pending', 'Restored', 'Failed']),
  /** The VolumeSnapshot or data-mover Job that filled it. */
  from: z.string().optional(),
  /** When the workflow started filling it: its hydration Job created (hydrations wait for a free slot), or its PVC made from the snapshot. */
  startedAt: z.string().optional(),
  /** When a poll of the workflow found it filled (up to one poll interval after the data mover ended). */
  endedAt: z.string().optional(),
  /**
   * The data mover's own run, from the last progress report of its Job (core/datamover/progress.ts):
   * start and end on the pod's clock, and the files and bytes it wrote. Absent for a snapshot
   * source, or when the report could not be read.
   */
  dataMover: z
    .object({ startedAt: z.string(), endedAt: z.string(), files: z.number().int().nonnegative(), bytes: z.number().nonnegative() })
    .optional(),
});
export type RestoredVolume = z.infer<typeof RestoredVolume>;

/** One phase of a restore's RTO (core/restore/phases.ts). */
export const RestorePhaseSpan = z.object({
  phase: z.enum(RESTORE_PHASE_NAMES),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  seconds: z.number().nonnegative().optional(),
  outcome: z.enum(['Succeeded', 'Failed']).optional(),
});
export type RestorePhaseSpan = z.infer<typeof RestorePhaseSpan>;

/** One collection as validation found it, against the row count recorded at backup. */
export const CollectionCheck = z.object({
  database: z.string(),
  collection: z.string(),
  expected: z.number().int().nonnegative(),
  /**
   * The counts a restore may bring back when the collection's count moved during the backup
   * (RowCount's counts before the flush and after the snapshots): `restored` must lie between
   * them. Absent when the counts agreed (then `restored` must equal `expected`).
   */
  expectedMin: z.number().int().nonnegative().optional(),
  expectedMax: z.number().int().nonnegative().optional(),
  /** Absent when the collection is missing or could not be counted. */
  restored: z.number().int().nonnegative().optional(),
  /**
   * How `expected` and `restored` were counted: `count` (live rows, `count(*)`), or `stats`
   * (`get_stats`, deleted rows included until compaction) for a collection the backup found not
   * loaded: the restored etcd must record the same rows (or rows in the range), and its live
   * count is at most that.
   */
  countedBy: z.enum(['count', 'stats']).optional(),
  loaded: z.boolean(),
  /**
   * The backup found the collection dropped after its flush (RowCount `droppedDuringBackup`) and
   * the restore does not have it: accepted, with nothing to count. Absent otherwise.
   */
  droppedDuringBackup: z.literal(true).optional(),
  /**
   * With `droppedDuringBackup`: the restore has a collection of its name with another id, one
   * created again during the backup, which the backup's counts do not describe (not counted).
   */
  recreatedDuringBackup: z.literal(true).optional(),
  /** Hits of the sample search (absent when it did not run). */
  searchHits: z.number().int().nonnegative().optional(),
  /**
   * Loaded for its check and released once it passed, as the source had it released
   * (core/restore/validate.ts); absent for the others, and in older records.
   */
  released: z.boolean().optional(),
  ok: z.boolean(),
  /** Why the check failed; on a passing check, what validation could not do (Milvus refused to release it again). */
  problem: z.string().optional(),
});
export type CollectionCheck = z.infer<typeof CollectionCheck>;

export const RestoreRecord = z.object({
  restoreId: z.string(),
  backupId: z.string(),
  plan: z.string(),
  source: z.enum(['snapshot', 'vault']),
  sourceCluster: z.string(),
  sourceNamespace: z.string(),
  targetCluster: z.string(),
  targetNamespace: z.string(),
  executionId: z.string(),
  status: RestoreStatus,
  /** When the restore was requested: the RTO counts from here. */
  requestedAt: z.string(),
  completedAt: z.string().optional(),
  /** Seconds from the request to validated data (set when Completed). */
  rtoSeconds: z.number().nonnegative().optional(),
  /** Whether the restore created the target namespace (cleanup deletes only what it created). */
  createdNamespace: z.boolean().optional(),
  /** When the failure path began: from then on no step creates anything in the cluster for it. */
  closingAt: z.string().optional(),
  /** The drill this restore belongs to, if any. */
  drillId: z.string().optional(),
  steps: z.partialRecord(RestoreStep, StepEntry).default({}),
  /**
   * The RTO broken down into phases (core/restore/phases.ts), derived from `steps` and written as
   * the workflow runs; contiguous from the request, so a Completed restore's add up to `rtoSeconds`.
   * Absent in records from before phases were recorded (`describe` derives them from `steps`).
   */
  phases: z.array(RestorePhaseSpan).optional(),
  volumes: z.array(RestoredVolume).default([]),
  manifests: z.object({ created: z.number().int().nonnegative(), existing: z.number().int().nonnegative(), secrets: z.number().int().nonnegative(), skipped: z.array(z.string()).optional() }).optional(),
  validation: z.object({ passed: z.boolean(), collections: z.array(CollectionCheck) }).optional(),
  failure: z
    .object({
      step: z.string(),
      /** The Task that failed, as the console names it. */
      state: z.string().optional(),
      error: z.string(),
      cause: z.string(),
      /** What was left in the cluster for inspection, or what cleanup removed. */
      leftBehind: z.string(),
    })
    .optional(),
});
export type RestoreRecord = z.infer<typeof RestoreRecord>;
export type RestoreRecordInput = z.input<typeof RestoreRecord>;

/** Fields `updateRestore` may set; identity fields never change. */
export type RestorePatch = Partial<Omit<RestoreRecord, 'restoreId' | 'backupId' | 'executionId' | 'requestedAt' | 'steps'>>;

// ---- retention runs ----------------------------------------------------------------------

/**
 * A retention run's summary: what each plan kept and expired, what garbage collection freed.
 * The whole report (every backup decided, with rules and reasons) is in the vault at `reportKey`.
 */
export const RetentionRunRecord = z.object({
  runId: z.string(),
  executionId: z.string(),
  status: z.enum(['Completed']),
  /** The run's clock: every decision was taken at this instant. */
  now: z.string(),
  dryRun: z.boolean(),
  plans: z.array(z.object({ plan: z.string(), kept: z.number().int().nonnegative(), expired: z.array(z.string()), locksExtended: z.number().int().nonnegative() })),
  skipped: z.array(z.object({ plan: z.string(), reason: z.string() })),
  packsDeleted: z.number().int().nonnegative(),
  bytesFreed: z.number().nonnegative(),
  /** Why packs were not collected, when they were not. */
  gcSkipped: z.string().optional(),
  reportKey: z.string(),
  steps: z.record(z.string(), StepEntry).default({}),
});
export type RetentionRunRecord = z.infer<typeof RetentionRunRecord>;
export type RetentionRunInput = z.input<typeof RetentionRunRecord>;

// ---- failovers ---------------------------------------------------------------------------

/**
 * A failover into a DR region: the backup it chose (the newest complete in that region), the
 * restore that brought it back, and what it achieved: RPO (the backup's point in time to the
 * moment the failover was requested) and RTO (the request to validated data).
 */
export const FailoverRecord = z.object({
  failoverId: z.string(),
  executionId: z.string(),
  plan: z.string(),
  /** The DR region the failover ran in. */
  region: z.string(),
  status: z.enum(['InProgress', 'Completed', 'Failed']),
  requestedAt: z.string(),
  /** The point in time asked for, if any. */
  pointInTime: z.string().optional(),
  backupId: z.string(),
  /** The moment the backup's data stands for (its snapshots). */
  backupPointInTime: z.string(),
  restoreId: z.string(),
  targetCluster: z.string(),
  targetNamespace: z.string(),
  completedAt: z.string().optional(),
  rpoSeconds: z.number().nonnegative(),
  rtoSeconds: z.number().nonnegative().optional(),
  failure: z.object({ error: z.string(), cause: z.string() }).optional(),
  steps: z.record(z.string(), StepEntry).default({}),
});
export type FailoverRecord = z.infer<typeof FailoverRecord>;
export type FailoverRecordInput = z.input<typeof FailoverRecord>;
