/**
 * A local cluster whose Milvus keeps its objects in an external S3 bucket
 * (`startLocalCluster({ objectStorage: 's3' })`, `local up --object-storage s3`): the CR, what the
 * local operator makes of it, the bucket directory, and the simulated Milvus reading it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { OBJECT_STORAGE_DIR } from '../../local/volumes.js';
import { SEED_MILVUS, SEED_NAMESPACE, SEED_S3_BUCKET, SEED_S3_ENDPOINT, SEED_S3_ROOT_PATH, SEED_S3_SECRET } from '../../local/seed.js';
import { typeOf } from '../../local/server/resources.js';
import type { KubeObject } from '../../local/server/store.js';
import { filesUnder, rest } from '../local-milvus/helpers.js';
import { startTestCluster, type TestCluster } from './helpers.js';

const MILVUS = typeOf('Milvus');
const CLI = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster({ seed: true, objectStorage: 's3', milvusVersion: 'v2.5.14', milvusAuth: true });
}, 60_000);

afterAll(async () => {
  await t?.dispose();
});


const cr = (): KubeObject => t.cluster.store.get(MILVUS, SEED_NAMESPACE, SEED_MILVUS)!;
const simulator = () => t.cluster.milvus.get(SEED_NAMESPACE, SEED_MILVUS)!;
/** REST headers with root's credentials (the cluster is seeded with authorization on). */
function rootAuth(): Record<string, string> {
  const password = cr().spec.config.common.security.defaultRootPassword as string;
  return { authorization: `Bearer root:${password}` };
}

/** `get_stats` row count of a collection of the default database, as root. */
async function statsRows(collectionName: string): Promise<number> {
  const res = await rest(simulator(), '/v2/vectordb/collections/get_stats', { collectionName }, rootAuth());
  if (res.json.code !== 0) throw new Error(`get_stats failed: ${JSON.stringify(res.json)}`);
  return (res.json.data as { rowCount: number }).rowCount;
}

/** `count(*)` of a collection of the default database, as root. */
async function countRows(collectionName: string): Promise<number> {
  const res = await rest(simulator(), '/v2/vectordb/entities/query', { collectionName, outputFields: ['count(*)'] }, rootAuth());
  if (res.json.code !== 0) throw new Error(`count(*) failed: ${JSON.stringify(res.json)}`);
  return (res.json.data as { 'count(*)': number }[])[0]!['count(*)'];
}

describe('the seeded Milvus with external S3', () => {
  it('names the S3 bucket in its CR as the Milvus Operator expects', () => {
    const spec = cr().spec;

    expect(spec.dependencies.storage).toEqual({ external: true, type: 'S3', endpoint: SEED_S3_ENDPOINT, secretRef: SEED_S3_SECRET });
    expect(spec.config.minio).toMatchObject({ bucketName: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH, useSSL: true, cloudProvider: 'aws', region: 'us-east-1' });
    expect(spec.components.image).toBe('milvusdb/milvus:v2.5.14');
    expect(spec.config.common.security.authorizationEnabled).toBe(true);
  });

  it('has the credentials Secret its secretRef names, labelled with the instance', () => {
    const secret = t.cluster.store.get(typeOf('Secret'), SEED_NAMESPACE, SEED_S3_SECRET)!;

    expect(Object.keys(secret.data).sort()).toEqual(['accesskey', 'secretkey']);
    expect(secret.metadata.labels).toEqual({ 'app.kubernetes.io/instance': SEED_MILVUS });
  });

  it('gets no MinIO: only etcd PVCs, no MinIO StatefulSet, Service or Secret', () => {
    const names = (kind: string) => t.cluster.store.list(typeOf(kind), SEED_NAMESPACE).map((o) => o.metadata.name);

    expect(names('PersistentVolumeClaim').sort()).toEqual(['data-production-milvus-etcd-0', 'data-production-milvus-etcd-1', 'data-production-milvus-etcd-2']);
    expect(names('StatefulSet')).toEqual(['production-milvus-etcd']);
    expect([...names('Service'), ...names('Secret')].filter((n) => n.includes('minio'))).toEqual([]);
  });

  it('renders the bucket, root path and endpoint from the CR into the Milvus config', () => {
    const config = parseYaml(t.cluster.store.get(typeOf('ConfigMap'), SEED_NAMESPACE, SEED_MILVUS)!.data['user.yaml']);

    expect(config.minio).toEqual({ address: 's3.us-east-1.amazonaws.com', port: 443, bucketName: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH, useSSL: true, useIAM: false, cloudProvider: 'aws', region: 'us-east-1' });
  });

  it('is Healthy with StorageReady true', () => {
    const status = cr().status;

    expect(status.status).toBe('Healthy');
    expect(status.conditions.find((c: { type: string }) => c.type === 'StorageReady')).toMatchObject({ status: 'True' });
  });

  it('has its objects in the bucket directory under the root path, and says where', async () => {
    const dir = join(t.stateDir, OBJECT_STORAGE_DIR, SEED_S3_BUCKET);
    const files = await filesUnder(dir);

    expect(t.cluster.dirs.objectStorage()).toBe(join(t.stateDir, OBJECT_STORAGE_DIR));
    expect(files.length).toBeGreaterThan(50);
    expect(files.every((f) => f.startsWith(`${SEED_S3_ROOT_PATH}/`))).toBe(true);
    expect(t.cluster.externalBuckets()).toEqual([{ namespace: SEED_NAMESPACE, name: SEED_MILVUS, bucket: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH, dir }]);
  });

  it('serves the seeded collections through the simulator', async () => {
    expect(await statsRows('product_embeddings')).toBeGreaterThan(19_000);
  });
});

