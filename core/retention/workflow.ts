/**
 * The retention workflow's steps (statemachines/retention.asl.yaml): keep what the plan's
 * grandfather-father-son policy keeps, lock it as long as a rule keeps it, expire the rest, and
 * delete the packs nothing references any more.
 *
 * Concurrency. A backup reuses packs its parent's index references; a pack that garbage
 * collection deletes while a backup is reusing it would leave that backup "Available" and
 * broken. So a run takes the plan lock of every plan whose backups go to the vault (the lock a
 * backup takes in Prepare, held by the run with purpose `retention`): no backup of the vault
 * runs while packs are collected, and a backup that starts meanwhile waits (its Prepare retries
 * on `RetentionRunning`). A plan whose lock a running backup holds is skipped for this run, and
 * then garbage is not collected at all (its backup may reuse any pack); the next daily run does
 * it. Nor is it while any backup of the vault is `InProgress` in the catalog, whatever the
 * locks say (an execution that died, a run on another clock). Two runs never overlap: the
 * second finds the locks taken and skips every plan. Backups a running restore reads are kept.
 *
 * Deletes. Records go first: an expiring backup is marked `Expired` before any of its objects
 * is deleted, so nothing restores from a half-deleted backup, and only if it is not under legal
 * hold (a condition of the update, so a hold placed meanwhile wins). Then its VolumeSnapshots,
 * its volume summaries (so no later backup takes it as parent) and everything under its prefix.
 * Objects still under Object Lock stay, the record says `cleared: false`, and every later run
 * tries again; while a summary stays, nothing else of the backup goes (its index must stay
 * readable for garbage collection). The vault's `delete` removes every version on S3 (core/vault/s3-store.ts), so
 * data really leaves; nothing here ever bypasses governance retention.
 *
 * Tiering by reference. Hot backups (kept by `latest`, or the newest) are what a disaster
 * restore would use; when a kept backup leaves that set, garbage collection tags archivable the
 * packs it references that no hot backup does, and only those may go to an archive class.
 *
 * Garbage collection. A pack is deleted only when no index that a volume summary in the vault
 * points to references it, and its Object Lock has passed. Summaries, not the catalog, decide:
 * a backup's parent is found by its summary, and an expired backup's summary leaves first. The
 * referenced pack ids are collected per slice of pack prefixes (`gcSlicePrefixes` of the 256
 * two-hex-digit prefixes per Task invocation), so memory holds one slice's ids, not the vault's,
 * and the workflow loops until every prefix was done (each slice reads every index again: the
 * price of that bound). An index that cannot be read stops the collection: with one reference unknown,
 * no pack can be proven unreferenced.
 *
 * Writers without the lock. The locks keep the workflow's own backups out of a run, but not every
 * writer: an export Job whose backup was recovered may still run through its termination grace
 * period (a Background delete), or until its `activeDeadlineSeconds` (6 h by default) when the
 * cluster could not be reached to delete it, and `milvus-guard datamover backup` run by hand takes
 * no lock. Such a writer's packs are referenced by no summary until its last write, and it may
 * reuse any pack of its parent. Two guards, as kopia has (sessions, and `BlobDeleteMinAge`, 24 h in
 * its SafetyFull parameters, repo/maintenance/maintenance_safety.go):
 * - each slice first looks for an export still running: a progress report not ended and written
 *   within `gcMinAgeSeconds` (24 h) of the run, or within 15 minutes when the catalog records its
 *   Job deleted (`exportsRemovedAt`, or the backup Available); while there is one, the collection stops there
 *   (`gc.skipped` names it) and the next run does the rest;
 * - no unreferenced pack or copied object written less than `gcMinAgeSeconds` before the run is
 *   deleted (a writer whose progress writes failed, one killed between two writes); it is counted
 *   `packsYoung` and a later run deletes it. An object whose write time is unknown or ahead of the
 *   run's clock counts as young. The minimum age must stay above the export Jobs' deadline.
 *
 * Copied Milvus objects. A backup of an S3-backed Milvus holds a copy of its bucket: objects under
 * `milvus-objects/<aa>/`, shared by backups as packs are, and a manifest under its own prefix
 * (`backups/<id>/objects/`, which expires with the rest of that prefix). An object is deleted only
 * when no live backup's commit references it (every backup of the vault not `Expired`, read from
 * the catalog, each commit checked against the record's digest and each page against the commit),
 * and its Object Lock has passed; in the same slices of `<aa>` prefixes as the packs. A commit or
 * page that is missing or damaged stops their collection for the run (reported; the packs go on).
 * When a rule keeps a backup longer, its copied objects' locks are extended with its packs'.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { BackupHeldError, BackupInProgressError, type BackupCatalog } from '../catalog/catalog.js';
import type { BackupRecord } from '../catalog/record.js';
import { resolvePlan, type ResolvedPlan } from '../config/resolve.js';
import type { Config } from '../config/schema.js';
import { deadlineAfter } from '../deadline.js';
import { publishRecorded, type BackupEvents } from '../backup/events.js';
import { deleteBackupSnapshots } from '../backup/snapshots.js';
import type { KubeClients } from '../kube/connect.js';
import { InvalidInputError } from '../errors.js';
import { readProgress, type VolumeProgress } from '../datamover/progress.js';
import {
  BACKUP_PROGRESS_PREFIX,
  backupPrefix,
  PACKS_PREFIX,
  packIdFromKey,
  packKey,
  parseVolumeSummaryKey,
  retentionReportKey,
  VOLUMES_PREFIX,
  volumeSummaryKey,
} from '../vault/layout.js';
import { packsOfIndex } from '../vault/backup-index.js';
import { MILVUS_OBJECTS_PREFIX } from '../objectstore/layout.js';
import { addCommittedKeys, isCopyDamage, readCommit, readCommittedPage, type CommittedCopy } from '../objectstore/committed.js';
import { ObjectLockedError, type DeleteManyResult, type ObjectInfo, type VaultStore } from '../vault/store.js';
import { computeRetention, type ExpireDecision, type KeepDecision } from './calculator.js';
import { RetentionInput, RetentionReport, type GcProgress, type PlanOutcome, type RetentionRun, type StartRetentionRequest } from './contracts.js';
import { keptLockDate, retentionCandidates, retentionOptions } from './locking.js';
import { parseContract } from '../workflow/contracts.js';

/** What the retention steps use. */
export interface RetentionServices {
  readonly config: Config;
  readonly catalog: BackupCatalog;
  readonly vault: VaultStore;
  readonly kube: (cluster: ResolvedPlan['cluster']) => Promise<KubeClients>;
  readonly events: BackupEvents;
  readonly now: () => Date;
  readonly retention: RetentionTimings;
}

