/**
 * The object copy (core/objectstore/bucket-copy.ts) with `directoryCopyBackend`: the Milvus
 * bucket is a directory, as the local embedded cluster writes it (objects written to
 * `<bucketsDir>/.staging/` and renamed into place), and the vault a `FileVaultStore` directory.
 * Faults (a crash, a source rewritten or deleted mid-copy) are injected by a backend wrapper that
 * runs a hook before each copy it passes on.
 */
import { copyAll, restoreAll } from './copy-loops.js';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  committedObjectKeys,
  copyPage,
  directoryCopyBackend,
  finishCopy,
  startObjectCopy,
  type BackupCopyContext,
  type CopyBackend,
  type ObjectCopyCommitment,
  type SourceObjectRef,
} from '../../core/objectstore/bucket-copy.js';
import { milvusObjectKey, objectManifestPageKey } from '../../core/objectstore/layout.js';
import { ObjectManifestCorruptError, noRequests } from '../../core/objectstore/manifest.js';
import { SourceObjectChangedError } from '../../core/objectstore/server-copy.js';
import { UserError } from '../../core/errors.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { Rng, tempDir } from '../datamover/helpers.js';

const NOW = new Date('2026-12-06T00:00:00.000Z');
const T1 = new Date('2030-01-01T00:00:00.000Z');
const T2 = new Date('2030-06-01T00:00:00.000Z');

let bucketsDir: string;
let vaultDir: string;
let ctx: BackupCopyContext;
let seq = 0;
let writes = 0;

beforeEach(async () => {
  seq++;
  bucketsDir = await tempDir('buckets');
  vaultDir = await tempDir('vault');
  await mkdir(join(bucketsDir, 'milvus'));
  await mkdir(join(bucketsDir, 'restored'));
  ctx = { backend: directoryCopyBackend({ bucketsDir, vaultDir, now: () => NOW }), source: { bucket: 'milvus', prefix: 'files' }, pageSize: 10, concurrency: 4 };
});

/** Writes an object as the local Milvus does: into `.staging`, then renamed into place. */
async function putObject(bucket: string, key: string, body: Buffer | string): Promise<void> {
  const staged = join(bucketsDir, '.staging', `writer-${++writes}`);
  await mkdir(dirname(staged), { recursive: true });
  await writeFile(staged, body);
  const target = join(bucketsDir, bucket, ...key.split('/'));
  await mkdir(dirname(target), { recursive: true });
  await rename(staged, target);
}

/** Milvus-like objects under `files/`: insert, stats and delta logs of one segment each. */
async function seed(names: readonly string[], seedText = 'milvus'): Promise<Map<string, Buffer>> {
  const rng = new Rng(`${seedText}:${seq}`);
  const out = new Map<string, Buffer>();
  for (const [i, name] of names.entries()) {
    const body = rng.bytes(700 + i * 37);
    out.set(name, body);
    await putObject('milvus', `files/${name}`, body);
  }
  return out;
}

const segmentFiles = (n: number, from = 0): string[] =>
  Array.from({ length: n }, (_, i) => {
    const id = 449000000000000 + from + i;
    return [`insert_log/101/102/${id}/100/${id + 1}`, `stats_log/101/102/${id}/100/${id + 2}`, `delta_log/101/102/${id}/${id + 3}`][i % 3]!;
  });

const etagOf = (body: Buffer): string => `"${createHash('md5').update(body).digest('hex')}"`;

const backup = (backupId: string, c: BackupCopyContext = ctx) => copyAll(c, backupId);
const restore = (backupId: string, commit: ObjectCopyCommitment, target: { bucket: string; prefix: string }) => restoreAll(ctx, backupId, commit, target);

