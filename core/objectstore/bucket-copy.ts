/**
 * Backs up the bucket of an S3-backed Milvus (the EKS deployment of the Milvus documentation,
 * with no in-cluster MinIO) into the vault, and restores it, one page of keys per call.
 *
 * 1. `startObjectCopy(backupId)` gives the first cursor. The cursor is small plain JSON (a key,
 *    a page number, a digest and counters, under 2 KiB whatever the bucket's size), made for a
 *    Step Functions loop: a Lambda step calls `copyPage(ctx, cursor)` and the state machine
 *    passes the cursor it returns to the next call until `done`.
 * 2. `copyPage` lists one page of keys under the Milvus root path (ListObjectsV2, at most 1000
 *    keys, starting after the last key of the previous page, and cut short at a byte budget), asks the vault whether it holds
 *    each object already (HeadObject on its content-addressed key, core/objectstore/layout.ts),
 *    copies the missing ones inside S3 with bounded concurrency (core/objectstore/server-copy.ts:
 *    CopyObject, UploadPartCopy above the multipart threshold, conditional on the listed ETag),
 *    extends the Object Lock date of the reused ones to cover this backup, writes the page of
 *    the manifest and returns the next cursor.
 * 3. `finishCopy(ctx, cursor)` reads the pages back, checks them against the cursor's chain
 *    digest and counters, and writes the commit; its SHA-256 is for the backup's record.
 * 4. `restoreCopy(ctx, manifest, target, cursor)` copies one manifest page of vault objects
 *    back to `<target prefix><key>` per call, after checking the commit against the digest the
 *    backup's record holds and the page against the commit.
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
 * Scale. Requests per object: one HeadObject, plus one CopyObject when it is new; per page, one
 * ListObjectsV2 and one PutObject. A million objects are a thousand calls of bounded time; the
 * workflow can run them in a loop or split the key space between several loops.
 */
import { HeadObjectCommand, GetObjectRetentionCommand, ListObjectsV2Command, PutObjectRetentionCommand, S3Client, type ObjectLockMode } from '@aws-sdk/client-s3';
import { UserError } from '../errors.js';
import { sha256Hex } from '../datamover/summary.js';
import { checkBackupId } from '../vault/layout.js';
import { S3VaultStore, type S3VaultOptions } from '../vault/s3-store.js';
import { ObjectNotFoundError } from '../vault/store.js';
import { mapBounded } from './bounded.js';
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
import { BACKUP_WHEN_CHANGED, MAX_SINGLE_COPY, MIN_PART, MAX_PART, ObjectCopyAccessDeniedError, serverSideCopy, type CopyRoles, type MultipartSettings, type WriteProtection } from './server-copy.js';

/** Where a Milvus keeps its objects: the bucket and root path (Milvus's `minio.rootPath`, e.g. `files`). */
export interface ObjectSource {
  readonly bucket: string;
  /** The Milvus root path; a trailing slash is added when missing. '' copies the whole bucket. */
  readonly prefix: string;
  /** @default the vault client's region (S3 copies across regions) */
  readonly region?: string;
  /** An S3-compatible endpoint; it must be the vault's, since one request copies (see createCopyClient). @default AWS S3 */
  readonly endpoint?: string;
}

/** Where a restore puts the objects: the restored Milvus's bucket and root path. */
export interface RestoreTarget {
  readonly bucket: string;
  readonly prefix: string;
}

/** The vault bucket, described with the options that build its S3VaultStore (so both write alike). */
export type VaultBucket = Pick<S3VaultOptions, 'bucket' | 'prefix' | 'kmsKeyId' | 'objectLockMode'>;

