/**
 * Backs up the bucket of an S3-backed Milvus (the EKS deployment of the Milvus documentation,
 * with no in-cluster MinIO) into the vault, and restores it, one page of keys per call.
 *
 * The storage sits behind a port (core/objectstore/copy-backend.ts): `s3CopyBackend` copies
 * inside S3 (core/objectstore/s3-copy-backend.ts), `directoryCopyBackend` between the bucket
 * directories of the local embedded cluster and a `FileVaultStore`
 * (core/objectstore/directory-copy-backend.ts). This module keeps what a backup's integrity rests
 * on, the same for both: paging, the byte budget, the manifest, the chain digest, the commit
 * checks and resumability, so what is tested locally is what runs in AWS.
 *
 * 1. `startObjectCopy(backupId)` gives the first cursor. The cursor is small plain JSON (a key,
 *    a page number, a digest and counters, under 2 KiB whatever the bucket's size), made for a
 *    Step Functions loop: a Lambda step calls `copyPage(ctx, cursor)` and the state machine
 *    passes the cursor it returns to the next call until `done`.
 * 2. `copyPage` lists one page of keys under the Milvus root path (at most 1000 keys, starting
 *    after the last key of the previous page, and cut short at a byte budget), asks the vault
 *    whether it holds each object already (its content-addressed key,
 *    core/objectstore/layout.ts), copies the missing ones with bounded concurrency, each on the
 *    condition that it still has the listed ETag (on S3 a server-side CopyObject,
 *    core/objectstore/server-copy.ts), extends the Object Lock date of the reused ones to cover
 *    this backup, writes the page of the manifest and returns the next cursor.
 * 3. `finishCopy(ctx, cursor)` reads the pages back, checks them against the cursor's chain
 *    digest and counters, and writes the commit; its SHA-256 is for the backup's record.
 * 4. `restoreCopy(ctx, manifest, target, cursor)` copies one manifest page of vault objects
 *    back to `<target prefix><key>` per call, after checking the commit against the digest the
 *    backup's record holds and the page against the commit. `committedObjectKeys` reads the
 *    same checked pages for retention and verification.
 *
 * Crashes. Every call does one page's bounded work, and a call that fails (or a Lambda that
 * dies) is redone with the same cursor: the listing starts after the same key, objects the
 * failed call copied are found in the vault and reused rather than copied again, and the
 * manifest page is overwritten. At most the page in flight is redone.
 *
 * Consistency with the etcd snapshot. Milvus writes segment objects once and deletes them only
 * by garbage collection, so a listing that starts after the etcd snapshot sees every object the
 * snapshot's metadata refers to, provided GC stays paused (lease renewed) from before the
 * snapshot until the last page is copied. Objects written after the snapshot (new flushes,
 * compactions) are copied too and are harmless: the restored Milvus's GC removes what its
 * metadata does not name. An object that changes or disappears during the copy fails it with
 * `SourceObjectChangedError` rather than being copied wrong.
 *
 * Scale. Requests per object on S3: one HeadObject, plus one CopyObject when it is new; per page,
 * one ListObjectsV2 and one PutObject. A million objects are a thousand calls of bounded time; the
 * workflow can run them in a loop or split the key space between several loops.
 */
import { sha256Hex } from '../datamover/summary.js';
import { UserError } from '../errors.js';
import { checkBackupId } from '../vault/layout.js';
import { ObjectNotFoundError, type VaultStore } from '../vault/store.js';
import { mapBounded } from './bounded.js';
import type { CopyBackend, ListedObject, ObjectSource, RestoreTarget } from './copy-backend.js';
import { milvusObjectKey, objectCopyCommitKey, objectManifestPageKey } from './layout.js';
import {
  addRequests,
  chainNext,
  CHAIN_START,
  COMMIT_FORMAT,
  decodeManifestPage,
  encodeManifestPage,
  noRequests,
  ObjectManifestCorruptError,
  type CopyTotals,
  type ManifestEntry,
  type ObjectCopyCommit,
  type PageCommitment,
  type RequestCounts,
} from './manifest.js';
import { BACKUP_WHEN_CHANGED, type CopyRoles } from './server-copy.js';

export type { CopyBackend, ListedObject, ListedPage, ObjectSource, RestoreTarget, SourceObjectRef, VaultObject, VaultObjectRef } from './copy-backend.js';
export { createCopyClient, s3CopyBackend, type VaultBucket } from './s3-copy-backend.js';
export { directoryCopyBackend, type DirectoryCopyOptions } from './directory-copy-backend.js';