/** Every file below `dir`, as keys relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

/** A backend that runs `before` ahead of every copy into the vault it passes on. */
function withHook(backend: CopyBackend, before: (from: SourceObjectRef, n: number) => Promise<void> | void): CopyBackend {
  let n = 0;
  return {
    vault: backend.vault,
    url: (bucket, key) => backend.url(bucket, key),
    listSource: (bucket, page, counts) => backend.listSource(bucket, page, counts),
    headVault: (key, expected, counts) => backend.headVault(key, expected, counts),
    copyToVault: async (from, vaultKey, options, counts, roles) => {
      await before(from, ++n);
      return backend.copyToVault(from, vaultKey, options, counts, roles);
    },
    extendRetention: (key, current, until, counts) => backend.extendRetention(key, current, until, counts),
    copyFromVault: (from, to, counts, roles) => backend.copyFromVault(from, to, counts, roles),
  };
}

describe('the directory listing', () => {
  it('lists keys in UTF-8 binary order, as S3 does, not in directory-walk or UTF-16 order', async () => {
    const keys = ['files/a0', 'files/a-c', 'files/a/b', 'files/\uff61', 'files/\u{1f600}', 'files/Z'];
    for (const k of keys) await putObject('milvus', k, k);

    const page = await ctx.backend.listSource('milvus', { prefix: 'files/', maxKeys: 1000 }, noRequests());

    expect(page.objects.map((o) => o.key)).toEqual(['files/Z', 'files/a-c', 'files/a/b', 'files/a0', 'files/\uff61', 'files/\u{1f600}']);
    expect(page.truncated).toBe(false);
  });

  it('honours prefix, start-after and max-keys, and says when more keys follow', async () => {
    for (const k of ['files/1', 'files/2/x', 'files/2/y', 'files/3', 'files-old/1', 'other/1']) await putObject('milvus', k, k);
    const list = (startAfter?: string) => ctx.backend.listSource('milvus', { prefix: 'files/', maxKeys: 2, ...(startAfter ? { startAfter } : {}) }, noRequests());

    const first = await list();
    const second = await list('files/2/x');
    const last = await list('files/2/y');

    expect(first.objects.map((o) => o.key)).toEqual(['files/1', 'files/2/x']);
    expect(first.truncated).toBe(true);
    expect(second.objects.map((o) => o.key)).toEqual(['files/2/y', 'files/3']);
    expect(second.truncated).toBe(false);
    expect(last.objects.map((o) => o.key)).toEqual(['files/3']);
  });

  it("gives each object S3's single-part ETag: the quoted MD5 of its content, with its size", async () => {
    await putObject('milvus', 'files/insert_log/1', 'segment bytes');

    const page = await ctx.backend.listSource('milvus', { prefix: 'files/', maxKeys: 10 }, noRequests());

    expect(page.objects).toEqual([{ key: 'files/insert_log/1', size: 13, etag: etagOf(Buffer.from('segment bytes')) }]);
  });

  it('names a bucket whose directory does not exist, and how to fix it', async () => {
    const failure = copyPage({ ...ctx, source: { bucket: 'nope', prefix: 'files' } }, startObjectCopy('b1'));

    await expect(failure).rejects.toThrow(UserError);
    await expect(failure).rejects.toThrow(`the Milvus bucket nope does not exist: ${join(bucketsDir, 'nope')} is not a directory`);
  });
});

