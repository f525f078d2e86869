/**
 * `S3VaultStore`: a vault in an S3 bucket under a prefix (`s3://bucket/prefix`), or on an
 * S3-compatible server (`endpoint`). Every write carries SSE-KMS (when a key is configured) and
 * the Object Lock mode and retain-until date (when given); retention of reused objects is
 * extended with PutObjectRetention, never shortened. Large files go up as multipart uploads
 * (`@aws-sdk/lib-storage`). Throttling and transient errors are retried by the SDK's adaptive
 * retry strategy, which also slows the client down when S3 answers SlowDown.
 *
 * Deletes. The vault bucket is versioned with Object Lock. There a DELETE without a version id
 * deletes nothing: it adds a delete marker that makes the key look deleted
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeleteMarker.html), and a retention
 * date or legal hold protects one object version, not the key
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html). So a delete lists
 * the key's versions and delete markers (ListObjectVersions with the key, or its directory, as
 * prefix, then an exact-key filter) and deletes each by version id with DeleteObjects, which
 * takes up to 1000 keys with optional version ids and in quiet mode answers only the keys it
 * could not delete (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeletingMultipleObjects.html). A
 * locked version makes S3 answer AccessDenied ("Access Denied because object protected by
 * object lock"); nothing here ever sends `x-amz-bypass-governance-retention`.
 * - `delete` checks first: a HeadObject per version reads its retain-until date and legal hold
 *   (ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus); if any version is locked it throws
 *   `ObjectLockedError` and deletes nothing. A key has one version in the normal case.
 * - `deleteMany` (garbage collection) cannot afford a request per object, so it does not check;
 *   it orders instead: noncurrent versions and delete markers first, the current version only
 *   of keys whose older versions all went. A key S3 refuses therefore keeps its current,
 *   readable version, and is reported with the refusal.
 * Archive classes (https://docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects.html).
 * An object the lifecycle moved into GLACIER or DEEP_ARCHIVE cannot be read: GetObject answers
 * 403 InvalidObjectState, which reads map to `ObjectArchivedError`
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html). HeadObject still answers,
 * with the class in `x-amz-storage-class` (absent for STANDARD) and, once a thaw was asked for, the
 * `x-amz-restore` header: `ongoing-request="true"` while it runs, `ongoing-request="false",
 * expiry-date="..."` once the copy is readable (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html).
 * `thaw` heads first and sends RestoreObject with `Days` and `GlacierJobParameters.Tier` only when
 * no thaw runs and no copy is there; S3 answers 409 RestoreAlreadyInProgress to a second request
 * while one runs, and 503 GlacierExpeditedRetrievalNotAvailable when Expedited has no capacity
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_RestoreObject.html). Deep Archive has no
 * Expedited tier (https://docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects-retrieval-options.html),
 * so that is refused before a request. The archivable tag is the object's only tag: PutObjectTagging
 * replaces the tag set, DeleteObjectTagging removes it, GetObjectTagging reads it; the lifecycle
 * rules filter on it (https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-filters.html).
 *
 * - A server that cannot list versions (s3rver: MethodNotAllowed; no versioning, hence no
 *   Object Lock) gets plain deletes without a version id, which remove the data there. One that
 *   lists but has no versioning reports version id "null", which S3 accepts as a version id.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  GetObjectRetentionCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  PutObjectTaggingCommand,
  RestoreObjectCommand,
  S3Client,
  type ObjectLockMode,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Semaphore } from './semaphore.js';
import {
  ARCHIVABLE_TAG,
  isArchiveClass,
  isLocked,
  ObjectArchivedError,
  ObjectExistsError,
  ObjectLockedError,
  ObjectNotFoundError,
  ShortReadError,
  ThawTierUnavailableError,
  VaultReadInterruptedError,
  DOWNLOAD_ATTEMPTS,
  isChecksumMismatch,
  isCutShort,
  ObjectChecksumMismatchError,
  type DeleteManyResult,
  type LockState,
  type ObjectInfo,
  type PutOptions,
  type ThawOptions,
  type ThawResult,
  type VaultStore,
} from './store.js';

/** How to reach and write the bucket. */
export interface S3VaultOptions {
  readonly bucket: string;
  /** Key prefix inside the bucket, without a trailing slash. @default '' (bucket root) */
  readonly prefix?: string;
  /** A ready client (tests pass one wired to a mock). @default a client built from the fields below */
  readonly client?: S3Client;
  /** @default the SDK's region resolution (AWS_REGION, profile) */
  readonly region?: string;
  /** An S3-compatible endpoint; path-style addressing is used with it. @default AWS S3 */
  readonly endpoint?: string;
  /** Static credentials (an S3-compatible server's keys). @default the SDK's default provider chain */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** KMS key id or ARN for SSE-KMS on every object written. @default the bucket's default encryption */
  readonly kmsKeyId?: string;
  /** Object Lock mode sent with retain-until dates. @default 'GOVERNANCE' */
  readonly objectLockMode?: ObjectLockMode;
  /** Attempts per request before giving up (adaptive retry with backoff). @default 10 */
  readonly maxAttempts?: number;
  /**
   * When to send flexible checksums. AWS requires an integrity checksum on Object-Lock writes,
   * so keep the default there; some S3-compatible servers store the aws-chunked framing of
   * checksummed streams verbatim and need 'WHEN_REQUIRED'. @default 'WHEN_SUPPORTED'
   */
  readonly checksums?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
  /** Objects larger than this go up as multipart uploads in parts of this size (S3's minimum is 5 MiB). @default 16 MiB */
  readonly partSize?: number;
  /** The clock `delete` checks retain-until dates against before it asks S3. @default the real time */
  readonly now?: () => Date;
}

