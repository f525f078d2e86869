/**
 * The vault port: the handful of object operations the data mover (and later the backup and
 * retention workflows) need, with one implementation per technology — `FileVaultStore` for a
 * local directory, `S3VaultStore` for S3 and S3-compatible servers, `InMemoryVaultStore` as the
 * test double. Keys are relative to the vault root and always come from `layout.ts`.
 */
import type { Readable } from 'node:stream';
import { TransientError, UserError } from '../errors.js';

/** Options for writing an object. */
export interface PutOptions {
  /**
   * Object Lock retain-until date for this object. Backends without Object Lock ignore it.
   * @default no explicit retention (the bucket's default retention applies on S3)
   */
  readonly retainUntil?: Date;
  /**
   * The object is a status rewritten in place while a run goes on (a progress report), written
   * with a short `retainUntil`, and a later write may replace it while that lock still runs.
   * S3 does that by itself: every write is a new version with its own lock, and the replaced
   * one stays, noncurrent, until its date passes and the lifecycle removes it. The file and
   * in-memory vaults have no versions and otherwise refuse to overwrite a locked object (it
   * would lose bytes that S3 keeps); with this option they replace it, dropping only what S3
   * keeps as a short-locked noncurrent version. Backends send nothing for it.
   * @default false
   */
  readonly replaceWhileLocked?: boolean;
  /**
   * Write only when the key holds no object (S3's `If-None-Match: *` on PutObject and
   * CompleteMultipartUpload). When it holds one with these very bytes (a write whose answer was
   * lost, sent again), the write resolves as done; with other bytes it throws
   * {@link ObjectExistsError} and the object is unchanged. What the data mover writes is written
   * this way, and the vault's bucket policy refuses its role any other write there: a pod with
   * that role cannot add a version over a pack, index or summary. @default false
   */
  readonly ifAbsent?: boolean;
}

/** What a listing or a head request tells about an object. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /**
   * When the object was written (S3's LastModified, the file's mtime). Reported by listings on
   * S3 and the local vaults; garbage collection deletes nothing younger than its minimum age.
   */
  readonly lastModified?: Date;
  /** The object's current Object Lock retain-until date, when the backend knows it. */
  readonly retainUntil?: Date;
  /** The mode of that lock (`GOVERNANCE` or `COMPLIANCE`), reported by `head` on S3. */
  readonly lockMode?: string;
  /**
   * Whether a legal hold is on the object. Reported by `head` (listings do not know it); on S3
   * it reads as false when the caller may not see it (no `s3:GetObjectLegalHold`).
   */
  readonly legalHold?: boolean;
  /**
   * S3's storage class of the object (`GLACIER`, `STANDARD_IA`, ...); absent means STANDARD.
   * Reported by `head` and, on S3 and the local vaults, by listings.
   */
  readonly storageClass?: string;
  /**
   * The object's thaw (S3's `x-amz-restore` header), reported by `head` for an object in an
   * archive class while a thaw runs or its thawed copy lasts: `ongoing` while S3 works on it, then
   * `ongoing: false` with the date the thawed copy expires. Absent when no thaw was asked for or
   * the copy has expired.
   */
  readonly restore?: { readonly ongoing: boolean; readonly expiresAt?: Date };
}

/**
 * Storage classes whose objects cannot be read until they are thawed (S3 RestoreObject): S3
 * Glacier Flexible Retrieval and Deep Archive. GLACIER_IR and the IA classes read at once.
 */
export const ARCHIVE_CLASSES: readonly string[] = ['GLACIER', 'DEEP_ARCHIVE'];

/** True for a storage class whose objects must be thawed before a read (see {@link ARCHIVE_CLASSES}). */
export function isArchiveClass(storageClass: string | undefined): boolean {
  return storageClass !== undefined && ARCHIVE_CLASSES.includes(storageClass);
}

/** True when an object can be read now: it is not in an archive class, or its thawed copy is there. */
export function isReadable(info: Pick<ObjectInfo, 'storageClass' | 'restore'>): boolean {
  return !isArchiveClass(info.storageClass) || (info.restore !== undefined && !info.restore.ongoing);
}

/**
 * The object tag the retention workflow sets on packs that only old backups reference; the
 * bucket's lifecycle rules move objects into archive classes only when it is `true` (README,
 * "The vault never expires data by age").
 */
export const ARCHIVABLE_TAG = 'milvus-guard-archivable';

/**
 * S3 Glacier retrieval tiers (RestoreObject's `GlacierJobParameters.Tier`): Expedited takes
 * minutes (GLACIER only), Standard hours, Bulk the longest and costs least.
 */
export type ThawTier = 'Standard' | 'Bulk' | 'Expedited';

/** How to thaw an object. */
export interface ThawOptions {
  /** How many days the thawed copy stays readable (S3 RestoreObject `Days`). */
  readonly days: number;
  readonly tier: ThawTier;
}

/**
 * What `thaw` found or did: `available` (not in an archive class, or its thawed copy is readable;
 * no request was made when `head` already said so), `in-progress` (a thaw was asked for before
 * and still runs), `started` (this call asked for it).
 */
