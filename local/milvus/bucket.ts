/**
 * Where a simulated Milvus keeps its segment objects (insert binlogs, stats logs, delta logs,
 * index files): a small port, {@link ObjectBucket}, with two implementations.
 *
 * - `MinioDrives` (object-store.ts): an in-cluster MinIO, its drives being the directories
 *   behind the `export-<release>-minio-N` PVCs, in MinIO's xl.meta layout.
 * - {@link DirectoryBucket}: an external S3 bucket (the Milvus documentation's EKS layout),
 *   which locally is a plain directory, `<objectStorageDir>/<bucket>/<key>`.
 *
 * The directory layout is a contract the local object copy engine reads, so it stays exactly:
 * one plain file per object, `/` in a key is a directory separator, no metadata files (the
 * reader computes ETags as the MD5 of the content). Every write goes to
 * `<objectStorageDir>/.staging/<unique>` first and is renamed into place, so a reader listing a
 * bucket never sees a partial object; bucket names never start with `.` (S3's naming rules), so
 * `.staging` is never a bucket.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MinioDrives } from './object-store.js';

/** The objects of one Milvus instance's bucket, by key (the root path included). */
export interface ObjectBucket {
  /** Creates what an empty bucket needs (MinIO: its drives' format; a directory: the bucket directory). */
  initialize(deploymentId: string): Promise<string[]>;
  /** Whether `initialize` has run (MinIO: every drive is formatted; a directory: the bucket exists). */
  initialized(): Promise<boolean>;
  /** Stores an object with this modification time; returns the paths written. */
  putObject(key: string, data: Buffer, mtime: Date): Promise<string[]>;
  /** The first `length` bytes of an object (all of it when shorter), or undefined if absent. */
  readObjectHead(key: string, length: number): Promise<Buffer | undefined>;
  /** Whether an object exists. */
  exists(key: string): Promise<boolean>;
  /** Keys of all objects under `prefix` (a directory-style prefix without trailing slash), sorted. */
  listObjects(prefix: string): Promise<string[]>;
}

/** The directory under an object storage directory where writers stage objects before the rename. */
export const STAGING_DIR = '.staging';

/** Thrown for a bucket name S3 would refuse; the message says the rule. */
export class InvalidBucketNameError extends Error {
  constructor(bucket: string) {
    super(`"${bucket}" is not a valid S3 bucket name: use 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit (minio.bucketName of the Milvus CR)`);
    this.name = 'InvalidBucketName';
  }
}

/** Thrown for an object key that has no place in a directory layout (empty, `.` or `..` segments). */
export class InvalidObjectKeyError extends Error {
  constructor(key: string) {
    super(`object key "${key}" cannot be stored as a file: keys must not be empty or contain empty, "." or ".." segments`);
    this.name = 'InvalidObjectKey';
  }
}

/** S3's rules for general-purpose bucket names (the subset that matters for a directory name). */
export function isValidBucketName(bucket: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !bucket.includes('..');
}

/**
 * An external S3 bucket as a directory: `<objectStorageDir>/<bucket>/<key>`, one plain file per
 * object. A bucket directory that does not exist reads as an empty bucket and the first write
 * creates it: Milvus creates a missing bucket when it starts (its chunk manager is built with
 * `CreateBucket(true)`), so pointing a Milvus at a new bucket shows missing objects, not an error.
 *
 * One limit of the layout: S3 can hold both `a` and `a/b`; a directory cannot. Milvus's keys never
 * do that (an object's key is never the prefix of another's), and such a write fails with EEXIST
 * or ENOTDIR rather than losing an object.
 */
export class DirectoryBucket implements ObjectBucket {
  private readonly dir: string;

  constructor(
    private readonly objectStorageDir: string,
    readonly bucket: string,
  ) {
    if (!isValidBucketName(bucket)) throw new InvalidBucketNameError(bucket);
    this.dir = join(objectStorageDir, bucket);
  }

  /** The file holding an object. */
  pathOf(key: string): string {
    const parts = key.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new InvalidObjectKeyError(key);
    return join(this.dir, ...parts);
  }

  async initialize(): Promise<string[]> {
    await mkdir(this.dir, { recursive: true });
    return [this.dir];
  }

  async initialized(): Promise<boolean> {
    return (await stat(this.dir).catch(() => undefined))?.isDirectory() === true;
  }

  async putObject(key: string, data: Buffer, mtime: Date): Promise<string[]> {
    const target = this.pathOf(key);
    const staging = join(this.objectStorageDir, STAGING_DIR);
    await mkdir(staging, { recursive: true });
    const temp = join(staging, `${process.pid}-${randomUUID()}`);
    try {
      await writeFile(temp, data);
      await utimes(temp, mtime, mtime);
      await mkdir(join(target, '..'), { recursive: true });
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return [target];
  }

  async readObjectHead(key: string, length: number): Promise<Buffer | undefined> {
    let handle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch {
      return undefined;
    }
    try {
      const size = (await handle.stat()).size;
      const buf = Buffer.alloc(Math.min(length, size));
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead);
    } catch {
      return undefined; // a directory where the object would be: S3 has no such object either
    } finally {
      await handle.close();
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await stat(this.pathOf(key)).catch(() => undefined))?.isFile() === true;
  }

  async listObjects(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string, key: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const child = key ? `${key}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(join(dir, e.name), child);
        else if (e.isFile()) keys.push(child);
      }
    };
    await walk(prefix ? this.pathOf(prefix) : this.dir, prefix);
    return keys.sort();
  }
}

/** Where one instance's objects live, resolved from its volumes (see `MilvusVolumes`). */
export interface BucketLocation {
  minioDirs: string[];
  objectStorageDir?: string;
  bucket: string;
}

/** The bucket of a Milvus instance: its external bucket directory when it has one, else its MinIO drives. */
export function bucketOf(v: BucketLocation): ObjectBucket {
  return v.objectStorageDir !== undefined ? new DirectoryBucket(v.objectStorageDir, v.bucket) : new MinioDrives(v.minioDirs, v.bucket);
}
