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
import { pageAlignedBuffer, sharedPageAlignedBuffer } from '../vault/file-store.js';
import { packKey } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';
import type { ReadTarget } from './chunker-pool.js';
import type { ChunkRef } from './index-format.js';
import { Semaphore } from '../vault/semaphore.js';

export interface PackerOptions {
  /** A pack is closed before it would exceed this many bytes (a bigger chunk gets a pack of its own). @default 16 MiB */
  readonly packSize?: number;
  /** Pack uploads in flight at once. @default 3 */
  readonly concurrency?: number;
  /** Object Lock date for every pack written. */
  readonly retainUntil?: Date;
  /**
   * Memory for a pack of `bytes`. Targets are given only in shared memory. For tests, which
   * need shared memory to run out. @default page-aligned, shared where it can be had (packBuffer)
   */
  readonly allocate?: (bytes: number) => Buffer;
}

interface OpenPack {
  readonly id: string;
  /**
   * Chunks from a thread's own read buffers are copied in, so a pack never pins the (larger)
   * buffers they came from; chunks read into a lane are in it already. The buffer is
   * page-aligned so a file vault writes it to the disk without another copy.
   */
  readonly buffer: Buffer;
  size: number;
}

/** A pack in shared memory that one hashing thread reads into, and how far it has been read. */
interface Lane {
  readonly pack: OpenPack;
  /** The start of the bytes not yet placed: chunks are placed in the order they were read. */
  unplaced: number;
}

/**
 * Memory for a pack: page-aligned, so a file vault writes it with direct I/O without a staging
 * copy, and shared, so a hashing thread can read files straight into it (`Packer.target`).
 * Chunks copied in from a thread's own buffers lose nothing to that: on Node 20 and 22 a
 * 16 MiB `Buffer.copy` into shared memory ran at 11-18 GiB/s here, as into unshared, and out
 * of it (an S3 body's private copy) at 7.3-7.6 GiB/s. Unshared where shared memory cannot be
 * had.
 */
function packBuffer(size: number): Buffer {
  return sharedPageAlignedBuffer(size) ?? pageAlignedBuffer(size);
}

/**
 * Hashing threads that get a pack of their own to read new files into (`Packer.target`); the
 * others read into buffers of their own, whose new chunks are copied. Bounds the memory lanes
 * take, 16 MiB each at the default pack size, on a node of many cores.
 */
const MAX_LANES = 4;

/** Collects new chunks into packs and uploads full packs with bounded concurrency. */
export class Packer {
  private current: OpenPack | undefined;
  private readonly sealed: OpenPack[] = [];
  private readonly written = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  /** Buffers of uploaded packs, reused so memory does not wait for the garbage collector. */
  private readonly spare: Buffer[] = [];
  /** The open pack of each hashing thread that reads into one, by lane number and by memory. */
  private readonly lanes = new Map<number, Lane>();
  private readonly laneOf = new Map<ArrayBufferLike, Lane>();
  private readonly slots: Semaphore;
  private readonly packSize: number;
  private readonly allocate: (bytes: number) => Buffer;
  private failure: unknown;
  /** Packs and bytes uploaded so far. */
  packsUploaded = 0;
  bytesUploaded = 0;

  constructor(
    private readonly vault: VaultStore,
    private readonly options: PackerOptions = {},
  ) {
    this.packSize = options.packSize ?? 16 * 1024 * 1024;
    this.allocate = options.allocate ?? packBuffer;
    this.slots = new Semaphore(options.concurrency ?? 3);
  }

  /**
   * Appends a chunk to the open pack and returns where it will live. Synchronous on purpose:
   * two files chunked at once never interleave inside one pack's bookkeeping. Call `drain`
   * afterwards to upload packs that filled up. A chunk that a hashing thread read into one of
   * this packer's targets is already in its pack and is not copied (see `place`).
   */
  add(hash: string, data: Buffer): ChunkRef {
    const lane = this.laneOf.get(data.buffer);
    if (lane) return this.place(lane, hash, data);
    if (this.current && this.current.size + data.length > this.packSize) {
      this.sealed.push(this.current);
      this.current = undefined;
    }
    if (!this.current) {
      this.current = this.open(data.length <= this.packSize ? this.takeBuffer() : this.allocate(data.length));
    }
    const ref: ChunkRef = { hash, pack: this.current.id, offset: this.current.size, length: data.length };
    data.copy(this.current.buffer, this.current.size);
    this.current.size += data.length;
    return ref;
  }

