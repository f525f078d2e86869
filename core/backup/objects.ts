/**
 * CopyObjects: the backup of an S3-backed Milvus's bucket, the part of its data no volume holds.
 * The engine is core/objectstore/bucket-copy.ts (pages of keys, server-side copies, a manifest
 * committed at the end); this module runs it as a workflow step and keeps it consistent with
 * the etcd snapshot.
 *
 * Consistency. The step runs after the snapshots are ready and before Unquiesce: the flush is
 * confirmed, so every segment etcd's snapshot names is in the bucket, and GC is paused, so none
 * of them is deleted before it is copied. A copy of a large bucket outlasts any fixed pause, so
 * before each page the step renews the pause when its lease would end within
 * {@link renewalMargin}: it pauses again (a new lease, with a new ticket from Milvus 2.6.8) and
 * only then resumes the old ticket, so GC is never unpaused in between. The pause in force travels
 * in the state (`gc`) and the catalog record (for a recovery), and Unquiesce resumes it.
 *
 * Scale and time. One call copies pages until `callSeconds` have passed and hands its cursor
 * back to the workflow, which calls again (Lambda stops at 15 minutes; a page is bounded in
 * keys and bytes). The state between calls is the cursor: under 2 KiB whatever the bucket's size.
 * A call that fails is retried with the cursor it was given: at most one page is redone.
 */
import type { ResolvedPlan } from '../config/resolve.js';
import type { KubeClients } from '../kube/connect.js';
import { copyPage, finishCopy, startObjectCopy, type BackupCopyContext, type CopyCursor, type ObjectCopyCommitment } from '../objectstore/bucket-copy.js';
import type { ObjectCopyRecord } from '../catalog/record.js';
import type { Discovery, GcPause, ObjectCopyProgress } from '../workflow/backup-state.js';
import type { PreparedBackup } from '../workflow/contracts.js';
import type { BackupServices } from './context.js';
import { pauseGc, withMilvus } from './quiesce.js';
import type { RelaySpec } from '../milvus/relay.js';

/** How a backup (or restore) reaches an external bucket and the vault to copy between them. */
export interface ObjectCopyAccess {
  /** The engine's backend between a Milvus bucket on AWS S3 (in `source.region`, when known) and this region's vault. */
  readonly backend: (source: { readonly region?: string }) => BackupCopyContext['backend'];
  /** How long one call copies pages before it returns its cursor (a Lambda has 15 minutes). */
  readonly callSeconds: number;
  /** Keys per page, at most 1000 (ListObjectsV2's page). @default 1000 */
  readonly pageSize?: number;
}

/** How long one call copies by default: 10 of Lambda's 15 minutes, the rest for its last page. */
export const DEFAULT_OBJECT_COPY_CALL_SECONDS = 600;

/**
 * How long before the pause's lease ends the step renews it: a whole call, and five minutes
 * for the retries of a failed call and the Wait of the workflow in between.
 */
export const renewalMargin = (callSeconds: number): number => (callSeconds + 300) * 1000;

type Services = Pick<BackupServices, 'catalog' | 'now' | 'objectCopy'>;

/**
 * How the copy renews the GC pause (see {@link renewGcPause}): take a new pause, and release an
 * old one once the new one is recorded.
 */
export interface RenewPause {
  readonly pause: () => Promise<GcPause>;
  readonly release: (old: GcPause) => Promise<void>;
}

/**
 * The GC pause ended before the copy could renew it: Milvus may have deleted objects the etcd
 * snapshot names before they were copied, so the backup is not consistent and must not become
 * Available. Not retried: run the backup again (and give the pause a longer lease).
 */
export class GcPauseLapsedError extends Error {
  constructor(backupId: string, pausedUntil: string, at: Date) {
    super(
      `the datacoord GC pause of backup ${backupId} ended at ${pausedUntil}, before the bucket copy renewed it (at ${at.toISOString()}): Milvus may have removed objects the etcd snapshot names, so the copy would not restore; run the backup again, with GC_PAUSE_SECONDS longer than the snapshots and hooks take`,
    );
    this.name = 'GcPauseLapsed';
  }
}

/**
 * Copies pages of the Milvus bucket into the vault until the call's time is up or the copy is
 * done, renewing the GC pause as it goes (see the module documentation); once done, writes the
 * copy's commit and records it on the backup. `previous` is the state of the call before (none
 * on the first call); `gc` the pause PauseGc took.
 */
