/**
 * `InMemoryLockedBucket`: a test double of one S3 bucket with versioning and Object Lock, as the
 * vault bucket is, answering through aws-sdk-client-mock the commands `S3VaultStore` sends. It
 * keeps what s3rver cannot: every version and delete marker of a key, a retain-until date, mode
 * and legal hold per version, and tags. Its rules are S3's, on a versioned bucket
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeleteMarker.html):
 * - a DELETE without a version id deletes nothing: it adds a delete marker;
 * - a DELETE of a version under a legal hold or before its retain-until date is refused with
 *   AccessDenied, unless a GOVERNANCE version is deleted with BypassGovernanceRetention;
 * - PutObjectRetention never shortens a date or leaves COMPLIANCE (GOVERNANCE only with the bypass);
 * - a retain-until date that is not in the future (PutObject, PutObjectRetention) is refused with
 *   400 InvalidArgument, "The retain until date must be in the future!";
 * - GetObjectRetention of a version without a retention answers NoSuchObjectLockConfiguration,
 *   HTTP 404, as S3 does (bench/faulty-s3.ts emulates the same).
 * Listings are single pages: the tests hold far fewer than 1000 keys.
 */
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectRetentionCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  PutObjectTaggingCommand,
  S3ServiceException,
  type S3Client,
  type Tag,
} from '@aws-sdk/client-s3';
import type { AwsClientStub } from 'aws-sdk-client-mock';

export type LockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** One version or delete marker of a key. */
export interface Version {
  readonly versionId: string;
  readonly marker: boolean;
  readonly body: Buffer;
  /** When it was written, on the bucket's clock: S3's LastModified. */
  readonly lastModified: Date;
  mode?: LockMode;
  retainUntil?: Date;
  legalHold: boolean;
  tags: Tag[];
}

/** What S3 answers a refused object-lock delete with (DeleteObjects per-key error, or DeleteObject). */
export const LOCK_REFUSAL = 'Access Denied because object protected by object lock.';

/** An error as the SDK raises it for an S3 error response: the code as name, the HTTP status in $metadata. */
export function s3Error(name: string, status: number, message: string): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

/** S3's answer to a retain-until date that is not in the future. */
function refusePast(until: Date, now: Date): void {
  if (until.getTime() <= now.getTime()) throw s3Error('InvalidArgument', 400, 'The retain until date must be in the future!');
}

function bodyOf(body: unknown): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  if (typeof body === 'string' || body instanceof Uint8Array) return Buffer.from(body as Uint8Array);
  throw new Error(`InMemoryLockedBucket: PutObject body of type ${(body as object).constructor?.name} is not supported (send bytes)`);
}

/** The part of the SDK's response body the store uses: a byte stream with transformToByteArray. */
function streamOf(bytes: Buffer): Readable {
  return Object.assign(Readable.from([bytes], { objectMode: false }), { transformToByteArray: async () => new Uint8Array(bytes) });
}

export class InMemoryLockedBucket {
  /** Versions of each full key, oldest first; the last is the latest. */
  private readonly keys = new Map<string, Version[]>();
  private seq = 0;

  /** `now` is S3's clock, against which it checks retain-until dates. */
  constructor(
    readonly name: string,
    public now: Date,
  ) {}