export interface RetentionTimings {
  /** How long the run's plan locks live unless released (a safety net if the run dies). */
  readonly lockTtlSeconds: number;
  /** Pack prefixes (of 256) one garbage-collection Task works through. */
  readonly gcSlicePrefixes: number;
  /** The newest Available backups of a plan whose VolumeSnapshots stay in the cluster for fast restores. */
  readonly keepSnapshots: number;
  /**
   * How long one ApplyPlan Task starts lock extensions before it hands the rest to its next
   * call (the Task times out after 15 minutes; expiries and the answer need the rest).
   * @default 600
   */
  readonly extendBudgetSeconds?: number;
  /**
   * Garbage collection deletes no pack or copied Milvus object written less than this long
   * before the run (nor one whose age the vault does not tell). See "Writers without the lock" above.
   * @default 86400 (24 hours)
   */
  readonly gcMinAgeSeconds?: number;
}

export const DEFAULT_RETENTION_TIMINGS: RetentionTimings = { lockTtlSeconds: 6 * 3600, gcSlicePrefixes: 64, keepSnapshots: 1, extendBudgetSeconds: 600, gcMinAgeSeconds: 24 * 3600 };

/** The plans whose backups go to vault `vault`, in config order. */
function plansOfVault(config: Config, vault: string): ResolvedPlan[] {
  return config.plans.map((p) => resolvePlan(config, p.name)).filter((p) => p.vault.name === vault);
}

/** The run id of an execution: its start time, and a short hash of the execution's id. */
export function retentionRunId(startTime: string, executionId: string): string {
  // Two runs may start in the same second (a schedule and a console start): the execution tells them apart.
  const suffix = createHash('sha256').update(executionId).digest('hex').slice(0, 6);
  return `retention-${startTime.replace(/[-:]/g, '').replace(/\.\d+/, '').toLowerCase()}-${suffix}`;
}

/**
 * StartRetention: parses the input, and (unless it is a dry run) takes the lock of every plan
 * of the vault. Plans whose lock a backup holds are skipped; garbage collection runs only when
 * every lock was taken.
 */
export async function startRetentionStep(s: Pick<RetentionServices, 'config' | 'catalog' | 'retention'>, vault: string, request: StartRetentionRequest): Promise<RetentionRun> {
  const input = parseContract(RetentionInput, request.input ?? {}, 'the retention input');
  const all = plansOfVault(s.config, vault);
  if (input.plan !== undefined && !all.some((p) => p.plan.name === input.plan)) {
    const known = all.map((p) => p.plan.name);
    throw new InvalidInputError('the retention input', [`plan: ${input.plan} is not a plan of vault ${vault}; ${known.length ? `plans: ${known.join(', ')}` : 'it has none'}`]);
  }
  const requested = input.plan === undefined ? all.map((p) => p.plan.name) : [input.plan];
  const now = new Date(request.execution.startTime);
  const run = { runId: retentionRunId(request.execution.startTime, request.execution.id), executionId: request.execution.id, now: now.toISOString(), dryRun: input.dryRun, vault };
  if (input.dryRun) return { ...run, plans: requested, locked: [], skipped: [], collectGarbage: false };

  const locked: string[] = [];
  const skipped: { plan: string; reason: string }[] = [];
  for (const { plan } of all) {
    try {
      await s.catalog.acquireLock(plan.name, { backupId: run.runId, executionId: run.executionId, purpose: 'retention' }, now, deadlineAfter(now, s.retention.lockTtlSeconds));
      locked.push(plan.name);
    } catch (err) {
      if (!(err instanceof BackupInProgressError)) {
        // Nothing else of the run happens: give back what it took (a retry takes them again).
        await releaseRetentionLocks(s, { locked, executionId: run.executionId });
        throw err;
      }
      const by = err.holder?.purpose === 'retention' ? `retention run ${err.holder.backupId} is running` : `backup ${err.holder?.backupId ?? '(unknown)'} is running`;
      skipped.push({ plan: plan.name, reason: by });
    }
  }
  // A backup of the vault still InProgress (its execution died and was not yet recovered, or it
  // runs on another clock than this run's) may have written packs nothing references yet, and
  // may reuse any pack of its parent: no garbage is collected while one is.
  const running = skipped.length > 0 ? [] : (await s.catalog.listBackups()).filter((b) => b.status === 'InProgress' && all.some((p) => p.plan.name === b.plan));
  const gcSkipped = skipped.length > 0 ? `not every plan of the vault was locked (${skipped.map((p) => `${p.plan}: ${p.reason}`).join('; ')})` : running.length > 0 ? `backup ${running.map((b) => b.backupId).join(', ')} is InProgress in the catalog (recover it with milvus-guard backup cancel if its execution has ended)` : undefined;
  return { ...run, plans: requested.filter((p) => locked.includes(p)), locked, skipped, collectGarbage: gcSkipped === undefined, ...(gcSkipped ? { gcSkipped } : {}) };
}

/**
 * Takes the run's plan locks again, until `lockTtlSeconds` from now: each ApplyPlan call and
 * each garbage-collection slice does, so a long run keeps its locks while a run that died
 * loses them one TTL after its last step. Resolves to the plans whose lock another holder has
 * taken meanwhile (the run outlived its TTL between two steps, and a backup started).
 */