/** S3's DeleteObjects takes at most this many keys (with version ids) per request. */
const DELETE_BATCH = 1000;

/** One version or delete marker of a key (the key relative to the vault prefix). */
interface KeyVersion {
  readonly key: string;
  /** "null" for the version of an unversioned bucket; undefined only if a server sends none. */
  readonly versionId: string | undefined;
  readonly latest: boolean;
  readonly marker: boolean;
}

/** S3 refused to delete a version for a reason other than Object Lock. */
export class S3DeleteError extends Error {
  readonly key: string;
  readonly code: string;
  constructor(vaultUrl: string, key: string, code: string, message: string, options?: { cause?: unknown }) {
    super(`cannot delete object ${key} in vault ${vaultUrl}: S3 answered ${code}: ${message}`, options);
    this.name = 'S3DeleteError';
    this.key = key;
    this.code = code;
  }
}

/** A server that does not implement an API (s3rver has no ListObjectVersions). */
function isUnsupported(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NotImplemented' || e?.name === 'MethodNotAllowed' || e?.$metadata?.httpStatusCode === 501 || e?.$metadata?.httpStatusCode === 405;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

const errorName = (err: unknown): string | undefined => (err as { name?: string } | undefined)?.name;

/** SHA-256 of everything `stream` yields. */
async function sha256Of(stream: Readable): Promise<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Uint8Array);
  return hash.digest();
}

/** Tries of a create-only write that S3 answers 409 ConditionalRequestConflict (see `created`). */
const CONFLICT_ATTEMPTS = 3;

/** How long a vault request's socket may go without a byte either way (see the client's options). */
const SOCKET_IDLE_TIMEOUT_MS = 60_000;

/**
 * Parses S3's `x-amz-restore` header: `ongoing-request="true"`, or `ongoing-request="false",
 * expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`. Undefined for an absent or unreadable header.
 */
