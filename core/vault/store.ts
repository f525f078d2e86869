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
  /**
   * Whether a legal hold is on the object. Reported by `head` (listings do not know it); on S3
   * it reads as false when the caller may not see it (no `s3:GetObjectLegalHold`).
   */
  readonly legalHold?: boolean;
}

/** What a batch delete did: every key it was given is in exactly one of the two lists. */
export interface DeleteManyResult {
  /** Keys that hold nothing any more (including keys that held nothing before). */
  readonly deleted: readonly string[];
  /**
   * Keys that could not be deleted, each with why: `ObjectLockedError` for a retention date or a
   * legal hold, otherwise the backend's error. The object under such a key is still readable.
   */
  readonly failed: readonly { readonly key: string; readonly error: Error }[];
}

/** Storage for a vault: whole-object writes, ranged reads, listing and retention. */
export interface VaultStore {
  /** Where the vault lives, for messages (`file:///backups`, `s3://bucket/prefix`). */
  readonly url: string;
  /**
   * Writes an object from memory; an existing object with the key is replaced. Over a locked
   * object S3 adds a new version and keeps the locked one; the file and in-memory vaults have no
   * versions, so they accept the write only when the bytes are identical (a retry) and otherwise
   * throw `ObjectLockedError`.
   */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;
  /** Writes an object from a local file, streaming (multipart on S3 when large); as `put`. */
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
   * Makes every object written so far durable, with the retention dates, legal holds and deletes
   * made so far. Call it before writing an object that declares others complete (a summary), so
   * a crash can never leave a marker pointing at lost data.
   */
  flush(): Promise<void>;
  /**
   * Makes sure the object stays locked at least until `until`: extends its retention when the
   * current date is earlier, never shortens it. Resolves to true when it changed the object.
   * Backends without Object Lock resolve to false. Throws `ObjectNotFoundError` when the object
   * does not exist.
   */
  extendRetention(key: string, until: Date): Promise<boolean>;
  /**
   * Removes an object so that its data really leaves the vault: on a versioned S3 bucket every
   * version and delete marker of the key, never a bare delete marker, and never bypassing
   * governance retention. Resolves when the key holds nothing (also when it held nothing).
   * Throws `ObjectLockedError` when a retain-until date has not passed or a legal hold is on;
   * then nothing of the key was deleted.
   */
  delete(key: string): Promise<void>;
  /**
   * Deletes many objects the way `delete` does, batched for garbage collection (on S3 up to
   * 1000 versions per request, not a request per object). A key that cannot be deleted is
   * reported in `failed` and keeps a readable object; it never fails the batch.
   */
  deleteMany(keys: readonly string[]): Promise<DeleteManyResult>;
  /**
   * Places (`on`) or releases a legal hold: while it is on, the object cannot be deleted or
   * overwritten, whatever its retain-until date. Throws `ObjectNotFoundError` when the object
   * does not exist.
   */
  setLegalHold(key: string, on: boolean): Promise<void>;
}

/** The Object Lock state of an object, as far as the lock check needs it. */
export interface LockState {
  readonly retainUntil?: Date;
  readonly legalHold?: boolean;
}

/**
 * True while Object Lock protects an object at `now`: a legal hold is on, or its retain-until
 * date is still ahead (S3 lets a version go once the date has come).
 */
export function isLocked(lock: LockState | undefined, now: Date): boolean {
  return lock !== undefined && (lock.legalHold === true || (lock.retainUntil !== undefined && lock.retainUntil.getTime() > now.getTime()));
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

/**
 * Object Lock refused to delete or overwrite an object: its retain-until date has not passed, or
 * a legal hold is on. Nothing in the product bypasses either; wait for the date or release the hold.
 */
export class ObjectLockedError extends Error {
  readonly key: string;
  /** The retain-until date that blocks, when the vault knows it. */
  readonly retainUntil: Date | undefined;
  /** True when a legal hold blocks (false also when the vault could not tell). */
  readonly legalHold: boolean;
  constructor(vaultUrl: string, key: string, lock: LockState, options?: { cause?: unknown; detail?: string }) {
    const why = [
      ...(lock.legalHold ? ['a legal hold is on (release it first)'] : []),
      ...(lock.retainUntil ? [`it is retained until ${lock.retainUntil.toISOString()} (wait until then)`] : []),
    ];
    const reason = why.length > 0 ? why.join(' and ') : `Object Lock protects it${options?.detail ? ` (${options.detail})` : ''}`;
    super(`object ${key} in vault ${vaultUrl} is locked: ${reason}; it cannot be deleted or overwritten`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ObjectLockedError';
    this.key = key;
    this.retainUntil = lock.retainUntil;
    this.legalHold = lock.legalHold ?? false;
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
