/**
 * One object copied inside S3, without its bytes passing through us: CopyObject up to the
 * multipart threshold (S3 copies at most 5 GiB in one request), above it a multipart upload
 * whose parts are UploadPartCopy requests of byte ranges of the source
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/CopyingObjectsMPUapi.html).
 *
 * Every request names the ETag the source listed in `x-amz-copy-source-if-match`: an object
 * that changed after it was listed fails with 412 PreconditionFailed instead of putting other
 * bytes under the listed object's name (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html,
 * API_UploadPartCopy.html). Writes carry what the vault's other writes carry
 * (core/vault/s3-store.ts `writeParams`): SSE-KMS with the vault's key and the Object Lock mode
 * and retain-until date.
 *
 * CopyObject is one request to the destination's endpoint that reads the source itself, so one
 * endpoint and one set of credentials must reach both buckets: on AWS, the backup role needs read
 * on the source prefix and write on the vault (across accounts, the source bucket's policy must
 * grant that role read); two S3-compatible servers cannot copy between each other. A local
 * s3rver that holds both buckets copies server-side too (through its disk).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type ObjectLockMode,
  type S3Client,
} from '@aws-sdk/client-s3';
import { mapBounded } from './bounded.js';
import type { RequestCounts } from './manifest.js';

/** S3 copies at most this much with one CopyObject. */
export const MAX_SINGLE_COPY = 5 * 1024 ** 3;
/** Smallest part S3 accepts in a multipart upload (all but the last). */
export const MIN_PART = 5 * 1024 ** 2;
/** Largest part and most parts S3 accepts. */
export const MAX_PART = 5 * 1024 ** 3;
export const MAX_PARTS = 10_000;

/** What every write into the destination carries. */
export interface WriteProtection {
  readonly kmsKeyId?: string;
  readonly objectLockMode?: ObjectLockMode;
  readonly retainUntil?: Date;
}

/** How large objects are copied. */
export interface MultipartSettings {
  /** Objects larger than this are copied in parts. At most 5 GiB (S3's CopyObject limit). */
  readonly threshold: number;
  /** Bytes per UploadPartCopy (raised when an object would need more than 10,000 parts). At least 5 MiB. */
  readonly partSize: number;
  /** Parts of one object copied at once. */
  readonly partConcurrency: number;
}

/** One copy: from where, to where, and what the source must still be. */
export interface CopyRequest {
  readonly fromBucket: string;
  readonly fromKey: string;
  /** The ETag the copy is conditional on (as listed). */
  readonly etag: string;
  readonly size: number;
  readonly toBucket: string;
  readonly toKey: string;
}

/** Who reads and who writes, for error messages that say which permission is missing. */
export interface CopyRoles {
  /** "the source s3://milvus/files/" or "the vault s3://vault/" */
  readonly reading: string;
  readonly writing: string;
  /** What to do when the source changed or vanished during the copy. */
  readonly whenChanged: string;
}

/** What a backup says when a listed object changed during its copy. */
export const BACKUP_WHEN_CHANGED = "In a backup, keep Milvus's garbage collection paused from before the etcd snapshot until the object copy is done, then run the backup again";

/** S3 answered AccessDenied to a copy or listing: a missing permission, named with the object. */
export class ObjectCopyAccessDeniedError extends Error {
  readonly key: string;
  constructor(message: string, key: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ObjectCopyAccessDenied';
    this.key = key;
  }
}

/**
 * A listed object changed (another ETag: 412 PreconditionFailed) or disappeared (NoSuchKey)
 * before it was copied. In a backup that means Milvus rewrote or garbage-collected it: its GC
 * must stay paused (and its lease renewed) from before the etcd snapshot until the copy is done.
 */
export class SourceObjectChangedError extends Error {
  readonly key: string;
  constructor(message: string, key: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceObjectChanged';
    this.key = key;
  }
}