export function parseRestoreHeader(value: string | undefined): ObjectInfo['restore'] {
  if (!value) return undefined;
  const ongoing = /ongoing-request\s*=\s*"(true|false)"/i.exec(value)?.[1];
  if (ongoing === undefined) return undefined;
  if (ongoing.toLowerCase() === 'true') return { ongoing: true };
  const expiry = /expiry-date\s*=\s*"([^"]+)"/i.exec(value)?.[1];
  const expiresAt = expiry === undefined ? undefined : new Date(expiry);
  return { ongoing: false, ...(expiresAt && !Number.isNaN(expiresAt.getTime()) ? { expiresAt } : {}) };
}

export class S3VaultStore implements VaultStore {
  readonly url: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly kmsKeyId: string | undefined;
  private readonly lockMode: ObjectLockMode;
  private readonly partSize: number;
  private readonly now: () => Date;
  /** Set once the server answered that it cannot list versions (see the module comment). */
  private versionsUnsupported = false;

  constructor(options: S3VaultOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ? `${options.prefix.replace(/\/+$/, '')}/` : '';
    this.url = `s3://${this.bucket}/${this.prefix}`;
    this.kmsKeyId = options.kmsKeyId;
    this.lockMode = options.objectLockMode ?? 'GOVERNANCE';
    this.partSize = options.partSize ?? 16 * 1024 * 1024;
    this.now = options.now ?? (() => new Date());
    this.client =
      options.client ??
      new S3Client({
        ...(options.region ? { region: options.region } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
        retryMode: 'adaptive',
        maxAttempts: options.maxAttempts ?? 10,
        // A connection that goes silent (half-open) fails after a minute without a byte, the
        // AWS CLI's read timeout, instead of holding a Lambda or a Job until its deadline: a
        // TimeoutError, retried by the SDK before the answer and by getBytes after it. The
        // socket timeout is an idle one, through the body (@smithy/node-http-handler
        // setSocketTimeout), so a long download that keeps moving never hits it.
        requestHandler: { socketTimeout: SOCKET_IDLE_TIMEOUT_MS },
        requestChecksumCalculation: options.checksums ?? 'WHEN_SUPPORTED',
        responseChecksumValidation: options.checksums ?? 'WHEN_SUPPORTED',
      });
  }

  private writeParams(key: string, options?: PutOptions): PutObjectCommandInput {
    return {
      Bucket: this.bucket,
      Key: this.prefix + key,
      ...(this.kmsKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: this.kmsKeyId, BucketKeyEnabled: true } : {}),
      ...(options?.retainUntil ? { ObjectLockMode: this.lockMode, ObjectLockRetainUntilDate: options.retainUntil } : {}),
      // Sent on PutObject, and by lib-storage's Upload on CompleteMultipartUpload (it passes the
      // params to every request, and the create and part requests have no such field).
      ...(options?.ifAbsent ? { IfNoneMatch: '*' } : {}),
    };
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    // A pack that a hashing thread read files into lives in shared memory: the SDK's checksum
    // and the socket get a private copy (16 MiB, a few milliseconds against the request's time).
    if (body.buffer instanceof SharedArrayBuffer) body = Buffer.from(body);
    // Above the part size (a pack, with a part size below the pack size), the multipart upload
    // of putFile: a part that fails is sent again on its own, not the whole object.
    const sent = body;
    await this.created(
      key,
      options,
      async () => {
        if (sent.length > this.partSize) await this.upload(key, sent, options);
        else await this.client.send(new PutObjectCommand({ ...this.writeParams(key, options), Body: sent, ContentLength: sent.length }));
      },
      async () => createHash('sha256').update(sent).digest(),
    );
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<void> {
    await this.created(
      key,
      options,
      () => this.upload(key, createReadStream(path, { highWaterMark: 1 << 20 }), options),
      () => sha256Of(createReadStream(path, { highWaterMark: 1 << 20 })),
    );
  }

  /**
   * Runs `write`; for a write that may only create (`ifAbsent`), also copes with what S3 answers
   * when the same write was already done or is under way:
   * - 409 ConditionalRequestConflict: another conditional write of the key was in flight (the
   *   SDK sent this one again after a timeout while the first still ran). AWS says to start
   *   again, a multipart upload from CreateMultipartUpload: the whole write is sent again, a
   *   few times, and then meets the object or a 412.
   * - 412 PreconditionFailed, or 404 NoSuchUpload from a CompleteMultipartUpload sent again after
   *   the first completed: done, when the object there holds the bytes this write sent (its
   *   answer was lost); `ObjectExistsError` when it holds other bytes.
   * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html)
   */
  private async created(key: string, options: PutOptions | undefined, write: () => Promise<void>, sent: () => Promise<Buffer>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (!options?.ifAbsent) throw err;
        const name = errorName(err);
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if ((name === 'ConditionalRequestConflict' || status === 409) && attempt < CONFLICT_ATTEMPTS) continue;
        if (!(name === 'PreconditionFailed' || status === 412 || name === 'NoSuchUpload')) throw err;
        let there: Buffer;
        try {
          there = await sha256Of(await this.openRead(key));
        } catch (readErr) {
          // NoSuchUpload and no object: the upload really is gone.
          if (readErr instanceof ObjectNotFoundError) throw err;
          throw readErr;
        }
        if (!there.equals(await sent())) throw new ObjectExistsError(this.url, key, { cause: err });
        return;
      }
    }
  }

  private async upload(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { ...this.writeParams(key, options), Body: body },
      partSize: this.partSize,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async get(key: string): Promise<Buffer> {
    return Buffer.from(await this.getBytes(key));
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const bytes = await this.getBytes(key, `bytes=${offset}-${offset + length - 1}`);
    if (bytes.length !== length) throw new ShortReadError(this.url, key, `${length} bytes at ${offset}`, bytes.length);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private async getBytes(key: string, range?: string): Promise<Uint8Array> {
    // The SDK retries a request until it has an answer, not the body's download after it: a
    // download cut short is asked for again, a few times (reads are idempotent).
    for (let attempt = 1; ; attempt++) {
      let body: GetObjectCommandOutput['Body'];
      try {
        body = (await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, ...(range ? { Range: range } : {}) }))).Body;
      } catch (err) {
        if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
        if ((err as { name?: string }).name === 'InvalidRange') throw new ShortReadError(this.url, key, range ?? 'the object', 0);
        throw this.archived(key, err);
      }
      if (!body) return new Uint8Array();
      try {
        return await body.transformToByteArray();
      } catch (err) {
        const checksum = isChecksumMismatch(err);
        if (!checksum && !isCutShort(err)) throw err;
        if (attempt >= DOWNLOAD_ATTEMPTS) throw checksum ? new ObjectChecksumMismatchError(this.url, key, err, attempt) : new VaultReadInterruptedError(this.url, key, err, attempt);
      }
    }
  }

  /** S3's InvalidObjectState (an archived object without a thawed copy) as `ObjectArchivedError`; other errors unchanged. */
  private archived(key: string, err: unknown): unknown {
    if (errorName(err) !== 'InvalidObjectState') return err;
    return new ObjectArchivedError(this.url, key, (err as { StorageClass?: string }).StorageClass, { cause: err });
  }

  async openRead(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw this.archived(key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      // The lock headers come back only with s3:GetObjectRetention / s3:GetObjectLegalHold.
      const restore = parseRestoreHeader(out.Restore);
      return {
        key,
        size: out.ContentLength ?? 0,
        ...(out.ObjectLockRetainUntilDate ? { retainUntil: out.ObjectLockRetainUntilDate } : {}),
        ...(out.ObjectLockMode ? { lockMode: out.ObjectLockMode } : {}),
        legalHold: out.ObjectLockLegalHoldStatus === 'ON',
        ...(out.StorageClass && out.StorageClass !== 'STANDARD' ? { storageClass: out.StorageClass } : {}),
        ...(restore ? { restore } : {}),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: this.prefix + prefix })) {
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, ...(o.LastModified ? { lastModified: o.LastModified } : {}), ...(o.StorageClass && o.StorageClass !== 'STANDARD' ? { storageClass: o.StorageClass } : {}) };
      }
    }
  }

  /** A PUT that returned is durable on S3: nothing to do. */
  async flush(): Promise<void> {}

  async extendRetention(key: string, until: Date, known?: Pick<ObjectInfo, 'retainUntil' | 'lockMode'>): Promise<boolean> {
    // A HEAD reports nothing for an object without a lock (and nothing to a caller without
    // s3:GetObjectRetention, which the request below is refused as well): without both date
    // and mode, ask for the lock itself.
    let current: { Mode?: ObjectLockMode | string; RetainUntilDate?: Date } | undefined =
      known?.retainUntil && known.lockMode ? { Mode: known.lockMode, RetainUntilDate: known.retainUntil } : undefined;
    if (!current) {
      try {
        current = (await this.client.send(new GetObjectRetentionCommand({ Bucket: this.bucket, Key: this.prefix + key }))).Retention;
      } catch (err) {
        // An object that never had a retention reports NoSuchObjectLockConfiguration, with HTTP
        // 404 like a missing key: tell them apart by name before taking a 404 for "no object".
        if ((err as { name?: string }).name !== 'NoSuchObjectLockConfiguration') {
          if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
          throw err;
        }
      }
    }
    if (current?.RetainUntilDate && current.RetainUntilDate.getTime() >= until.getTime()) return false;
    // Keep the object's own mode: COMPLIANCE cannot be turned into GOVERNANCE, and extending
    // within the same mode needs no bypass permission.
    const mode = (current?.Mode as ObjectLockMode | undefined) ?? this.lockMode;
    try {
      await this.client.send(new PutObjectRetentionCommand({ Bucket: this.bucket, Key: this.prefix + key, Retention: { Mode: mode, RetainUntilDate: until } }));
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
    return true;
  }

  /**
   * Places or releases a legal hold on the current version with PutObjectLegalHold, status ON
   * or OFF (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectLegalHold.html). A
   * hold has no date and blocks deletes in either lock mode until it is released.
   */
  async setLegalHold(key: string, on: boolean): Promise<void> {
    try {
      await this.client.send(new PutObjectLegalHoldCommand({ Bucket: this.bucket, Key: this.prefix + key, LegalHold: { Status: on ? 'ON' : 'OFF' } }));
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
  }

  async markArchivable(key: string, on: boolean): Promise<void> {
    const target = { Bucket: this.bucket, Key: this.prefix + key };
    try {
      if (on) await this.client.send(new PutObjectTaggingCommand({ ...target, Tagging: { TagSet: [{ Key: ARCHIVABLE_TAG, Value: 'true' }] } }));
      else await this.client.send(new DeleteObjectTaggingCommand(target));
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
  }

  async isArchivable(key: string): Promise<boolean> {
    try {
      const out = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return (out.TagSet ?? []).some((t) => t.Key === ARCHIVABLE_TAG && t.Value === 'true');
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
  }

  async thaw(key: string, options: ThawOptions): Promise<ThawResult> {
    const info = await this.head(key);
    if (!info) throw new ObjectNotFoundError(this.url, key);
    if (!isArchiveClass(info.storageClass)) return 'available';
    if (info.restore) return info.restore.ongoing ? 'in-progress' : 'available';
    if (options.tier === 'Expedited' && info.storageClass === 'DEEP_ARCHIVE') throw new ThawTierUnavailableError(this.url, key, 'Expedited', 'S3 Glacier Deep Archive does not offer Expedited retrievals');
    try {
      await this.client.send(new RestoreObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, RestoreRequest: { Days: options.days, GlacierJobParameters: { Tier: options.tier } } }));
      return 'started';
    } catch (err) {
      const name = errorName(err);
      // Another restore (a retried Task, a second restore of the same backup) asked first.
      if (name === 'RestoreAlreadyInProgress') return 'in-progress';
      if (name === 'GlacierExpeditedRetrievalNotAvailable') throw new ThawTierUnavailableError(this.url, key, 'Expedited', 'S3 has no Expedited capacity now', { cause: err });
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const listed = await this.listVersions([key]);
    if (!listed) {
      // No version listing, so no versioning and no Object Lock: a plain DELETE removes the data.
      // Should the server lock anyway, its HEAD says so: do not hide the object behind a marker.
      const info = await this.head(key);
      if (info && isLocked(info, this.now())) throw new ObjectLockedError(this.url, key, info);
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return;
    }
    const listFailure = listed.failed.get(key);
    if (listFailure) throw listFailure;
    const versions = listed.found.get(key) ?? [];
    // Check every version before deleting any, so a refusal leaves the key whole.
    const locks = await Promise.all(versions.filter((v) => !v.marker).map((v) => this.versionLock(key, v.versionId)));
    const now = this.now();
    const blocking = locks.filter((l) => isLocked(l, now));
    if (blocking.length > 0) {
      const latest = blocking.map((l) => l.retainUntil).filter((d): d is Date => d !== undefined && d > now).sort((a, b) => b.getTime() - a.getTime())[0];
      throw new ObjectLockedError(this.url, key, { ...(latest ? { retainUntil: latest } : {}), legalHold: blocking.some((l) => l.legalHold) });
    }
    const failed = await this.removeVersions(versions);
    const error = failed.get(key);
    if (error) throw error;
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    const unique = [...new Set(keys)];
    const failed = new Map<string, Error>();
    const listed = await this.listVersions(unique);
    if (listed) {
      for (const [key, error] of listed.failed) failed.set(key, error);
      const versions = unique.filter((k) => !failed.has(k)).flatMap((k) => listed.found.get(k) ?? []);
      for (const [key, error] of await this.removeVersions(versions)) failed.set(key, error);
    } else {
      const plain = unique.map((key): KeyVersion => ({ key, versionId: undefined, latest: true, marker: false }));
      for (const [key, error] of await this.deleteBatches(plain)) failed.set(key, error);
    }
    return { deleted: unique.filter((k) => !failed.has(k)), failed: unique.flatMap((key) => (failed.has(key) ? [{ key, error: failed.get(key)! }] : [])) };
  }

  /** The retention and legal hold of one version, from HeadObject. */
  private async versionLock(key: string, versionId: string | undefined): Promise<LockState> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, ...(versionId ? { VersionId: versionId } : {}) }));
      return { ...(out.ObjectLockRetainUntilDate ? { retainUntil: out.ObjectLockRetainUntilDate } : {}), legalHold: out.ObjectLockLegalHoldStatus === 'ON' };
    } catch (err) {
      if (isNotFound(err)) return {}; // gone meanwhile: nothing to protect
      throw err;
    }
  }

  /**
   * Every version and delete marker of each key, or undefined when the server cannot list
   * versions. Keys that share a directory (packs: `data/packs/ab/`) are found with one listing
   * of that directory, 1000 versions a page, rather than a request per key; a key alone in its
   * directory is listed with itself as the prefix.
   */
  private async listVersions(keys: readonly string[]): Promise<{ found: Map<string, KeyVersion[]>; failed: Map<string, Error> } | undefined> {
    if (this.versionsUnsupported) return undefined;
    const wanted = new Set(keys);
    const byDir = new Map<string, string[]>();
    for (const key of wanted) {
      const dir = key.slice(0, key.lastIndexOf('/') + 1);
      const inDir = byDir.get(dir);
      if (inDir) inDir.push(key);
      else byDir.set(dir, [key]);
    }
    const prefixes: [prefix: string, keys: string[]][] = [...byDir].flatMap(([dir, inDir]): [string, string[]][] => (inDir.length > 1 && dir !== '' ? [[dir, inDir]] : inDir.map((k) => [k, [k]])));
    const found = new Map<string, KeyVersion[]>();
    const failed = new Map<string, Error>();
    const slots = new Semaphore(4);
    let unsupported = false;
    await Promise.all(
      prefixes.map(async ([prefix, inPrefix]) => {
        await slots.acquire();
        try {
          let keyMarker: string | undefined;
          let versionIdMarker: string | undefined;
          for (;;) {
            const page = await this.client.send(
              new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: this.prefix + prefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(versionIdMarker ? { VersionIdMarker: versionIdMarker } : {}) }),
            );
            const entries = [...(page.Versions ?? []).map((v) => ({ ...v, marker: false })), ...(page.DeleteMarkers ?? []).map((m) => ({ ...m, marker: true }))];
            for (const e of entries) {
              const key = e.Key?.slice(this.prefix.length);
              // The prefix also matches longer keys (`x.pack` and `x.pack.old`): exact keys only.
              if (key === undefined || !e.Key!.startsWith(this.prefix) || !wanted.has(key)) continue;
              const version = { key, versionId: e.VersionId, latest: e.IsLatest === true, marker: e.marker };
              const ofKey = found.get(key);
              if (ofKey) ofKey.push(version);
              else found.set(key, [version]);
            }
            if (!page.IsTruncated) break;
            keyMarker = page.NextKeyMarker;
            versionIdMarker = page.NextVersionIdMarker;
            if (!keyMarker && !versionIdMarker) break;
          }
        } catch (err) {
          if (isUnsupported(err)) unsupported = true;
          // Not listed, so not deleted: each of its keys is reported, the others go on.
          else for (const key of inPrefix) failed.set(key, err as Error);
        } finally {
          slots.release();
        }
      }),
    );
    if (unsupported) {
      this.versionsUnsupported = true;
      return undefined;
    }
    return { found, failed };
  }

  /**
   * Deletes versions in two rounds: noncurrent versions and delete markers, then the current
   * version of each key none of whose older versions was refused. A refused key keeps its
   * current version (still readable). Returns the first failure of each key that had one.
   */
  private async removeVersions(versions: readonly KeyVersion[]): Promise<Map<string, Error>> {
    const failed = await this.deleteBatches(versions.filter((v) => v.marker || !v.latest));
    const current = versions.filter((v) => !v.marker && v.latest && !failed.has(v.key));
    for (const [key, error] of await this.deleteBatches(current)) failed.set(key, error);
    return failed;
  }

  /** DeleteObjects in quiet mode, at most 1000 versions a request; per-key failures, never thrown. */
  private async deleteBatches(versions: readonly KeyVersion[]): Promise<Map<string, Error>> {
    const failed = new Map<string, Error>();
    const slots = new Semaphore(4);
    const batches: KeyVersion[][] = [];
    for (let i = 0; i < versions.length; i += DELETE_BATCH) batches.push(versions.slice(i, i + DELETE_BATCH));
    await Promise.all(
      batches.map(async (batch) => {
        await slots.acquire();
        try {
          const out = await this.client.send(
            new DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Quiet: true, Objects: batch.map((v) => ({ Key: this.prefix + v.key, ...(v.versionId !== undefined ? { VersionId: v.versionId } : {}) })) },
            }),
          );
          for (const e of out.Errors ?? []) {
            const key = (e.Key ?? '').slice(this.prefix.length);
            if (!failed.has(key)) failed.set(key, this.refusal(key, e.VersionId, e.Code ?? 'UnknownError', e.Message ?? ''));
          }
        } catch (err) {
          // The whole request failed (after the SDK's retries): each of its keys is reported.
          for (const v of batch) if (!failed.has(v.key)) failed.set(v.key, err as Error);
        } finally {
          slots.release();
        }
      }),
    );
    return failed;
  }

  /** A per-key DeleteObjects error as a named error: Object Lock refusals as ObjectLockedError. */
  private refusal(key: string, versionId: string | undefined, code: string, message: string): Error {
    if (code === 'AccessDenied' && /object lock/i.test(message)) {
      return new ObjectLockedError(this.url, key, {}, { detail: `S3 refused version ${versionId ?? '(none)'}: ${message}` });
    }
    return new S3DeleteError(this.url, key, code, message);
  }
}