/** What both directions need. */
export interface CopyEngineContext {
  /** Where the objects and the vault are (s3CopyBackend, directoryCopyBackend). */
  readonly backend: CopyBackend;
  /** Objects copied or checked at once. @default 32 */
  readonly concurrency?: number;
}

/** What a backup's copy needs. */
export interface BackupCopyContext extends CopyEngineContext {
  readonly source: ObjectSource;
  /** Object Lock date for new objects, manifest pages and the commit; reused objects are extended to it. @default no lock */
  readonly retainUntil?: Date;
  /** Keys listed (and objects handled) per call, at most 1000 (S3's page). @default 1000 */
  readonly pageSize?: number;
  /**
   * Bytes one call copies at most: a page ends early (at least one object) once its objects add
   * up to more, and the next call lists again after the last object taken. This bounds a call's
   * time when objects are large (S3 copies an object of several GiB in tens of seconds or more,
   * a few hundred MiB/s per object), so a page started late in a call still fits in a Lambda's
   * 15 minutes. @default 16 GiB
   */
  readonly maxPageBytes?: number;
}

export type { CopyTotals } from './manifest.js';

/** Where a backup's copy stands: plain JSON, passed from one `copyPage` call to the next. */
export interface CopyCursor {
  readonly backupId: string;
  /** Manifest pages written. */
  readonly pages: number;
  /** The last source key (full, with the root path) of the last page written; the next listing starts after it. */
  readonly startAfter?: string;
  readonly done: boolean;
  /** Running digest over the SHA-256 of each page written, in order (manifest.ts `chainNext`). */
  readonly chain: string;
  readonly totals: CopyTotals;
}

/** What `finishCopy` returns: the commit, as the backup's record should commit to it. */
export interface ObjectCopyCommitment {
  readonly key: string;
  /** Hex SHA-256 of the commit object's bytes. */
  readonly sha256: string;
  readonly size: number;
  readonly pages: number;
  readonly objects: number;
  readonly bytes: number;
}

/** Where a restore stands. */
export interface RestoreCursor {
  readonly backupId: string;
  /** Manifest pages restored. */
  readonly pages: number;
  readonly done: boolean;
  readonly objects: number;
  readonly bytes: number;
  readonly requests: RequestCounts;
}

const DEFAULT_CONCURRENCY = 32;
const MAX_PAGE = 1000;
const DEFAULT_PAGE_BYTES = 16 * 1024 ** 3;

const noTotals = (): CopyTotals => ({ objects: 0, bytes: 0, copied: 0, reused: 0, bytesCopied: 0, bytesReused: 0, retentionExtended: 0, requests: noRequests() });

/** A trailing slash on a non-empty prefix, so `files` does not also match `files-old/`. */
function dirPrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** The cursor of a backup's copy before its first page (checks the backup id). */
export function startObjectCopy(backupId: string): CopyCursor {
  return { backupId: checkBackupId(backupId), pages: 0, done: false, chain: CHAIN_START, totals: noTotals() };
}

/** The cursor of a restore before its first page. */
export function startObjectRestore(backupId: string): RestoreCursor {
  return { backupId: checkBackupId(backupId), pages: 0, done: false, objects: 0, bytes: 0, requests: noRequests() };
}

/** What happened to one object of a page. */
interface Handled {
  readonly entry: ManifestEntry;
  readonly copied: boolean;
  readonly extended: boolean;
}

/**
 * Copies one page of the source into the vault and returns the cursor to continue from (see the
 * module documentation). A done cursor is returned as it is. Throws `ObjectCopyAccessDeniedError`
 * when the source cannot be listed or read (or the vault written), `SourceObjectChangedError`
 * when an object changed or vanished during the copy; redo the call with the same cursor after
 * a crash or a transient failure.
 */
