/**
 * The vault port: the handful of object operations the data mover (and later the backup and
 * retention workflows) need, with one implementation per technology — `FileVaultStore` for a
 * local directory, `S3VaultStore` for S3 and S3-compatible servers, `InMemoryVaultStore` as the
 * test double. Keys are relative to the vault root and always come from `layout.ts`.
 */
import type { Readable } from 'node:stream';

/** Options for writing an object. */
export interface PutOptions {
  /**
   * Object Lock retain-until date for this object. Backends without Object Lock ignore it.
   * @default no explicit retention (the bucket's default retention applies on S3)
   */
  readonly retainUntil?: Date;
}

/** What a listing or a head request tells about an object. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** The object's current Object Lock retain-until date, when the backend knows it. */
  readonly retainUntil?: Date;
}

/** Storage for a vault: whole-object writes, ranged reads, listing and retention. */
export interface VaultStore {
  /** Where the vault lives, for messages (`file:///backups`, `s3://bucket/prefix`). */
  readonly url: string;
  /** Writes an object from memory; an existing object with the key is replaced. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;
  /** Writes an object from a local file, streaming (multipart on S3 when large). */
  putFile(key: string, path: string, options?: PutOptions): Promise<void>;
  /** Reads a whole object. Throws `ObjectNotFoundError` when it does not exist. */
  get(key: string): Promise<Buffer>;
  /** Reads `length` bytes at `offset`. Throws `ObjectNotFoundError`, or `ShortReadError` when the object is too short. */
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  /** Streams a whole object. Throws `ObjectNotFoundError` when it does not exist. */
  openRead(key: string): Promise<Readable>;
  /** Size and retention of an object, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Makes every object written so far durable. Call it before writing an object that declares
   * others complete (a summary), so a crash can never leave a marker pointing at lost data.
   */
  flush(): Promise<void>;
  /**
   * Makes sure the object stays locked at least until `until`: extends its retention when the
   * current date is earlier, never shortens it. Resolves to true when it changed the object.
   * Backends without Object Lock resolve to false.
   */
  extendRetention(key: string, until: Date): Promise<boolean>;
}

/** A key that should exist in the vault does not. */
export class ObjectNotFoundError extends Error {
  readonly key: string;
  constructor(vaultUrl: string, key: string, options?: { cause?: unknown }) {
    super(`object ${key} does not exist in vault ${vaultUrl}`, options);
    this.name = 'ObjectNotFoundError';
    this.key = key;
  }
}

/** An object is shorter than a reference into it says (truncated or replaced). */
export class ShortReadError extends Error {
  readonly key: string;
  constructor(vaultUrl: string, key: string, wanted: string, got: number) {
    super(`object ${key} in vault ${vaultUrl} is too short: wanted ${wanted}, got ${got} bytes`);
    this.name = 'ShortReadError';
    this.key = key;
  }
}
