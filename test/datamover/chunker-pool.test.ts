import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from '@jest/globals';
import { ChunkerPool, defaultHashThreads, MAX_HASH_THREADS, SourceReadError, type PreviousChunks, type ReadTarget } from '../../core/datamover/chunker-pool.js';
import { chunkLengths } from '../../core/datamover/fastcdc.js';
import type { ChunkRef } from '../../core/datamover/index-format.js';
import { Packer } from '../../core/datamover/packer.js';
import { packKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { Rng, SMALL_CHUNKS, tempDir } from './helpers.js';

const digests = (data: Buffer, lengths: number[]): string[] => {
  let pos = 0;
  return lengths.map((n) => createHash('sha256').update(data.subarray(pos, (pos += n))).digest('hex'));
};

// The smallest read the pool allows (one maximum chunk): a file of 300 KB is read in ~20
// segments, so chunks are cut with short data ahead many times over.
const pool = new ChunkerPool({ params: SMALL_CHUNKS, readSize: SMALL_CHUNKS.maxSize, workers: 2 });
afterAll(() => pool.close());

async function chunked(path: string, prev?: PreviousChunks, sizeHint?: number): Promise<{ lengths: number[]; hashes: string[]; bytes: Buffer }> {
  const lengths: number[] = [];
  const hashes: string[] = [];
  const parts: Buffer[] = [];
  await pool.chunkFile(path, async (s) => {
    lengths.push(...s.lengths);
    hashes.push(...s.hashes);
    parts.push(Buffer.from(s.data));
  }, prev, sizeHint);
  return { lengths, hashes, bytes: Buffer.concat(parts) };
}

describe('chunker pool', () => {
  it('cuts a file read in many segments exactly where FastCDC cuts the whole buffer', async () => {
    const data = new Rng('segments').bytes(300_000);
    const file = join(await tempDir('pool'), 'f');
    await writeFile(file, data);

    const got = await chunked(file);

    const expected = chunkLengths(data, SMALL_CHUNKS);
    expect(expected.length).toBeGreaterThan(30);
    expect(got.lengths).toEqual(expected);
    expect(got.hashes).toEqual(digests(data, expected));
    expect(got.bytes.equals(data)).toBe(true);
  });

  it('chunks small files handed over together each as a whole file, empty ones included', async () => {
    const rng = new Rng('small');
    const dir = await tempDir('pool-small');
    // 0 bytes to one whole read: several files share a batch, some fill one alone.
    const sizes = [0, 1, 700, 5000, 1024, 16_384, 3, 9000, 12_000, 0, 4000, 2048];
    const datas = sizes.map((n) => rng.bytes(n));
    await Promise.all(datas.map((d, i) => writeFile(join(dir, `f${i}`), d)));

    const got = await Promise.all(datas.map((d, i) => chunked(join(dir, `f${i}`), undefined, d.length)));

    got.forEach((g, i) => {
      const expected = chunkLengths(datas[i]!, SMALL_CHUNKS);
      expect(g.lengths).toEqual(expected);
      expect(g.hashes).toEqual(digests(datas[i]!, expected));
      expect(g.bytes.equals(datas[i]!)).toBe(true);
    });
  });

  it('fails only the file of a batch that cannot be read, and reads one that grew since the walk', async () => {
    const rng = new Rng('batch-errors');
    const dir = await tempDir('pool-errors');
    const small = rng.bytes(3000);
    const grown = rng.bytes(100_000);
    await writeFile(join(dir, 'small'), small);
    await writeFile(join(dir, 'grown'), grown);

    const [a, missing, b] = await Promise.allSettled([
      chunked(join(dir, 'small'), undefined, small.length),
      chunked(join(dir, 'gone'), undefined, 10),
      // The walk saw 10 bytes; the file now holds far more than one read.
      chunked(join(dir, 'grown'), undefined, 10),
    ]);

    expect(a.status === 'fulfilled' && a.value.bytes.equals(small)).toBe(true);
    expect(missing.status === 'rejected' && missing.reason).toBeInstanceOf(SourceReadError);
    expect(b.status === 'fulfilled' && b.value.lengths).toEqual(chunkLengths(grown, SMALL_CHUNKS));
  });

  it('cuts an edited file exactly where FastCDC would when given the previous version\'s chunks', async () => {
    const rng = new Rng('edited');
    const before = rng.bytes(300_000);
    const after = Buffer.from(before);
    rng.bytes(5000).copy(after, 150_000);
    const dir = await tempDir('pool-edit');
    await writeFile(join(dir, 'f'), after);
    const old = chunkLengths(before, SMALL_CHUNKS);

    const got = await chunked(join(dir, 'f'), { lengths: old, hashes: digests(before, old) });

    const expected = chunkLengths(after, SMALL_CHUNKS);
    expect(got.lengths).toEqual(expected);
    expect(got.hashes).toEqual(digests(after, expected));
  });

  it('starts a hashing thread per core by default, at most MAX_HASH_THREADS, so a node of many cores cannot outgrow the Job\'s memory', async () => {
    expect(MAX_HASH_THREADS).toBe(8);
    expect(defaultHashThreads(96)).toBe(8);
    expect(defaultHashThreads(8)).toBe(8);
    expect(defaultHashThreads(2)).toBe(2);
    expect(defaultHashThreads(0)).toBe(1);
    const byDefault = new ChunkerPool({ params: SMALL_CHUNKS });
    try {
      expect(byDefault.size).toBe(Math.min(availableParallelism(), 8));
    } finally {
      await byDefault.close();
    }
  });

  it('drops the files still queued when told to, and lets the one running finish', async () => {
    // Prepare: one worker, three files; the first goes to it at once, the others queue.
    const dir = await tempDir('pool-cancel');
    const data = new Rng('cancel').bytes(50_000);
    await Promise.all([0, 1, 2].map((i) => writeFile(join(dir, `f${i}`), data)));
    const single = new ChunkerPool({ params: SMALL_CHUNKS, workers: 1 });
    try {
      const read: string[] = [];
      const results = [0, 1, 2].map((i) => single.chunkFile(join(dir, `f${i}`), async () => void read.push(`f${i}`)));

      // Act
      single.cancelQueued(new Error('backup stopped'));
      const settled = await Promise.allSettled(results);

      // Assess
      expect(settled[0]).toEqual({ status: 'fulfilled', value: 50_000 });
      expect(settled.slice(1)).toEqual([
        { status: 'rejected', reason: new Error('backup stopped') },
        { status: 'rejected', reason: new Error('backup stopped') },
      ]);
      expect(new Set(read)).toEqual(new Set(['f0']));
      // The pool goes on with later work.
      expect(await single.chunkFile(join(dir, 'f2'), async () => void read.push('f2 again'))).toBe(50_000);
      expect(read).toContain('f2 again');
    } finally {
      await single.close();
    }
  });

  it('leaves a worker it is terminating referenced when the end of its batch arrives during close', async () => {
    // A batch's end can arrive after close() began (a backup failing while a batch of small files
    // is read). terminate() keeps the thread referenced until it has exited; unreferenced again
    // by the batch's end, the event loop could end first and close() never settle: a CLI run that
    // failed then ended with exit code 13 instead of its error. The message is handed to the pool
    // as its worker's 'message' event does, at the moment that race produced it.
    const single = new ChunkerPool({ params: SMALL_CHUNKS, workers: 1 });
    const internals = single as unknown as { workers: Worker[]; batches: Map<number, Worker>; onMessage(worker: Worker, msg: { type: 'batch-end'; id: number }): void };
    const worker = internals.workers[0]!;
    internals.batches.set(7, worker);
    const unrefs: string[] = [];
    const unref = worker.unref.bind(worker);
    worker.unref = () => (unrefs.push('unref'), unref());

    const closing = single.close();
    internals.onMessage(worker, { type: 'batch-end', id: 7 });
    await closing;

    expect(unrefs).toEqual([]);
  });

  it('fails the jobs queued behind its last worker when that one crashes, instead of leaving them waiting', async () => {
    // Prepare: one worker; the first job goes to it at once, the second queues.
    const single = new ChunkerPool({ params: SMALL_CHUNKS, workers: 1 });
    try {
      const data = () => Buffer.from(new Rng('crash').bytes(4096));
      const running = single.hashChunks(data(), [4096]);
      const queued = single.hashChunks(data(), [4096]);

      // Act: the worker thread's 'error' event, as an uncaught exception in it raises.
      const crash = new Error('worker crashed');
      (single as unknown as { workers: Worker[] }).workers[0]!.emit('error', crash);

      // Assess
      await expect(running).rejects.toBe(crash);
      await expect(queued).rejects.toBe(crash);
      expect(single.size).toBe(0);
      await expect(single.hashChunks(data(), [4096])).rejects.toThrow('ChunkerPool has no worker thread left: every one crashed');
    } finally {
      await single.close();
    }
  });
});

describe('chunker pool reading small files into packs', () => {
  /**
   * Backs files up as backup.ts does (a chunk already seen is not added again), the workers
   * reading into the packer's targets, or into their own buffers once `targets` have been given.
   */
  async function packed(files: { path: string; size: number }[], packSize: number, targets = Infinity): Promise<{ vault: InMemoryVaultStore; refs: ChunkRef[][]; segments: number; shared: number; results: PromiseSettledResult<number>[] }> {
    const vault = new InMemoryVaultStore();
    const packer = new Packer(vault, { packSize });
    let given = 0;
    const readTarget = (lane: number, bytes: number) => (given++ < targets ? packer.target(lane, bytes) : undefined);
    const lanePool = new ChunkerPool({ params: SMALL_CHUNKS, readSize: 4 * SMALL_CHUNKS.maxSize, workers: 2, readTarget });
    const known = new Map<string, ChunkRef>();
    let shared = 0;
    let segments = 0;
    const refs: ChunkRef[][] = files.map(() => []);
    try {
      const results = await Promise.allSettled(
        files.map((f, i) =>
          lanePool.chunkFile(f.path, async (segment) => {
            segments++;
            if (segment.data.buffer instanceof SharedArrayBuffer) shared++;
            let offset = 0;
            segment.hashes.forEach((hash, k) => {
              const length = segment.lengths[k]!;
              let ref = known.get(hash);
              if (!ref) known.set(hash, (ref = packer.add(hash, segment.data.subarray(offset, offset + length))));
              refs[i]!.push(ref);
              offset += length;
            });
            await packer.drain();
          }, undefined, f.size),
        ),
      );
      await packer.finish();
      return { vault, refs, segments, shared, results };
    } finally {
      await lanePool.close();
    }
  }

  const restored = async (vault: InMemoryVaultStore, refs: ChunkRef[]): Promise<Buffer> =>
    Buffer.concat(await Promise.all(refs.map((r) => vault.getRange(packKey(r.pack), r.offset, r.length))));

  it('stores every chunk of files read straight into packs, duplicates once, across packs filling up', async () => {
    // Arrange: 60 files of up to 20 KB, every fifth a copy of an earlier one (a duplicate read
    // into the same pack as new chunks) and every seventh empty, into packs of 64 KiB: many
    // targets, many packs.
    const rng = new Rng('lanes-pool');
    const dir = await tempDir('pool-lanes');
    const datas: Buffer[] = [];
    for (let i = 0; i < 60; i++) datas.push(i % 5 === 4 ? datas[i - 3]! : i % 7 === 6 ? Buffer.alloc(0) : rng.bytes(1 + rng.int(20_000)));
    await Promise.all(datas.map((d, i) => writeFile(join(dir, `f${i}`), d)));

    // Act
    const { vault, refs, segments, shared, results } = await packed(datas.map((d, i) => ({ path: join(dir, `f${i}`), size: d.length })), 64 * 1024);

    // Assert: every file comes back whole, the copies took no room, and the bytes were read into packs.
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    for (let i = 0; i < datas.length; i++) expect((await restored(vault, refs[i]!)).equals(datas[i]!)).toBe(true);
    const unique = new Set(datas.filter((_, i) => i % 5 !== 4));
    const stored = vault.puts.reduce((n, p) => n + p.size, 0);
    expect(stored).toBe([...unique].reduce((n, d) => n + d.length, 0));
    expect(vault.puts.length).toBeGreaterThan(5);
    expect(shared).toBe(segments);
  });

  it('carries on into the next target after a file that grew since the walk, and past one that is gone', async () => {
    const rng = new Rng('lanes-grown');
    const dir = await tempDir('pool-lanes-grown');
    const before = rng.bytes(3000);
    const grown = rng.bytes(200_000);
    const after = rng.bytes(5000);
    await writeFile(join(dir, 'before'), before);
    await writeFile(join(dir, 'grown'), grown);
    await writeFile(join(dir, 'after'), after);

    // The walk saw 10 bytes of `grown`; it now holds more than a batch's room.
    const { vault, refs, results } = await packed(
      [
        { path: join(dir, 'before'), size: before.length },
        { path: join(dir, 'gone'), size: 10 },
        { path: join(dir, 'grown'), size: 10 },
        { path: join(dir, 'after'), size: after.length },
      ],
      1024 * 1024,
    );

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(SourceReadError);
    for (const [i, data] of [[0, before], [2, grown], [3, after]] as const) expect((await restored(vault, refs[i]!)).equals(data)).toBe(true);
  });

  it('streams big new files into packs, target after target, and moves a chunk read beside duplicates down', async () => {
    // Arrange: 300 KB files (SMALL_CHUNKS: ~75 chunks each) into 64 KiB packs, so each file
    // fills several targets; one repeats a 40 KB block, so most of its chunks are duplicates
    // and its next target is the same pack, below the unfinished chunk it moves down.
    const rng = new Rng('lanes-stream');
    const dir = await tempDir('pool-lanes-stream');
    const block = rng.bytes(40_000);
    const datas = [rng.bytes(300_000), Buffer.concat(Array.from({ length: 8 }, () => block)), rng.bytes(300_000), rng.bytes(150_001)];
    await Promise.all(datas.map((d, i) => writeFile(join(dir, `f${i}`), d)));

    const { vault, refs, segments, shared, results } = await packed(datas.map((d, i) => ({ path: join(dir, `f${i}`), size: d.length })), 64 * 1024);

    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(shared).toBe(segments);
    for (let i = 0; i < datas.length; i++) {
      expect(refs[i]!.map((r) => r.length)).toEqual(chunkLengths(datas[i]!, SMALL_CHUNKS));
      expect((await restored(vault, refs[i]!)).equals(datas[i]!)).toBe(true);
    }
    const stored = vault.puts.reduce((n, p) => n + p.size, 0);
    expect(stored).toBeLessThan(300_000 * 2 + 150_001 + 2 * 40_000);
  });

  it('carries on in buffers of its own when no next target is given', async () => {
    const rng = new Rng('lanes-refused');
    const dir = await tempDir('pool-lanes-refused');
    const datas = [rng.bytes(300_000), rng.bytes(200_000)];
    await Promise.all(datas.map((d, i) => writeFile(join(dir, `f${i}`), d)));

    // Two targets in all: each file's first; the next it asks for is refused.
    const { vault, refs, segments, shared, results } = await packed(datas.map((d, i) => ({ path: join(dir, `f${i}`), size: d.length })), 64 * 1024, 2);

    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(shared).toBeGreaterThan(0);
    expect(shared).toBeLessThan(segments);
    for (let i = 0; i < datas.length; i++) expect((await restored(vault, refs[i]!)).equals(datas[i]!)).toBe(true);
  });

  it('moves the unfinished chunk out of a full target before that memory can be reused', async () => {
    // Arrange: targets of 40 KB, each in memory of its own that is zeroed right after the next
    // is given, as a sealed pack's memory is reused once uploaded.
    const data = new Rng('lanes-reuse').bytes(300_000);
    const file = join(await tempDir('pool-lanes-reuse'), 'f');
    await writeFile(file, data);
    let given = 0;
    const readTarget = (): ReadTarget => {
      const previous = last;
      last = new SharedArrayBuffer(40_000);
      given++;
      if (previous) queueMicrotask(() => new Uint8Array(previous).fill(0));
      return { buffer: last, offset: 0, room: last.byteLength };
    };
    let last: SharedArrayBuffer | undefined;
    const reusing = new ChunkerPool({ params: SMALL_CHUNKS, readSize: 4 * SMALL_CHUNKS.maxSize, workers: 1, readTarget });
    const parts: Buffer[] = [];
    const lengths: number[] = [];

    // Act: each segment's bytes are taken as they are claimed.
    try {
      await reusing.chunkFile(file, async (segment) => {
        parts.push(Buffer.from(segment.data));
        lengths.push(...segment.lengths);
      }, undefined, data.length);
    } finally {
      await reusing.close();
    }

    // Assert: many targets, and every byte as read.
    expect(given).toBeGreaterThan(5);
    expect(lengths).toEqual(chunkLengths(data, SMALL_CHUNKS));
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });
});

