import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { BackupRecord } from '../../core/catalog/record.js';
import { discover } from '../../core/backup/discover.js';
import { renderBackup } from '../../cli/commands/backup.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import { inspectPlan } from '../../core/inspect/plan.js';
import type { Config } from '../../core/config/schema.js';
import { startLocalCluster } from '../../local/cluster.js';
import { SEED_S3_BUCKET, SEED_S3_ROOT_PATH } from '../../local/seed.js';
import { backup, MILVUS, NAMESPACE, servicesOf, type SeededCluster } from './helpers.js';
import { restore, restoreServicesOf } from '../restore/helpers.js';
import { countRows, filesUnder, rest } from '../local-milvus/helpers.js';

// A Milvus that keeps its segments in an external S3 bucket (the EKS deployment of the Milvus
// documentation), on the embedded default: the bucket is a directory, copied into the directory
// vault by the same workflow steps and engine that copy S3 server-side in AWS.

const FULL_RUN = 240_000;
const RESTORE_BUCKET = 'production-milvus-restores';
const TARGET = 'vector-db-from-s3';

let c: SeededCluster;
let config: Config;
let first: BackupRecord;

const files = filesUnder;

beforeAll(async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'mg-s3-backed-'));
  const cluster = await startLocalCluster({ stateDir, port: 0, tickMs: 50, objectStorage: 's3' });
  c = { cluster, stateDir, dispose: async () => (await cluster.stop(), await rm(stateDir, { recursive: true, force: true })) };
  // The bucket restores write to exists, as an S3 bucket must.
  await mkdir(join(c.cluster.dirs.objectStorage(), RESTORE_BUCKET), { recursive: true });
  const base = await loadConfigFile('examples/production.yaml');
  config = {
    ...base,
    plans: base.plans.map((p) => ({ ...p, milvus: { ...p.milvus, objectStorage: { bucket: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH, restoreTargets: [{ bucket: RESTORE_BUCKET, prefix: 'milvus' }] } } })),
  };
  const result = await backup(c, config, { backupName: 's3-first' });
  expect(result.status).toBe('SUCCEEDED');
  first = (await servicesOf(c, config).catalog.getBackup('s3-first'))!;
}, FULL_RUN);

afterAll(async () => {
  await c?.dispose();
});

describe('a backup of an S3-backed Milvus', () => {
  it('snapshots etcd only and copies every object under the root path into the vault, committed in the record', async () => {
    const source = (await files(join(c.cluster.dirs.objectStorage(), SEED_S3_BUCKET))).filter((f) => f.startsWith(`${SEED_S3_ROOT_PATH}/`));
    expect(first.status).toBe('Available');
    expect(first.components.map((v) => v.role)).toEqual(['etcd', 'etcd', 'etcd']);
    expect(first.objectCopy).toMatchObject({ source: { bucket: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH }, key: 'backups/s3-first/objects/commit.json', objects: source.length });
    expect(first.objectCopy!.copied).toBe(source.length);
    expect(first.objectCopy!.bytes).toBeGreaterThan(0);
    // The record's size counts the bucket's bytes as well as the volumes'.
    expect(first.sizeBytes).toBeGreaterThan(first.objectCopy!.bytes);
    const vault = join(c.stateDir, 'vault');
    expect((await files(join(vault, 'milvus-objects'))).length).toBe(source.length);
    const index = JSON.parse(await readFile(join(vault, 'backups', 's3-first', 'backup.json'), 'utf8')) as { objects?: { sha256: string } };
    expect(index.objects?.sha256).toBe(first.objectCopy!.sha256);
  });

  it('backup describe shows the copy', () => {
    expect(renderBackup(first)).toContain(`Objects:     ${first.objectCopy!.objects} of s3://${SEED_S3_BUCKET}/${SEED_S3_ROOT_PATH} (`);
    expect(renderBackup(first)).toMatch(/CopyObjects +\S+ +\S+ +Succeeded +\d+ objects/);
  });

  it('copies while GC is paused, and resumes GC after the copy', async () => {
    const steps = first.steps;
    expect(Date.parse(steps.CopyObjects!.endedAt!)).toBeLessThanOrEqual(Date.parse(steps.Unquiesce!.startedAt));
    expect(Date.parse(steps.CopyObjects!.startedAt)).toBeGreaterThanOrEqual(Date.parse(steps.Quiesce!.endedAt!));
    expect(steps.CopyObjects!.detail).toMatch(/objects .* copied/);
    expect(c.cluster.milvus.get(NAMESPACE, MILVUS)!.gcState().paused).toBe(false);
  });

  it('copies only new objects the second time', async () => {
    const sim = c.cluster.milvus.get(NAMESPACE, MILVUS)!;
    const inserted = await rest(sim, '/v2/vectordb/entities/insert', {
      collectionName: 'product_embeddings',
      data: [1, 2, 3].map((i) => ({ id: 8_000_000_000 + i, embedding: Array.from({ length: 768 }, (_, j) => ((i * j) % 7) / 7) })),
    });
    expect(inserted.json.code).toBe(0);

    const result = await backup(c, config, { backupName: 's3-second' });

    expect(result.status).toBe('SUCCEEDED');
    const second = (await servicesOf(c, config).catalog.getBackup('s3-second'))!;
    expect(second.objectCopy!.objects).toBeGreaterThan(first.objectCopy!.objects);
    // The flush wrote the inserted rows as new segment objects: only those are copied.
    expect(second.objectCopy!.copied).toBeGreaterThan(0);
    expect(second.objectCopy!.copied).toBe(second.objectCopy!.objects - first.objectCopy!.objects);
    expect(second.bytesUploaded).toBeLessThan(second.sizeBytes!);
  }, FULL_RUN);
});