export async function renewRetentionLocks(s: Pick<RetentionServices, 'catalog' | 'retention' | 'now'>, run: Pick<RetentionRun, 'runId' | 'executionId' | 'locked'>): Promise<string[]> {
  const now = s.now();
  const lost: string[] = [];
  for (const plan of run.locked) {
    try {
      await s.catalog.acquireLock(plan, { backupId: run.runId, executionId: run.executionId, purpose: 'retention' }, now, deadlineAfter(now, s.retention.lockTtlSeconds));
    } catch (err) {
      if (!(err instanceof BackupInProgressError)) throw err;
      lost.push(plan);
    }
  }
  return lost;
}

/** The volumes a backup exported: the summaries in the vault that name it. */
async function volumesOf(vault: VaultStore, record: BackupRecord): Promise<string[]> {
  const fromRecord = record.components.map((c) => c.pvc);
  const present: string[] = [];
  for (const volume of fromRecord) if (await vault.head(volumeSummaryKey(record.backupId, volume))) present.push(volume);
  return present;
}

/**
 * Extends every object of a kept backup to `until`: its own objects, its volume summaries, the
 * packs its indexes reference and, for a backup of an S3-backed Milvus, the copied objects its
 * commit references (`milvus-objects/`: shared like packs, so a promoted backup's copy must stay
 * locked as long as the backup), from object `offset` of that list on. Never shortens (the
 * vault's `extendRetention`). Stops taking new objects once `outOfTime` says so (a promoted
 * backup of a large volume is two requests per pack: a Task must end before its timeout), but
 * always does at least one, so calls that go on from `visited` finish. The list's order is
 * the same on every call: the backup's objects as listed, its summaries, its packs in index
 * order, then its copied objects in manifest order (read a page at a time: a call going on from
 * an offset skips the pages before it by the commit's counts, so a copy of millions of objects
 * is never held in memory); every object before `visited` is done when it returns (the workers
 * finish what they took). A missing or damaged commit or page throws: the record keeps its old
 * date and the failure is reported for this backup.
 */
async function extendBackup(vault: VaultStore, record: BackupRecord, until: Date, offset: number, outOfTime: () => boolean): Promise<{ changed: number; done: boolean; objects: number; visited: number }> {
  const keys: string[] = [];
  for await (const o of vault.list(backupPrefix(record.backupId))) keys.push(o.key);
  const volumes = await volumesOf(vault, record);
  const packs = new Set<string>();
  for (const volume of volumes) {
    keys.push(volumeSummaryKey(record.backupId, volume));
    await packsOfIndex(vault, record.backupId, volume, packs);
  }
  const own = [...keys, ...[...packs].map(packKey)];
  const copy = record.objectCopy ? { backupId: record.backupId, sha256: record.objectCopy.sha256 } : undefined;
  const commit = copy ? await readCommit(vault, copy) : undefined;
  const total = own.length + (commit?.pages.reduce((n, p) => n + p.objects, 0) ?? 0);

  let changed = 0;
  let visited = Math.min(offset, total);
  let first = true;
  // One batch of keys from `from` on, EXTEND_CONCURRENCY workers over one queue (two requests
  // per object: read the date, then extend). Resolves to how far it got.
  const extend = async (batch: readonly string[], from: number): Promise<number> => {
    let next = from;
    let failure: { error: unknown } | undefined;
    const start = next;
    const worker = async (): Promise<void> => {
      while (next < batch.length && !failure && ((first && next === start) || !outOfTime())) {
        const key = batch[next++]!;
        try {
          if (await vault.extendRetention(key, until)) changed++;
        } catch (error) {
          // The first failure stops every worker; the caller records it for this backup.
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: EXTEND_CONCURRENCY }, worker));
    first = false;
    if (failure) throw failure.error;
    return next;
  };

  if (visited < own.length) visited = await extend(own, visited);
  if (commit && copy && visited >= own.length) {
    let base = own.length;
    for (const page of commit.pages) {
      if (visited >= base + page.objects) {
        base += page.objects;
        continue;
      }
      if (!first && outOfTime()) break;
      const entries = await readCommittedPage(vault, copy.backupId, page);
      visited = base + (await extend(entries.map((e) => e.vaultKey), visited - base));
      if (visited < base + page.objects) break;
      base += page.objects;
    }
  }
  return { changed, done: visited >= total, objects: total, visited };
}

/** Every volume summary key in the vault, by backup. */
async function summariesByBackup(vault: VaultStore): Promise<Map<string, string[]>> {
  const byBackup = new Map<string, string[]>();
  for await (const o of vault.list(VOLUMES_PREFIX)) {
    const parsed = parseVolumeSummaryKey(o.key);
    if (parsed) byBackup.set(parsed.backupId, [...(byBackup.get(parsed.backupId) ?? []), o.key]);
  }
  return byBackup;
}

/** The most error messages a report carries (the rest are counted). */
const MAX_ERRORS = 10;

/**
 * Splits a batch delete's failures: objects Object Lock still protects (expected: a later run
 * deletes them) and the others (S3 errors, permissions), whose messages the report carries. A
 * failed delete never fails the run: the object stays, it is garbage at worst, and every later
 * run tries again; the report and its metric say so.
 */
function failuresOf(failed: DeleteManyResult['failed']): { locked: number; other: string[] } {
  const other = failed.filter((f) => !(f.error instanceof ObjectLockedError)).map((f) => `${f.key}: ${f.error.message}`);
  return { locked: failed.length - other.length, other };
}

/** Deletes what an expired backup owns in the vault; locked objects (and any that failed) stay. */
async function clearBackup(vault: VaultStore, record: BackupRecord, summaries: readonly string[]): Promise<{ deleted: number; locked: number; errors: string[] }> {
  // Summaries first: once they are gone no backup takes this one as its parent.
  const first = await vault.deleteMany(summaries);
  if (first.failed.length > 0) {
    // A summary left must still find its index: garbage collection reads the index of every
    // summary, and one it cannot read stops the collection. Everything else stays for the next
    // run, which deletes the summaries again first.
    const { locked, other } = failuresOf(first.failed);
    return { deleted: first.deleted.length, locked, errors: other };
  }
  const own: string[] = [];
  for await (const o of vault.list(backupPrefix(record.backupId))) own.push(o.key);
  const second = await vault.deleteMany(own);
  const { locked, other } = failuresOf([...first.failed, ...second.failed]);
  return { deleted: first.deleted.length + second.deleted.length, locked, errors: other };
}

