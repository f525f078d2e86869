import { describe, expect, it } from '@jest/globals';
import type { ReadTarget } from '../../core/datamover/chunker-pool.js';
import { Packer } from '../../core/datamover/packer.js';
import type { ChunkRef } from '../../core/datamover/index-format.js';
import { packKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { Rng } from './helpers.js';

const KiB = 1024;

/** Writes `data` into a target as a hashing thread would, and returns the view the pool hands on. */
function readInto(target: ReadTarget, at: number, data: Buffer): Buffer {
  const view = Buffer.from(target.buffer, target.offset + at, data.length);
  data.copy(view);
  return view;
}

/** The bytes a ref names in the vault. */
async function bytesAt(vault: InMemoryVaultStore, ref: ChunkRef): Promise<Buffer> {
  return vault.getRange(packKey(ref.pack), ref.offset, ref.length);
}

describe('packer lanes', () => {
  it('keeps chunks read into a target where they are, and moves one down over a chunk not kept', async () => {
    // Arrange: three chunks read back to back into lane 0; the middle one is a duplicate.
    const vault = new InMemoryVaultStore();
    const packer = new Packer(vault, { packSize: 64 * KiB });
    const rng = new Rng('lanes');
    const [a, dup, b] = [rng.bytes(5000), rng.bytes(3000), rng.bytes(7000)];
    const target = packer.target(0, 15_000)!;
    expect(target).toEqual({ buffer: expect.any(SharedArrayBuffer), offset: 0, room: 64 * KiB });
    const views = [readInto(target, 0, a!), readInto(target, 5000, dup!), readInto(target, 8000, b!)];

    // Act: the first and last are claimed, the duplicate is not.
    const refA = packer.add('a', views[0]!);
    const refB = packer.add('b', views[2]!);
    await packer.finish();

    // Assert: one pack, the two chunks back to back in it, the gap closed.
    expect([refA.offset, refB.offset]).toEqual([0, 5000]);
    expect(refA.pack).toBe(refB.pack);
    expect(packer.isNew(refA.pack)).toBe(true);
    expect(vault.puts.map((p) => p.size)).toEqual([12_000]);
    expect((await bytesAt(vault, refA)).equals(a!)).toBe(true);
    expect((await bytesAt(vault, refB)).equals(b!)).toBe(true);
  });

  it('gives the next target where the pack ends, and a new pack when the room is short', async () => {
    const vault = new InMemoryVaultStore();
    const packer = new Packer(vault, { packSize: 16 * KiB });
    const rng = new Rng('lanes-next');
    const first = packer.target(0, 10 * KiB)!;
    const c1 = rng.bytes(10 * KiB);
    const r1 = packer.add('c1', readInto(first, 0, c1));

    // Room for 6 KiB: the same pack, from its end.
    const second = packer.target(0, 6 * KiB)!;
    expect(second).toMatchObject({ offset: 10 * KiB, room: 6 * KiB });
    expect(second.buffer).toBe(first.buffer);
    const c2 = rng.bytes(6 * KiB);
    const r2 = packer.add('c2', readInto(second, 0, c2));

    // The pack is full: the lane's pack is sealed and a new one is opened.
    const third = packer.target(0, 1)!;
    expect(third.offset).toBe(0);
    const c3 = rng.bytes(100);
    const r3 = packer.add('c3', readInto(third, 0, c3));
    await packer.finish();

    expect(r2.pack).toBe(r1.pack);
    expect(r3.pack).not.toBe(r1.pack);
    expect(vault.puts.map((p) => p.size)).toEqual([16 * KiB, 100]);
    for (const [ref, data] of [[r1, c1], [r2, c2], [r3, c3]] as const) expect((await bytesAt(vault, ref)).equals(data)).toBe(true);
  });

  it('keeps each lane in a pack of its own, beside the chunks copied in', async () => {
    const vault = new InMemoryVaultStore();
    const packer = new Packer(vault, { packSize: 64 * KiB });
    const rng = new Rng('lanes-apart');
    const t0 = packer.target(0, 4 * KiB)!;
    const t1 = packer.target(1, 4 * KiB)!;
    const [d0, d1, copied] = [rng.bytes(4 * KiB), rng.bytes(4 * KiB), rng.bytes(4 * KiB)];
    const r0 = packer.add('d0', readInto(t0, 0, d0!));
    const r1 = packer.add('d1', readInto(t1, 0, d1!));
    // A chunk from a buffer of the thread's own is copied into the packer's open pack.
    const rc = packer.add('copied', copied!);
    await packer.finish();

    expect(new Set([r0.pack, r1.pack, rc.pack]).size).toBe(3);
    for (const [ref, data] of [[r0, d0], [r1, d1], [rc, copied]] as const) expect((await bytesAt(vault, ref!)).equals(data!)).toBe(true);
  });

  it('fails a chunk claimed out of the order it was read in rather than overwrite one not yet claimed', () => {
    const packer = new Packer(new InMemoryVaultStore(), { packSize: 64 * KiB });
    const target = packer.target(0, 8 * KiB)!;
    const rng = new Rng('lanes-order');
    const first = readInto(target, 0, rng.bytes(2 * KiB));
    const second = readInto(target, 4 * KiB, rng.bytes(2 * KiB));

    packer.add('second', second);

    expect(() => packer.add('first', first)).toThrow(/claimed out of the order it was read in/);
  });

  it('gives no target for more than a pack holds, nor to more than four lanes', () => {
    const packer = new Packer(new InMemoryVaultStore(), { packSize: 64 * KiB });

    expect(packer.target(0, 64 * KiB + 1)).toBeUndefined();
    expect([0, 1, 2, 3].map((lane) => packer.target(lane, KiB) !== undefined)).toEqual([true, true, true, true]);
    expect(packer.target(4, KiB)).toBeUndefined();
  });

  it('refuses a target when shared memory runs out, and leaves the lane\'s pack open and its bytes as they were', async () => {
    // Arrange: shared memory until `sharedLeft` is turned off; lane 0 reads a whole chunk and
    // the first 2 KiB of a chunk it has not finished into its pack.
    const vault = new InMemoryVaultStore();
    let sharedLeft = true;
    const allocate = (bytes: number): Buffer => (sharedLeft ? Buffer.from(new SharedArrayBuffer(bytes)) : Buffer.alloc(bytes));
    const packer = new Packer(vault, { packSize: 16 * KiB, allocate });
    const rng = new Rng('lanes-refused');
    const [whole, unfinished] = [rng.bytes(8 * KiB), rng.bytes(5 * KiB)];
    const first = packer.target(0, 10 * KiB)!;
    const refWhole = packer.add('whole', readInto(first, 0, whole!));
    const head = readInto(first, 8 * KiB, unfinished!.subarray(0, 2 * KiB));

    // Act: the rest needs more room than the pack has left, and no shared memory is to be had.
    sharedLeft = false;
    const next = packer.target(0, 9 * KiB);
    await packer.drain();

    // Assert: refused, nothing sealed or uploaded, the unfinished bytes still where they were
    // read (so the thread can copy them out and go on in buffers of its own), and the lane's
    // pack still open: a request that fits is given its end.
    expect(next).toBeUndefined();
    expect(packer.target(0, 9 * KiB)).toBeUndefined();
    expect(vault.puts).toEqual([]);
    expect(head.equals(unfinished!.subarray(0, 2 * KiB))).toBe(true);
    expect(packer.target(0, 4 * KiB)).toEqual({ buffer: first.buffer, offset: first.offset + 8 * KiB, room: 8 * KiB });

    // The chunk, finished in the thread's own buffer, is copied into a pack of plain memory.
    const refUnfinished = packer.add('unfinished', Buffer.from(unfinished!));
    await packer.finish();
    expect(refUnfinished.pack).not.toBe(refWhole.pack);
    expect(vault.puts.map((p) => p.size).sort((a, b) => a - b)).toEqual([5 * KiB, 8 * KiB]);
    expect((await bytesAt(vault, refWhole)).equals(whole!)).toBe(true);
    expect((await bytesAt(vault, refUnfinished)).equals(unfinished!)).toBe(true);
  });
});