  /** Answers the store's commands on `s3` from this bucket. */
  install(s3: AwsClientStub<S3Client>): void {
    s3.on(PutObjectCommand).callsFake((i) => this.putObject(i.Key!, bodyOf(i.Body), i.ObjectLockMode as LockMode | undefined, i.ObjectLockRetainUntilDate, i.ObjectLockLegalHoldStatus === 'ON'));
    s3.on(GetObjectCommand).callsFake((i) => this.getObject(i.Key!, i.Range));
    s3.on(HeadObjectCommand).callsFake((i) => this.headObject(i.Key!, i.VersionId));
    s3.on(ListObjectsV2Command).callsFake((i) => this.listObjects(i.Prefix ?? ''));
    s3.on(ListObjectVersionsCommand).callsFake((i) => this.listVersions(i.Prefix ?? ''));
    s3.on(DeleteObjectsCommand).callsFake((i) => {
      const errors: { Key: string; VersionId?: string; Code: string; Message: string }[] = [];
      const deleted: { Key: string; VersionId?: string }[] = [];
      for (const o of i.Delete?.Objects ?? []) {
        const refusal = this.deleteOne(o.Key!, o.VersionId, i.BypassGovernanceRetention === true);
        if (refusal) errors.push({ Key: o.Key!, ...(o.VersionId ? { VersionId: o.VersionId } : {}), Code: 'AccessDenied', Message: refusal });
        else deleted.push({ Key: o.Key!, ...(o.VersionId ? { VersionId: o.VersionId } : {}) });
      }
      return { ...(errors.length ? { Errors: errors } : {}), ...(i.Delete?.Quiet ? {} : { Deleted: deleted }) };
    });
    s3.on(DeleteObjectCommand).callsFake((i) => {
      const refusal = this.deleteOne(i.Key!, i.VersionId, i.BypassGovernanceRetention === true);
      if (refusal) throw s3Error('AccessDenied', 403, refusal);
      return {};
    });
    s3.on(GetObjectRetentionCommand).callsFake((i) => {
      const v = this.target(i.Key!, i.VersionId);
      if (!v.retainUntil) throw s3Error('NoSuchObjectLockConfiguration', 404, 'The specified object does not have a ObjectLock configuration');
      return { Retention: { Mode: v.mode, RetainUntilDate: v.retainUntil } };
    });
    s3.on(PutObjectRetentionCommand).callsFake((i) => {
      const v = this.target(i.Key!, i.VersionId);
      const until = new Date(i.Retention!.RetainUntilDate!);
      refusePast(until, this.now);
      const mode = i.Retention!.Mode as LockMode;
      const active = v.retainUntil !== undefined && v.retainUntil.getTime() > this.now.getTime();
      const weaker = active && (until.getTime() < v.retainUntil!.getTime() || (v.mode === 'COMPLIANCE' && mode !== 'COMPLIANCE'));
      if (weaker && (v.mode === 'COMPLIANCE' || i.BypassGovernanceRetention !== true)) throw s3Error('AccessDenied', 403, 'Access Denied');
      v.mode = mode;
      v.retainUntil = until;
      return {};
    });
    s3.on(PutObjectLegalHoldCommand).callsFake((i) => {
      this.target(i.Key!, i.VersionId).legalHold = i.LegalHold?.Status === 'ON';
      return {};
    });
    s3.on(PutObjectTaggingCommand).callsFake((i) => {
      this.target(i.Key!, i.VersionId).tags = [...(i.Tagging?.TagSet ?? [])];
      return {};
    });
    s3.on(GetObjectTaggingCommand).callsFake((i) => ({ TagSet: this.target(i.Key!, i.VersionId).tags }));
    s3.on(DeleteObjectTaggingCommand).callsFake((i) => {
      this.target(i.Key!, i.VersionId).tags = [];
      return {};
    });
  }

  /** Every version and delete marker of `key`, oldest first (copies). */
  versions(key: string): Version[] {
    return (this.keys.get(key) ?? []).map((v) => ({ ...v, tags: [...v.tags] }));
  }

  /** The latest version of `key` unless it is a delete marker or there is none. */
  current(key: string): Version | undefined {
    const latest = this.keys.get(key)?.at(-1);
    return latest && !latest.marker ? latest : undefined;
  }

