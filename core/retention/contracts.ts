/**
 * The retention workflow's contracts: its execution input, the run every state reads, and the
 * report it ends with (what `retention run -o json` prints). Parsed with zod like the other
 * workflows' contracts, so a hand-typed console input gets an `InvalidInput` that names the field.
 */
import { z } from 'zod';
import { Name } from '../config/schema.js';

/** `{"plan": NAME}` or `{"all": true}`, optionally `dryRun`. */
export const RetentionInput = z
  .strictObject({
    plan: Name.optional(),
    all: z.literal(true, { error: 'must be true (or leave it out and name a plan)' }).optional(),
    dryRun: z.boolean({ error: 'must be true or false' }).default(false),
  })
  .refine((i) => (i.plan === undefined) !== (i.all === undefined), { message: 'name one plan ({"plan": NAME}) or every plan ({"all": true}), not both and not neither' });
export type RetentionInput = z.infer<typeof RetentionInput>;

/** What the StartRetention state hands its Lambda: the input as given and the execution. */
export const StartRetentionRequest = z.strictObject({
  input: z.unknown(),
  execution: z.strictObject({ id: z.string().min(1), startTime: z.iso.datetime() }),
});
export type StartRetentionRequest = z.infer<typeof StartRetentionRequest>;

/** A plan the run could not work on, and why (a backup of it was running). */
export const SkippedPlan = z.strictObject({ plan: z.string(), reason: z.string() });
export type SkippedPlan = z.infer<typeof SkippedPlan>;

/** The run, as StartRetention prepares it and every later state reads it. */
export const RetentionRun = z.strictObject({
  runId: z.string(),
  executionId: z.string(),
  /** The run's clock: every decision is taken at this instant. */
  now: z.iso.datetime(),
  dryRun: z.boolean(),
  /** The vault the run works on (the one this region's functions write). */
  vault: z.string(),
  /** The plans the run evaluates (their locks are held unless it is a dry run). */
  plans: z.array(z.string()),
  /** Every plan lock the run holds: all plans of the vault when garbage collection runs. */
  locked: z.array(z.string()),
  skipped: z.array(SkippedPlan),
  /** Whether packs are collected: only with every plan of the vault locked, none InProgress, and not in a dry run. */
  collectGarbage: z.boolean(),
  /** Why packs are not collected, when they are not (and it is not a dry run). */
  gcSkipped: z.string().optional(),
});
export type RetentionRun = z.infer<typeof RetentionRun>;

/** One plan's outcome. */
export const PlanOutcome = z.strictObject({
  plan: z.string(),
  kept: z.array(z.strictObject({ backupId: z.string(), startedAt: z.string(), rules: z.array(z.string()), retainUntil: z.string() })),
  expired: z.array(z.strictObject({ backupId: z.string(), startedAt: z.string(), reason: z.string(), cleared: z.boolean() })),
  /** Objects whose Object Lock date was extended (backup objects, summaries, packs, copied Milvus objects). */
  locksExtended: z.number().int().nonnegative(),
  snapshotsDeleted: z.number().int().nonnegative(),
  objectsDeleted: z.number().int().nonnegative(),
  /** Objects of expired backups still under Object Lock: a later run deletes them. */
  objectsLocked: z.number().int().nonnegative(),
  /** Objects whose delete failed otherwise (S3 errors, permissions): a later run tries again. */
  objectsFailed: z.number().int().nonnegative(),
  /**
   * Tiering by reference: the Available backups a disaster restore would use (kept by `latest`,
   * or the newest), whose packs must stay instantly readable, and the kept ones that just left
   * that set, whose packs no hot backup shares become archivable (garbage collection tags them).
   */
  hot: z.array(z.string()),
  cooled: z.array(z.string()),
  /** The first of those failures' messages. */
  errors: z.array(z.string()),
  /**
   * Present while the plan is not finished: ApplyPlan ran out of its Task's time extending the
   * lock of `backupId`, whose first `offset` objects are done, and the workflow calls it again
   * with this outcome as its progress. Expiries and snapshot deletes run in the last call.
   */
  resume: z.strictObject({ backupId: z.string(), offset: z.number().int().nonnegative() }).optional(),
});
export type PlanOutcome = z.infer<typeof PlanOutcome>;

