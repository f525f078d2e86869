/**
 * `InMemoryVaultStore`: the documented test double of the vault port. It keeps objects in a
 * map and behaves like an Object-Locked bucket without versions, as the file vault does: retention
 * dates are extended, never shortened; a retained or held object cannot be deleted, and can be
 * overwritten only with identical bytes (a retry). The time comes from the injected `now`.
 * `objects` is exposed so tests can flip a byte or delete an object to simulate damage.
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { isLocked, ObjectLockedError, ObjectNotFoundError, ShortReadError, type DeleteManyResult, type ObjectInfo, type PutOptions, type VaultStore } from './store.js';

interface StoredObject {
  body: Buffer;
  retainUntil?: Date;
  legalHold?: boolean;
}

/** Options of the in-memory vault. */
export interface InMemoryVaultOptions {
  /** The clock the lock checks use. @default the real time */
  readonly now?: () => Date;
}

export class InMemoryVaultStore implements VaultStore {
  readonly url: string;
  /** The stored objects by key; tests may change them to simulate damage. */
  readonly objects = new Map<string, StoredObject>();
  /** Every accepted put, in order, with its options (for assertions on what was written). */
  readonly puts: { key: string; size: number; retainUntil?: Date }[] = [];
  private readonly now: () => Date;

  constructor(url = 'memory://vault', options: InMemoryVaultOptions = {}) {
    this.url = url;
    this.now = options.now ?? (() => new Date());
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const copy = Buffer.from(body);
    const old = this.objects.get(key);
    if (old && isLocked(old, this.now())) {
      if (!old.body.equals(copy)) throw new ObjectLockedError(this.url, key, old);
      // An identical retry keeps the object and its hold; its lock covers both dates.
      if (options?.retainUntil && (!old.retainUntil || old.retainUntil < options.retainUntil)) old.retainUntil = options.retainUntil;
    } else {
      this.objects.set(key, { body: copy, ...(options?.retainUntil ? { retainUntil: options.retainUntil } : {}) });
    }
    this.puts.push({ key, size: copy.length, ...(options?.retainUntil ? { retainUntil: options.retainUntil } : {}) });
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<void> {
    await this.put(key, await readFile(path), options);
  }

  async get(key: string): Promise<Buffer> {
    return Buffer.from(this.require(key).body);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const body = this.require(key).body;
    if (offset + length > body.length) throw new ShortReadError(this.url, key, `${length} bytes at ${offset}`, Math.max(0, body.length - offset));
    return Buffer.from(body.subarray(offset, offset + length));
  }

  async openRead(key: string): Promise<Readable> {
    return Readable.from([Buffer.from(this.require(key).body)]);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const o = this.objects.get(key);
    return o ? { key, size: o.body.length, ...(o.retainUntil ? { retainUntil: o.retainUntil } : {}), legalHold: o.legalHold ?? false } : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const o = this.objects.get(key);
      if (o) yield { key, size: o.body.length, ...(o.retainUntil ? { retainUntil: o.retainUntil } : {}) };
    }
  }

  async flush(): Promise<void> {}

  async extendRetention(key: string, until: Date): Promise<boolean> {
    const o = this.require(key);
    if (o.retainUntil && o.retainUntil.getTime() >= until.getTime()) return false;
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

  private require(key: string): StoredObject {
    const o = this.objects.get(key);
    if (!o) throw new ObjectNotFoundError(this.url, key);
    return o;
  }
}