const s3Name = (err: unknown): string | undefined => (err as { name?: string; Code?: string } | undefined)?.name;
const s3Status = (err: unknown): number | undefined => (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;

/** `bucket/key` for `x-amz-copy-source`, URL-encoded as S3 requires (slashes kept). */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * The object at `url` (key `key`) no longer has the ETag a copy was made conditional on. One
 * wording for every backend, so a message reads the same whichever storage refused the copy.
 */
export function sourceChanged(url: string, key: string, etag: string, roles: CopyRoles, options?: { cause?: unknown; found?: string }): SourceObjectChangedError {
  const found = options?.found ? `: its content hashes to ${options.found}` : '';
  return new SourceObjectChangedError(`${url} changed while it was being copied (it no longer has the listed ETag ${etag}${found}); nothing was copied under its name. ${roles.whenChanged}`, key, options?.cause === undefined ? undefined : { cause: options.cause });
}

/** The object at `url` (key `key`) was deleted after it was listed (see `sourceChanged`). */
export function sourceDeleted(url: string, key: string, roles: CopyRoles, options?: { cause?: unknown }): SourceObjectChangedError {
  return new SourceObjectChangedError(`${url} was deleted after it was listed. ${roles.whenChanged}`, key, options);
}

/** An S3 error of a copy as one of the named errors above when it is one; otherwise unchanged. */
export function copyError(err: unknown, req: CopyRequest, roles: CopyRoles): unknown {
  const name = s3Name(err);
  const status = s3Status(err);
  const from = `s3://${req.fromBucket}/${req.fromKey}`;
  if (name === 'PreconditionFailed' || status === 412) return sourceChanged(from, req.fromKey, req.etag, roles, { cause: err });
  if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload')) return sourceDeleted(from, req.fromKey, roles, { cause: err });
  if (name === 'AccessDenied' || status === 403) {
    return new ObjectCopyAccessDeniedError(
      `copying ${from} to s3://${req.toBucket}/${req.toKey} was refused (AccessDenied): grant the role s3:GetObject on ${roles.reading} (and kms:Decrypt on its KMS key, if any) and s3:PutObject on ${roles.writing} (and kms:GenerateDataKey on its key)`,
      req.fromKey,
      { cause: err },
    );
  }
  return err;
}

/** The byte ranges of a multipart copy of `size` bytes, `partSize` each but never more than 10,000. */
export function partRanges(size: number, partSize: number): { start: number; end: number }[] {
  const each = Math.min(MAX_PART, Math.max(partSize, Math.ceil(size / MAX_PARTS)));
  const out: { start: number; end: number }[] = [];
  for (let start = 0; start < size; start += each) out.push({ start, end: Math.min(size, start + each) - 1 });
  return out;
}

function protection(p: WriteProtection) {
  return {
    ...(p.kmsKeyId ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: p.kmsKeyId, BucketKeyEnabled: true } : {}),
    ...(p.retainUntil ? { ObjectLockMode: p.objectLockMode ?? 'GOVERNANCE', ObjectLockRetainUntilDate: p.retainUntil } : {}),
  };
}

/**
 * Copies one object server-side (see the module documentation) and returns the ETag of the
 * copy. Counts its requests into `counts`. A failure is thrown as a named error where S3's
 * answer has a meaning here (the source changed, a permission is missing); a failed multipart
 * copy is aborted (best effort: a bucket lifecycle rule with AbortIncompleteMultipartUpload
 * cleans what an abort that could not be sent, or a crash, leaves).
 */
export async function serverSideCopy(client: S3Client, req: CopyRequest, write: WriteProtection, multipart: MultipartSettings, counts: RequestCounts, roles: CopyRoles): Promise<string> {
  const source = copySource(req.fromBucket, req.fromKey);
  try {
    if (req.size <= multipart.threshold) {
      counts.copy++;
      const out = await client.send(new CopyObjectCommand({ Bucket: req.toBucket, Key: req.toKey, CopySource: source, CopySourceIfMatch: req.etag, ...protection(write) }));
      return out.CopyObjectResult?.ETag ?? '';
    }
    counts.multipart++;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: req.toBucket, Key: req.toKey, ...protection(write) }));
    if (!UploadId) throw new Error(`S3 started no multipart upload for s3://${req.toBucket}/${req.toKey} (no UploadId in its answer)`);
    try {
      const ranges = partRanges(req.size, multipart.partSize);
      const etags = await mapBounded(ranges, multipart.partConcurrency, async ({ start, end }, i) => {
        counts.copyPart++;
        const out = await client.send(
          new UploadPartCopyCommand({ Bucket: req.toBucket, Key: req.toKey, UploadId, PartNumber: i + 1, CopySource: source, CopySourceIfMatch: req.etag, CopySourceRange: `bytes=${start}-${end}` }),
        );
        return out.CopyPartResult?.ETag ?? '';
      });
      counts.multipart++;
      const done = await client.send(
        new CompleteMultipartUploadCommand({ Bucket: req.toBucket, Key: req.toKey, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
      );
      return done.ETag ?? '';
    } catch (err) {
      counts.multipart++;
      await client.send(new AbortMultipartUploadCommand({ Bucket: req.toBucket, Key: req.toKey, UploadId })).catch(() => undefined);
      throw err;
    }
  } catch (err) {
    throw copyError(err, req, roles);
  }
}
