/**
 * The storage port of the object copy (core/objectstore/bucket-copy.ts). The copy engine owns
 * what makes a backup trustworthy (paging after the last key, the byte budget, the manifest, the
 * chain digest, the commit checks, resumability); a backend owns only the storage operations, so
 * the workflow runs the very same engine in AWS (`s3CopyBackend`, server-side copies inside S3)
 * and on the local embedded cluster (`directoryCopyBackend`, where the Milvus bucket is a
 * directory and the vault a `FileVaultStore`). A test wraps a backend to inject a crash or a
 * source change at a chosen operation.
 *
 * The operations are those the engine needs of S3, in S3's terms, because S3 is the contract the
 * local backend imitates: a listing in UTF-8 binary key order that starts after a key, an ETag
 * per object, and copies that are conditional on the ETag the listing (or the manifest) gave, so
 * an object that changed in between is refused (`SourceObjectChangedError`) rather than stored
 * under the old object's name. Keys given to the vault operations are relative to the vault root
 * (core/objectstore/layout.ts); a backend adds its vault's prefix.
 */
import type { VaultStore } from '../vault/store.js';
import type { RequestCounts } from './manifest.js';
import type { CopyRoles } from './server-copy.js';

/** Where a Milvus keeps its objects: the bucket and root path (Milvus's `minio.rootPath`, e.g. `files`). */
export interface ObjectSource {
  readonly bucket: string;
  /** The Milvus root path; a trailing slash is added when missing. '' copies the whole bucket. */
  readonly prefix: string;
  /** @default the vault client's region (S3 copies across regions); ignored by the directory backend */
  readonly region?: string;
  /** An S3-compatible endpoint; it must be the vault's, since one request copies (see createCopyClient). @default AWS S3 */
  readonly endpoint?: string;
}

/** Where a restore puts the objects: the restored Milvus's bucket and root path. */
export interface RestoreTarget {
  readonly bucket: string;
  readonly prefix: string;
}

/** One object of a source listing. */
export interface ListedObject {
  /** The full key, root path included. */
  readonly key: string;
  readonly size: number;
  /** Quoted, as S3 lists it. */
  readonly etag: string;
}

/** One page of a source listing, as ListObjectsV2 answers it. */
export interface ListedPage {
  /** In UTF-8 binary order of the key, every key starting with the prefix and after `startAfter`. */
  readonly objects: readonly ListedObject[];
  /** More keys follow the last one listed. */
  readonly truncated: boolean;
}

/** What the vault holds under a key. */
export interface VaultObject {
  readonly size: number;
  /** The ETag a restore's copy is made conditional on. */
  readonly etag: string;
  /** The Object Lock date and mode, when the answer carried them. */
  readonly retainUntil?: Date;
  readonly mode?: string;
}

/** The object a copy into the vault reads, as the listing gave it. */
export interface SourceObjectRef {
  readonly bucket: string;
  /** The full key, root path included. */
  readonly key: string;
  readonly size: number;
  /** The listed ETag: the copy is refused when the object no longer has it. */
  readonly etag: string;
}

/** The vault object a restore reads, as the manifest recorded it. */
export interface VaultObjectRef {
  readonly vaultKey: string;
  readonly size: number;
  /** The recorded vault ETag: the copy is refused when the vault object no longer has it. */
  readonly etag: string;
}

/**
 * The storage operations of the object copy. Every operation counts the requests it makes into
 * `counts` (by S3's request types; the directory backend counts its file operations alike, so
 * reports read the same).
 */
export interface CopyBackend {
  /** The vault the manifest pages and the commit are written to and read from (objects are copied there by `copyToVault`). */
  readonly vault: VaultStore;
  /** `s3://bucket/key` or `file:///…/bucket/key`, for messages; `key` may be a prefix. */
  url(bucket: string, key: string): string;
  /** One page of the keys of `bucket` that start with `prefix`, after `startAfter`, at most `maxKeys` (ListObjectsV2). */
  listSource(bucket: string, page: { readonly prefix: string; readonly startAfter?: string; readonly maxKeys: number }, counts: RequestCounts): Promise<ListedPage>;
  /**
   * What the vault holds under `vaultKey`, or undefined when nothing. `expected` is the listed
   * object the key was derived from (layout.ts `milvusObjectKey`): a backend that stores no ETag
   * answers with the ETag the key names when the size matches, since it verified the content
   * against that ETag when it copied it in (a tampered object is caught by the restore).
   */
  headVault(vaultKey: string, expected: { readonly size: number; readonly etag: string }, counts: RequestCounts): Promise<VaultObject | undefined>;
  /**
   * Copies a listed source object to `vaultKey`, on the condition that it still has the listed
   * ETag (else `SourceObjectChangedError`, and nothing stored under `vaultKey`); returns the
   * vault object's ETag. `retainUntil` is the Object Lock date of the copy.
   */
  copyToVault(from: SourceObjectRef, vaultKey: string, options: { readonly retainUntil?: Date }, counts: RequestCounts, roles: CopyRoles): Promise<string>;
  /**
   * Makes a reused vault object stay locked at least until `until`, never shortening its lock;
   * true when it changed the object. `current` is what `headVault` answered.
   */
  extendRetention(vaultKey: string, current: VaultObject, until: Date, counts: RequestCounts): Promise<boolean>;
  /**
   * Copies a vault object to `to.key` of the bucket `to.bucket`, on the condition that it still
   * has the recorded ETag (else `SourceObjectChangedError`, and nothing written under `to.key`).
   */
  copyFromVault(from: VaultObjectRef, to: { readonly bucket: string; readonly key: string }, counts: RequestCounts, roles: CopyRoles): Promise<void>;
}