/**
 * ApplyRetention (one plan): computes the keep set at the run's clock, extends the locks of
 * kept backups whose rules now keep them longer, deletes the VolumeSnapshots of all but the
 * newest `keepSnapshots` Available backups, and expires the others (record, snapshots, vault
 * objects). Backups a running restore reads are kept. In a dry run it only computes.
 */
export async function applyRetentionStep(s: Pick<RetentionServices, 'config' | 'catalog' | 'vault' | 'kube' | 'retention' | 'now'>, run: RetentionRun, planName: string, progress?: PlanOutcome | null): Promise<PlanOutcome> {
  const plan = resolvePlan(s.config, planName);
  // A plan whose lock was lost goes on all the same: extending locks is always safe, and the
  // backups it expires are not the newest (the one a running backup builds on). Garbage
  // collection, which is not safe then, checks for itself.
  if (!run.dryRun) await renewRetentionLocks(s, run);
  const records = await s.catalog.listBackups({ plan: planName });
  const restoring = new Set((await s.catalog.listRestores({ plan: planName })).filter((r) => r.status === 'InProgress').map((r) => r.backupId));
  let kube: Promise<KubeClients> | undefined;
  const deleteSnapshots = async (namespace: string, backupId: string): Promise<number> => (await deleteBackupSnapshots(await (kube ??= s.kube(plan.cluster)), namespace, backupId)).length;
  // ApplyPlan's Task allows 15 minutes; lock extensions stop being started after 10, leaving
  // time for the expiries, the snapshots and the answer. The rest goes to the next call.
  const started = performance.now();
  const budgetMs = (s.retention.extendBudgetSeconds ?? DEFAULT_RETENTION_TIMINGS.extendBudgetSeconds!) * 1000;
  const outOfTime = (): boolean => performance.now() - started > budgetMs;
  const outcome = await applyPolicy(s, run, plan, records, { keepSnapshots: plan.retention.keepSnapshots ?? s.retention.keepSnapshots, restoring, deleteSnapshots, outOfTime, ...(progress?.resume ? { resume: progress.resume } : {}) });
  return progress ? mergeOutcomes(progress, outcome) : outcome;
}

/** A plan's outcome over several ApplyPlan calls: this call's decisions, every call's counts. */
function mergeOutcomes(before: PlanOutcome, now: PlanOutcome): PlanOutcome {
  return {
    ...now,
    locksExtended: before.locksExtended + now.locksExtended,
    snapshotsDeleted: before.snapshotsDeleted + now.snapshotsDeleted,
    objectsDeleted: before.objectsDeleted + now.objectsDeleted,
    objectsLocked: before.objectsLocked + now.objectsLocked,
    objectsFailed: before.objectsFailed + now.objectsFailed,
    errors: [...before.errors, ...now.errors].slice(0, MAX_ERRORS),
  };
}

/** What {@link applyPolicy} needs besides the plan and its records. */
export interface PolicyOptions {
  /** The newest Available backups whose VolumeSnapshots stay in the cluster. */
  readonly keepSnapshots: number;
  /** Backups a restore (or drill) is reading now: kept, snapshots included. */
  readonly restoring?: ReadonlySet<string>;
  /** Deletes a backup's VolumeSnapshots; absent, snapshots are left alone (no cluster: the benchmark). */
  readonly deleteSnapshots?: (namespace: string, backupId: string) => Promise<number>;
  /** True once the Task should stop starting lock extensions (its time is nearly up). @default never */
  readonly outOfTime?: () => boolean;
  /** Where an earlier call stopped extending locks (its outcome's `resume`): the kept backups before it are done. */
  readonly resume?: { readonly backupId: string; readonly offset: number };
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The work of ApplyRetention over the catalog, the vault and (through `deleteSnapshots`) the
 * cluster. Every failure that concerns one backup (a cluster that does not answer, an object
 * missing from the vault, a delete S3 refuses) is recorded in the outcome's `errors` and left
 * for the next run: one damaged backup must not stop retention for the whole vault.
 *
 * Expiring, per backup: the record becomes `Expired` (only if it is not under legal hold: a hold
 * recorded meanwhile wins), then its VolumeSnapshots go, then its volume summaries and
 * everything under its prefix. It is `cleared` once all of that is gone; until then every run
 * tries again, snapshots included.
 */
export async function applyPolicy(s: Pick<RetentionServices, 'catalog' | 'vault'>, run: RetentionRun, plan: ResolvedPlan, allRecords: readonly BackupRecord[], options: PolicyOptions): Promise<PlanOutcome> {
  // A plan that moved to another vault leaves its old backups there: not this vault's to manage.
  const records = allRecords.filter((r) => r.vault === plan.vault.name);
  const byId = new Map(records.map((r) => [r.backupId, r]));
  const decided = evaluatePlan(plan, records, new Date(run.now));
  const restoring = options.restoring ?? new Set<string>();
  const kept: KeepDecision[] = [
    ...decided.keep,
    ...decided.expire
      .filter((e) => restoring.has(e.backupId))
      .map((e) => {
        const k = { backupId: e.backupId, startedAt: e.startedAt, rules: ['restoring'], retainUntil: run.now };
        return { ...k, retainUntil: keptLockDate(plan, byId.get(e.backupId)!, k, new Date(run.now)).toISOString() };
      }),
  ];
  kept.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.backupId.localeCompare(a.backupId));
  const expire = decided.expire.filter((e) => !restoring.has(e.backupId));

