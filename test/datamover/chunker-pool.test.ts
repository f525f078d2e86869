import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from '@jest/globals';
import { ChunkerPool, SourceReadError, type PreviousChunks } from '../../core/datamover/chunker-pool.js';
import { chunkLengths } from '../../core/datamover/fastcdc.js';
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