  /** Every key with a version or marker, sorted. */
  allKeys(prefix = ''): string[] {
    return [...this.keys.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  /**
   * Puts an older version (or delete marker) under `key`'s existing ones: what a retried upload
   * or an earlier delete without a version id leaves on a versioned bucket.
   */
  addOlder(key: string, what: { marker?: boolean; retainUntil?: Date; legalHold?: boolean } = {}): string {
    const versionId = `v${++this.seq}`;
    const body = this.current(key)?.body ?? Buffer.alloc(0);
    this.keys.set(key, [{ versionId, marker: what.marker === true, body: what.marker ? Buffer.alloc(0) : body, lastModified: new Date(this.now), ...(what.retainUntil ? { mode: 'GOVERNANCE' as const, retainUntil: what.retainUntil } : {}), legalHold: what.legalHold === true, tags: [] }, ...(this.keys.get(key) ?? [])]);
    return versionId;
  }

  /** Sets the lock of `key`'s latest version directly (what an earlier run or another backup left). */
  lock(key: string, lock: { mode?: LockMode; retainUntil?: Date; legalHold?: boolean }): void {
    const v = this.target(key);
    if (lock.retainUntil) Object.assign(v, { mode: lock.mode ?? 'GOVERNANCE', retainUntil: lock.retainUntil });
    if (lock.legalHold !== undefined) v.legalHold = lock.legalHold;
  }

  private putObject(key: string, body: Buffer, mode: LockMode | undefined, until: Date | string | undefined, legalHold: boolean) {
    if (until !== undefined) refusePast(new Date(until), this.now);
    const versionId = `v${++this.seq}`;
    const version: Version = { versionId, marker: false, body, lastModified: new Date(this.now), ...(until ? { mode: mode ?? 'GOVERNANCE', retainUntil: new Date(until) } : {}), legalHold, tags: [] };
    this.keys.set(key, [...(this.keys.get(key) ?? []), version]);
    return { VersionId: versionId, ETag: `"${versionId}"` };
  }

  private getObject(key: string, range: string | undefined) {
    const v = this.current(key);
    if (!v) throw s3Error('NoSuchKey', 404, 'The specified key does not exist.');
    let bytes = v.body;
    if (range) {
      const [, from, to] = /^bytes=(\d+)-(\d*)$/.exec(range) ?? [];
      if (from === undefined || Number(from) >= v.body.length) throw s3Error('InvalidRange', 416, 'The requested range is not satisfiable');
      bytes = v.body.subarray(Number(from), to ? Number(to) + 1 : undefined);
    }
    return { Body: streamOf(bytes) as never, ContentLength: bytes.length, VersionId: v.versionId };
  }

  private headObject(key: string, versionId: string | undefined) {
    const v = versionId ? this.keys.get(key)?.find((x) => x.versionId === versionId && !x.marker) : this.current(key);
    if (!v) throw s3Error('NotFound', 404, 'Not Found');
    return {
      ContentLength: v.body.length,
      VersionId: v.versionId,
      LastModified: v.lastModified,
      ...(v.retainUntil ? { ObjectLockMode: v.mode, ObjectLockRetainUntilDate: v.retainUntil } : {}),
      ObjectLockLegalHoldStatus: v.legalHold ? ('ON' as const) : ('OFF' as const),
    };
  }

  private listObjects(prefix: string) {
    const Contents = this.allKeys(prefix).flatMap((Key) => {
      const v = this.current(Key);
      return v ? [{ Key, Size: v.body.length, LastModified: v.lastModified }] : [];
    });
    return { Contents, KeyCount: Contents.length, IsTruncated: false };
  }

  private listVersions(prefix: string) {
    const Versions: { Key: string; VersionId: string; IsLatest: boolean; Size: number }[] = [];
    const DeleteMarkers: { Key: string; VersionId: string; IsLatest: boolean }[] = [];
    for (const Key of this.allKeys(prefix)) {
      const all = this.keys.get(Key)!;
      // Newest first, as S3 lists them.
      all.forEach((v, i) => {
        const entry = { Key, VersionId: v.versionId, IsLatest: i === all.length - 1 };
        if (v.marker) DeleteMarkers.push(entry);
        else Versions.push({ ...entry, Size: v.body.length });
      });
    }
    return { Versions: Versions.reverse(), DeleteMarkers: DeleteMarkers.reverse(), IsTruncated: false };
  }

  /** Deletes one version (or adds a delete marker); the refusal message when Object Lock forbids it. */
  private deleteOne(key: string, versionId: string | undefined, bypass: boolean): string | undefined {
    const all = this.keys.get(key) ?? [];
    if (versionId === undefined) {
      this.keys.set(key, [...all, { versionId: `v${++this.seq}`, marker: true, body: Buffer.alloc(0), lastModified: new Date(this.now), legalHold: false, tags: [] }]);
      return undefined;
    }
    const v = all.find((x) => x.versionId === versionId);
    if (!v) return undefined;
    if (!v.marker) {
      if (v.legalHold) return LOCK_REFUSAL;
      const retained = v.retainUntil !== undefined && v.retainUntil.getTime() > this.now.getTime();
      if (retained && !(v.mode === 'GOVERNANCE' && bypass)) return LOCK_REFUSAL;
    }
    const rest = all.filter((x) => x !== v);
    if (rest.length) this.keys.set(key, rest);
    else this.keys.delete(key);
    return undefined;
  }

  /** A version by id, or the latest one; NoSuchKey as S3 answers a missing or deleted key. */
  private target(key: string, versionId?: string): Version {
    const v = versionId ? this.keys.get(key)?.find((x) => x.versionId === versionId && !x.marker) : this.current(key);
    if (!v) throw s3Error('NoSuchKey', 404, 'The specified key does not exist.');
    return v;
  }
}
