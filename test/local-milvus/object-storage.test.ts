/**
 * The simulated Milvus with external object storage (S3): its objects are plain files in a
 * bucket directory, `<objectStorageDir>/<bucket>/<rootPath>/…`, the layout the local object copy
 * engine reads (local/milvus/bucket.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryBucket, InvalidBucketNameError, InvalidObjectKeyError, MilvusSimulator, seedMilvusData, type CollectionSpec, type MilvusVolumes } from '../../local/milvus/index.js';
import { MinioDrives } from '../../local/milvus/object-store.js';
import { countRows, filesUnder, rest, statsRows } from './helpers.js';

const COLLECTIONS: CollectionSpec[] = [
  { database: 'default', name: 'docs', dim: 8, rows: 3000 },
  { database: 'analytics', name: 'events', dim: 4, rows: 500 },
];
const NOW = new Date('2026-01-05T10:00:00Z');


function simulator(volumes: MilvusVolumes): MilvusSimulator {
  return new MilvusSimulator({ volumes: async () => volumes, now: () => NOW });
}

let root: string;
/** etcd members plus the directory of buckets, seeded into bucket `milvus-data`, root path `files`. */
let s3: MilvusVolumes;
/** The same collections seeded into MinIO drives, to compare with. */
let minio: MilvusVolumes;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'local-milvus-s3-'));
  s3 = {
    etcdDirs: [0, 1, 2].map((i) => join(root, 's3', `etcd-${i}`)),
    minioDirs: [],
    objectStorageDir: join(root, 's3', 'object-storage'),
    bucket: 'milvus-data',
    rootPath: 'files',
  };
  minio = {
    etcdDirs: [0, 1, 2].map((i) => join(root, 'minio', `etcd-${i}`)),
    minioDirs: [0, 1, 2, 3].map((i) => join(root, 'minio', `drive-${i}`)),
    bucket: 'milvus-data',
    rootPath: 'files',
  };
  await seedMilvusData(s3, { collections: COLLECTIONS });
  await seedMilvusData(minio, { collections: COLLECTIONS });
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh copy of the seeded S3 volumes (etcd and the bucket), so a test may change them. */
async function copyOfS3(name: string): Promise<MilvusVolumes> {
  const dir = join(root, name);
  await cp(join(root, 's3'), dir, { recursive: true });
  return { ...s3, etcdDirs: s3.etcdDirs.map((d) => d.replace(join(root, 's3'), dir)), objectStorageDir: join(dir, 'object-storage') };
}

describe('DirectoryBucket', () => {
  it('stores an object as one plain file at <bucket>/<key>, leaving nothing in staging', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dir-bucket-'));
    const bucket = new DirectoryBucket(dir, 'my-bucket');

    await bucket.putObject('files/insert_log/1/2/3/100/4', Buffer.from('binlog bytes'), NOW);

    expect(await filesUnder(dir)).toEqual(['my-bucket/files/insert_log/1/2/3/100/4']);
    expect(await readFile(join(dir, 'my-bucket', 'files', 'insert_log', '1', '2', '3', '100', '4'), 'utf8')).toBe('binlog bytes');
    expect(await readdir(join(dir, '.staging'))).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('lists keys under a prefix and reads an object back; a missing one is undefined', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dir-bucket-'));
    const bucket = new DirectoryBucket(dir, 'my-bucket');
    await bucket.putObject('files/a/1', Buffer.from('one'), NOW);
    await bucket.putObject('files/b/2', Buffer.from('two'), NOW);
    await bucket.putObject('other/3', Buffer.from('three'), NOW);

    expect(await bucket.listObjects('files')).toEqual(['files/a/1', 'files/b/2']);
    expect(String(await bucket.readObjectHead('files/b/2', 100))).toBe('two');
    expect(String(await bucket.readObjectHead('files/b/2', 2))).toBe('tw');
    expect(await bucket.readObjectHead('files/b/9', 100)).toBeUndefined();
    expect(await bucket.exists('files/a')).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a bucket name S3 would refuse, and keys that would leave the bucket', () => {
    expect(() => new DirectoryBucket('/tmp/x', '.staging')).toThrow(InvalidBucketNameError);
    expect(() => new DirectoryBucket('/tmp/x', 'My_Bucket')).toThrow(InvalidBucketNameError);
    expect(() => new DirectoryBucket('/tmp/x', 'ok-bucket').pathOf('files/../../etc/passwd')).toThrow(InvalidObjectKeyError);
  });
});

describe('seeding external object storage', () => {
  it('writes the segment objects as plain files under <bucket>/<rootPath>/', async () => {
    const files = await filesUnder(s3.objectStorageDir!);

    expect(files.length).toBeGreaterThanOrEqual(10);
    expect(files.every((f) => f.startsWith('milvus-data/files/'))).toBe(true);
    const kinds = new Set(files.map((f) => f.split('/')[2]));
    expect([...kinds].sort()).toEqual(['delta_log', 'index_files', 'insert_log', 'stats_log']);
    expect(files.some((f) => f.endsWith('xl.meta') || f.includes('.minio.sys'))).toBe(false);
  });

  it('holds byte for byte the objects a MinIO-backed seed holds', async () => {
    const drives = new MinioDrives(minio.minioDirs, 'milvus-data');
    const keys = await drives.listObjects('files');
    const files = (await filesUnder(join(s3.objectStorageDir!, 'milvus-data'))).sort();

    expect(files).toEqual(keys);
    for (const key of keys.slice(0, 40)) {
      expect((await readFile(join(s3.objectStorageDir!, 'milvus-data', key))).equals((await drives.readObjectHead(key, Number.MAX_SAFE_INTEGER))!)).toBe(true);
    }
  });
});