/** What both directions need. */
export interface CopyEngineContext {
  /** One client that reaches the source (or restore target) and the vault (createCopyClient). */
  readonly client: S3Client;
  readonly vault: VaultBucket;
  /** Objects copied or checked at once. @default 32 */
  readonly concurrency?: number;
  /** Objects above `threshold` bytes are copied in parts of `partSize`. @default 5 GiB, 512 MiB, 4 parts at once */
  readonly multipart?: Partial<MultipartSettings>;
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
   * time when objects are large (S3 copies an object of several GiB in tens of seconds or more),
   * so a page fits in a Lambda's 15 minutes. @default 100 GiB
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
const DEFAULT_PAGE_BYTES = 100 * 1024 ** 3;

const noTotals = (): CopyTotals => ({ objects: 0, bytes: 0, copied: 0, reused: 0, bytesCopied: 0, bytesReused: 0, retentionExtended: 0, requests: noRequests() });

/** A trailing slash on a non-empty prefix, so `files` does not also match `files-old/`. */
function dirPrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

function vaultPrefix(vault: VaultBucket): string {
  return vault.prefix ? `${vault.prefix.replace(/\/+$/, '')}/` : '';
}

function multipartOf(ctx: CopyEngineContext): MultipartSettings {
  const m = { threshold: MAX_SINGLE_COPY, partSize: 512 * 1024 ** 2, partConcurrency: 4, ...ctx.multipart };
  if (!(m.threshold >= 0 && m.threshold <= MAX_SINGLE_COPY)) throw new RangeError(`multipart threshold ${m.threshold} must be between 0 and 5 GiB (S3 copies at most 5 GiB in one CopyObject)`);
  if (!(m.partSize >= MIN_PART && m.partSize <= MAX_PART)) throw new RangeError(`multipart part size ${m.partSize} must be between 5 MiB and 5 GiB (S3's limits for a part)`);
  return m;
}

function storeOf(ctx: CopyEngineContext): S3VaultStore {
  return new S3VaultStore({ ...ctx.vault, client: ctx.client });
}

const s3Name = (err: unknown): string | undefined => (err as { name?: string } | undefined)?.name;
const s3Status = (err: unknown): number | undefined => (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;

/**
 * A client for copying between `source` and the vault. CopyObject is sent to the vault's
 * endpoint, which reads the source itself: on AWS both are S3 (any regions, any accounts whose
 * bucket policies grant this role read and write); an S3-compatible server copies only between
 * buckets it holds, so a source on another endpoint is refused here, naming both.
 */
export function createCopyClient(source: ObjectSource, vault: Pick<S3VaultOptions, 'region' | 'endpoint' | 'credentials' | 'maxAttempts'>): S3Client {
  if ((source.endpoint ?? '') !== (vault.endpoint ?? '')) {
    throw new UserError(
      `the Milvus bucket s3://${source.bucket} is on ${source.endpoint ?? 'AWS S3'} and the vault on ${vault.endpoint ?? 'AWS S3'}: a server-side copy needs one endpoint that holds both buckets (put the vault on the same S3 service, or copy with a tool that streams between them)`,
    );
  }
  return new S3Client({
    ...(vault.region ? { region: vault.region } : source.region ? { region: source.region } : {}),
    ...(vault.endpoint ? { endpoint: vault.endpoint, forcePathStyle: true } : {}),
    ...(vault.credentials ? { credentials: vault.credentials } : {}),
    retryMode: 'adaptive',
    maxAttempts: vault.maxAttempts ?? 10,
  });
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
  const multipart = multipartOf(ctx);
  const requests = noRequests();
  const { bucket } = ctx.source;
  const prefix = dirPrefix(ctx.source.prefix);
  const vPrefix = vaultPrefix(ctx.vault);
  const sourceUrl = `s3://${bucket}/${prefix}`;
  const roles: CopyRoles = { reading: `the Milvus bucket ${sourceUrl}`, writing: `the vault s3://${ctx.vault.bucket}/${vPrefix}`, whenChanged: BACKUP_WHEN_CHANGED };

  requests.list++;
  let listed;
  try {
    listed = await ctx.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: pageSize, ...(cursor.startAfter !== undefined ? { StartAfter: cursor.startAfter } : {}) }));
  } catch (err) {
    if (s3Name(err) === 'AccessDenied' || s3Status(err) === 403) {
      throw new ObjectCopyAccessDeniedError(`listing ${sourceUrl} was refused (AccessDenied): grant the role s3:ListBucket on bucket ${bucket} for the prefix ${prefix || '(all)'} and s3:GetObject on ${sourceUrl}*`, prefix, { cause: err });
    }
    if (s3Name(err) === 'NoSuchBucket') throw new UserError(`the Milvus bucket ${bucket} does not exist (${sourceUrl}); check the bucket Milvus is configured with`, { cause: err });
    throw err;
  }
  const listedObjects = (listed.Contents ?? []).filter((o) => o.Key !== undefined && o.Key.startsWith(prefix));
  // The page ends early when its bytes pass the budget: listing again after the last object
  // taken (StartAfter, not an opaque continuation token) is what makes a cut anywhere possible.
  const budget = ctx.maxPageBytes ?? DEFAULT_PAGE_BYTES;
  let taken = 0;
  let pageBytes = 0;
  while (taken < listedObjects.length && (taken === 0 || pageBytes + (listedObjects[taken]!.Size ?? 0) <= budget)) pageBytes += listedObjects[taken++]!.Size ?? 0;
  const objects = listedObjects.slice(0, taken);
  const cut = taken < listedObjects.length;
  if (objects.length === 0) return { ...cursor, done: true, totals: { ...cursor.totals, requests: addRequests(cursor.totals.requests, requests) } };

  const write: WriteProtection = { ...(ctx.vault.kmsKeyId ? { kmsKeyId: ctx.vault.kmsKeyId } : {}), ...(ctx.vault.objectLockMode ? { objectLockMode: ctx.vault.objectLockMode } : {}), ...(ctx.retainUntil ? { retainUntil: ctx.retainUntil } : {}) };
  const handled = await mapBounded(objects, ctx.concurrency ?? DEFAULT_CONCURRENCY, async (o): Promise<Handled> => {
    const fullKey = o.Key!;
    const key = fullKey.slice(prefix.length);
    const size = o.Size ?? 0;
    const etag = o.ETag ?? '';
    const vaultKey = milvusObjectKey(key, size, etag);
    const present = await headVault(ctx, vPrefix + vaultKey, requests, roles);
    if (present && present.size === size) {
      const extended = ctx.retainUntil ? await extendRetention(ctx, vPrefix + vaultKey, present, ctx.retainUntil, requests) : false;
      return { entry: { key, size, etag, vaultKey, vaultEtag: present.etag }, copied: false, extended };
    }
    const vaultEtag = await serverSideCopy(ctx.client, { fromBucket: bucket, fromKey: fullKey, etag, size, toBucket: ctx.vault.bucket, toKey: vPrefix + vaultKey }, write, multipart, requests, roles);
    return { entry: { key, size, etag, vaultKey, vaultEtag }, copied: true, extended: false };
  });

  const page = cursor.pages + 1;
  const body = encodeManifestPage(cursor.backupId, page, handled.map((h) => h.entry));
  requests.put++;
  await storeOf(ctx).put(objectManifestPageKey(cursor.backupId, page), body, ctx.retainUntil ? { retainUntil: ctx.retainUntil } : undefined);

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
    startAfter: objects[objects.length - 1]!.Key!,
    done: !cut && listed.IsTruncated !== true,
    chain: chainNext(cursor.chain, sha256Hex(body)),
    totals: { objects: t.objects + handled.length, bytes, copied, reused, bytesCopied, bytesReused, retentionExtended, requests: addRequests(t.requests, requests) },
  };
}

