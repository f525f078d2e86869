/**
 * The restore's writer threads when something goes wrong outside a file's own steps: the thread
 * that failed closes and removes its open files and stays alive, and an abort after one thread
 * failed still reaches every other thread (their open files are incomplete too).
 */
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { RestoreArena, RestoreWriters, SCRATCH_BYTES, WASM_PAGE, type WriterOp } from '../../core/datamover/restore-writers.js';
import { tempDir } from './helpers.js';

const open = (id: number, path: string): WriterOp => ({ op: 'open', id, path: Buffer.from(path), dirs: [], size: 10, mode: 0o644, uid: 0, gid: 0, mtime: 1.5e9, chown: false });

describe('restore writer threads after a fault', () => {
  let writers: RestoreWriters | undefined;
  afterEach(async () => {
    await writers?.close();
    writers = undefined;
  });

  it('a thread that faults removes its open files, and abort still reaches the others', async () => {
    // Prepare: one open file on each of two threads.
    const dir = await tempDir('writers-fault');
    writers = new RestoreWriters(2);
    await writers.send(0, [open(1, join(dir, 'on-0'))]);
    await writers.send(1, [open(2, join(dir, 'on-1'))]);
    expect((await readdir(dir)).sort()).toEqual(['on-0', 'on-1']);

    // Act: a message thread 0 cannot handle at all (not a list of steps).
    const fault = writers.send(0, null as unknown as WriterOp[]);

    // Assess: the call fails with the thread's error; its file is gone; no more work is taken.
    await expect(fault).rejects.toThrow(/^a restore writer thread failed: TypeError/);
    expect(await readdir(dir)).toEqual(['on-1']);
    await expect(writers.send(1, [{ op: 'close', id: 2 }])).rejects.toThrow(/a restore writer thread failed/);

    // Act: the restore aborts.
    await writers.abort();

    // Assess: thread 1's incomplete file is removed too.
    expect(await readdir(dir)).toEqual([]);
  });

  it('never creates a file through a symlink standing where a directory it was told to create is', async () => {
    // As on a case-insensitive file system, where an index's symlink "A" answers for directory "a".
    const dir = await tempDir('writers-symlink');
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(dir, 'a'));
    writers = new RestoreWriters(0);

    const create: WriterOp = { op: 'open', id: 1, path: Buffer.from(join(dir, 'a', 'passwd')), dirs: [Buffer.from(join(dir, 'a'))], size: 10, mode: 0o644, uid: 0, gid: 0, mtime: 1.5e9, chown: false };

    const result = await writers.send(0, [create]);

    expect(result.failed).toEqual([expect.objectContaining({ id: 1, kind: 'fs', code: 'ENOTDIR', syscall: 'mkdir' })]);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('share one WebAssembly memory with the read slots, whose copy module copies within it', () => {
    // Two slots of two pages and scratch for two writers, as the restore lays them out.
    const arena = new RestoreArena(2, 2 * WASM_PAGE, 2);
    const shared = arena.share();
    expect(shared.memory).toBeDefined();
    expect(shared.buffer.byteLength).toBe(4 * WASM_PAGE + 2 * SCRATCH_BYTES);
    expect(arena.slot(1).byteOffset).toBe(2 * WASM_PAGE);
    expect(arena.scratchAt(1)).toBe(4 * WASM_PAGE + SCRATCH_BYTES);
    const wasm = (globalThis as unknown as { WebAssembly: { Instance: new (m: object, i: object) => { exports: { copy: (to: number, from: number, n: number) => void } } } }).WebAssembly;
    const { copy } = new wasm.Instance(shared.copyModule!, { m: { memory: shared.memory } }).exports;
    const bytes = new Uint8Array(shared.buffer);
    arena.slot(1).set([1, 2, 3, 4, 5], 7);
    copy(arena.scratchAt(1) + 3, arena.slot(1).byteOffset + 7, 5);
    expect(Array.from(bytes.subarray(arena.scratchAt(1), arena.scratchAt(1) + 9))).toEqual([0, 0, 0, 1, 2, 3, 4, 5, 0]);
  });
});