export async function copyPage(ctx: BackupCopyContext, cursor: CopyCursor): Promise<CopyCursor> {
  if (cursor.done) return cursor;
  const pageSize = ctx.pageSize ?? MAX_PAGE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) throw new RangeError(`page size ${pageSize} must be between 1 and 1000 (ListObjectsV2's largest page)`);
  const { backend } = ctx;
  const requests = noRequests();
  const { bucket } = ctx.source;
  const prefix = dirPrefix(ctx.source.prefix);
  const roles: CopyRoles = { reading: `the Milvus bucket ${backend.url(bucket, prefix)}`, writing: `the vault ${backend.vault.url}`, whenChanged: BACKUP_WHEN_CHANGED };

  const listed = await backend.listSource(bucket, { prefix, maxKeys: pageSize, ...(cursor.startAfter !== undefined ? { startAfter: cursor.startAfter } : {}) }, requests);
  const listedObjects = listed.objects.filter((o) => o.key.startsWith(prefix));
  // The page ends early when its bytes pass the budget: listing again after the last object
  // taken (StartAfter, not an opaque continuation token) is what makes a cut anywhere possible.
  const budget = ctx.maxPageBytes ?? DEFAULT_PAGE_BYTES;
  let taken = 0;
  let pageBytes = 0;
  while (taken < listedObjects.length && (taken === 0 || pageBytes + listedObjects[taken]!.size <= budget)) pageBytes += listedObjects[taken++]!.size;
  const objects = listedObjects.slice(0, taken);
  const cut = taken < listedObjects.length;
  if (objects.length === 0) return { ...cursor, done: true, totals: { ...cursor.totals, requests: addRequests(cursor.totals.requests, requests) } };

  const handled = await mapBounded(objects, ctx.concurrency ?? DEFAULT_CONCURRENCY, (o) => copyOne(ctx, o, prefix, requests, roles));

  const page = cursor.pages + 1;
  const body = encodeManifestPage(cursor.backupId, page, handled.map((h) => h.entry));
  requests.put++;
  await backend.vault.put(objectManifestPageKey(cursor.backupId, page), body, ctx.retainUntil ? { retainUntil: ctx.retainUntil } : undefined);
  // The cursor returned says the page and its objects are stored: on a local vault they must
  // survive a crash before it is handed on (on S3 a written object is durable, and this is free).
  await backend.vault.flush();

  const t = cursor.totals;
  let { copied, reused, bytesCopied, bytesReused, retentionExtended, bytes } = t;
  for (const h of handled) {
    bytes += h.entry.size;
    if (h.copied) {
      copied++;
      bytesCopied += h.entry.size;
    } else {
      reused++;
      bytesReused += h.entry.size;
    }
    if (h.extended) retentionExtended++;
  }
  return {
    backupId: cursor.backupId,
    pages: page,
    startAfter: objects[objects.length - 1]!.key,
    done: !cut && !listed.truncated,
    chain: chainNext(cursor.chain, sha256Hex(body)),
    totals: { objects: t.objects + handled.length, bytes, copied, reused, bytesCopied, bytesReused, retentionExtended, requests: addRequests(t.requests, requests) },
  };
}

/** One listed object: reused when the vault holds it (its lock extended), copied otherwise. */
async function copyOne(ctx: BackupCopyContext, o: ListedObject, prefix: string, requests: RequestCounts, roles: CopyRoles): Promise<Handled> {
  const { backend } = ctx;
  const key = o.key.slice(prefix.length);
  const { size, etag } = o;
  const vaultKey = milvusObjectKey(key, size, etag);
  const present = await backend.headVault(vaultKey, { size, etag }, requests);
  if (present && present.size === size) {
    const extended = ctx.retainUntil ? await backend.extendRetention(vaultKey, present, ctx.retainUntil, requests) : false;
    return { entry: { key, size, etag, vaultKey, vaultEtag: present.etag }, copied: false, extended };
  }
  const vaultEtag = await backend.copyToVault({ bucket: ctx.source.bucket, key: o.key, size, etag }, vaultKey, ctx.retainUntil ? { retainUntil: ctx.retainUntil } : {}, requests, roles);
  return { entry: { key, size, etag, vaultKey, vaultEtag }, copied: true, extended: false };
}

/** Reads a manifest page and checks it against what the commit (or cursor) expects of it. */
async function readPage(store: VaultStore, backupId: string, page: number): Promise<{ body: Buffer; entries: ManifestEntry[]; key: string }> {
  const key = objectManifestPageKey(backupId, page);
  let body: Buffer;
  try {
    body = await store.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new ObjectManifestCorruptError(`page ${page} of the object manifest of backup ${backupId} (${key} in ${store.url}) is missing`, { cause: err });
    throw err;
  }
  return { body, entries: decodeManifestPage(body, `${key} in ${store.url}`, { backupId, page }), key };
}