describe('the simulator on an external bucket', () => {
  it('lists the collections and answers count(*), get_stats and a filtered query as with MinIO', async () => {
    const onS3 = simulator(s3);
    const onMinio = simulator(minio);

    const listed = await rest(onS3, '/v2/vectordb/collections/list', { dbName: 'default' });
    const query = await rest(onS3, '/v2/vectordb/entities/query', { collectionName: 'docs', filter: 'id >= 0', limit: 5, outputFields: ['id'] });

    expect(listed.json).toEqual({ code: 0, data: ['docs'] });
    expect(await countRows(onS3, 'docs')).toBe(await countRows(onMinio, 'docs'));
    expect(await statsRows(onS3, 'docs')).toBe(await statsRows(onMinio, 'docs'));
    expect(await statsRows(onS3, 'docs')).toBeGreaterThan(2900);
    expect(query.json.code).toBe(0);
    expect(query.json.data).toHaveLength(5);
  });

  it('writes a flushed insert into the bucket directory as new objects', async () => {
    const volumes = await copyOfS3('insert');
    const sim = simulator(volumes);
    const bucketDir = join(volumes.objectStorageDir!, 'milvus-data');
    const before = await filesUnder(bucketDir);
    const statsBefore = await statsRows(sim, 'docs');

    const inserted = await rest(sim, '/v2/vectordb/entities/insert', {
      collectionName: 'docs',
      data: [1, 2, 3].map((i) => ({ id: 9_000_000_000 + i, embedding: Array.from({ length: 8 }, (_, j) => (i + j) / 10) })),
    });
    await rest(sim, '/v2/vectordb/collections/flush', { collectionName: 'docs' });
    await rest(sim, '/v2/vectordb/collections/list', {}); // the flush completes on the next request
    const added = (await filesUnder(bucketDir)).filter((f) => !before.includes(f));

    expect(inserted.json.code).toBe(0);
    expect(added.some((f) => f.startsWith('files/insert_log/'))).toBe(true);
    expect(added.some((f) => f.startsWith('files/stats_log/'))).toBe(true);
    expect(await statsRows(sim, 'docs')).toBeGreaterThan(statsBefore);
    expect(await readdir(join(volumes.objectStorageDir!, '.staging'))).toEqual([]);
  });

  it('serves the data from another bucket and root path that hold a copy of it', async () => {
    const volumes = await copyOfS3('moved');
    const restoredRoot = join(volumes.objectStorageDir!, 'restored-bucket', 'restores', 'r1');
    await mkdir(restoredRoot, { recursive: true });
    await cp(join(volumes.objectStorageDir!, 'milvus-data', 'files'), restoredRoot, { recursive: true });
    await rm(join(volumes.objectStorageDir!, 'milvus-data'), { recursive: true, force: true });

    const sim = simulator({ ...volumes, bucket: 'restored-bucket', rootPath: 'restores/r1' });

    expect(await statsRows(sim, 'docs')).toBe(await statsRows(simulator(s3), 'docs'));
    expect(await countRows(sim, 'docs')).toBe(await countRows(simulator(s3), 'docs'));
  });

  it('serves the data from a bucket whose root path is empty (the objects at the top of the bucket)', async () => {
    const volumes = await copyOfS3('whole-bucket');
    await cp(join(volumes.objectStorageDir!, 'milvus-data', 'files'), join(volumes.objectStorageDir!, 'whole-bucket'), { recursive: true });

    const sim = simulator({ ...volumes, bucket: 'whole-bucket', rootPath: '' });

    expect(await statsRows(sim, 'docs')).toBe(await statsRows(simulator(s3), 'docs'));
  });

  it("serves no flushed rows from an empty bucket, as MinIO drives that lost their objects do, while get_stats still reports etcd's counts", async () => {
    const volumes = await copyOfS3('empty');
    const lostMinio = { ...minio, minioDirs: minio.minioDirs.map((_, i) => join(root, 'lost-minio', `drive-${i}`)) };

    const onEmptyBucket = simulator({ ...volumes, bucket: 'empty-bucket' });
    const onLostMinio = simulator(lostMinio);
    const search = await rest(onEmptyBucket, '/v2/vectordb/entities/search', { collectionName: 'docs', data: [Array.from({ length: 8 }, () => 0.5)], limit: 10 });

    // get_stats sums the row counts etcd records and reads no file (meta.GetNumRowsOfCollection).
    expect(await statsRows(onEmptyBucket, 'docs')).toBeGreaterThan(0);
    expect(await statsRows(onLostMinio, 'docs')).toBe(await statsRows(onEmptyBucket, 'docs'));
    expect(await countRows(onEmptyBucket, 'docs')).toBe(await countRows(onLostMinio, 'docs'));
    expect(search.json).toMatchObject({ code: 0, data: [] });
  });
});