describe('a plan that does not declare the bucket', () => {
  it('fails Discover saying which bucket Milvus uses and what to declare; or that the declared one differs', async () => {
    const base = await loadConfigFile('examples/production.yaml');
    const kube = await servicesOf(c, base).kube(undefined as never);
    const plan = resolvePlan(base, base.plans[0]!.name);
    const at = new Date('2026-12-06T00:00:00Z');

    await expect(discover(servicesOf(c, base), kube, plan, 'undeclared', at)).rejects.toThrow(
      `Milvus instance ${MILVUS} keeps its data in the external bucket s3://${SEED_S3_BUCKET}/${SEED_S3_ROOT_PATH}/ (its CR: spec.dependencies.storage.external, spec.config.minio); declare it in plan milvus-production-backup as milvus.objectStorage: {bucket: ${SEED_S3_BUCKET}, rootPath: "${SEED_S3_ROOT_PATH}"} and deploy`,
    );
    const moved = resolvePlan(config, base.plans[0]!.name);
    const elsewhere = { ...moved, plan: { ...moved.plan, milvus: { ...moved.plan.milvus, objectStorage: { ...moved.plan.milvus.objectStorage!, rootPath: 'old-files' } } } };
    await expect(discover(servicesOf(c, config), kube, elsewhere, 'moved', at)).rejects.toThrow(/but plan milvus-production-backup declares milvus\.objectStorage s3:\/\/production-milvus-data\/old-files\/; correct the plan/);
  });
});

describe('plan inspect', () => {
  it('shows the bucket instead of asking for an object-storage volume, and says when the plan does not declare it', async () => {
    const base = await loadConfigFile('examples/production.yaml');
    const kube = await servicesOf(c, base).kube(undefined as never);

    const declared = await inspectPlan(kube, resolvePlan(config, base.plans[0]!.name));
    const undeclared = await inspectPlan(kube, resolvePlan(base, base.plans[0]!.name));

    expect(declared.objectStorage).toEqual({ bucket: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH });
    expect(declared.problems.filter((p) => /object-storage|objectStorage/.test(p))).toEqual([]);
    expect(undeclared.problems).toContain(`Milvus keeps its data in s3://${SEED_S3_BUCKET}/${SEED_S3_ROOT_PATH}; declare it as milvus.objectStorage: {bucket: ${SEED_S3_BUCKET}, rootPath: "${SEED_S3_ROOT_PATH}"}`);
  });
});

describe('a restore of it', () => {
  it('copies the objects into a restore target and points the restored Milvus at them; the data validates', async () => {
    const result = await restore(c, config, { backupId: 's3-first', targetNamespace: TARGET, restoreName: 's3-restore' });

    expect(result.status).toBe('SUCCEEDED');
    const record = await restoreServicesOf(c, config).catalog.getRestore('s3-restore');
    expect(record?.status).toBe('Completed');
    expect(record?.steps.Objects?.detail).toMatch(new RegExp(`${first.objectCopy!.objects} objects .* into s3://${RESTORE_BUCKET}/milvus/restores/s3-restore`));
    const restored = await files(join(c.cluster.dirs.objectStorage(), RESTORE_BUCKET, 'milvus', 'restores', 's3-restore'));
    expect(restored.length).toBe(first.objectCopy!.objects);

    const kc = new KubeConfig();
    kc.loadFromFile(c.cluster.kubeconfigPath);
    const cr = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'milvus.io', version: 'v1beta1', namespace: TARGET, plural: 'milvuses', name: MILVUS })) as { spec: { config: { minio: Record<string, unknown> } } };
    expect(cr.spec.config.minio).toMatchObject({ bucketName: RESTORE_BUCKET, rootPath: 'milvus/restores/s3-restore' });
    const sim = c.cluster.milvus.get(TARGET, MILVUS)!;
    expect(await countRows(sim, 'user_profiles')).toBe(first.rowCounts.find((r) => r.collection === 'user_profiles')!.rows);
  }, FULL_RUN);

  it('refuses a target outside the declared restore targets, and one that is not empty, creating nothing', async () => {
    const outside = await restore(c, config, { backupId: 's3-first', targetNamespace: 'vector-db-outside', objectStorage: { bucket: SEED_S3_BUCKET, prefix: 'elsewhere' } });
    expect(outside.status).toBe('FAILED');
    expect(outside.error?.name ?? JSON.stringify(outside)).toMatch(/InvalidInput/);
    expect(JSON.stringify(outside)).toMatch(/not inside a restore target of plan milvus-production-backup \(s3:\/\/production-milvus-restores\/milvus\)/);

    const reused = await restore(c, config, { backupId: 's3-first', targetNamespace: 'vector-db-reused', objectStorage: { bucket: RESTORE_BUCKET, prefix: 'milvus/restores/s3-restore' } });
    expect(reused.status).toBe('FAILED');
    expect(JSON.stringify(reused)).toMatch(/already holds objects/);
  }, FULL_RUN);
});