describe('a Milvus CR pointed at another bucket', () => {
  afterEach(() => {
    const current = cr();
    t.cluster.store.replace(MILVUS, { ...current, spec: { ...current.spec, config: { ...current.spec.config, minio: { ...current.spec.config.minio, bucketName: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH } } } });
  });

  function pointAt(bucketName: string, rootPath: string): void {
    const current = cr();
    t.cluster.store.replace(MILVUS, { ...current, spec: { ...current.spec, config: { ...current.spec.config, minio: { ...current.spec.config.minio, bucketName, rootPath } } } });
  }

  it('serves the data from there when the bucket holds a copy of it', async () => {
    const statsBefore = await statsRows('user_profiles');
    const countBefore = await countRows('user_profiles');
    await cp(join(t.cluster.dirs.objectStorage(), SEED_S3_BUCKET, SEED_S3_ROOT_PATH), join(t.cluster.dirs.objectStorage(), 'restored-milvus-data', 'restore', 'files'), { recursive: true });

    pointAt('restored-milvus-data', 'restore/files');

    expect(t.cluster.milvus.volumesOf(SEED_NAMESPACE, SEED_MILVUS)).toMatchObject({ minioDirs: [], bucket: 'restored-milvus-data', rootPath: 'restore/files' });
    expect(await statsRows('user_profiles')).toBe(statsBefore);
    expect(await countRows('user_profiles')).toBe(countBefore);
    await rm(join(t.cluster.dirs.objectStorage(), 'restored-milvus-data'), { recursive: true, force: true });
  });

  it("serves no flushed rows when the bucket is empty, while get_stats still reports etcd's counts", async () => {
    const statsBefore = await statsRows('user_profiles');
    const countBefore = await countRows('user_profiles');
    pointAt('empty-milvus-data', 'files');

    // Only the rows of the growing segment are left: they are in the queue, not the bucket.
    expect(await countRows('user_profiles')).toBeLessThan(countBefore / 20);
    // get_stats sums the row counts etcd records and reads no file (datacoord's meta.GetNumRowsOfCollection).
    expect(await statsRows('user_profiles')).toBe(statsBefore);
  });
});

describe('milvus-guard local up --object-storage', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('starts a cluster whose Milvus uses S3, with --milvus-version and --milvus-auth, and prints where the bucket lives', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'mg-local-s3-'));
    child = spawn(process.execPath, [CLI, 'local', 'up', '--state', stateDir, '--port', '0', '--object-storage', 's3', '--milvus-version', 'v2.6.8', '--milvus-auth'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', resolve));

    // The last line local up prints, or its exit; the test's own timeout bounds the wait.
    const ready = await new Promise<boolean>((resolve) => {
      child!.stdout!.on('data', () => {
        if (stdout.includes('Milvus wants credentials')) resolve(true);
      });
      child!.on('exit', () => resolve(false));
    });
    child.kill('SIGTERM');
    const code = await exited;
    await rm(stateDir, { recursive: true, force: true });

    expect(ready).toBe(true);
    expect(stdout).toContain(`Milvus vector-db/production-milvus keeps its objects in S3 bucket production-milvus-data (root path files), locally the directory ${join(stateDir, 'object-storage', 'production-milvus-data')}\n`);
    expect(code).toBe(0);
  }, 60_000);

  it('refuses a value other than minio or s3, naming the flag and the allowed values', async () => {
    child = spawn(process.execPath, [CLI, 'local', 'up', '--object-storage', 'gcs'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));

    const code = await new Promise<number | null>((resolve) => child!.on('exit', resolve));

    expect(code).toBe(1);
    expect(stderr).toContain("option '--object-storage <kind>' argument 'gcs' is invalid. Allowed choices are minio, s3.");
  }, 30_000);
});
