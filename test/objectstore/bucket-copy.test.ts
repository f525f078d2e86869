/**
 * The object copy of an S3-backed Milvus (core/objectstore/bucket-copy.ts) against s3rver on
 * 127.0.0.1. Requests go client → CopyConditionsProxy (what s3rver lacks of S3's copy API: the
 * `x-amz-copy-source-if-match` precondition and UploadPartCopy) → FaultyS3Proxy with Object Lock
 * emulation (bench/faulty-s3.ts: retention dates and injected faults) → s3rver, which holds the
 * Milvus bucket, the vault and the restore target, so CopyObject works server-side as on S3.
 * Requests are recorded by an SDK middleware, which also injects crashes (a throw before a
 * request is sent) and source changes.
 */
import { copyAll, restoreAll } from './copy-loops.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DeleteObjectCommand, GetObjectCommand, GetObjectRetentionCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { FaultyS3Proxy } from '../../bench/faulty-s3.js';
import {
  copyPage,
  createCopyClient,
  finishCopy,
  readObjectCopyCommit,
  restoreCopy,
  s3CopyBackend,
  startObjectCopy,
  startObjectRestore,
  type BackupCopyContext,
  type CopyCursor,
  type ObjectCopyCommitment,
} from '../../core/objectstore/bucket-copy.js';
import { milvusObjectKey, objectManifestPageKey } from '../../core/objectstore/layout.js';
import { ObjectManifestCorruptError } from '../../core/objectstore/manifest.js';
import { ObjectCopyAccessDeniedError, SourceObjectChangedError } from '../../core/objectstore/server-copy.js';
import { Rng, tempDir } from '../datamover/helpers.js';
import { CopyConditionsProxy } from './copy-conditions-proxy.js';

const KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const MiB = 1024 * 1024;
const T1 = new Date('2030-01-01T00:00:00.000Z');
const T2 = new Date('2030-06-01T00:00:00.000Z');

let server: S3rver;
let locks: FaultyS3Proxy;
let conditions: CopyConditionsProxy;
let client: S3Client;
/** Straight to s3rver, unrecorded: seeding and checking. */
let direct: S3Client;
/** Requests the client sent, in order (after any injected fault). */
let sent: { name: string; input: Record<string, unknown> }[] = [];
/** Runs before each request is sent; a throw is a crash at that point. */
let beforeSend: (name: string, input: Record<string, unknown>) => Promise<void> | void = () => {};
let seq = 0;

const s3Client = (endpoint: string): S3Client =>
  new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: KEYS, maxAttempts: 3, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });

beforeAll(async () => {
  server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: await tempDir('s3rver-objects'),
    configureBuckets: [
      { name: 'milvus', configs: [] },
      { name: 'vault', configs: [] },
      { name: 'restored', configs: [] },
    ],
  });
  const { port } = await server.run();
  locks = new FaultyS3Proxy(port, { objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 1 } });
  const lockPort = Number(new URL(await locks.start()).port);
  conditions = new CopyConditionsProxy(lockPort);
  client = s3Client(await conditions.start());
  direct = s3Client(`http://127.0.0.1:${port}`);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? '?';
      await beforeSend(name, args.input as Record<string, unknown>);
      sent.push({ name, input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: 'initialize', name: 'recordRequests' },
  );
});

afterAll(async () => {
  await conditions?.stop();
  await locks?.stop();
  await server?.close();
});

let source: string;
let ctx: BackupCopyContext;
/** The vault of this test: a prefix of its own in the vault bucket. */
let vault: { bucket: string; prefix: string };

beforeEach(() => {
  sent = [];
  beforeSend = () => {};
  locks.clear();
  seq++;
  source = `files${seq}`;
  vault = { bucket: 'vault', prefix: `v${seq}` };
  ctx = { backend: s3CopyBackend({ client, vault }), source: { bucket: 'milvus', prefix: source }, pageSize: 10, concurrency: 4 };
});

const count = (name: string): number => sent.filter((s) => s.name === name).length;
const copiedKeys = (): string[] => sent.filter((s) => s.name === 'CopyObjectCommand').map((s) => String(s.input.Key));

