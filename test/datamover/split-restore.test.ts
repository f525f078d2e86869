/**
 * A large file split into extents written by several writer threads at once (restore.ts
 * FileFeeder, `splitBytes`; restore-writers.ts `extent`): restored byte-exact with its mode and
 * times, a run killed midway leaves it at full length but not looking complete (its mtime is set
 * last) and a re-run rewrites it, and a damaged chunk in its middle names it and removes it.
 */
import { chmod, cp, link, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { displayPath, IndexReader, type IndexEntry } from '../../core/datamover/index-format.js';
import { RestoreError, restoreVolume, RESTORE_MARKER } from '../../core/datamover/restore.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { packKey } from '../../core/vault/layout.js';
import type { VaultStore } from '../../core/vault/store.js';
import { Rng, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

const VOLUME = 'data-milvus-etcd-0';
const NOW = new Date('2026-03-01T02:00:00Z');
const DB = 'member/snap/db';
/** Split anything from 64 KiB: the db (1.5 MiB over ~32 packs of 48 KiB) is split, the small files are not. */
const SPLIT = 64 * 1024;

let dir: string;
let source: string;
let vaultDir: string;

beforeAll(async () => {
  dir = await tempDir('split-restore');
  source = join(dir, 'source');
  vaultDir = join(dir, 'vault');
  const rng = new Rng('split');
  for (const sub of ['a', 'z']) {
    await mkdir(join(source, sub), { recursive: true });
    for (let i = 0; i < 8; i++) await writeFile(join(source, sub, `f${i}`), rng.bytes(100 + rng.int(5000)));
  }
  await mkdir(join(source, 'member', 'snap'), { recursive: true });
  // Not a multiple of the block size, so the last extent ends in a partial block.
  await writeFile(join(source, DB), rng.bytes(1536 * 1024 + 1234));
  await chmod(join(source, DB), 0o640);
  await utimes(join(source, DB), new Date('2026-02-01T00:00:00.123Z'), new Date('2026-02-01T00:00:00.123Z'));
  await backupVolume({ source, vault: new FileVaultStore(vaultDir), volume: VOLUME, chunker: SMALL_CHUNKS, packSize: 48 * 1024, workers: 1, backupId: 'b1', now: NOW });
});

async function dbEntry(vault: VaultStore): Promise<IndexEntry> {
  const reader = new IndexReader(await vault.openRead(`backups/b1/volumes/${VOLUME}/index.jsonl.gz`), 'test');
  for await (const e of reader.entries()) if (displayPath(e.path) === DB) return e;
  throw new Error('no db in the index');
}

describe('a large file split over the writer threads', () => {
  it('is restored byte-exact, with its mode and times, by three writers', async () => {
    const target = join(dir, 'split');

    const result = await restoreVolume({ vault: new FileVaultStore(vaultDir), volume: VOLUME, backupId: 'b1', target, workers: 3, concurrency: 4, splitBytes: SPLIT });

    expect(result.files).toBe(17);
    expect(result.bytesWritten).toBeGreaterThan(1536 * 1024);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('is restored byte-exact when its extents hold whole 64 KiB pages (direct) between partial ones (buffered)', async () => {
    // Packs of 320 KiB: each extent has direct-written whole pages, and partial pages at both
    // ends that the neighbouring extents' writers share.
    const vault = new FileVaultStore(join(dir, 'vault-large-packs'));
    await backupVolume({ source, vault, volume: VOLUME, chunker: SMALL_CHUNKS, packSize: 320 * 1024, workers: 1, backupId: 'b1', now: NOW });
    const target = join(dir, 'split-large-packs');

    await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target, workers: 3, concurrency: 4, splitBytes: SPLIT });

    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('killed midway, is at full length but not complete-looking, and a re-run rewrites it byte-exact', async () => {
    // Prepare: a vault whose read of the db's middle pack never returns until released; with
    // one read in flight, every range before it has been written when it is asked for.
    const inner = new FileVaultStore(vaultDir);
    const entry = await dbEntry(inner);
    const packs = [...new Set(entry.chunks!.map((c) => packKey(c.pack)))];
    expect(packs.length).toBeGreaterThan(8);
    const middle = packs[Math.floor(packs.length / 2)]!;
    let reached!: () => void;
    const atMiddle = new Promise<void>((resolve) => (reached = resolve));
    let release!: (err: Error) => void;
    const gate = new Promise<never>((_, reject) => (release = reject));
    gate.catch(() => {});
    const stalling: VaultStore = Object.assign(Object.create(inner) as FileVaultStore, {
      getRange: async (key: string, offset: number, length: number, into?: Uint8Array) => {
        if (key === middle) {
          reached();
          return gate;
        }
        return inner.getRange(key, offset, length, into);
      },
    });
    const target = join(dir, 'killed');
    const running = restoreVolume({ vault: stalling, volume: VOLUME, backupId: 'b1', target, workers: 3, concurrency: 1, splitBytes: SPLIT }).catch((e: unknown) => e);
    await atMiddle;
    // What a kill at this moment leaves on disk (cp -a keeps nanosecond times; fs.cp does not).
    const killed = join(dir, 'killed-copy');
    execFileSync('cp', ['-a', target, killed]);

    // Assess the kill: the db is there at full length, neither its content nor its mtime yet the source's.
    const want = await snapshotTree(source);
    const left = await stat(join(killed, DB), { bigint: true });
    const src = await stat(join(source, DB), { bigint: true });
    expect(left.size).toBe(src.size);
    expect(left.mtimeNs / 1000n).not.toBe(src.mtimeNs / 1000n);
    expect((await readFile(join(killed, DB))).equals(await readFile(join(source, DB)))).toBe(false);

    // The stalled run, failed, removes the unfinished db and keeps its marker.
    release(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    expect(await running).toEqual(expect.objectContaining({ message: expect.stringMatching(/^cannot restore member\/snap\/db: cannot read \S+ \(bytes \d+-\d+\): read ECONNRESET$/) }));
    await expect(stat(join(target, DB))).rejects.toThrow(/ENOENT/);
    expect(await readdir(target)).toContain(RESTORE_MARKER);

    // Act: resume the killed copy.
    const result = await restoreVolume({ vault: inner, volume: VOLUME, backupId: 'b1', target: killed, workers: 3, splitBytes: SPLIT });

    // Assess: the db was rewritten, not kept; the tree is the source's.
    expect(result.filesResumed).toBe(8); // the files under a/, before the db
    expect(result.bytesWritten).toBeGreaterThanOrEqual(Number(src.size));
    expect(await snapshotTree(killed)).toEqual(want);
    expect(await readdir(killed)).not.toContain(RESTORE_MARKER);
  });

  it('with a damaged chunk in its middle, names it and leaves no file of it', async () => {
    // Prepare: a copy of the vault with one byte of a chunk in the middle of the db flipped.
    const copy = join(dir, 'damaged-vault');
    await cp(vaultDir, copy, { recursive: true });
    const vault = new FileVaultStore(copy);
    const entry = await dbEntry(vault);
    const chunk = entry.chunks![Math.floor(entry.chunks!.length / 2)]!;
    const file = join(copy, packKey(chunk.pack));
    const bytes = await readFile(file);
    bytes[chunk.offset + 7]! ^= 0x01;
    await writeFile(file, bytes);
    const target = join(dir, 'damaged');

    // Act
    const error = await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target, workers: 3, concurrency: 4, splitBytes: SPLIT }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RestoreError);
    expect((error as RestoreError).path).toBe(DB);
    expect((error as RestoreError).message).toMatch(/does not match its hash/);
    await expect(stat(join(target, DB))).rejects.toThrow(/ENOENT/);
    expect(await readdir(target)).toContain(RESTORE_MARKER);
  });
});

describe('a symbolic link where a restored file goes', () => {
  // A target an interrupted restore of the same backup left (its marker), changed since; or, on a
  // case-insensitive file system, an index's symlink "A" where its file "a" goes.
  it.each([
    ['a small file, which a writer thread creates', 'a/f3'],
    ['a split file, created at full length before its extents', DB],
  ])('in front of %s, is never written through: the restore names the file and the one it points to is unchanged', async (_, path) => {
    const target = join(dir, `symlinked-${path.replace(/\W/g, '-')}`);
    await mkdir(join(target, path, '..'), { recursive: true });
    await writeFile(join(target, RESTORE_MARKER), `${JSON.stringify({ backupId: 'b1', volume: VOLUME })}\n`);
    const outside = join(dir, `outside-${path.replace(/\W/g, '-')}`);
    await writeFile(outside, 'not the restore’s to change');
    await symlink(outside, join(target, path));

    const error = await restoreVolume({ vault: new FileVaultStore(vaultDir), volume: VOLUME, backupId: 'b1', target, workers: 3, splitBytes: SPLIT }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RestoreError);
    expect((error as RestoreError).message).toBe(`cannot restore ${path}: a symbolic link stands where the file goes, and a restore never writes through one; remove it from the target, then run the restore again`);
    expect(await readFile(outside, 'utf8')).toBe('not the restore’s to change');
    expect(await readdir(target)).toContain(RESTORE_MARKER);
  });
});

describe('a target on a file system that ignores the case of names', () => {
  it('is refused before anything is restored into it', async () => {
    // The marker answering its name in upper case as the same file is what case folding shows;
    // a hard link makes a case-sensitive file system show it too.
    const target = join(dir, 'folded');
    await mkdir(target, { recursive: true });
    await writeFile(join(target, RESTORE_MARKER), `${JSON.stringify({ backupId: 'b1', volume: VOLUME })}\n`);
    await link(join(target, RESTORE_MARKER), join(target, RESTORE_MARKER.toUpperCase()));

    const error = await restoreVolume({ vault: new FileVaultStore(vaultDir), volume: VOLUME, backupId: 'b1', target, workers: 3, splitBytes: SPLIT }).catch((e: unknown) => e);

    expect((error as Error).message).toBe(`target ${target} is on a file system that ignores the case of names, where files whose names differ only in case would overwrite each other; restore into a case-sensitive file system (ext4 or xfs without case folding)`);
    expect((await readdir(target)).sort()).toEqual([RESTORE_MARKER.toUpperCase(), RESTORE_MARKER].sort());
  });
});