/** The vault's copy of an object, or undefined when it has none. */
async function headVault(ctx: CopyEngineContext, key: string, requests: RequestCounts, roles: CopyRoles): Promise<{ size: number; etag: string; retainUntil?: Date; mode?: string } | undefined> {
  requests.head++;
  try {
    const out = await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.vault.bucket, Key: key }));
    return { size: out.ContentLength ?? 0, etag: out.ETag ?? '', ...(out.ObjectLockRetainUntilDate ? { retainUntil: out.ObjectLockRetainUntilDate } : {}), ...(out.ObjectLockMode ? { mode: out.ObjectLockMode } : {}) };
  } catch (err) {
    if (s3Name(err) === 'NotFound' || s3Name(err) === 'NoSuchKey' || s3Status(err) === 404) return undefined;
    if (s3Name(err) === 'AccessDenied' || s3Status(err) === 403) {
      // Without s3:ListBucket, S3 answers 403 rather than 404 for a key that does not exist.
      throw new ObjectCopyAccessDeniedError(`checking s3://${ctx.vault.bucket}/${key} was refused (AccessDenied): grant the role s3:GetObject and s3:ListBucket on ${roles.writing}`, key, { cause: err });
    }
    throw err;
  }
}

/**
 * Extends a reused object's Object Lock date to `until`, never shortening it, keeping its mode
 * (as S3VaultStore.extendRetention does). HeadObject reports the date only with
 * s3:GetObjectRetention; without it in the answer, GetObjectRetention asks.
 */
