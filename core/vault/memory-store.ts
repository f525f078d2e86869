/**
 * `InMemoryVaultStore`: the documented test double of the vault port. It keeps objects in a
 * map and behaves like an Object-Locked bucket without versions, as the file vault does: retention
 * dates are extended, never shortened; a retained or held object cannot be deleted, and can be
 * overwritten only with identical bytes (a retry); a retain-until date must be in the future, as
 * S3 requires. The time comes from the injected `now`.
 * `objects` is exposed so tests can flip a byte or delete an object to simulate damage.
 *
 * Archive classes are simulated as the file vault does (see its module comment): `transition`
 * does what a lifecycle rule does on S3; reads of an object in GLACIER or DEEP_ARCHIVE throw
 * `ObjectArchivedError` until a `thaw` has completed (`thawSeconds` after it was asked for, on
 * the injected clock) and again once the thawed copy has expired. A put that replaces an object
 * writes it in STANDARD without tags, as a new S3 version would be.
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  isArchiveClass,
  isLocked,
  ObjectArchivedError,
  ObjectExistsError,
  ObjectLockedError,
  ObjectNotFoundError,
  requireFutureRetention,
  ShortReadError,
  thawExpiry,
  ThawTierUnavailableError,
  type DeleteManyResult,
  type ObjectInfo,
  type PutOptions,
  type ThawOptions,
  type ThawResult,
  type VaultStore,
} from './store.js';

interface StoredObject {
  body: Buffer;
  /** When the put that wrote it ran, on the store's clock (absent for an object a test set by hand). */
  modifiedAt?: Date;
  retainUntil?: Date;
  legalHold?: boolean;
  /** Absent: STANDARD. */
  storageClass?: string;
  archivable?: boolean;
  /** The thaw asked for: when its copy is readable and when it expires. */
  thaw?: { readyAt: Date; expiresAt: Date };
}

/** Options of the in-memory vault. */
export interface InMemoryVaultOptions {
  /** The clock the lock checks and thaws use. @default the real time */
  readonly now?: () => Date;
  /** How long a thaw takes, in seconds on `now`. @default 0 (done as soon as asked for) */
  readonly thawSeconds?: number;
}

/**
 * The thaw state of an object at `now`, as S3's x-amz-restore header tells it: absent when no
 * thaw was asked for or its copy has expired.
 */
export function thawState(thaw: { readyAt: Date; expiresAt: Date } | undefined, now: Date): ObjectInfo['restore'] {
  if (!thaw || now.getTime() >= thaw.expiresAt.getTime()) return undefined;
  return now.getTime() < thaw.readyAt.getTime() ? { ongoing: true } : { ongoing: false, expiresAt: thaw.expiresAt };
}

export class InMemoryVaultStore implements VaultStore {
  readonly url: string;
  /** The stored objects by key; tests may change them to simulate damage. */
  readonly objects = new Map<string, StoredObject>();
  /** Every accepted put, in order, with its options (for assertions on what was written). */
  readonly puts: { key: string; size: number; retainUntil?: Date }[] = [];
  private readonly now: () => Date;
  private readonly thawSeconds: number;

