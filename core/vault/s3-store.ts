/**
 * `S3VaultStore`: a vault in an S3 bucket under a prefix (`s3://bucket/prefix`), or on an
 * S3-compatible server (`endpoint`). Every write carries SSE-KMS (when a key is configured) and
 * the Object Lock mode and retain-until date (when given); retention of reused objects is
 * extended with PutObjectRetention, never shortened. Large files go up as multipart uploads
 * (`@aws-sdk/lib-storage`). Throttling and transient errors are retried by the SDK's adaptive
 * retry strategy, which also slows the client down when S3 answers SlowDown.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  type ObjectLockMode,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ObjectNotFoundError, ShortReadError, type ObjectInfo, type PutOptions, type VaultStore } from './store.js';

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
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

export class S3VaultStore implements VaultStore {
  readonly url: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly kmsKeyId: string | undefined;
  private readonly lockMode: ObjectLockMode;
  private readonly partSize: number;

  constructor(options: S3VaultOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ? `${options.prefix.replace(/\/+$/, '')}/` : '';
    this.url = `s3://${this.bucket}/${this.prefix}`;
    this.kmsKeyId = options.kmsKeyId;
    this.lockMode = options.objectLockMode ?? 'GOVERNANCE';
    this.partSize = options.partSize ?? 16 * 1024 * 1024;
    this.client =
      options.client ??
      new S3Client({
        ...(options.region ? { region: options.region } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
        retryMode: 'adaptive',
        maxAttempts: options.maxAttempts ?? 10,
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
    };
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    // Above the part size (a pack, with a part size below the pack size), the multipart upload
    // of putFile: a part that fails is sent again on its own, not the whole object.
    if (body.length > this.partSize) return this.upload(key, body, options);
    await this.client.send(new PutObjectCommand({ ...this.writeParams(key, options), Body: body, ContentLength: body.length }));
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<void> {
    await this.upload(key, createReadStream(path, { highWaterMark: 1 << 20 }), options);
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
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, ...(range ? { Range: range } : {}) }));
      if (!out.Body) return new Uint8Array();
      return await out.Body.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      if ((err as { name?: string }).name === 'InvalidRange') throw new ShortReadError(this.url, key, range ?? 'the object', 0);
      throw err;
    }
  }

  async openRead(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return { key, size: out.ContentLength ?? 0, ...(out.ObjectLockRetainUntilDate ? { retainUntil: out.ObjectLockRetainUntilDate } : {}) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: this.prefix + prefix })) {
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0 };
      }
    }
  }

  /** A PUT that returned is durable on S3: nothing to do. */
  async flush(): Promise<void> {}

  async extendRetention(key: string, until: Date): Promise<boolean> {
    let current: { Mode?: ObjectLockMode | string; RetainUntilDate?: Date } | undefined;
    try {
      current = (await this.client.send(new GetObjectRetentionCommand({ Bucket: this.bucket, Key: this.prefix + key }))).Retention;
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      // An object that never had a retention reports NoSuchObjectLockConfiguration.
      if ((err as { name?: string }).name !== 'NoSuchObjectLockConfiguration') throw err;
    }
    if (current?.RetainUntilDate && current.RetainUntilDate.getTime() >= until.getTime()) return false;
    // Keep the object's own mode: COMPLIANCE cannot be turned into GOVERNANCE, and extending
    // within the same mode needs no bypass permission.
    const mode = (current?.Mode as ObjectLockMode | undefined) ?? this.lockMode;
    await this.client.send(new PutObjectRetentionCommand({ Bucket: this.bucket, Key: this.prefix + key, Retention: { Mode: mode, RetainUntilDate: until } }));
    return true;
  }
}