  // Hot: what a disaster restore would use. Cooled: kept, no longer hot, its packs not yet
  // tagged archivable (FinishRetention marks it once garbage collection has tagged them).
  const available = (id: string) => byId.get(id)!.status === 'Available';
  const isHot = (rules: readonly string[]) => rules.includes('latest') || rules.includes('newest-available');
  const hot = kept.filter((k) => available(k.backupId) && isHot(k.rules)).map((k) => k.backupId);
  const cooled = kept.filter((k) => available(k.backupId) && !isHot(k.rules) && !restoring.has(k.backupId) && byId.get(k.backupId)!.archivable !== true).map((k) => k.backupId);
  const outcome: PlanOutcome = { plan: plan.plan.name, kept, expired: [], locksExtended: 0, snapshotsDeleted: 0, objectsDeleted: 0, objectsLocked: 0, objectsFailed: 0, errors: [], hot, cooled };
  const fail = (what: string, err: unknown): void => {
    outcome.objectsFailed++;
    outcome.errors = [...outcome.errors, `${what}: ${messageOf(err)}`].slice(0, MAX_ERRORS);
  };
  if (run.dryRun) return { ...outcome, expired: expire.map((e) => ({ ...e, cleared: false })) };

  // Going on from an earlier call: the backups before the one it stopped in are done (extended,
  // or their failure reported by that call). The keep set is the same: same records, same clock.
  const resumeAt = options.resume ? kept.findIndex((k) => k.backupId === options.resume!.backupId) : -1;
  for (const [i, k] of kept.entries()) {
    if (i < resumeAt) continue;
    const record = byId.get(k.backupId)!;
    if (record.status !== 'Available') continue;
    // S3 refuses a retain-until date in the past, and one behind the run's clock protects
    // nothing: such a date is left unset. Only a backup kept by its legal hold alone has one
    // (keptLockDate renews every other keep without an end date); the hold protects it.
    const until = new Date(k.retainUntil);
    const current = record.retainUntil ? new Date(record.retainUntil) : undefined;
    const raise = until.getTime() > Date.parse(run.now) && (!current || until.getTime() > current.getTime());
    try {
      if (raise) {
        const offset = i === resumeAt ? options.resume!.offset : 0;
        const extended = await extendBackup(s.vault, record, until, offset, options.outOfTime ?? (() => false));
        outcome.locksExtended += extended.changed;
        if (!extended.done) {
          // The record keeps its old date until every object has the new one; the next call
          // goes on from here, and expiries wait for the last call.
          return { ...outcome, resume: { backupId: k.backupId, offset: extended.visited } };
        }
      }
      const retainUntil = raise ? k.retainUntil : current?.toISOString();
      await s.catalog.updateBackup(k.backupId, { ...(retainUntil ? { retainUntil } : {}), retention: { rules: k.rules, evaluatedAt: run.now } }, { onlyIf: ['Available'] });
    } catch (err) {
      fail(`extending the lock of backup ${k.backupId}`, err);
    }
  }

  const expiring: BackupRecord[] = [];
  for (const e of expire) {
    try {
      await s.catalog.updateBackup(e.backupId, { status: 'Expired', expired: { at: run.now, reason: e.reason, cleared: false } }, { onlyIf: ['Available', 'Failed'], unlessHeld: true });
    } catch (err) {
      // A hold placed after the records were read: the backup stays, as held backups do.
      if (err instanceof BackupHeldError) continue;
      throw err;
    }
    outcome.expired.push({ ...e, cleared: false });
    expiring.push(byId.get(e.backupId)!);
  }

  // Every expired backup not yet cleared: this run's, and earlier runs' whose snapshots or objects stayed.
  const toClear = [...expiring, ...records.filter((r) => r.status === 'Expired' && r.expired?.cleared === false)];
  const summaries = toClear.length > 0 ? await summariesByBackup(s.vault) : new Map<string, string[]>();
  for (const record of toClear) {
    let snapshotsGone = true;
    if (options.deleteSnapshots) {
      try {
        outcome.snapshotsDeleted += await options.deleteSnapshots(record.namespace, record.backupId);
      } catch (err) {
        snapshotsGone = false;
        fail(`deleting the VolumeSnapshots of backup ${record.backupId}`, err);
      }
    }
    const { deleted, locked, errors } = await clearBackup(s.vault, record, summaries.get(record.backupId) ?? []);
    outcome.objectsDeleted += deleted;
    outcome.objectsLocked += locked;
    for (const e of errors) fail('deleting', e);
    if (snapshotsGone && locked === 0 && errors.length === 0) {
      const expired = record.expired ?? { at: run.now, reason: expire.find((e) => e.backupId === record.backupId)?.reason ?? 'expired' };
      await s.catalog.updateBackup(record.backupId, { expired: { ...expired, cleared: true } }, { onlyIf: ['Expired'] });
      const mine = outcome.expired.find((x) => x.backupId === record.backupId);
      if (mine) mine.cleared = true;
    }
  }

  // A backup's VolumeSnapshots never outlive it, and only the newest few Available ones stay.
  if (options.deleteSnapshots) {
    const older = kept.filter((k) => available(k.backupId) && !restoring.has(k.backupId)).slice(options.keepSnapshots);
    for (const k of older) {
      try {
        outcome.snapshotsDeleted += await options.deleteSnapshots(byId.get(k.backupId)!.namespace, k.backupId);
      } catch (err) {
        fail(`deleting the VolumeSnapshots of backup ${k.backupId}`, err);
      }
    }
  }
  return outcome;
}

/**
 * The plan's keep set at `now` (what `retention preview` shows and ApplyPlan applies): the
 * calculator's decisions over the plan's records, each kept backup's date raised to the
 * vault's floor and to the lock it has already (locks are never shortened).
 */
export function evaluatePlan(plan: ResolvedPlan, records: readonly BackupRecord[], now: Date): { keep: KeepDecision[]; expire: ExpireDecision[] } {
  const byId = new Map(records.map((r) => [r.backupId, r]));
  const result = computeRetention(retentionCandidates(records), plan.retention, now, retentionOptions(plan));
  return { keep: result.keep.map((k) => ({ ...k, retainUntil: keptLockDate(plan, byId.get(k.backupId)!, k, now).toISOString() })), expire: result.expire };
}


