/**
 * The documents the backup workflow's states pass to each other (small — ids, keys,
 * names, deadlines; anything large is in the vault). Each Lambda parses its request with one of
 * these schemas, so the ASL's `Parameters` and the handlers cannot drift apart unnoticed.
 * Requests that the failure path builds from the whole state (`$`) are loose objects: the
 * state then carries more than the step reads.
 */
import { z } from 'zod';
import { BackupInput, PreparedBackup } from './contracts.js';
import { ObjectCopyRecord } from '../catalog/record.js';
import type { CopyCursor } from '../objectstore/bucket-copy.js';

const Iso = z.iso.datetime();

/** A protected volume: the PVC and what it holds for Milvus. */
export const ProtectedVolume = z.strictObject({ pvc: z.string(), role: z.string() });
export type ProtectedVolume = z.infer<typeof ProtectedVolume>;

/**
 * Discover's result: where the inventory is, which volumes to snapshot, the message queue Milvus
 * writes to (kind, and where its data lives: `volumes`, `object-storage`, `external`,
 * `ephemeral`, `unknown`) and the first warnings (the inventory keeps them all).
 */
export const Discovery = z.strictObject({
  inventoryKey: z.string(),
  resources: z.number().int().nonnegative(),
  volumes: z.array(ProtectedVolume).min(1),
  queue: z.strictObject({ kind: z.string(), placement: z.string() }).optional(),
  warnings: z.array(z.string()).optional(),
  /** The external bucket Milvus keeps its objects in (no in-cluster MinIO): CopyObjects copies it. */
  objectStorage: z.strictObject({ bucket: z.string(), rootPath: z.string(), declaredBy: z.enum(['milvus-cr', 'helm-config']), region: z.string().optional() }).optional(),
});
export type Discovery = z.infer<typeof Discovery>;

/** Flush progress: the collections are listed in the vault (`milvusKey`). */
export const FlushProgress = z.strictObject({
  milvusKey: z.string(),
  collections: z.number().int().nonnegative(),
  pending: z.number().int().nonnegative(),
  confirmed: z.boolean(),
  deadline: Iso,
});
export type FlushProgress = z.infer<typeof FlushProgress>;

/** The datacoord GC pause: the ticket that resumes it (absent on Milvus without tickets). */
export const GcPause = z.strictObject({ ticket: z.string().optional(), pausedUntil: Iso });
export type GcPause = z.infer<typeof GcPause>;

/** The copy's cursor as the state carries it (core/objectstore/bucket-copy.ts `CopyCursor`), checked for its shape. */
const CursorShape = z
  .object({
    backupId: z.string(),
    pages: z.number().int().nonnegative(),
    startAfter: z.string().optional(),
    done: z.boolean(),
    chain: z.string(),
    totals: z.object({ objects: z.number(), bytes: z.number(), copied: z.number(), reused: z.number(), bytesCopied: z.number(), bytesReused: z.number() }).loose(),
  })
  .loose();
const Cursor = z.custom<CopyCursor>((v) => CursorShape.safeParse(v).success, { error: 'is not the cursor of an object copy' });

/** CopyObjects' state: the cursor, the GC pause in force, and the record once done. */
export const ObjectCopyProgress = z.strictObject({
  done: z.boolean(),
  /** Absent before the first call (the workflow's StartObjectCopy). */
  cursor: Cursor.optional(),
  gc: GcPause.optional(),
  copy: ObjectCopyRecord.optional(),
});
export type ObjectCopyProgress = z.infer<typeof ObjectCopyProgress>;

export const HookSummary = z.strictObject({ runs: z.number().int().nonnegative(), failed: z.number().int().nonnegative(), ignored: z.number().int().nonnegative() });
export type HookSummary = z.infer<typeof HookSummary>;

export const CaptureSummary = z.strictObject({
  objects: z.number().int().nonnegative(),
  secrets: z.number().int().nonnegative(),
  /** Objects sealed: the Secrets and the ConfigMaps (or CR) that can carry credentials. */
  sealed: z.number().int().nonnegative().optional(),
  /** Objects captured because a captured object references them (related items). */
  related: z.number().int().nonnegative().optional(),
  /** References to objects that do not exist (at most 20 lines). */
  warnings: z.array(z.string()).max(20).optional(),
});
export type CaptureSummary = z.infer<typeof CaptureSummary>;