  constructor(url = 'memory://vault', options: InMemoryVaultOptions = {}) {
    this.url = url;
    this.now = options.now ?? (() => new Date());
    this.thawSeconds = options.thawSeconds ?? 0;
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    requireFutureRetention(this.url, key, options?.retainUntil, this.now());
    const copy = Buffer.from(body);
    const old = this.objects.get(key);
    // A write that may only create (as S3's If-None-Match) keeps the object there too: it is
    // refused unless it is a retry of the same bytes.
    if (old && (options?.ifAbsent || (isLocked(old, this.now()) && !options?.replaceWhileLocked))) {
      if (!old.body.equals(copy)) throw options?.ifAbsent ? new ObjectExistsError(this.url, key) : new ObjectLockedError(this.url, key, old);
      // An identical retry keeps the object and its hold; its lock covers both dates.
      if (options?.retainUntil && (!old.retainUntil || old.retainUntil < options.retainUntil)) old.retainUntil = options.retainUntil;
    } else {
      this.objects.set(key, { body: copy, modifiedAt: this.now(), ...(options?.retainUntil ? { retainUntil: options.retainUntil } : {}) });
    }
    this.puts.push({ key, size: copy.length, ...(options?.retainUntil ? { retainUntil: options.retainUntil } : {}) });
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<void> {
    await this.put(key, await readFile(path), options);
  }

  async get(key: string): Promise<Buffer> {
    return Buffer.from(this.readable(key).body);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const body = this.readable(key).body;
    if (offset + length > body.length) throw new ShortReadError(this.url, key, `${length} bytes at ${offset}`, Math.max(0, body.length - offset));
    return Buffer.from(body.subarray(offset, offset + length));
  }

  async openRead(key: string): Promise<Readable> {
    return Readable.from([Buffer.from(this.readable(key).body)]);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const o = this.objects.get(key);
    if (!o) return undefined;
    const restore = isArchiveClass(o.storageClass) ? thawState(o.thaw, this.now()) : undefined;
    return {
      key,
      size: o.body.length,
      ...(o.retainUntil ? { retainUntil: o.retainUntil } : {}),
      legalHold: o.legalHold ?? false,
      ...(o.storageClass ? { storageClass: o.storageClass } : {}),
      ...(restore ? { restore } : {}),
    };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const o = this.objects.get(key);
      if (o) yield { key, size: o.body.length, ...(o.modifiedAt ? { lastModified: o.modifiedAt } : {}), ...(o.retainUntil ? { retainUntil: o.retainUntil } : {}), ...(o.storageClass ? { storageClass: o.storageClass } : {}) };
    }
  }

  async flush(): Promise<void> {}

  async extendRetention(key: string, until: Date): Promise<boolean> {
    const o = this.require(key);
    if (o.retainUntil && o.retainUntil.getTime() >= until.getTime()) return false;
    requireFutureRetention(this.url, key, until, this.now());
    o.retainUntil = until;
    return true;
  }

  async delete(key: string): Promise<void> {
    const o = this.objects.get(key);
    if (!o) return;
    if (isLocked(o, this.now())) throw new ObjectLockedError(this.url, key, o);
    this.objects.delete(key);
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    const deleted: string[] = [];
    const failed: { key: string; error: Error }[] = [];
    for (const key of new Set(keys)) {
      try {
        await this.delete(key);
        deleted.push(key);
      } catch (err) {
        failed.push({ key, error: err as Error });
      }
    }
    return { deleted, failed };
  }

  async setLegalHold(key: string, on: boolean): Promise<void> {
    this.require(key).legalHold = on;
  }

  async markArchivable(key: string, on: boolean): Promise<void> {
    this.require(key).archivable = on;
  }

  async isArchivable(key: string): Promise<boolean> {
    return this.require(key).archivable === true;
  }

  async thaw(key: string, options: ThawOptions): Promise<ThawResult> {
    const o = this.require(key);
    if (!isArchiveClass(o.storageClass)) return 'available';
    const now = this.now();
    const state = thawState(o.thaw, now);
    if (state) return state.ongoing ? 'in-progress' : 'available';
    if (options.tier === 'Expedited' && o.storageClass === 'DEEP_ARCHIVE') throw new ThawTierUnavailableError(this.url, key, 'Expedited', 'S3 Glacier Deep Archive does not offer Expedited retrievals');
    const readyAt = new Date(now.getTime() + this.thawSeconds * 1000);
    o.thaw = { readyAt, expiresAt: thawExpiry(readyAt, options.days) };
    return 'started';
  }

  /**
   * Moves an object into `storageClass`, as a lifecycle transition does on S3 (a test's and the
   * local cluster's tool; not part of the port). A thawed copy does not survive the move.
   */
  transition(key: string, storageClass: string): void {
    const o = this.require(key);
    if (storageClass === 'STANDARD') delete o.storageClass;
    else o.storageClass = storageClass;
    delete o.thaw;
  }

  /** The object, when it can be read now; `ObjectArchivedError` while it is archived and not thawed. */
  private readable(key: string): StoredObject {
    const o = this.require(key);
    if (isArchiveClass(o.storageClass) && thawState(o.thaw, this.now())?.ongoing !== false) throw new ObjectArchivedError(this.url, key, o.storageClass);
    return o;
  }

  private require(key: string): StoredObject {
    const o = this.objects.get(key);
    if (!o) throw new ObjectNotFoundError(this.url, key);
    return o;
  }
}
