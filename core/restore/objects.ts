/**
 * RestoreObjects: copies the bucket objects of a backup of an S3-backed Milvus back into the
 * bucket and prefix the restore names (PreparedRestore `objects.target`), before the Milvus CR
 * that points at them is created. The engine is core/objectstore/bucket-copy.ts `restoreCopy`: it
 * checks the commit against the digest the backup's record holds and every page against the
 * commit, and copies each object on the condition that the vault's copy still has the ETag the
 * backup recorded, so a damaged or altered vault object fails the restore instead of starting a
 * Milvus on it. One call copies pages for `callSeconds` and returns its cursor, as CopyObjects does.
 */
import { restoreCopy, startObjectRestore, type RestoreCursor } from '../objectstore/bucket-copy.js';
import type { ObjectRestoreProgress, PreparedRestore } from '../workflow/restore-state.js';
import type { RestoreServices } from './context.js';

export async function restoreObjects(s: Pick<RestoreServices, 'now' | 'objectCopy'>, restore: PreparedRestore, previous: ObjectRestoreProgress): Promise<ObjectRestoreProgress> {
  const objects = restore.objects;
  if (!objects) throw new Error(`restore ${restore.restoreId}: RestoreObjects ran for a backup without a bucket copy (a bug in the workflow)`);
  const started = s.now().getTime();
  const ctx = { backend: s.objectCopy.backend({}) };
  const manifest = { backupId: restore.backupId, sha256: objects.commit.sha256 };
  let cursor: RestoreCursor = (previous.cursor as RestoreCursor | undefined) ?? startObjectRestore(restore.backupId);
  while (!cursor.done && s.now().getTime() - started < s.objectCopy.callSeconds * 1000) {
    cursor = await restoreCopy(ctx, manifest, objects.target, cursor);
  }
  return { done: cursor.done, cursor: { ...cursor, requests: { ...cursor.requests } } };
}

/** The timeline's line for the restored objects. */
export function describeObjectRestore(restore: PreparedRestore, p: ObjectRestoreProgress): string {
  const t = restore.objects?.target;
  return `${p.cursor?.objects ?? 0} objects (${p.cursor?.bytes ?? 0} bytes) copied into s3://${t?.bucket}/${t?.prefix}`;
}