async function extendRetention(ctx: CopyEngineContext, key: string, head: { retainUntil?: Date; mode?: string }, until: Date, requests: RequestCounts): Promise<boolean> {
  let current: { until?: Date; mode?: string } = { ...(head.retainUntil ? { until: head.retainUntil } : {}), ...(head.mode ? { mode: head.mode } : {}) };
  if (!current.until) {
    requests.retention++;
    try {
      const r = (await ctx.client.send(new GetObjectRetentionCommand({ Bucket: ctx.vault.bucket, Key: key }))).Retention;
      current = { ...(r?.RetainUntilDate ? { until: r.RetainUntilDate } : {}), ...(r?.Mode ? { mode: r.Mode } : {}) };
    } catch (err) {
      if (s3Name(err) !== 'NoSuchObjectLockConfiguration') throw err;
    }
  }
  if (current.until && current.until.getTime() >= until.getTime()) return false;
  requests.retention++;
  const mode = (current.mode ?? ctx.vault.objectLockMode ?? 'GOVERNANCE') as ObjectLockMode;
  await ctx.client.send(new PutObjectRetentionCommand({ Bucket: ctx.vault.bucket, Key: key, Retention: { Mode: mode, RetainUntilDate: until } }));
  return true;
}

/** Reads a manifest page and checks it against what the commit (or cursor) expects of it. */
async function readPage(store: S3VaultStore, backupId: string, page: number): Promise<{ body: Buffer; entries: ManifestEntry[]; key: string }> {
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
  const store = storeOf(ctx);
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
  return { key, sha256: sha256Hex(body), size: body.length, pages: pages.length, objects, bytes };
}

/** Reads the commit of a backup's copy and checks it against the digest the backup's record holds. */
export async function readObjectCopyCommit(ctx: CopyEngineContext, manifest: { backupId: string; sha256: string }): Promise<ObjectCopyCommit> {
  const store = storeOf(ctx);
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

/**
 * Restores one manifest page: copies its vault objects back to `<target prefix><key>` inside S3,
 * each on the condition that the vault object still has the ETag the manifest recorded, and
 * returns the cursor to continue from. The commit is checked against `manifest.sha256` (what the
 * backup's record holds) and the page against the commit before anything is copied. Redo a
 * failed call with the same cursor: the page is copied again, which overwrites the same keys.
 */
export async function restoreCopy(ctx: CopyEngineContext, manifest: { backupId: string; sha256: string }, target: RestoreTarget, cursor: RestoreCursor): Promise<RestoreCursor> {
  if (cursor.done) return cursor;
  const requests = noRequests();
  const multipart = multipartOf(ctx);
  requests.get++;
  const commit = await readObjectCopyCommit(ctx, manifest);
  if (cursor.pages >= commit.pages.length) return { ...cursor, done: true, requests: addRequests(cursor.requests, requests) };
  const committed = commit.pages[cursor.pages]!;
  const store = storeOf(ctx);
  requests.get++;
  const { body, entries, key } = await readPage(store, manifest.backupId, committed.page);
  const sha256 = sha256Hex(body);
  if (sha256 !== committed.sha256 || entries.length !== committed.objects) {
    throw new ObjectManifestCorruptError(`${key} in ${store.url} is not the page the commit names (SHA-256 ${sha256} where it commits to ${committed.sha256}): the manifest was altered or damaged; it is not restored`);
  }
  const vPrefix = vaultPrefix(ctx.vault);
  const prefix = dirPrefix(target.prefix);
  const roles: CopyRoles = {
    reading: `the vault s3://${ctx.vault.bucket}/${vPrefix}`,
    writing: `the restore target s3://${target.bucket}/${prefix}`,
    whenChanged: `The vault's copy is not the one backup ${manifest.backupId} recorded: verify the backup, and restore another one`,
  };
  await mapBounded(entries, ctx.concurrency ?? DEFAULT_CONCURRENCY, (e) =>
    serverSideCopy(ctx.client, { fromBucket: ctx.vault.bucket, fromKey: vPrefix + e.vaultKey, etag: e.vaultEtag, size: e.size, toBucket: target.bucket, toKey: prefix + e.key }, {}, multipart, requests, roles),
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