/**
 * Writes the commit of a finished copy (a cursor `copyPage` returned as done) and returns what
 * the backup's record commits to. Reads every page back first and refuses (ObjectManifestCorrupt)
 * when the pages are not those the copy wrote: a page missing or changed, or counts that differ
 * from the cursor's. Idempotent: the same cursor writes the same bytes.
 */
export async function finishCopy(ctx: BackupCopyContext, cursor: CopyCursor): Promise<ObjectCopyCommitment> {
  if (!cursor.done) throw new Error(`the object copy of backup ${cursor.backupId} is not finished (${cursor.pages} pages so far): call copyPage until its cursor is done (a bug in the workflow)`);
  const store = ctx.backend.vault;
  const requests = noRequests();
  const pageNumbers = Array.from({ length: cursor.pages }, (_, i) => i + 1);
  const pages = await mapBounded(pageNumbers, ctx.concurrency ?? DEFAULT_CONCURRENCY, async (page): Promise<PageCommitment> => {
    requests.get++;
    const { body, entries, key } = await readPage(store, cursor.backupId, page);
    return { page, key, sha256: sha256Hex(body), size: body.length, objects: entries.length, bytes: entries.reduce((n, e) => n + e.size, 0) };
  });
  const chain = pages.reduce((c, p) => chainNext(c, p.sha256), CHAIN_START);
  const objects = pages.reduce((n, p) => n + p.objects, 0);
  const bytes = pages.reduce((n, p) => n + p.bytes, 0);
  if (chain !== cursor.chain || objects !== cursor.totals.objects || bytes !== cursor.totals.bytes) {
    throw new ObjectManifestCorruptError(
      `the object manifest of backup ${cursor.backupId} in ${store.url} is not what the copy wrote (${objects} objects, ${bytes} bytes in ${pages.length} pages where the copy wrote ${cursor.totals.objects} objects, ${cursor.totals.bytes} bytes${chain !== cursor.chain ? ', and the pages\' digests differ' : ''}): run the copy again from its first page`,
    );
  }
  const t = cursor.totals;
  requests.put++;
  const commit: ObjectCopyCommit = {
    format: COMMIT_FORMAT,
    backupId: cursor.backupId,
    source: { bucket: ctx.source.bucket, prefix: dirPrefix(ctx.source.prefix) },
    objects,
    bytes,
    copied: t.copied,
    reused: t.reused,
    bytesCopied: t.bytesCopied,
    bytesReused: t.bytesReused,
    retentionExtended: t.retentionExtended,
    // The finish's own reads and write are included, so the commit says what the whole copy cost.
    requests: addRequests(t.requests, requests),
    chainDigest: chain,
    pages,
  };
  const body = Buffer.from(`${JSON.stringify(commit, null, 1)}\n`, 'utf8');
  const key = objectCopyCommitKey(cursor.backupId);
  await store.put(key, body, ctx.retainUntil ? { retainUntil: ctx.retainUntil } : undefined);
  // The backup's record will commit to this object: on a local vault it must survive a crash first.
  await store.flush();
  return { key, sha256: sha256Hex(body), size: body.length, pages: pages.length, objects, bytes };
}

/** Reads the commit of a backup's copy and checks it against the digest the backup's record holds. */
export async function readObjectCopyCommit(ctx: CopyEngineContext, manifest: { backupId: string; sha256: string }): Promise<ObjectCopyCommit> {
  const store = ctx.backend.vault;
  const key = objectCopyCommitKey(manifest.backupId);
  let body: Buffer;
  try {
    body = await store.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new UserError(`vault ${store.url} has no finished object copy of backup ${manifest.backupId} (${key} is missing); the backup did not complete its object copy`, { cause: err });
    throw err;
  }
  const sha256 = sha256Hex(body);
  if (sha256 !== manifest.sha256) throw new ObjectManifestCorruptError(`${key} in ${store.url} has SHA-256 ${sha256} where the backup's record commits to ${manifest.sha256}: the commit was altered or damaged; it is not restored`);
  let commit: ObjectCopyCommit;
  try {
    commit = JSON.parse(body.toString('utf8')) as ObjectCopyCommit;
  } catch (err) {
    throw new ObjectManifestCorruptError(`${key} in ${store.url} is not JSON`, { cause: err });
  }
  if (commit?.format !== COMMIT_FORMAT || commit.backupId !== manifest.backupId || !Array.isArray(commit.pages)) throw new ObjectManifestCorruptError(`${key} in ${store.url} is not the object copy commit of backup ${manifest.backupId}`);
  return commit;
}

