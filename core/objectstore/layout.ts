/**
 * Where the copy of an S3-backed Milvus's bucket lives in the vault. This extends the layout of
 * core/vault/layout.ts (which owns every other key) and builds keys only through it; it sits
 * here until that module takes these functions in (the owner of core/vault decides):
 *
 * ```
 * <prefix>/
 *   milvus-objects/<aa>/<sha256>                          one copied Milvus object (content-addressed)
 *   backups/<backupId>/objects/manifest-<page>.jsonl.gz   one page of the backup's object manifest
 *   backups/<backupId>/objects/commit.json                the copy's commit: pages, counts, bytes
 * ```
 *
 * A copied object is named by the SHA-256 of (key below the Milvus root path, size, ETag).
 * Milvus segment objects (binlogs, stats logs, delta logs, index files) are written once and never
 * changed, so an object with the same key, size and ETag is the same object: a later backup (of
 * this Milvus, or of a restored copy of it under another bucket or root path) finds it in the
 * vault and does not copy it again. The key is part of the name because an ETag is not always a
 * digest of the content (multipart uploads, SSE-KMS), so two different objects could share one;
 * the hash keeps vault keys short whatever the source key's length (S3 keys stop at 1024 bytes)
 * and, with two hex digits in front, spreads the writes of a large copy over 256 prefixes (S3
 * scales its request rate per prefix). Like packs, these objects are shared by backups and are
 * deleted only by reference.
 */
import { createHash } from 'node:crypto';
import { backupPrefix } from '../vault/layout.js';

/** Prefix under which every copied Milvus object lives (for listing by the retention workflow). */
export const MILVUS_OBJECTS_PREFIX = 'milvus-objects/';

/** An S3 ETag without the quotes S3 puts around it (ListObjectsV2 and HeadObject return it quoted). */
export function bareEtag(etag: string): string {
  return etag.replace(/^"+|"+$/g, '');
}

/**
 * The vault key of a Milvus object: `milvus-objects/<aa>/<sha256 of key, size and ETag>`, with
 * `key` relative to the Milvus root path. Fields are joined with NUL, which an S3 key and an
 * ETag cannot hold, so no two triples hash the same input.
 */
export function milvusObjectKey(key: string, size: number, etag: string): string {
  const digest = createHash('sha256').update(`${key}\0${size}\0${bareEtag(etag)}`).digest('hex');
  return `${MILVUS_OBJECTS_PREFIX}${digest.slice(0, 2)}/${digest}`;
}

/** Prefix of a backup's object manifest and its commit. */
export function objectCopyPrefix(backupId: string): string {
  return `${backupPrefix(backupId)}objects/`;
}

/** One page of a backup's object manifest (1-based). Six digits keep a million pages sorted. */
export function objectManifestPageKey(backupId: string, page: number): string {
  if (!Number.isSafeInteger(page) || page < 1) throw new RangeError(`manifest page ${page} is not a positive integer`);
  return `${objectCopyPrefix(backupId)}manifest-${String(page).padStart(6, '0')}.jsonl.gz`;
}

/** The commit of a backup's object copy, written last: its presence means the copy is complete. */
export function objectCopyCommitKey(backupId: string): string {
  return `${objectCopyPrefix(backupId)}commit.json`;
}