  /**
   * Where hashing thread `lane` may read the next `bytes` of new files: the end of its own
   * pack, in shared memory, so that the chunks it finds new need no copy (a full backup's
   * chunks mostly are; the copy was ~7% of a small-files backup's CPU). A lane whose pack has
   * no room for `bytes` is sealed and gets a new one. Undefined where shared memory cannot be
   * had, `bytes` would not fit a pack, or `lane` is past MAX_LANES: the thread then reads into
   * buffers of its own.
   *
   * The caller promises that the thread writes only into the latest target it was given, and
   * does not touch it after it has reported what it read there: a target is asked for only
   * while the thread waits, and a lane's pack may be sealed (then uploaded and its memory
   * reused) by the call that gives the next. The bytes a target receives are claimed by `add`,
   * in the order they were read; those never claimed (chunks the vault already has) are
   * overwritten by the next target.
   */
  target(lane: number, bytes: number): ReadTarget | undefined {
    if (lane >= MAX_LANES || bytes > this.packSize) return undefined;
    let open = this.lanes.get(lane);
    if (!open || this.packSize - open.pack.size < bytes) {
      const buffer = this.takeBuffer();
      if (!(buffer.buffer instanceof SharedArrayBuffer)) {
        // No shared memory to be had here. The lane's pack stays open: a refusal seals
        // nothing, so the thread may still copy its unfinished chunk out of its last target.
        this.spare.push(buffer);
        return undefined;
      }
      if (open) this.closeLane(lane, open);
      open = { pack: this.open(buffer), unplaced: 0 };
      this.lanes.set(lane, open);
      this.laneOf.set(buffer.buffer, open);
    }
    open.unplaced = open.pack.size;
    return { buffer: open.pack.buffer.buffer as SharedArrayBuffer, offset: open.pack.size, room: this.packSize - open.pack.size };
  }

  /**
   * Claims a chunk that lies in a lane's memory. The chunks of one target are claimed in the
   * order they were read, so the bytes between the pack's end and `data` belong to chunks that
   * were not kept, and moving `data` down over them (rare: a duplicate read in the same batch
   * as new chunks) overwrites nothing still wanted. A chunk out of that order would, so it
   * fails the backup instead of corrupting a pack.
   */
  private place(lane: Lane, hash: string, data: Buffer): ChunkRef {
    const pack = lane.pack;
    const at = data.byteOffset;
    if (at < lane.unplaced || at + data.length > pack.buffer.length) {
      throw new Error(`internal error: chunk ${hash} claimed out of the order it was read in (bytes ${at}-${at + data.length} of pack ${pack.id}, next unclaimed byte ${lane.unplaced})`);
    }
    if (at !== pack.size) pack.buffer.copyWithin(pack.size, at, at + data.length);
    const ref: ChunkRef = { hash, pack: pack.id, offset: pack.size, length: data.length };
    pack.size += data.length;
    lane.unplaced = at + data.length;
    return ref;
  }

  private takeBuffer(): Buffer {
    return this.spare.pop() ?? this.allocate(this.packSize);
  }

  private open(buffer: Buffer): OpenPack {
    const pack = { id: randomBytes(16).toString('hex'), buffer, size: 0 };
    this.written.add(pack.id);
    return pack;
  }

  private closeLane(lane: number, open: Lane): void {
    this.lanes.delete(lane);
    this.laneOf.delete(open.pack.buffer.buffer);
    if (open.pack.size > 0) this.sealed.push(open.pack);
    else this.spare.push(open.pack.buffer);
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
    for (const [lane, open] of this.lanes) this.closeLane(lane, open);
    if (this.current && this.current.size > 0) this.sealed.push(this.current);
    this.current = undefined;
    await this.drain();
    await Promise.all([...this.inflight]);
    this.throwIfFailed();
  }

  private async upload(pack: OpenPack): Promise<void> {
    try {
      // A pack id is random and new: only creating it is ever right (see PutOptions.ifAbsent).
      await this.vault.put(packKey(pack.id), pack.buffer.subarray(0, pack.size), { ifAbsent: true, ...(this.options.retainUntil ? { retainUntil: this.options.retainUntil } : {}) });
      this.packsUploaded++;
      this.bytesUploaded += pack.size;
      // The store is done with the bytes once put resolves (all stores copy or send them).
      if (pack.buffer.length === this.packSize && this.spare.length <= this.slots.slots + this.lanes.size) this.spare.push(pack.buffer);
    } catch (err) {
      this.failure ??= err;
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