/** A Milvus-like tree under the source root: insert logs, stats logs, delta logs of one segment each. */
async function seed(names: readonly string[], sizes: (i: number) => number = (i) => 1000 + i * 37, seedText = 'milvus'): Promise<Map<string, Buffer>> {
  const rng = new Rng(`${seedText}:${seq}`);
  const out = new Map<string, Buffer>();
  await Promise.all(
    names.map(async (name, i) => {
      const body = rng.bytes(sizes(i));
      out.set(name, body);
      await direct.send(new PutObjectCommand({ Bucket: 'milvus', Key: `${source}/${name}`, Body: body }));
    }),
  );
  return out;
}

const segmentFiles = (n: number, from = 0): string[] =>
  Array.from({ length: n }, (_, i) => {
    const id = 449000000000000 + from + i;
    return [`insert_log/101/102/${id}/100/${id + 1}`, `stats_log/101/102/${id}/100/${id + 2}`, `delta_log/101/102/${id}/${id + 3}`][i % 3]!;
  });

async function bytesOf(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

const backup = (backupId: string, c: BackupCopyContext = ctx) => copyAll(c, backupId);
const restore = (backupId: string, commit: ObjectCopyCommitment, target: { bucket: string; prefix: string }) => restoreAll(ctx, backupId, commit, target);

describe('copyPage and finishCopy', () => {
  it('copies every object of the Milvus root path server-side on the first backup, a page of keys per call, and commits a manifest of them', async () => {
    const tree = await seed(segmentFiles(25));

    const { cursor, commit } = await backup('b1');

    expect(cursor.totals).toMatchObject({ objects: 25, copied: 25, reused: 0, bytes: [...tree.values()].reduce((n, b) => n + b.length, 0) });
    expect(commit).toMatchObject({ pages: 3, objects: 25 });
    // No object's bytes went through the client: only CopyObject wrote objects, PutObject wrote the 3 pages and the commit.
    expect(count('CopyObjectCommand')).toBe(25);
    expect(count('ListObjectsV2Command')).toBe(3);
    expect(sent.filter((s) => s.name === 'PutObjectCommand').map((s) => s.input.Key)).toEqual([1, 2, 3].map((p) => `v${seq}/${objectManifestPageKey('b1', p)}`).concat(`v${seq}/backups/b1/objects/commit.json`));
    for (const [name, body] of tree) {
      const etag = `"${(await direct.send(new ListObjectsV2Command({ Bucket: 'milvus', Prefix: `${source}/${name}` }))).Contents![0]!.ETag!.replace(/"/g, '')}"`;
      expect((await bytesOf(direct, 'vault', `v${seq}/${milvusObjectKey(name, body.length, etag)}`)).equals(body)).toBe(true);
    }
  });

  it('makes every copy conditional on the ETag the source listed', async () => {
    await seed(segmentFiles(3));

    await backup('b1');

    const copies = sent.filter((s) => s.name === 'CopyObjectCommand');
    expect(copies).toHaveLength(3);
    for (const c of copies) expect(c.input.CopySourceIfMatch).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it('copies only the objects the vault does not hold on a second backup, and its manifest still lists every object', async () => {
    await seed(segmentFiles(20));
    await backup('b1');
    await seed(segmentFiles(3, 100), undefined, 'new');
    sent = [];

    const { cursor, commit } = await backup('b2');

    expect(count('CopyObjectCommand')).toBe(3);
    expect(count('HeadObjectCommand')).toBe(23);
    expect(cursor.totals).toMatchObject({ objects: 23, copied: 3, reused: 20 });
    expect(commit.objects).toBe(23);
  });

  it('after a crash in the middle of a page, the same cursor completes the copy and no object is copied twice', async () => {
    await seed(segmentFiles(20));
    let cursor = await copyPage(ctx, startObjectCopy('b1'));
    let copies = 0;
    beforeSend = (name) => {
      if (name === 'CopyObjectCommand' && ++copies > 3) throw new Error('the Lambda died');
    };

    await expect(copyPage(ctx, cursor)).rejects.toThrow('the Lambda died');
    // Nothing of the crashed page is in the manifest yet.
    await expect(direct.send(new GetObjectCommand({ Bucket: 'vault', Key: `v${seq}/${objectManifestPageKey('b1', 2)}` }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    beforeSend = () => {};
    while (!cursor.done) cursor = await copyPage(ctx, cursor);
    const commit = await finishCopy(ctx, cursor);

    expect(commit.objects).toBe(20);
    const keys = copiedKeys();
    expect(keys).toHaveLength(20);
    expect(new Set(keys).size).toBe(20);
    expect(cursor.totals).toMatchObject({ objects: 20, copied: 17, reused: 3 });
  });

  it('fails naming the object and the paused garbage collection when a source object changes during the copy, and copies nothing under its name', async () => {
    await seed(segmentFiles(4));
    const changed = `${source}/${segmentFiles(1)[0]}`;
    beforeSend = async (name, input) => {
      if (name === 'CopyObjectCommand' && String(input.CopySource).endsWith(changed)) await direct.send(new PutObjectCommand({ Bucket: 'milvus', Key: changed, Body: 'rewritten' }));
    };

    const failure = copyPage({ ...ctx, concurrency: 1 }, startObjectCopy('b1'));

    await expect(failure).rejects.toThrow(SourceObjectChangedError);
    await expect(failure).rejects.toThrow(`s3://milvus/${changed} changed while it was being copied`);
    await expect(failure).rejects.toThrow("keep Milvus's garbage collection paused from before the etcd snapshot until the object copy is done");
    expect(conditions.preconditionFailures).toBeGreaterThan(0);
    const inVault = (await direct.send(new ListObjectsV2Command({ Bucket: 'vault', Prefix: `v${seq}/` }))).Contents ?? [];
    for (const o of inVault) expect((await bytesOf(direct, 'vault', o.Key!)).toString()).not.toBe('rewritten');
    expect(inVault.some((o) => o.Key!.includes('/backups/'))).toBe(false);
  });

  it('reports a source it may not list as one error naming the prefix and the permission', async () => {
    await seed(segmentFiles(2));
    locks.inject({ kind: 'AccessDenied', on: 'read', times: 1 });

    const failure = copyPage(ctx, startObjectCopy('b1'));

    await expect(failure).rejects.toThrow(ObjectCopyAccessDeniedError);
    await expect(failure).rejects.toThrow(`listing s3://milvus/${source}/ was refused (AccessDenied): grant the role s3:ListBucket on bucket milvus for the prefix ${source}/`);
  });

  it('copies an object above the multipart threshold in UploadPartCopy parts, each conditional on the listed ETag', async () => {
    const tree = await seed(['index_files/1/2/3/4/HNSW', 'insert_log/1/2/3/100/5'], (i) => (i === 0 ? 11 * MiB + 123 : 2000));
    const multipart = { threshold: 1 * MiB, partSize: 5 * MiB };

    const { cursor } = await backup('b1', { ...ctx, backend: s3CopyBackend({ client, vault, multipart }) });

    const parts = sent.filter((s) => s.name === 'UploadPartCopyCommand');
    expect(parts.map((p) => p.input.CopySourceRange)).toEqual([`bytes=0-${5 * MiB - 1}`, `bytes=${5 * MiB}-${10 * MiB - 1}`, `bytes=${10 * MiB}-${11 * MiB + 122}`]);
    for (const p of parts) expect(p.input.CopySourceIfMatch).toMatch(/^"/);
    expect(count('CopyObjectCommand')).toBe(1);
    expect(cursor.totals.copied).toBe(2);
    const big = tree.get('index_files/1/2/3/4/HNSW')!;
    const listed = (await direct.send(new ListObjectsV2Command({ Bucket: 'milvus', Prefix: `${source}/index_files/` }))).Contents![0]!;
    expect((await bytesOf(direct, 'vault', `v${seq}/${milvusObjectKey('index_files/1/2/3/4/HNSW', big.length, listed.ETag!)}`)).equals(big)).toBe(true);
  });

  it('writes copies with the vault KMS key and the Object Lock date, and extends the lock of reused objects without copying them', async () => {
    await seed(segmentFiles(3));
    const locked = { ...ctx, backend: s3CopyBackend({ client, vault: { ...vault, kmsKeyId: 'alias/vault', objectLockMode: 'COMPLIANCE' } }) };
    await backup('b1', { ...locked, retainUntil: T1 });
    const copy = sent.find((s) => s.name === 'CopyObjectCommand')!.input;
    sent = [];

    const { cursor } = await backup('b2', { ...locked, retainUntil: T2 });

    expect(copy).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/vault', BucketKeyEnabled: true, ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: T1 });
    expect(count('CopyObjectCommand')).toBe(0);
    expect(cursor.totals).toMatchObject({ reused: 3, retentionExtended: 3 });
    const key = sent.find((s) => s.name === 'PutObjectRetentionCommand')!.input.Key as string;
    const retention = await client.send(new GetObjectRetentionCommand({ Bucket: 'vault', Key: key }));
    expect(retention.Retention).toEqual({ Mode: 'COMPLIANCE', RetainUntilDate: T2 });
  });

  it('refuses to commit pages that are not the ones the copy wrote', async () => {
    await seed(segmentFiles(12));
    let cursor = startObjectCopy('b1');
    while (!cursor.done) cursor = await copyPage(ctx, cursor);
    await direct.send(new PutObjectCommand({ Bucket: 'vault', Key: `v${seq}/${objectManifestPageKey('b1', 2)}`, Body: (await bytesOf(direct, 'vault', `v${seq}/${objectManifestPageKey('b1', 1)}`)) }));

    await expect(finishCopy(ctx, cursor)).rejects.toThrow(ObjectManifestCorruptError);
  });
});

describe('the cursor', () => {
  it('is small plain JSON that a later call (another Lambda) continues from', async () => {
    await seed(segmentFiles(25));
    let cursor = startObjectCopy('b1');
    let largest = 0;

    while (!cursor.done) {
      const json = JSON.stringify(await copyPage(ctx, cursor));
      largest = Math.max(largest, Buffer.byteLength(json));
      cursor = JSON.parse(json) as CopyCursor;
    }
    const commit = await finishCopy(ctx, cursor);

    expect(commit).toMatchObject({ pages: 3, objects: 25 });
    expect(largest).toBeLessThan(2048);
  });

  it('ends a page early once its objects pass the byte budget, and the next call goes on after the last object taken', async () => {
    await seed(segmentFiles(6), () => 1000);

    const { cursor, commit } = await backup('b1', { ...ctx, maxPageBytes: 2500 });

    // 2 objects a page (a third would pass 2500 bytes), each page listed again after the last one taken.
    expect(commit).toMatchObject({ pages: 3, objects: 6 });
    expect(cursor.totals).toMatchObject({ copied: 6 });
    expect(new Set(copiedKeys()).size).toBe(6);
  });

  it('is done at once, with no pages, for an empty root path', async () => {
    const { cursor, commit } = await backup('b1');

    expect(cursor).toMatchObject({ done: true, pages: 0, totals: { objects: 0 } });
    expect(commit).toMatchObject({ pages: 0, objects: 0 });
  });
});

describe('errors', () => {
  it('names a source object deleted after it was listed', async () => {
    await seed(segmentFiles(2));
    const gone = `${source}/${segmentFiles(1)[0]}`;
    beforeSend = async (name, input) => {
      if (name === 'CopyObjectCommand' && String(input.CopySource).endsWith(gone)) await direct.send(new DeleteObjectCommand({ Bucket: 'milvus', Key: gone }));
    };

    await expect(copyPage({ ...ctx, concurrency: 1 }, startObjectCopy('b1'))).rejects.toThrow(`s3://milvus/${gone} was deleted after it was listed. In a backup, keep Milvus's garbage collection paused`);
  });

  it('refuses a source on another endpoint than the vault, since one request copies', () => {
    expect(() => createCopyClient({ bucket: 'milvus', prefix: 'files', endpoint: 'http://127.0.0.1:9000' }, { region: 'us-east-1' })).toThrow(
      'the Milvus bucket s3://milvus is on http://127.0.0.1:9000 and the vault on AWS S3: a server-side copy needs one endpoint that holds both buckets',
    );
  });
});

describe('restoreCopy', () => {
  it('after a crash in the middle of a page, the same cursor completes the restore', async () => {
    const tree = await seed(segmentFiles(15));
    const { commit } = await backup('b1');
    const manifest = { backupId: 'b1', sha256: commit.sha256 };
    const target = { bucket: 'restored', prefix: `crash-${seq}` };
    let cursor = await restoreCopy(ctx, manifest, target, startObjectRestore('b1'));
    let copies = 0;
    beforeSend = (name) => {
      if (name === 'CopyObjectCommand' && ++copies > 2) throw new Error('the Lambda died');
    };

    await expect(restoreCopy(ctx, manifest, target, cursor)).rejects.toThrow('the Lambda died');
    beforeSend = () => {};
    while (!cursor.done) cursor = await restoreCopy(ctx, manifest, target, cursor);

    expect(cursor).toMatchObject({ pages: 2, objects: 15 });
    for (const [name, body] of tree) expect((await bytesOf(direct, 'restored', `crash-${seq}/${name}`)).equals(body)).toBe(true);
  });

  it('copies the backup back under another bucket and root path, byte-exact, a manifest page per call', async () => {
    const tree = await seed([...segmentFiles(14), 'index_files/9/9/9/9/IVF'], (i) => (i === 14 ? 6 * MiB + 7 : 500 + i));
    const { commit } = await backup('b1');
    sent = [];

    const cursor = await restore('b1', commit, { bucket: 'restored', prefix: `milvus-${seq}/files` });

    expect(cursor).toMatchObject({ pages: 2, objects: 15, done: true });
    expect(count('CopyObjectCommand')).toBe(15);
    const listed = await direct.send(new ListObjectsV2Command({ Bucket: 'restored', Prefix: `milvus-${seq}/files/` }));
    expect(listed.Contents!.map((o) => o.Key!.slice(`milvus-${seq}/files/`.length)).sort()).toEqual([...tree.keys()].sort());
    for (const [name, body] of tree) expect((await bytesOf(direct, 'restored', `milvus-${seq}/files/${name}`)).equals(body)).toBe(true);
  });

  it('restores objects above the multipart threshold in parts', async () => {
    const tree = await seed(['index_files/1/1/1/1/DISKANN'], () => 7 * MiB + 1);
    const multipart = { threshold: 1 * MiB, partSize: 5 * MiB };
    const backend = s3CopyBackend({ client, vault, multipart });
    const { commit } = await backup('b1', { ...ctx, backend });
    sent = [];

    let cursor = startObjectRestore('b1');
    while (!cursor.done) cursor = await restoreCopy({ ...ctx, backend }, { backupId: 'b1', sha256: commit.sha256 }, { bucket: 'restored', prefix: `mp-${seq}` }, cursor);

    expect(count('UploadPartCopyCommand')).toBe(2);
    expect((await bytesOf(direct, 'restored', `mp-${seq}/index_files/1/1/1/1/DISKANN`)).equals(tree.get('index_files/1/1/1/1/DISKANN')!)).toBe(true);
  });

  it('refuses a commit whose SHA-256 is not the one the backup record holds, and copies nothing', async () => {
    await seed(segmentFiles(2));
    await backup('b1');
    sent = [];

    await expect(restoreCopy(ctx, { backupId: 'b1', sha256: '0'.repeat(64) }, { bucket: 'restored', prefix: 'x' }, startObjectRestore('b1'))).rejects.toThrow(ObjectManifestCorruptError);
    expect(count('CopyObjectCommand')).toBe(0);
  });

  it('reads back the commit the backup wrote', async () => {
    await seed(segmentFiles(5));
    const { commit } = await backup('b1');

    const read = await readObjectCopyCommit(ctx, { backupId: 'b1', sha256: commit.sha256 });

    expect(read).toMatchObject({ backupId: 'b1', objects: 5, copied: 5, source: { bucket: 'milvus', prefix: `${source}/` } });
    expect(read.pages).toHaveLength(1);
  });
});
