/**
 * Packs chunks into pack objects of about 16 MiB before they go to the vault (as restic
 * does). Why pack: a 64 KiB MinIO part file is one chunk, and a volume holds many of them;
 * one object per chunk would mean one PUT, one Object Lock extension and one GC decision per
 * chunk, plus one small file per chunk on a `file://` vault. Packs cut requests by ~16x and
 * make retention work per pack. The price is that a pack lives as long as any chunk in it is
 * referenced; the index records pack, offset and length per chunk, so restores read ranges.
 * Chunks are stored as plaintext ranges (S3 encrypts with SSE-KMS; Milvus segment data is
 * already compressed, so compressing again would cost CPU for nothing).
 */
import { randomBytes } from 'node:crypto';
import { pageAlignedBuffer } from '../vault/file-store.js';
import { packKey } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';
import type { ChunkRef } from './index-format.js';
import { Semaphore } from '../vault/semaphore.js';

export interface PackerOptions {
  /** A pack is closed before it would exceed this many bytes (a bigger chunk gets a pack of its own). @default 16 MiB */
  readonly packSize?: number;
  /** Pack uploads in flight at once. @default 3 */
  readonly concurrency?: number;
  /** Object Lock date for every pack written. */
  readonly retainUntil?: Date;
}

interface OpenPack {
  readonly id: string;
  /**
   * Chunks are copied in, so a pack never pins the (larger) read buffers they came from. The
   * buffer is page-aligned so a file vault writes it to the disk without another copy.
   */
  readonly buffer: Buffer;
  size: number;
}

/** Collects new chunks into packs and uploads full packs with bounded concurrency. */
export class Packer {
  private current: OpenPack | undefined;
  private readonly sealed: OpenPack[] = [];
  private readonly written = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  /** Buffers of uploaded packs, reused so memory does not wait for the garbage collector. */
  private readonly spare: Buffer[] = [];
  private readonly slots: Semaphore;
  private readonly packSize: number;
  private failure: unknown;
  /** Packs and bytes uploaded so far. */
  packsUploaded = 0;
  bytesUploaded = 0;

  constructor(
    private readonly vault: VaultStore,
    private readonly options: PackerOptions = {},
  ) {
    this.packSize = options.packSize ?? 16 * 1024 * 1024;
    this.slots = new Semaphore(options.concurrency ?? 3);
  }

  /**
   * Appends a chunk to the open pack and returns where it will live. Synchronous on purpose:
   * two files chunked at once never interleave inside one pack's bookkeeping. Call `drain`
   * afterwards to upload packs that filled up.
   */
  add(hash: string, data: Buffer): ChunkRef {
    if (this.current && this.current.size + data.length > this.packSize) {
      this.sealed.push(this.current);
      this.current = undefined;
    }
    if (!this.current) {
      const spare = this.spare.length > 0 && data.length <= this.packSize ? this.spare.pop()! : pageAlignedBuffer(Math.max(this.packSize, data.length));
      this.current = { id: randomBytes(16).toString('hex'), buffer: spare, size: 0 };
      this.written.add(this.current.id);
    }
    const ref: ChunkRef = { hash, pack: this.current.id, offset: this.current.size, length: data.length };
    data.copy(this.current.buffer, this.current.size);
    this.current.size += data.length;
    return ref;
  }

  /** True for packs this run writes (they already carry the new retention). */
  isNew(packId: string): boolean {
    return this.written.has(packId);
  }

  /** Starts uploads of full packs, waiting for a free slot for each: the backpressure point. */
  async drain(): Promise<void> {
    this.throwIfFailed();
    while (this.sealed.length > 0) {
      const pack = this.sealed.shift()!;
      await this.slots.acquire();
      const upload = this.upload(pack).finally(() => {
        this.slots.release();
        this.inflight.delete(upload);
      });
      this.inflight.add(upload);
      this.throwIfFailed();
    }
  }

  /** Uploads the last, partial pack and waits for every upload. */
  async finish(): Promise<void> {
    if (this.current && this.current.size > 0) this.sealed.push(this.current);
    this.current = undefined;
    await this.drain();
    await Promise.all([...this.inflight]);
    this.throwIfFailed();
  }

  private async upload(pack: OpenPack): Promise<void> {
    try {
      await this.vault.put(packKey(pack.id), pack.buffer.subarray(0, pack.size), this.options.retainUntil ? { retainUntil: this.options.retainUntil } : {});
      this.packsUploaded++;
      this.bytesUploaded += pack.size;
      // The store is done with the bytes once put resolves (all stores copy or send them).
      if (pack.buffer.length === this.packSize && this.spare.length <= this.slots.slots) this.spare.push(pack.buffer);
    } catch (err) {
      this.failure ??= err;
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
