/** The loops a workflow runs over the object copy engine, for its tests: every page, then the commit; every restore page. */
import { copyPage, finishCopy, restoreCopy, startObjectCopy, startObjectRestore, type BackupCopyContext, type CopyCursor, type CopyEngineContext, type ObjectCopyCommitment, type RestoreCursor } from '../../core/objectstore/bucket-copy.js';

export async function copyAll(ctx: BackupCopyContext, backupId: string): Promise<{ cursor: CopyCursor; commit: ObjectCopyCommitment }> {
  let cursor = startObjectCopy(backupId);
  while (!cursor.done) cursor = await copyPage(ctx, cursor);
  return { cursor, commit: await finishCopy(ctx, cursor) };
}

export async function restoreAll(ctx: CopyEngineContext, backupId: string, commit: ObjectCopyCommitment, target: { bucket: string; prefix: string }): Promise<RestoreCursor> {
  let cursor = startObjectRestore(backupId);
  while (!cursor.done) cursor = await restoreCopy(ctx, { backupId, sha256: commit.sha256 }, target, cursor);
  return cursor;
}
