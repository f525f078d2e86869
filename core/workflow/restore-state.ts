/**
 * The documents of the restore and drill workflows (statemachines/restore.asl.yaml and
 * drill.asl.yaml): the execution input an operator types in the console or a schedule sends,
 * and the small documents the states pass to each other (ids, names, deadlines;
 * manifests and file lists stay in the vault). Each Lambda parses its request with one of these
 * schemas, so the ASL's `Parameters` and the handlers cannot drift apart unnoticed.
 */
import { z } from 'zod';
import { Name, Namespace, ObjectStorageTarget, StorageClassMap } from '../config/schema.js';
import { BackupName, PreparedBackup } from './contracts.js';
import { StepError } from './backup-state.js';

const Iso = z.iso.datetime();
export const IsoWithOffset = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 timestamp such as 2026-11-23T02:00:00Z' });

/** Where a restore reads volume data from: the backup's VolumeSnapshots, or the vault. */
export const RestoreSource = z.enum(['snapshot', 'vault'], { error: 'must be "snapshot" (the backup\'s VolumeSnapshots) or "vault" (the data in S3)' });
export type RestoreSource = z.infer<typeof RestoreSource>;


/**
 * Input of the restore workflow. Either `backupId`, or `plan` with an optional `pointInTime`
 * (the newest `Available` backup of the plan at or before it; without it, the newest).
 */
export const RestoreInput = z
  .strictObject({
    backupId: BackupName.optional(),
    plan: Name.optional(),
    pointInTime: IsoWithOffset.optional(),
    /** The namespace to restore into: it must not exist, or be empty. */
    targetNamespace: Namespace,
    /** A cluster of the config; default: the backup's own cluster. */
    targetCluster: Name.optional(),
    /** Default: `snapshot` when the target is the backup's cluster and its snapshots still exist, else `vault`. */
    source: RestoreSource.optional(),
    /** Storage classes to use instead of the backup's, e.g. `{"gp2": "gp3"}`. */
    storageClassMap: StorageClassMap.optional(),
    /** Delete what the restore created when it fails. Default false: it is left for inspection. */
    cleanupOnFailure: z.boolean({ error: 'must be true or false' }).optional(),
    /** Compare restored row counts with those recorded at backup (default true); health and loadability are always checked. */
    validateRowCounts: z.boolean({ error: 'must be true or false' }).optional(),
    /** Set by the drill workflow: the drill this restore proves. */
    drillId: BackupName.optional(),
    /** Defaults to `<backupId>-r<UTC start time as yyyymmddhhmmss>`, shortened to fit. */
    restoreName: BackupName.optional(),
    /**
     * For a backup of a Milvus on external S3: the bucket and key prefix its objects are copied
     * into, which the restored Milvus CR is pointed at. It must lie inside one of the plan's
     * `milvus.objectStorage.restoreTargets`. Default: the first of them, below `<prefix>/<restore name>`.
     */
    objectStorage: ObjectStorageTarget.omit({ region: true }).optional(),
  })
  .superRefine((input, ctx) => {
    if (input.backupId === undefined && input.plan === undefined) {
      ctx.addIssue({ code: 'custom', path: ['backupId'], message: 'is required unless plan is given: name a backup, or a plan (with an optional pointInTime)' });
    }
    if (input.backupId !== undefined && input.plan !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['plan'], message: 'give backupId or plan, not both' });
    }
    if (input.pointInTime !== undefined && input.plan === undefined) {
      ctx.addIssue({ code: 'custom', path: ['pointInTime'], message: 'needs plan: the newest backup of that plan at or before pointInTime is restored' });
    }
  });
export type RestoreInput = z.infer<typeof RestoreInput>;

const Cluster = PreparedBackup.shape.cluster;
const Vault = PreparedBackup.shape.vault;

/**
 * How the restore reaches Milvus in the target namespace: the plan's Service and ports, and the
 * name of the Secret with its credentials when the plan has one (a name, never its content).
 */
export const MilvusService = z.strictObject({
  service: z.string(),
  restPort: z.number().int(),
  managementPort: z.number().int(),
  authSecret: z.strictObject({ name: z.string(), usernameKey: z.string(), passwordKey: z.string() }).optional(),
});
export type MilvusService = z.infer<typeof MilvusService>;