/** Lock extensions in flight at once (S3 takes thousands of requests per second per prefix). */
const EXTEND_CONCURRENCY = 16;

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * CollectGarbage (one slice of pack prefixes): deletes the packs of the slice that no index
 * a volume summary points to references, once their Object Lock has passed. Returns the
 * progress with the next prefix, or without one when every prefix was done.
 */
export async function collectGarbageStep(s: Pick<RetentionServices, 'vault' | 'retention' | 'catalog' | 'now'>, run: RetentionRun, progress: GcProgress | undefined, plans: readonly PlanOutcome[] = []): Promise<GcProgress> {
  const soFar: GcProgress = progress ?? { next: '00', packsScanned: 0, packsReferenced: 0, packsDeleted: 0, packsLocked: 0, packsYoung: 0, packsFailed: 0, packsArchivable: 0, errors: [], bytesFreed: 0 };
  if (!run.collectGarbage) {
    const why = run.dryRun ? 'dry run' : (run.gcSkipped ?? `not every plan of the vault was locked (${run.skipped.map((p) => `${p.plan}: ${p.reason}`).join('; ')})`);
    return { packsScanned: 0, packsReferenced: 0, packsDeleted: 0, packsLocked: 0, packsYoung: 0, packsFailed: 0, packsArchivable: 0, errors: [], bytesFreed: 0, skipped: why };
  }
  if (soFar.next === undefined) return soFar;
  // A backup that started after the run's locks lapsed may reuse any pack of its parent, and
  // its own packs are referenced by no summary yet: stop, and leave the rest to the next run.
  const lost = await renewRetentionLocks(s, run);
  if (lost.length > 0) {
    const { next: _stopped, ...done } = soFar;
    return { ...done, skipped: `from prefix ${soFar.next} on: the run's lock of ${lost.join(', ')} lapsed and a backup took it; the next run collects the rest` };
  }
  const oldEnough = writtenBefore(run, s.retention);
  // A writer without the lock (an export run by hand, one whose backup was recovered) may reuse
  // any pack of its parent, and its own packs are referenced by no summary until it ends.
  const writing = await runningExport(s, run, oldEnough);
  if (writing) {
    const { next: _stopped, ...done } = soFar;
    const { volume, backupId } = writing.progress;
    return {
      ...done,
      skipped:
        `from prefix ${soFar.next} on: the export of volume ${volume} of backup ${backupId} has not reported an end (its last report is of ${(writing.lastModified ?? new Date(writing.progress.updatedAt)).toISOString()}), ` +
        `so it may still be writing and reuse any pack; an export silent for ${formatAge(s.retention)} counts as ended (15 minutes once the catalog records its Job deleted). The next run collects the rest`,
    };
  }
  const from = parseInt(soFar.next, 16);
  const to = Math.min(256, from + Math.max(1, s.retention.gcSlicePrefixes));
  const inSlice = (packId: string): boolean => {
    const p = parseInt(packId.slice(0, 2), 16);
    return p >= from && p < to;
  };

  const tiering = tiers(run, plans);
  const hot = new Set(tiering ? plans.flatMap((p) => p.hot) : []);
  const cooled = new Set(tiering ? plans.flatMap((p) => p.cooled) : []);
  const referenced = new Set<string>();
  const hotPacks = new Set<string>();
  const cooledPacks = new Set<string>();
  for await (const o of s.vault.list(VOLUMES_PREFIX)) {
    const parsed = parseVolumeSummaryKey(o.key);
    if (!parsed) continue;
    const packs = new Set<string>();
    await packsOfIndex(s.vault, parsed.backupId, parsed.volume, packs, inSlice);
    for (const id of packs) referenced.add(id);
    if (hot.has(parsed.backupId)) for (const id of packs) hotPacks.add(id);
    if (cooled.has(parsed.backupId)) for (const id of packs) cooledPacks.add(id);
  }
  // A backup only ever reuses its parent's packs, and the parent is hot: a pack tagged here is
  // never referenced by a new backup, so the tag is never taken back.
  let archivable = 0;
  for (const id of cooledPacks) {
    if (hotPacks.has(id)) continue;
    await s.vault.markArchivable(packKey(id), true);
    archivable++;
  }

  let scanned = 0;
  let young = 0;
  let bytes = 0;
  const candidates: { key: string; size: number }[] = [];
  for (let p = from; p < to; p++) {
    for await (const o of s.vault.list(`${PACKS_PREFIX}${hex2(p)}/`)) {
      const id = packIdFromKey(o.key);
      if (!id) continue;
      scanned++;
      if (referenced.has(id)) continue;
      if (oldEnough(o)) candidates.push({ key: o.key, size: o.size });
      else young++;
    }
  }
  const result = await s.vault.deleteMany(candidates.map((c) => c.key));
  const { locked, other } = failuresOf(result.failed);
  const deleted = new Set(result.deleted);
  for (const c of candidates) if (deleted.has(c.key)) bytes += c.size;
  const objects = await collectMilvusObjects(s, run, soFar.milvusObjects ?? NO_OBJECTS, from, to, oldEnough);
  // Once every prefix is done, what killed writers left in a file vault (a disk that fills up
  // with the half-written packs of Jobs killed over months), as old as the minimum age.
  const interrupted = to === 256 && s.vault.removeInterruptedWrites ? await s.vault.removeInterruptedWrites(new Date(writtenBeforeCutoff(run, s.retention))) : undefined;
  return {
    ...(to < 256 ? { next: hex2(to) } : {}),
    ...(interrupted ? { interruptedWritesRemoved: interrupted.removed } : {}),
    packsScanned: soFar.packsScanned + scanned,
    packsReferenced: soFar.packsReferenced + referenced.size,
    packsDeleted: soFar.packsDeleted + result.deleted.length,
    packsLocked: soFar.packsLocked + locked,
    packsYoung: (soFar.packsYoung ?? 0) + young,
    packsFailed: soFar.packsFailed + other.length,
    packsArchivable: soFar.packsArchivable + archivable,
    errors: [...soFar.errors, ...other, ...objects.errors].slice(0, MAX_ERRORS),
    bytesFreed: soFar.bytesFreed + bytes + objects.bytesFreed + (interrupted?.bytes ?? 0),
    milvusObjects: objects.progress,
  };
}