describe('backup and restore of a bucket directory', () => {
  it('backs the bucket up into the vault and restores it byte-exact under another bucket and root path', async () => {
    const tree = await seed(segmentFiles(25));

    const { cursor, commit } = await backup('b1');
    const restored = await restore('b1', commit, { bucket: 'restored', prefix: 'milvus-2/files' });

    expect(cursor.totals).toMatchObject({ objects: 25, copied: 25, reused: 0 });
    expect(commit).toMatchObject({ pages: 3, objects: 25 });
    expect(restored).toMatchObject({ done: true, pages: 3, objects: 25 });
    const root = join(bucketsDir, 'restored', 'milvus-2', 'files');
    expect((await filesUnder(root)).sort()).toEqual([...tree.keys()].sort());
    for (const [name, body] of tree) expect((await readFile(join(root, name))).equals(body)).toBe(true);
    expect(await filesUnder(join(bucketsDir, '.staging'))).toEqual([]);
  });

  it('stores each object under its content-addressed vault key with the listed ETag as its vault ETag', async () => {
    const tree = await seed(segmentFiles(3));

    await backup('b1');

    for (const [name, body] of tree) expect((await readFile(join(vaultDir, milvusObjectKey(name, body.length, etagOf(body))))).equals(body)).toBe(true);
  });

  it('copies only the new objects on a second backup, and its manifest still lists every object', async () => {
    await seed(segmentFiles(20));
    await backup('b1');
    await seed(segmentFiles(3, 100), 'new');

    const { cursor, commit } = await backup('b2');

    expect(cursor.totals).toMatchObject({ objects: 23, copied: 3, reused: 20 });
    expect(cursor.totals.requests).toMatchObject({ copy: 3, head: 23, list: 3 });
    expect(commit.objects).toBe(23);
    expect(await collect(ctx.backend.vault.list('milvus-objects/'))).toHaveLength(23);
  });

  it('after a crash in the middle of a page, the same cursor completes the copy with the manifest an uninterrupted copy writes', async () => {
    await seed(segmentFiles(20));
    const cleanCtx = { ...ctx, backend: directoryCopyBackend({ bucketsDir, vaultDir: await tempDir('clean-vault'), now: () => NOW }) };
    const clean = await backup('b1', cleanCtx);
    let cursor = await copyPage(ctx, startObjectCopy('b1'));
    const crashing = withHook(ctx.backend, (_from, n) => {
      if (n === 4) throw new Error('the Lambda died');
    });

    await expect(copyPage({ ...ctx, backend: crashing }, cursor)).rejects.toThrow('the Lambda died');
    expect(await ctx.backend.vault.head(objectManifestPageKey('b1', 2))).toBeUndefined();
    while (!cursor.done) cursor = await copyPage(ctx, cursor);
    const commit = await finishCopy(ctx, cursor);

    expect(cursor.chain).toBe(clean.cursor.chain);
    expect(commit).toMatchObject({ pages: clean.commit.pages, objects: 20, bytes: clean.commit.bytes });
    expect(cursor.totals.copied + cursor.totals.reused).toBe(20);
    expect(cursor.totals.reused).toBeGreaterThan(0);
    expect(await collect(committedObjectKeys(ctx, { backupId: 'b1', sha256: commit.sha256 }))).toEqual(await collect(committedObjectKeys(cleanCtx, { backupId: 'b1', sha256: clean.commit.sha256 })));
    expect(await collect(ctx.backend.vault.list('milvus-objects/'))).toHaveLength(20);
  });

  it('fails with SourceObjectChangedError when an object is rewritten during its copy, and stores nothing under its name', async () => {
    const tree = await seed(segmentFiles(4));
    const changed = segmentFiles(1)[0]!;
    const rewriting = withHook(ctx.backend, async (from) => {
      if (from.key === `files/${changed}`) await putObject('milvus', from.key, Buffer.alloc(tree.get(changed)!.length, 7));
    });

    const failure = copyPage({ ...ctx, backend: rewriting, concurrency: 1 }, startObjectCopy('b1'));

    await expect(failure).rejects.toThrow(SourceObjectChangedError);
    await expect(failure).rejects.toThrow(`${ctx.backend.url('milvus', `files/${changed}`)} changed while it was being copied`);
    await expect(failure).rejects.toThrow("keep Milvus's garbage collection paused");
    const body = tree.get(changed)!;
    expect(await ctx.backend.vault.head(milvusObjectKey(changed, body.length, etagOf(body)))).toBeUndefined();
    expect(await collect(ctx.backend.vault.list('backups/'))).toEqual([]);
    expect(await filesUnder(join(bucketsDir, '.staging'))).toEqual([]);
  });

  it('names an object deleted after it was listed', async () => {
    await seed(segmentFiles(2));
    const gone = `files/${segmentFiles(1)[0]}`;
    const deleting = withHook(ctx.backend, async (from) => {
      if (from.key === gone) await rm(join(bucketsDir, 'milvus', ...gone.split('/')));
    });

    await expect(copyPage({ ...ctx, backend: deleting }, startObjectCopy('b1'))).rejects.toThrow(`${ctx.backend.url('milvus', gone)} was deleted after it was listed. In a backup, keep Milvus's garbage collection paused`);
  });

  it('refuses to restore a vault object altered since the backup, and writes nothing under its name', async () => {
    const tree = await seed(segmentFiles(3));
    const { commit } = await backup('b1');
    const [name, body] = [...tree.entries()][1]!;
    await writeFile(join(vaultDir, milvusObjectKey(name, body.length, etagOf(body))), Buffer.alloc(body.length, 1));

    const failure = restore('b1', commit, { bucket: 'restored', prefix: 'files' });

    await expect(failure).rejects.toThrow(SourceObjectChangedError);
    await expect(failure).rejects.toThrow("The vault's copy is not the one backup b1 recorded: verify the backup, and restore another one");
    expect(await filesUnder(join(bucketsDir, 'restored'))).not.toContain(join('files', name));
    expect(await filesUnder(join(bucketsDir, '.staging'))).toEqual([]);
  });

  it('names a restore target bucket whose directory does not exist', async () => {
    await seed(segmentFiles(1));
    const { commit } = await backup('b1');

    await expect(restore('b1', commit, { bucket: 'missing', prefix: 'files' })).rejects.toThrow(`the restore target bucket missing does not exist: ${join(bucketsDir, 'missing')} is not a directory`);
  });

  it('locks new objects until the backup date and extends the lock of reused ones to the later backup', async () => {
    const tree = await seed(segmentFiles(3));
    await backup('b1', { ...ctx, retainUntil: T1 });

    const { cursor } = await backup('b2', { ...ctx, retainUntil: T2 });

    expect(cursor.totals).toMatchObject({ reused: 3, retentionExtended: 3 });
    const vault = new FileVaultStore(vaultDir, { now: () => NOW });
    for (const [name, body] of tree) expect((await vault.head(milvusObjectKey(name, body.length, etagOf(body))))?.retainUntil).toEqual(T2);
  });
});