/** A prepared restore: what every later state needs to know, and nothing large. */
export const PreparedRestore = z.strictObject({
  restoreId: BackupName,
  backupId: BackupName,
  plan: Name,
  source: RestoreSource,
  /** Where the backup was taken. */
  from: z.strictObject({ cluster: Cluster, namespace: Namespace }),
  /** Where it is restored to. */
  to: z.strictObject({ cluster: Cluster, namespace: Namespace }),
  vault: Vault,
  milvus: MilvusService,
  storageClassMap: z.record(z.string(), z.string()),
  cleanupOnFailure: z.boolean(),
  validateRowCounts: z.boolean(),
  executionId: z.string(),
  /** The execution's start: the restore was requested then, and its RTO counts from it. */
  requestedAt: Iso,
  /** SHA-256 of the backup's `backup.json` as its record holds it (absent for older backups). */
  indexSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /**
   * For a backup of a Milvus on external S3: the commit of its bucket copy (as the backup's
   * record holds it) and where RestoreObjects copies the objects to.
   */
  objects: z
    .strictObject({
      commit: z.strictObject({ sha256: z.string(), objects: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }),
      /** Where the backup copied them from: the restored Milvus's config is moved off it. */
      source: z.strictObject({ bucket: z.string(), rootPath: z.string() }),
      target: z.strictObject({ bucket: z.string(), prefix: z.string() }),
    })
    .optional(),
});
export type PreparedRestore = z.infer<typeof PreparedRestore>;

/** One volume being restored: the PVC in the target namespace and what fills it. */
export const VolumeRestoreItem = z.strictObject({
  pvc: z.string(),
  role: z.string(),
  /** Snapshot source: the VolumeSnapshot made in the target namespace for this PVC. */
  snapshot: z.string().optional(),
  /** Vault source: the data-mover Job that hydrates the PVC. */
  job: z.string().optional(),
  /**
   * Vault source: a small etcd volume, whose Job runs outside the hydration bound
   * (core/restore/volumes.ts `SMALL_ETCD_BYTES`). Absent in items written before it existed:
   * those count against the bound, as they did.
   */
  small: z.boolean().optional(),
  /**
   * Vault source: the SHA-256 backup.json commits to for the volume's summary, which its Job
   * (started now or once a slot frees) passes the data mover as `--summary-sha256`.
   */
  summarySha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  done: z.boolean(),
});
export type VolumeRestoreItem = z.infer<typeof VolumeRestoreItem>;

/** The volumes of a restore and whether every one is ready. */
export const VolumeRestore = z.strictObject({ items: z.array(VolumeRestoreItem).min(1), ready: z.boolean(), deadline: Iso });
export type VolumeRestore = z.infer<typeof VolumeRestore>;

/**
 * The thaw of the packs a restore needs that are in an archive class (core/restore/thaw.ts).
 * `pending` holds at most a window of pack ids (the state stays far below 256 KiB); `beyond`
 * counts the frozen packs after it, re-derived from the indexes after `scannedTo` once the window
 * has thawed. StartThaw sets the deadline when there is something to wait for.
 */
export const ThawProgress = z.strictObject({
  done: z.boolean(),
  pending: z.array(z.string()),
  beyond: z.number().int().nonnegative(),
  scannedTo: z.string().optional(),
  /** Packs that were frozen when the thaw started. */
  frozen: z.number().int().nonnegative(),
  deadline: Iso.optional(),
});
export type ThawProgress = z.infer<typeof ThawProgress>;

/** What ApplyManifests created (and kept: objects that already existed are left alone). */
export const ApplySummary = z.strictObject({
  created: z.number().int().nonnegative(),
  existing: z.number().int().nonnegative(),
  secrets: z.number().int().nonnegative(),
  /** Objects not created, each with why (an Ingress into another namespace). */
  skipped: z.array(z.string()).optional(),
});
export type ApplySummary = z.infer<typeof ApplySummary>;

/**
 * Readiness of the restored Milvus: what is still not ready. The workflow starts the loop
 * without a deadline (a Pass state cannot do date arithmetic); the first check sets it.
 */
export const Readiness = z.strictObject({ ready: z.boolean(), waitingFor: z.array(z.string()), deadline: Iso.optional() });
export type Readiness = z.infer<typeof Readiness>;

/**
 * Validation progress: collections being loaded before they can be counted. The first check sets
 * the deadline. `loadErrors`: the last error Milvus answered for a collection still loading, by
 * `db.collection` (a failed load's, or a count's refusal), for the timeout's message: at most 50,
 * each cut to 300 characters (absent in older executions, and when there is none).
 */