/** The minimum age, for messages: in hours when whole. */
function formatAge(timings: Pick<RetentionTimings, 'gcMinAgeSeconds'>): string {
  const seconds = timings.gcMinAgeSeconds ?? DEFAULT_RETENTION_TIMINGS.gcMinAgeSeconds!;
  return seconds % 3600 === 0 ? `${seconds / 3600} hours` : `${seconds} seconds`;
}

/**
 * Whether a listed object was written at least `gcMinAgeSeconds` before the run (see "Writers
 * without the lock" at the top). The run's clock, not the Task's: a retried slice decides the same.
 */
function writtenBefore(run: Pick<RetentionRun, 'now'>, timings: Pick<RetentionTimings, 'gcMinAgeSeconds'>): (o: Pick<ObjectInfo, 'lastModified'>) => boolean {
  const cutoff = writtenBeforeCutoff(run, timings);
  return (o) => o.lastModified !== undefined && o.lastModified.getTime() <= cutoff;
}

/** The run's time less the minimum age, in epoch milliseconds. */
function writtenBeforeCutoff(run: Pick<RetentionRun, 'now'>, timings: Pick<RetentionTimings, 'gcMinAgeSeconds'>): number {
  return Date.parse(run.now) - (timings.gcMinAgeSeconds ?? DEFAULT_RETENTION_TIMINGS.gcMinAgeSeconds!) * 1000;
}

/**
 * How long after its last report an unfinished export counts as gone when the catalog says its
 * Job was deleted (the backup Available or Expired, or Failed with `exportsRemovedAt`: CleanUp
 * or a recovery removed its Jobs, whose pods end within their termination grace period); a live
 * export reports every few seconds. A Failed backup whose Jobs could not be removed (its cluster
 * did not answer) keeps the minimum age: its Jobs may run until their deadline.
 */
const ENDED_EXPORT_QUIET_MS = 15 * 60_000;

/**
 * An export that may still be writing packs: the progress of a volume's export that has not
 * ended (`counting` or `copying`) and was written less than the minimum age before the run (or
 * after it). A live export writes it every few seconds while it copies (core/datamover/progress.ts;
 * not while it stages its parent's index or looks up packs, which the minimum age covers); that of a
 * Job that was killed stops where it was, and counts as running until its last write is that
 * old, or, when the catalog says its Job was deleted, 15 minutes old. Kopia keeps the packs of a
 * session that is not closed for the same reason.
 */
async function runningExport(
  s: Pick<RetentionServices, 'vault' | 'catalog'>,
  run: Pick<RetentionRun, 'now'>,
  oldEnough: (o: Pick<ObjectInfo, 'lastModified'>) => boolean,
): Promise<{ readonly progress: VolumeProgress; readonly lastModified?: Date } | undefined> {
  const quietBefore = Date.parse(run.now) - ENDED_EXPORT_QUIET_MS;
  // Removed at least as long ago as the report's silence: not a pod still in its grace period.
  const removed = (r: BackupRecord): boolean => r.exportsRemovedAt !== undefined && Date.parse(r.exportsRemovedAt) <= quietBefore;
  let over: Set<string> | undefined;
  for await (const o of s.vault.list(BACKUP_PROGRESS_PREFIX)) {
    if (oldEnough(o) || !o.key.endsWith('.json')) continue;
    const progress = await readProgress(s.vault, o.key);
    if (progress?.kind !== 'export' || progress.phase === 'done' || progress.phase === 'failed') continue;
    if (o.lastModified !== undefined && o.lastModified.getTime() <= quietBefore) {
      over ??= new Set((await s.catalog.listBackups()).filter((r) => r.status === 'Available' || r.status === 'Expired' || (r.status === 'Failed' && removed(r))).map((r) => r.backupId));
      if (over.has(progress.backupId)) continue;
    }
    return { progress, ...(o.lastModified ? { lastModified: o.lastModified } : {}) };
  }
  return undefined;
}

type MilvusObjectsProgress = NonNullable<GcProgress['milvusObjects']>;
const COPIED_OBJECT_KEY = /^milvus-objects\/[0-9a-f]{2}\/[0-9a-f]{64}$/;
const NO_OBJECTS: MilvusObjectsProgress = { scanned: 0, referenced: 0, deleted: 0, locked: 0, young: 0, failed: 0, bytesFreed: 0 };

/**
 * The backups whose copied Milvus objects are live: every backup of the run's vault that is not
 * `Expired` and holds a bucket copy, by its record's commit digest. Not `Expired` rather than
 * kept by a rule: a `Failed` backup in its grace period is kept too, and no backup is
 * `InProgress` while garbage is collected (StartRetention's condition).
 */
async function liveCopies(catalog: BackupCatalog, vault: string): Promise<CommittedCopy[]> {
  const records = await catalog.listBackups();
  return records.filter((r) => r.vault === vault && r.status !== 'Expired' && r.objectCopy).map((r) => ({ backupId: r.backupId, sha256: r.objectCopy!.sha256 }));
}

/**
 * CollectGarbage's part for the copied Milvus objects of prefixes `from` to `to` (exclusive):
 * deletes each `milvus-objects/<aa>/...` object of the slice that no live backup's commit
 * references (see {@link liveCopies}), once its Object Lock has passed. The live set is read from
 * every live commit and its pages, each checked against the record's digest and the commit; a
 * commit or page that is missing or damaged stops the collection of these objects for the rest
 * of the run (with one reference unknown, no object is proven unreferenced) and says why in
 * `stopped` and the errors; the packs go on. A vault that fails a request throws (the Task is
 * retried).
 */