export async function copyObjects(
  s: Services,
  backup: PreparedBackup,
  source: NonNullable<Discovery['objectStorage']>,
  previous: ObjectCopyProgress | undefined,
  gc: GcPause | undefined,
  renew: RenewPause,
): Promise<ObjectCopyProgress> {
  const started = s.now().getTime();
  const ctx: BackupCopyContext = {
    backend: s.objectCopy.backend(source),
    source: { bucket: source.bucket, prefix: source.rootPath, ...(source.region ? { region: source.region } : {}) },
    ...(backup.retainUntil ? { retainUntil: new Date(backup.retainUntil) } : {}),
    ...(s.objectCopy.pageSize ? { pageSize: s.objectCopy.pageSize } : {}),
  };
  let cursor: CopyCursor = previous?.cursor ?? startObjectCopy(backup.backupName);
  let pause = previous?.gc ?? gc;
  const budget = s.objectCopy.callSeconds * 1000;
  // A page is not started when the last one would not fit in what is left of the call: a page
  // cut off by the Task's timeout is redone, but costs its time twice.
  let lastPage = 0;
  while (!cursor.done && s.now().getTime() - started + lastPage < budget) {
    if (pause) pause = await keepPaused(s, backup.backupName, pause, renew);
    const pageStarted = s.now().getTime();
    cursor = await copyPage(ctx, cursor);
    lastPage = s.now().getTime() - pageStarted;
  }
  if (!cursor.done) return { done: false, cursor, ...(pause ? { gc: pause } : {}) };
  const commit: ObjectCopyCommitment = await finishCopy(ctx, cursor);
  const copy = objectCopyRecord(source, commit, cursor);
  await s.catalog.updateBackup(backup.backupName, { objectCopy: copy });
  return { done: true, cursor, ...(pause ? { gc: pause } : {}), copy };
}

/**
 * Renewal of the GC pause of the plan's Milvus: pause again (a new lease; without tickets, before
 * Milvus 2.6.8, the second pause extends the one), and resume an old ticket after the new pause
 * is recorded, so GC is never unpaused in between. A failure to resume the old ticket is harmless
 * (its lease ends by itself) and is not raised.
 */
export function renewGcPause(
  s: Pick<BackupServices, 'now' | 'timings' | 'dataMover'>,
  kube: KubeClients,
  resolved: ResolvedPlan,
  backupId: string,
  guard?: RelaySpec['whileOpen'],
): RenewPause {
  return {
    pause: () => withMilvus(kube, resolved, s, backupId, (milvus) => pauseGc(s, milvus, s.now()), guard),
    release: (old) => withMilvus(kube, resolved, s, backupId, (milvus) => milvus.resumeGc(old.ticket), guard),
  };
}

/** What a backup's record (and backup.json) holds of a finished copy: its source, its commit and what this backup copied. */
export function objectCopyRecord(source: { readonly bucket: string; readonly rootPath: string }, commit: ObjectCopyCommitment, cursor: Pick<CopyCursor, 'totals'>): ObjectCopyRecord {
  return {
    source: { bucket: source.bucket, rootPath: source.rootPath },
    key: commit.key,
    sha256: commit.sha256,
    size: commit.size,
    pages: commit.pages,
    objects: commit.objects,
    bytes: commit.bytes,
    copied: cursor.totals.copied,
    bytesCopied: cursor.totals.bytesCopied,
  };
}

/**
 * The pause in force before the next page: `pause` as it is while its lease lasts more than
 * {@link renewalMargin}, else a new one (recorded before the old is released, so a recovery after
 * a crash in between finds one it can resume; the old lease ends by itself). Throws
 * {@link GcPauseLapsedError} when the lease has already ended.
 */
async function keepPaused(s: Services, backupId: string, pause: GcPause, renew: RenewPause): Promise<GcPause> {
  const now = s.now();
  if (Date.parse(pause.pausedUntil) <= now.getTime()) throw new GcPauseLapsedError(backupId, pause.pausedUntil, now);
  if (Date.parse(pause.pausedUntil) - now.getTime() >= renewalMargin(s.objectCopy.callSeconds)) return pause;
  const renewed = await renew.pause();
  await s.catalog.updateBackup(backupId, { gcPause: renewed });
  if (pause.ticket && pause.ticket !== renewed.ticket) await renew.release(pause).catch(() => undefined);
  return renewed;
}

/** The timeline's line for a finished copy. */
export function describeObjectCopy(p: ObjectCopyProgress): string {
  const c = p.copy;
  if (!c) return `${p.cursor?.pages ?? 0} page(s) so far`;
  return `${c.objects} objects (${c.bytes} bytes) of s3://${c.source.bucket}/${c.source.rootPath}: ${c.copied} copied (${c.bytesCopied} bytes), ${c.objects - c.copied} already in the vault; GC paused until ${p.gc?.pausedUntil ?? 'not paused'}`;
}