export const ValidationProgress = z.strictObject({
  done: z.boolean(),
  loading: z.array(z.string()),
  deadline: Iso.optional(),
  loadErrors: z.record(z.string(), z.string()).optional(),
  /**
   * Collections the source had released (core/restore/validate.ts) not checked yet, by
   * `db.collection`: counted by get_stats at backup and not loaded by the restored Milvus when the
   * first round looked. Validation loads them one at a time and releases each once checked.
   * Absent when there is none, and in older executions (then nothing is released).
   */
  released: z.array(z.string()).optional(),
  /**
   * Released collections checked, by `db.collection`: what their checks found, and the error
   * Milvus refused their release with, if it did (the collection then stays loaded).
   */
  releasedChecked: z
    .record(
      z.string(),
      z.strictObject({ restored: z.number().int().nonnegative(), searchHits: z.number().int().nonnegative().optional(), releaseRefused: z.string().optional() }),
    )
    .optional(),
  /**
   * Collections the first round found restored with another id than the backup recorded (created
   * again under their names during the backup: not counted), by `db.collection`. Absent in older
   * executions (then each round looks).
   */
  recreated: z.array(z.string()).optional(),
  /** The round only looked at the load states: the workflow starts the next one at once, without WaitForLoad. */
  again: z.literal(true).optional(),
});
export type ValidationProgress = z.infer<typeof ValidationProgress>;

/** What the failure path removed. */
export const RestoreCleanup = z.strictObject({ removed: z.array(z.string()), namespaceDeleted: z.boolean() });
export type RestoreCleanup = z.infer<typeof RestoreCleanup>;

// ---- requests --------------------------------------------------------------------------

export const RestoreStepRequest = z.strictObject({ restore: PreparedRestore });

/** Where RestoreObjects stands (core/objectstore/bucket-copy.ts `RestoreCursor`); no cursor before the first call. */
export const ObjectRestoreProgress = z.strictObject({
  done: z.boolean(),
  cursor: z
    .object({ backupId: z.string(), pages: z.number().int().nonnegative(), done: z.boolean(), objects: z.number().int().nonnegative(), bytes: z.number().int().nonnegative(), requests: z.record(z.string(), z.number()) })
    .optional(),
});
export type ObjectRestoreProgress = z.infer<typeof ObjectRestoreProgress>;
export const RestoreObjectsRequest = z.strictObject({ restore: PreparedRestore, objects: ObjectRestoreProgress });
/** VerifyBackup's result as StartThaw reads it: its count of archived packs (absent in older executions: then the packs are looked at). */
export const StartThawRequest = z.strictObject({ restore: PreparedRestore, verified: z.object({ archived: z.number().int().nonnegative().optional() }) });
export const CheckThawRequest = z.strictObject({ restore: PreparedRestore, thaw: ThawProgress });
export const CheckVolumesRequest = z.strictObject({ restore: PreparedRestore, volumes: VolumeRestore });
export const CheckReadinessRequest = z.strictObject({ restore: PreparedRestore, readiness: Readiness });
export const ValidateRequest = z.strictObject({ restore: PreparedRestore, validation: ValidationProgress });
/** Built from the whole state: `cleanup` is there when the failure path's cleanup succeeded. */
export const RestoreFailureRequest = z.object({ restore: PreparedRestore, error: StepError, cleanup: RestoreCleanup.optional(), cleanupError: StepError.optional() });

// ---- drill -----------------------------------------------------------------------------

/** Input of the drill workflow: a configured drill (what its schedule sends), or a plan (console). */
export const DrillInput = z
  .strictObject({
    drill: Name.optional(),
    plan: Name.optional(),
  })
  .superRefine((input, ctx) => {
    if ((input.drill === undefined) === (input.plan === undefined)) {
      ctx.addIssue({ code: 'custom', path: input.drill === undefined ? ['drill'] : ['plan'], message: 'give drill (a drill of the config) or plan (a plan, with drill defaults), exactly one' });
    }
  });
export type DrillInput = z.infer<typeof DrillInput>;

/** A prepared drill: the backup it restores and where; the restore's input is built from it. */
export const PreparedDrill = z.strictObject({
  drillId: BackupName,
  /** The configured drill's name; absent for a drill started for a plan. */
  drill: Name.optional(),
  plan: Name,
  backupId: BackupName,
  /** When the backup completed: the drill's achieved RPO is its age. */
  backupCompletedAt: Iso,
  targetCluster: Name,
  targetNamespace: Namespace,
  validateRowCounts: z.boolean(),
  cleanup: z.boolean(),
  vault: Vault,
  executionId: z.string(),
  startedAt: Iso,
});
export type PreparedDrill = z.infer<typeof PreparedDrill>;

export const DrillStepRequest = z.strictObject({ drill: PreparedDrill });
/**
 * Built from the whole state (a path in `Parameters` that is absent fails the state):
 * `restoreError` is there only when the restore failed, `cleanup` or `cleanupError` by how the
 * cleanup went.
 */
export const DrillEvidenceRequest = z.object({
  prepared: z.object({ drill: PreparedDrill }),
  restoreError: StepError.optional(),
  cleanup: z.object({ namespaceDeleted: z.boolean() }).optional(),
  cleanupError: StepError.optional(),
});