export const SnapshotItem = z.strictObject({ pvc: z.string(), role: z.string(), snapshot: z.string() });
export type SnapshotItem = z.infer<typeof SnapshotItem>;

/** The backup's VolumeSnapshots, all created at once, and whether every one is ready. */
export const SnapshotSet = z.strictObject({ items: z.array(SnapshotItem).min(1), ready: z.boolean(), deadline: Iso });
export type SnapshotSet = z.infer<typeof SnapshotSet>;

export const UnquiesceResult = z.strictObject({ gcResumed: z.boolean(), postHooks: HookSummary });
export type UnquiesceResult = z.infer<typeof UnquiesceResult>;

/** One volume's export: the clone PVC and the data-mover Job, and whether the Job finished. */
export const ExportJob = z.strictObject({
  pvc: z.string(),
  role: z.string(),
  snapshot: z.string(),
  clone: z.string(),
  job: z.string(),
  /** The Job's UID, which the data mover writes into the summary as its run id; absent in executions started before it was recorded. */
  runId: z.string().optional(),
  deadline: Iso,
  done: z.boolean(),
});
export type ExportJob = z.infer<typeof ExportJob>;

/** A finished export, from the volume summary the data mover wrote last. */
export const ExportResult = z.strictObject({
  pvc: z.string(),
  role: z.string(),
  snapshot: z.string(),
  bytesTotal: z.number().nonnegative(),
  bytesUploaded: z.number().nonnegative(),
  files: z.number().int().nonnegative(),
});
export type ExportResult = z.infer<typeof ExportResult>;

/** A Step Functions error as a `Catch` with `ResultPath` records it. */
export const StepError = z.object({ Error: z.string(), Cause: z.string().optional() });
export type StepError = z.infer<typeof StepError>;

// ---- requests --------------------------------------------------------------------------

export const BackupStepRequest = z.strictObject({ backup: PreparedBackup });
export const CheckFlushRequest = z.strictObject({ backup: PreparedBackup, flush: FlushProgress });
/** The pre hooks' Task; post hooks run inside Unquiesce, on every path. */
export const HooksRequest = z.strictObject({ backup: PreparedBackup, phase: z.literal('pre') });
export const SnapshotRequest = z.strictObject({ backup: PreparedBackup, discovery: Discovery });
export const CheckSnapshotsRequest = z.strictObject({ backup: PreparedBackup, snapshots: SnapshotSet });
/** Built from the whole state: `gc` is there only when the pause happened; `objects.gc` is the pause CopyObjects renewed, which wins. */
export const UnquiesceRequest = z.object({ backup: PreparedBackup, gc: GcPause.optional(), objects: z.object({ gc: GcPause.optional() }).loose().optional() });
/** CopyObjects' request: `objects` is the state of its previous call, absent on the first. */
export const CopyObjectsRequest = z.strictObject({ backup: PreparedBackup, discovery: Discovery, gc: GcPause.optional(), objects: ObjectCopyProgress.optional() });
export const StartExportRequest = z.strictObject({ backup: PreparedBackup, item: SnapshotItem });
export const ExportJobRequest = z.strictObject({ backup: PreparedBackup, export: ExportJob });
export const FinalizeRequest = z.strictObject({ backup: PreparedBackup, discovery: Discovery, snapshots: SnapshotSet, exports: z.array(ExportResult) });
export const FailureRequest = z.strictObject({ backup: PreparedBackup, error: StepError });

/** RecoverHolder's request: the execution's input, for the plan whose lock it recovers. */
export const RecoverHolderRequest = z.strictObject({ input: BackupInput });

/**
 * RecoverExecution's request: the EventBridge event "Step Functions Execution Status Change" of
 * a backup execution that ended (loose: EventBridge may add fields).
 */
export const ExecutionStatusChange = z
  .object({ detail: z.object({ executionArn: z.string().min(1), status: z.enum(['ABORTED', 'TIMED_OUT', 'FAILED', 'SUCCEEDED']), input: z.string().nullish() }).loose() })
  .loose();