/** A page of a committed manifest, checked against the commit: its entries. */
async function readCommittedPage(store: VaultStore, backupId: string, committed: PageCommitment): Promise<ManifestEntry[]> {
  const { body, entries, key } = await readPage(store, backupId, committed.page);
  const sha256 = sha256Hex(body);
  if (sha256 !== committed.sha256 || entries.length !== committed.objects) {
    throw new ObjectManifestCorruptError(`${key} in ${store.url} is not the page the commit names (SHA-256 ${sha256} where it commits to ${committed.sha256}): the manifest was altered or damaged; it is not restored`);
  }
  return entries;
}

/**
 * Restores one manifest page: copies its vault objects back to `<target prefix><key>` of the
 * target bucket, each on the condition that the vault object still has the ETag the manifest
 * recorded, and returns the cursor to continue from. The commit is checked against
 * `manifest.sha256` (what the backup's record holds) and the page against the commit before
 * anything is copied. Redo a failed call with the same cursor: the page is copied again, which
 * overwrites the same keys.
 */
export async function restoreCopy(ctx: CopyEngineContext, manifest: { backupId: string; sha256: string }, target: RestoreTarget, cursor: RestoreCursor): Promise<RestoreCursor> {
  if (cursor.done) return cursor;
  const { backend } = ctx;
  const requests = noRequests();
  requests.get++;
  const commit = await readObjectCopyCommit(ctx, manifest);
  if (cursor.pages >= commit.pages.length) return { ...cursor, done: true, requests: addRequests(cursor.requests, requests) };
  const committed = commit.pages[cursor.pages]!;
  requests.get++;
  const entries = await readCommittedPage(backend.vault, manifest.backupId, committed);
  const prefix = dirPrefix(target.prefix);
  const roles: CopyRoles = {
    reading: `the vault ${backend.vault.url}`,
    writing: `the restore target ${backend.url(target.bucket, prefix)}`,
    whenChanged: `The vault's copy is not the one backup ${manifest.backupId} recorded: verify the backup, and restore another one`,
  };
  await mapBounded(entries, ctx.concurrency ?? DEFAULT_CONCURRENCY, (e) =>
    backend.copyFromVault({ vaultKey: e.vaultKey, size: e.size, etag: e.vaultEtag }, { bucket: target.bucket, key: prefix + e.key }, requests, roles),
  );
  const pages = cursor.pages + 1;
  return {
    backupId: cursor.backupId,
    pages,
    done: pages >= commit.pages.length,
    objects: cursor.objects + entries.length,
    bytes: cursor.bytes + committed.bytes,
    requests: addRequests(cursor.requests, requests),
  };
}

/**
 * Every object of a committed backup, page by page in manifest order: the commit is checked
 * against `manifest.sha256` and each page against the commit before its entries are yielded, so
 * a consumer never acts on an entry of a damaged manifest. Reads one page at a time (memory stays
 * at a page whatever the backup's size). For verification (each `vaultKey` should hold an object
 * of `size` bytes with ETag `vaultEtag`).
 */
export async function* committedObjects(ctx: CopyEngineContext, manifest: { backupId: string; sha256: string }): AsyncGenerator<ManifestEntry> {
  const commit = await readObjectCopyCommit(ctx, manifest);
  for (const committed of commit.pages) yield* await readCommittedPage(ctx.backend.vault, manifest.backupId, committed);
}

/**
 * Every vault key (`milvus-objects/...`, relative to the vault root) a committed backup
 * references, checked against the commit as `committedObjects` is; for retention (the live set
 * of the objects shared by backups) and verify. An async iterable rather than an array, so a
 * backup of millions of objects is not held in memory at once; a damaged commit or page throws
 * (`ObjectManifestCorruptError`) before any key of it is yielded, and a caller building a live
 * set must then stop rather than delete on a partial set. Each key is yielded once.
 */
export async function* committedObjectKeys(ctx: CopyEngineContext, manifest: { backupId: string; sha256: string }): AsyncGenerator<string> {
  for await (const e of committedObjects(ctx, manifest)) yield e.vaultKey;
}