/** Garbage collection's progress: it runs in slices of pack prefixes, each one Task invocation. */
export const GcProgress = z.strictObject({
  /** The next pack prefix (two hex digits) to collect; absent once every prefix was done. */
  next: z.string().regex(/^[0-9a-f]{2}$/).optional(),
  skipped: z.string().optional(),
  packsScanned: z.number().int().nonnegative(),
  packsReferenced: z.number().int().nonnegative(),
  packsDeleted: z.number().int().nonnegative(),
  /** Unreferenced packs still under Object Lock (or a legal hold): a later run deletes them. */
  packsLocked: z.number().int().nonnegative(),
  /**
   * Unreferenced packs written less than the minimum age before the run (or at an unknown time):
   * kept, a later run deletes them. Absent in reports of runs before the minimum age, and while no
   * slice has listed packs.
   */
  packsYoung: z.number().int().nonnegative().optional(),
  /** Unreferenced packs whose delete failed otherwise: a later run tries again. */
  packsFailed: z.number().int().nonnegative(),
  /** Packs tagged archivable: only backups that left the hot set reference them. */
  packsArchivable: z.number().int().nonnegative(),
  /** The first of those failures' messages (packs' and copied Milvus objects'), and why copied objects were not collected. */
  errors: z.array(z.string()),
  /** Bytes freed: packs and copied Milvus objects, and the files of interrupted writes. */
  bytesFreed: z.number().nonnegative(),
  /**
   * Temporary files of writes interrupted before the minimum age, removed after the last slice
   * (a file vault's; S3's incomplete uploads are its lifecycle rule's). Absent before.
   */
  interruptedWritesRemoved: z.number().int().nonnegative().optional(),
  /**
   * The copied Milvus objects (`milvus-objects/<aa>/...`, shared by the backups of S3-backed
   * Milvus), collected in the same slices of two-hex-digit prefixes as the packs. Absent until
   * the first slice was collected.
   */
  milvusObjects: z
    .strictObject({
      scanned: z.number().int().nonnegative(),
      /** Distinct objects of the slices done that a kept backup's commit references. */
      referenced: z.number().int().nonnegative(),
      deleted: z.number().int().nonnegative(),
      /** Unreferenced objects still under Object Lock (or a legal hold): a later run deletes them. */
      locked: z.number().int().nonnegative(),
      /** Unreferenced objects younger than the minimum age (as `packsYoung`): a later run deletes them. */
      young: z.number().int().nonnegative().optional(),
      /** Unreferenced objects whose delete failed otherwise: a later run tries again. */
      failed: z.number().int().nonnegative(),
      bytesFreed: z.number().nonnegative(),
      /**
       * Why no more of them are collected in this run: a kept backup's commit or manifest page is
       * missing or damaged, so the live set is not known, and nothing may be deleted on a partial one.
       */
      stopped: z.string().optional(),
    })
    .optional(),
});
export type GcProgress = z.infer<typeof GcProgress>;

/** The report of a run: in the vault, the catalog, the event, and `retention run -o json`. */
export const RetentionReport = z.strictObject({
  runId: z.string(),
  now: z.string(),
  dryRun: z.boolean(),
  plans: z.array(PlanOutcome),
  skipped: z.array(SkippedPlan),
  expired: z.number().int().nonnegative(),
  locksExtended: z.number().int().nonnegative(),
  packsDeleted: z.number().int().nonnegative(),
  bytesFreed: z.number().nonnegative(),
  gc: GcProgress,
});
export type RetentionReport = z.infer<typeof RetentionReport>;

/** ApplyPlan's request: the run and one plan (a Map iteration), and the plan's outcome so far when it goes on. */
export const ApplyPlanRequest = z.strictObject({ run: RetentionRun, plan: z.string(), progress: PlanOutcome.nullable().optional() });
/** CollectGarbage's request: the run, the plans' outcomes (hot and cooled backups), the progress so far. */
export const CollectGarbageRequest = z.strictObject({ run: RetentionRun, plans: z.array(PlanOutcome), gc: GcProgress });
/** FinishRetention's request: the run, every plan's outcome, garbage collection's total. */
export const FinishRetentionRequest = z.strictObject({ run: RetentionRun, plans: z.array(PlanOutcome), gc: GcProgress });
/** AbortRetention's request: the run and the error that ended it. */
export const AbortRetentionRequest = z.strictObject({ run: RetentionRun, error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).passthrough() });