export type ThawResult = 'available' | 'in-progress' | 'started';

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
  /**
   * Reads `length` bytes at `offset`. Throws `ObjectNotFoundError`, or `ShortReadError` when the
   * object is too short. `into` is memory the caller offers for the bytes (page-aligned and at
   * least `length` + 8 KiB, so a store may read whole aligned blocks with direct I/O): the result
   * is then a view of it, not necessarily at its start. A store may ignore it and return its own
   * buffer; callers check which they got.
   */
  getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer>;
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
   * does not exist. `known` is the object's lock as a `head` just reported it: a backend may
   * take it instead of reading the lock again (S3 then makes one request, not two).
   */
  extendRetention(key: string, until: Date, known?: Pick<ObjectInfo, 'retainUntil' | 'lockMode'>): Promise<boolean>;
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
  /**
   * Sets (`on`) or removes the `milvus-guard-archivable=true` tag that lets the lifecycle move an
   * object into an archive class. On S3 one PutObjectTagging or DeleteObjectTagging request
   * (our objects carry no other tags, so the tag set is replaced). Throws `ObjectNotFoundError`
   * when the object does not exist.
   */
  markArchivable(key: string, on: boolean): Promise<void>;
  /**
   * Whether the object carries the archivable tag. A method of its own rather than a field of
   * `head`: on S3 it costs a GetObjectTagging request, which the heads of a restore (one per
   * pack) should not pay. Throws `ObjectNotFoundError` when the object does not exist.
   */
  isArchivable(key: string): Promise<boolean>;
  /**
   * Makes an object in an archive class readable: asks for a thawed copy that lasts `days`, with
   * retrieval tier `tier` (S3 RestoreObject). Heads first: an object not in an archive class, or
   * already thawed, is `available` and one whose thaw runs `in-progress`, with no further request.
   * Throws `ThawTierUnavailableError` when the tier cannot serve the object (Expedited for
   * DEEP_ARCHIVE; Expedited when S3 has no capacity for it), `ObjectNotFoundError` when the object
   * does not exist. Reads of an archived object that is not thawed throw `ObjectArchivedError`.
   */
  thaw(key: string, options: ThawOptions): Promise<ThawResult>;
  /**
   * Removes what writes interrupted before `before` left in the vault (a process killed between
   * writing an object's temporary file and renaming it), and says how many and how many bytes.
   * Only the file vault has such leftovers; on S3 the incomplete multipart uploads are the vault
   * bucket's lifecycle rule's (infra/constructs/vault.ts, `abort-incomplete-uploads`).
   */
  removeInterruptedWrites?(before: Date): Promise<{ readonly removed: number; readonly bytes: number }>;
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
 * A write that may only create (`ifAbsent`) found the key holding other bytes. Nothing was
 * written: the object there is what the vault keeps.
 */