async function collectMilvusObjects(
  s: Pick<RetentionServices, 'vault' | 'catalog'>,
  run: RetentionRun,
  soFar: MilvusObjectsProgress,
  from: number,
  to: number,
  oldEnough: (o: Pick<ObjectInfo, 'lastModified'>) => boolean,
): Promise<{ progress: MilvusObjectsProgress; errors: string[]; bytesFreed: number }> {
  if (soFar.stopped !== undefined) return { progress: soFar, errors: [], bytesFreed: 0 };
  const inSlice = (key: string): boolean => {
    const p = parseInt(key.slice(MILVUS_OBJECTS_PREFIX.length, MILVUS_OBJECTS_PREFIX.length + 2), 16);
    return key.startsWith(MILVUS_OBJECTS_PREFIX) && p >= from && p < to;
  };
  const live = new Set<string>();
  for (const copy of await liveCopies(s.catalog, run.vault)) {
    try {
      await addCommittedKeys(s.vault, copy, live, inSlice);
    } catch (err) {
      if (!isCopyDamage(err)) throw err;
      const stopped = `from prefix ${hex2(from)} on, no copied Milvus object is deleted: the bucket copy of kept backup ${copy.backupId} cannot be read (${messageOf(err)}); verify it (milvus-guard datamover verify) and repair or expire it`;
      return { progress: { ...soFar, stopped }, errors: [stopped], bytesFreed: 0 };
    }
  }
  let scanned = 0;
  let young = 0;
  const candidates: { key: string; size: number }[] = [];
  for (let p = from; p < to; p++) {
    for await (const o of s.vault.list(`${MILVUS_OBJECTS_PREFIX}${hex2(p)}/`)) {
      // Only what a copy names (`<aa>/<sha256>`, aa its first two digits), as only pack keys are packs.
      if (!COPIED_OBJECT_KEY.test(o.key) || o.key.slice(MILVUS_OBJECTS_PREFIX.length, MILVUS_OBJECTS_PREFIX.length + 2) !== o.key.slice(-64, -62)) continue;
      scanned++;
      if (live.has(o.key)) continue;
      if (oldEnough(o)) candidates.push({ key: o.key, size: o.size });
      else young++;
    }
  }
  const result = await s.vault.deleteMany(candidates.map((c) => c.key));
  const { locked, other } = failuresOf(result.failed);
  const deleted = new Set(result.deleted);
  const bytesFreed = candidates.reduce((n, c) => n + (deleted.has(c.key) ? c.size : 0), 0);
  return {
    progress: {
      scanned: soFar.scanned + scanned,
      referenced: soFar.referenced + live.size,
      deleted: soFar.deleted + result.deleted.length,
      locked: soFar.locked + locked,
      young: (soFar.young ?? 0) + young,
      failed: soFar.failed + other.length,
      bytesFreed: soFar.bytesFreed + bytesFreed,
    },
    errors: other,
    bytesFreed,
  };
}

/**
 * FinishRetention: the report into the vault (`retention/<runId>.json`) and its summary into
 * the catalog, the "Retention Completed" event, and the locks released. Returns the report.
 */
export async function finishRetentionStep(s: Pick<RetentionServices, 'catalog' | 'vault' | 'events' | 'now'>, run: RetentionRun, plans: readonly PlanOutcome[], gc: GcProgress): Promise<RetentionReport> {
  const report: RetentionReport = RetentionReport.parse({
    runId: run.runId,
    now: run.now,
    dryRun: run.dryRun,
    plans,
    skipped: run.skipped,
    expired: plans.reduce((n, p) => n + p.expired.length, 0),
    locksExtended: plans.reduce((n, p) => n + p.locksExtended, 0),
    packsDeleted: gc.packsDeleted,
    bytesFreed: gc.bytesFreed,
    gc,
  });
  if (!run.dryRun) {
    await recordArchivable(s, run, plans, gc);
    const reportKey = retentionReportKey(run.runId);
    await s.vault.put(reportKey, Buffer.from(JSON.stringify(report, null, 2)));
    await s.catalog.recordRetentionRun({
      runId: run.runId,
      executionId: run.executionId,
      status: 'Completed',
      now: run.now,
      dryRun: false,
      plans: plans.map((p) => ({ plan: p.plan, kept: p.kept.length, expired: p.expired.map((e) => e.backupId), locksExtended: p.locksExtended })),
      skipped: run.skipped,
      packsDeleted: gc.packsDeleted,
      bytesFreed: gc.bytesFreed,
      ...(gc.skipped ? { gcSkipped: gc.skipped } : gc.milvusObjects?.stopped ? { gcSkipped: gc.milvusObjects.stopped } : {}),
      reportKey,
    });
    await publishRecorded(s.events, { detailType: 'Retention Completed', time: s.now(), detail: { runId: run.runId, expired: report.expired, packsDeleted: report.packsDeleted, bytesFreed: report.bytesFreed, skipped: run.skipped } });
  }
  await releaseRetentionLocks(s, run);
  return report;
}

/**
 * Once garbage collection went through every pack prefix (so every pack of the cooled backups
 * was looked at and tagged where no hot backup needs it), their records say so: the next runs
 * do not tag their packs again. A collection that was skipped or cut short leaves them cooled,
 * and the next run tags them.
 */
export async function recordArchivable(s: Pick<RetentionServices, 'catalog'>, run: Pick<RetentionRun, 'locked'>, plans: readonly PlanOutcome[], gc: GcProgress): Promise<void> {
  // A run of one plan in a vault of several tags nothing (see tiers): marking its cooled backups
  // would keep every later run from tagging their packs.
  if (gc.skipped !== undefined || gc.next !== undefined || !tiers(run, plans)) return;
  for (const id of plans.flatMap((p) => p.cooled)) await s.catalog.updateBackup(id, { archivable: true }, { onlyIf: ['Available'] });
}

/** Whether garbage collection tags packs archivable: it needs the hot set of every plan of the vault, so only when the run evaluated them all. */
function tiers(run: Pick<RetentionRun, 'locked'>, plans: readonly PlanOutcome[]): boolean {
  return plans.length > 0 && run.locked.every((p) => plans.some((o) => o.plan === p));
}

/** Releases every lock the run holds (FinishRetention, and the failure path). */
export async function releaseRetentionLocks(s: Pick<RetentionServices, 'catalog'>, run: Pick<RetentionRun, 'locked' | 'executionId'>): Promise<void> {
  for (const plan of run.locked) await s.catalog.releaseLock(plan, run.executionId);
}

