/**
 * `InMemoryVaultStore`: the documented test double of the vault port. It keeps objects in a
 * map, honours retention dates the way S3 Object Lock does (extend only, never shorten) and
 * exposes `objects` so tests can flip a byte or delete an object to simulate damage.
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ObjectNotFoundError, ShortReadError, type ObjectInfo, type PutOptions, type VaultStore } from './store.js';

interface StoredObject {
  body: Buffer;
  retainUntil?: Date;
}

export class InMemoryVaultStore implements VaultStore {
  readonly url: string;
  /** The stored objects by key; tests may change them to simulate damage. */
  readonly objects = new Map<string, StoredObject>();
  /** Every put, in order, with its options (for assertions on what was written). */
  readonly puts: { key: string; size: number; retainUntil?: Date }[] = [];

  constructor(url = 'memory://vault') {
    this.url = url;
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const copy = Buffer.from(body);
    this.objects.set(key, { body: copy, ...(options?.retainUntil ? { retainUntil: options.retainUntil } : {}) });
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
    return o ? { key, size: o.body.length, ...(o.retainUntil ? { retainUntil: o.retainUntil } : {}) } : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const info = await this.head(key);
      if (info) yield info;
    }
  }

  async flush(): Promise<void> {}

  async extendRetention(key: string, until: Date): Promise<boolean> {
    const o = this.require(key);
    if (o.retainUntil && o.retainUntil.getTime() >= until.getTime()) return false;
    o.retainUntil = until;
    return true;
  }

  private require(key: string): StoredObject {
    const o = this.objects.get(key);
    if (!o) throw new ObjectNotFoundError(this.url, key);
    return o;
  }
}