export class ObjectExistsError extends Error {
  constructor(
    vaultUrl: string,
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super(
      `object ${key} in vault ${vaultUrl} already exists with other bytes; this write may only create it, so the object there was kept ` +
        '(another writer got there first; for a backup, run a new one, and milvus-guard datamover verify to see what is there)',
      options,
    );
    this.name = 'ObjectExists';
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

/**
 * A retain-until date that is not in the future. S3 refuses it (PutObject and
 * PutObjectRetention answer 400 InvalidArgument, "The retain until date must be in the future!"),
 * so the local vaults refuse it too: a lock that has already passed protects nothing, and code
 * that asks for one would fail only on AWS.
 */
export class RetainUntilInPastError extends Error {
  readonly key: string;
  constructor(vaultUrl: string, key: string, until: Date, now: Date) {
    super(`object ${key} in vault ${vaultUrl}: the retain-until date ${until.toISOString()} is not after the vault's time ${now.toISOString()}; a retain-until date must be in the future`);
    this.name = 'RetainUntilInPastError';
    this.key = key;
  }
}

/** Throws `RetainUntilInPastError` unless `until` is after `now` (S3's rule for a retain-until date). */
export function requireFutureRetention(vaultUrl: string, key: string, until: Date | undefined, now: Date): void {
  if (until !== undefined && until.getTime() <= now.getTime()) throw new RetainUntilInPastError(vaultUrl, key, until, now);
}

/**
 * A read of an object in an archive class (GLACIER, DEEP_ARCHIVE) that has no thawed copy: S3
 * answers `InvalidObjectState`. A `UserError` because it is the vault's state, not a bug, with
 * the fix in the message.
 */
export class ObjectArchivedError extends UserError {
  readonly key: string;
  readonly storageClass: string | undefined;
  constructor(vaultUrl: string, key: string, storageClass: string | undefined, options?: { cause?: unknown }) {
    super(
      `object ${key} in vault ${vaultUrl} is in archive class ${storageClass ?? 'GLACIER or DEEP_ARCHIVE'} and must be thawed before it can be read (a restore thaws what it needs; by hand: aws s3api restore-object)`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'ObjectArchived';
    this.key = key;
    this.storageClass = storageClass;
  }
}

/** The retrieval tier asked for cannot thaw the object; another tier can. */
export class ThawTierUnavailableError extends Error {
  readonly key: string;
  readonly tier: ThawTier;
  constructor(vaultUrl: string, key: string, tier: ThawTier, why: string, options?: { cause?: unknown }) {
    super(`cannot thaw object ${key} in vault ${vaultUrl} with the ${tier} tier: ${why}; use the Standard or Bulk tier`, options);
    this.name = 'ThawTierUnavailable';
    this.key = key;
    this.tier = tier;
  }
}

/**
 * When a thawed copy that became readable at `readyAt` and was asked for `days` expires: `days`
 * later, rounded up to midnight UTC, as S3 reports the expiry (`expiry-date="Fri, 21 Dec 2012
 * 00:00:00 GMT"` in the x-amz-restore examples of
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). Used by the local vaults.
 */
export function thawExpiry(readyAt: Date, days: number): Date {
  const t = readyAt.getTime() + days * 86_400_000;
  const midnight = Math.ceil(t / 86_400_000) * 86_400_000;
  return new Date(midnight);
}

// Not `instanceof Error`: Node's own errors (http's "aborted") can come from another realm (a VM context, as under Jest).
const messageOf = (err: unknown): string => (typeof (err as { message?: unknown } | undefined)?.message === 'string' ? (err as { message: string }).message : String(err));

/**
 * How many times in all a download that is cut short is tried before it fails: the AWS SDK
 * retries a request until it has an answer, not the download of the body after it.
 */
export const DOWNLOAD_ATTEMPTS = 3;

/** The name of {@link VaultReadInterruptedError} and of the data mover's `IndexReadError`. */
export const READ_INTERRUPTED = 'VaultReadInterrupted';

/**
 * Whether a download's stream failed because it was cut short below the data: a connection
 * reset or aborted in mid-body (Node's http client: `aborted`, ECONNRESET), a stream closed
 * before its end, a socket timeout, or the SDK's ChecksumStream finding the body shorter than
 * its length (@smithy/util-stream). Not a checksum mismatch: that is the bytes' fault.
 */
export function isCutShort(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    ['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code) ||
    e?.name === 'TimeoutError' ||
    message === 'aborted' ||
    message.startsWith('Connection lost or stream closed before all data was received')
  );
}

/**
 * Whether a download's bytes did not match the checksum the store keeps for the object (the AWS
 * SDK validates a GET's body against it: `Checksum mismatch: expected … but received …`, thrown
 * by @smithy/util-stream's ChecksumStream at the end of the body).
 */
export function isChecksumMismatch(err: unknown): boolean {
  const message = (err as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' && message.startsWith('Checksum mismatch');
}

/**
 * Whether `err` is an I/O error of the operating system (an errno-style code such as EIO or
 * EACCES), not a bug of ours (Node's own `ERR_*` codes) nor an AWS SDK error (`$metadata`).
 */
export function isSystemIoError(err: unknown): boolean {
  // Not `instanceof Error`: Node's own errors can come from another realm (see messageOf).
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && !('$metadata' in err);
}

/** Whether `err` is a read that was cut short, every time it was tried ({@link READ_INTERRUPTED}). */
export function isReadInterrupted(err: unknown): boolean {
  return err instanceof TransientError && err.name === READ_INTERRUPTED;
}

/**
 * An object's download stopped partway, every time it was tried: the store answered, then the
 * connection was cut before the body was whole (see {@link isCutShort}). Not damage (a truncated
 * object is answered whole, with its own length): a later retry may read it; the workflows'
 * Lambda steps retry it by name, a data-mover Job by its own retries.
 */
export class VaultReadInterruptedError extends TransientError {
  readonly key: string;
  constructor(vaultUrl: string, key: string, cause: unknown, attempts: number) {
    super(READ_INTERRUPTED, `object ${key} in vault ${vaultUrl} could not be read: its download was cut short ${attempts === 1 ? 'once' : `${attempts} times`} (${messageOf(cause)}); try again`, { cause });
    this.key = key;
  }
}

/**
 * Every download of an object came with other bytes than the checksum the store keeps for it
 * (see {@link isChecksumMismatch}): once could be a transfer, every time is the object.
 */
export class ObjectChecksumMismatchError extends Error {
  readonly key: string;
  /** What is wrong, for a list of problems that names the object itself: `is damaged: …`. */
  readonly problem: string;
  constructor(vaultUrl: string, key: string, cause: unknown, attempts: number) {
    const problem = `is damaged: it does not match the checksum the store keeps for it (${messageOf(cause).replace(/\.$/, '')}, ${attempts} download(s))`;
    super(`object ${key} in vault ${vaultUrl} ${problem}; run milvus-guard datamover verify to see what else is, and restore another backup`, { cause });
    this.name = 'ObjectChecksumMismatch';
    this.key = key;
    this.problem = problem;
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