describe('committedObjectKeys', () => {
  it('yields exactly the vault keys the backup references, not those of later backups', async () => {
    const tree = await seed(segmentFiles(12));
    const { commit } = await backup('b1');
    await seed(segmentFiles(4, 100), 'new');
    await backup('b2');

    const keys = await collect(committedObjectKeys(ctx, { backupId: 'b1', sha256: commit.sha256 }));

    expect(keys.sort()).toEqual([...tree].map(([name, body]) => milvusObjectKey(name, body.length, etagOf(body))).sort());
  });

  it('refuses a commit that is not the one the backup record holds', async () => {
    await seed(segmentFiles(2));
    await backup('b1');

    await expect(collect(committedObjectKeys(ctx, { backupId: 'b1', sha256: '0'.repeat(64) }))).rejects.toThrow(ObjectManifestCorruptError);
  });

  it('yields no key of a page that is not the one the commit names', async () => {
    await seed(segmentFiles(15));
    const { commit } = await backup('b1');
    await writeFile(join(vaultDir, objectManifestPageKey('b1', 2)), await readFile(join(vaultDir, objectManifestPageKey('b1', 1))));
    const keys: string[] = [];

    const failure = (async () => {
      for await (const k of committedObjectKeys(ctx, { backupId: 'b1', sha256: commit.sha256 })) keys.push(k);
    })();

    await expect(failure).rejects.toThrow(ObjectManifestCorruptError);
    expect(keys).toHaveLength(10);
  });
});
