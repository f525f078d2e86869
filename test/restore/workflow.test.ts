import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { BackupRecord, RestoreRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { listDrillEvidence } from '../../core/drill/workflow.js';
import { prepareRestoreStep } from '../../core/restore/workflow.js';
import { typeOf } from '../../local/server/resources.js';
import { backup, NAMESPACE, PLAN, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { publishedEventTypes } from '../events/published.js';
import { countsRaisedBy, drill, restore, restoreServicesOf } from './helpers.js';

// The real statemachines/restore.asl.json and drill.asl.json run by aws-local-stepfunctions,
// every Task mapped to its real Lambda handler, against the local cluster over HTTPS: volumes
// from pre-provisioned VolumeSnapshots or hydrated by data-mover Jobs from the file:// vault,
// the captured manifests created in the new namespace, the simulated Milvus of the restored
// volumes validated through the service proxy.

const FULL_RUN = 240_000;

let c: SeededCluster;
let config: Config;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let first: BackupRecord;
let second: BackupRecord;

const services = () => restoreServicesOf(c, config);
const restoreRecord = async (id: string): Promise<RestoreRecord> => (await services().catalog.getRestore(id))!;
const namespaceExists = async (name: string) => (await core.listNamespace()).items.some((n) => n.metadata?.name === name);
const expectedCounts = (b: BackupRecord) => b.rowCounts.map((r) => ({ name: `${r.database}.${r.collection}`, rows: r.rows })).sort((x, y) => x.name.localeCompare(y.name));
const restoredCounts = (r: RestoreRecord) => (r.validation?.collections ?? []).map((v) => ({ name: `${v.database}.${v.collection}`, rows: v.restored })).sort((x, y) => x.name.localeCompare(y.name));

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
  const kc = new KubeConfig();
  kc.loadFromFile(c.cluster.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  const one = await backup(c, config, { backupName: 'restore-test-1' });
  const two = await backup(c, config, { backupName: 'restore-test-2' });
  expect([one.status, two.status]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
  first = (await services().catalog.getBackup('restore-test-1'))!;
  second = (await services().catalog.getBackup('restore-test-2'))!;
  // Every count comparison below would pass on two empty lists.
  expect(expectedCounts(second)).toHaveLength(3);
}, FULL_RUN);

afterAll(async () => {
  await c?.dispose();
});

describe('a restore from the vault into a new namespace', () => {
  let result: Awaited<ReturnType<typeof restore>>;
  let record: RestoreRecord;

  // The steps' clock: it starts at T0 (the execution's start, so the request) and moves one
  // second as each Task starts, so every phase's length is the number of Tasks it ran.
  const T0 = Date.parse('2026-11-23T10:00:00.000Z');
  let ticks = 0;
  const clock = { now: () => new Date(T0 + ticks * 1000), beforeTask: () => void ticks++ };
  const tasks = (...states: string[]) => result.states.filter((s) => states.includes(s)).length;

  beforeAll(async () => {
    // Two MinIO volumes at a time, the small etcd ones (by their role) beside them.
    result = await restore(c, config, { backupId: second.backupId, targetNamespace: 'vector-db-vault', source: 'vault', restoreName: 'from-vault' }, undefined, clock, { hydrationConcurrency: 2 });
    record = await restoreRecord('from-vault');
  }, FULL_RUN);

  it('ends Completed', () => {
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('SUCCEEDED');
    expect(record.status).toBe('Completed');
    expect(record.source).toBe('vault');
  });

  it('restores every collection with the row count recorded at backup', () => {
    expect(restoredCounts(record)).toEqual(expectedCounts(second));
    expect(record.validation?.passed).toBe(true);
    expect(record.validation?.collections).toHaveLength(3);
    expect(record.validation?.collections.every((v) => (v.searchHits ?? 0) > 0)).toBe(true);
  });

  it('records the RTO and a timeline of every step', () => {
    expect(record.rtoSeconds).toBeGreaterThan(0);
    expect(Object.keys(record.steps)).toEqual(expect.arrayContaining(['Prepare', 'Verify', 'Namespace', 'Volumes', 'Manifests', 'Readiness', 'Validate', 'Complete']));
    expect(Object.values(record.steps).every((s) => s?.outcome === 'Succeeded')).toBe(true);
  });

  it('records the RTO in phases on the steps\' clock, each as long as the Tasks it ran, adding up to the RTO', () => {
    const phases = record.phases!;

    expect(record.requestedAt).toBe(new Date(T0).toISOString());
    expect(phases.map((p) => [p.phase, p.seconds])).toEqual([
      // PrepareRestore and VerifyBackup.
      ['prepare', 2],
      ['thaw', tasks('StartThaw')],
      ['hydration', tasks('CreateNamespace', 'RestoreVolumes', 'CheckVolumes')],
      ['manifests', tasks('ApplyManifests')],
      ['readiness', tasks('CheckReadiness')],
      // The RTO is taken when Complete starts.
      ['validation', tasks('Validate', 'Complete')],
    ]);
    // Four large volumes, two at a time: at least two polls of CheckVolumes.
    expect(tasks('CheckVolumes')).toBeGreaterThanOrEqual(2);
    expect(phases.reduce((sum, p) => sum + p.seconds!, 0)).toBe(record.rtoSeconds);
    expect(phases.every((p) => p.outcome === 'Succeeded')).toBe(true);
  });

  it("records each volume's hydration and the data mover's own run of it", () => {
    expect(record.volumes).toHaveLength(7);
    for (const v of record.volumes) {
      expect(v).toMatchObject({ status: 'Restored', from: expect.stringMatching(/^Job hydrate-/), startedAt: expect.any(String), endedAt: expect.any(String) });
      expect(Date.parse(v.endedAt!)).toBeGreaterThan(Date.parse(v.startedAt!));
      expect(v.dataMover?.bytes).toBeGreaterThan(0);
      expect(Date.parse(v.dataMover!.endedAt)).toBeGreaterThanOrEqual(Date.parse(v.dataMover!.startedAt));
    }
    // The three small etcd volumes and two MinIO volumes at once; the other two MinIO volumes
    // started on a later poll, as slots freed.
    const first = record.volumes.map((v) => v.startedAt!).sort()[0];
    expect(record.volumes.filter((v) => v.startedAt === first).map((v) => v.role).sort()).toEqual(['etcd', 'etcd', 'etcd', 'object-storage', 'object-storage']);
    expect(record.volumes.filter((v) => v.startedAt !== first).map((v) => v.role)).toEqual(['object-storage', 'object-storage']);
  });

  it('leaves no hydration Job behind', async () => {
    const jobs = c.cluster.store.list(typeOf('Job'), 'vector-db-vault');
    expect(c.cluster.timeline.events.filter((e) => e.type === 'JobSucceeded' && e.namespace === 'vector-db-vault')).toHaveLength(7);
    expect(jobs).toEqual([]);
  });
});

describe('a restore from the backup\'s VolumeSnapshots', () => {
  it('ends Completed with the recorded row counts', async () => {
    const result = await restore(c, config, { backupId: second.backupId, targetNamespace: 'vector-db-snap', restoreName: 'from-snapshot' });
    const record = await restoreRecord('from-snapshot');

    expect(result.error).toBeUndefined();
    expect(record.status).toBe('Completed');
    expect(record.source).toBe('snapshot');
    expect(restoredCounts(record)).toEqual(expectedCounts(second));
  }, FULL_RUN);

  it('ends Completed into a WaitForFirstConsumer class, whose PVCs bind only when the restored Milvus mounts them', async () => {
    // EKS's own gp2 class and the EBS CSI driver's examples bind on first consumer: no PVC is
    // Bound until a pod that mounts it is scheduled, and those pods come with the manifests.
    await custom.createClusterCustomObject({
      group: 'storage.k8s.io',
      version: 'v1',
      plural: 'storageclasses',
      body: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'gp3-wffc' }, provisioner: 'ebs.csi.aws.com', volumeBindingMode: 'WaitForFirstConsumer', reclaimPolicy: 'Delete' },
    });

    const result = await restore(c, config, { backupId: second.backupId, targetNamespace: 'vector-db-wffc', restoreName: 'into-wffc', storageClassMap: { gp3: 'gp3-wffc' } });
    const record = await restoreRecord('into-wffc');

    expect(result.error).toBeUndefined();
    expect(record).toMatchObject({ status: 'Completed', source: 'snapshot' });
    expect(restoredCounts(record)).toEqual(expectedCounts(second));
    const claims = (await core.listNamespacedPersistentVolumeClaim({ namespace: 'vector-db-wffc' })).items;
    expect(claims).toHaveLength(7);
    expect(claims.every((p) => p.spec?.storageClassName === 'gp3-wffc' && p.status?.phase === 'Bound')).toBe(true);
  }, FULL_RUN);
});

describe('choosing the backup', () => {
  it('restores the newest Available backup at or before the point in time', async () => {
    const between = new Date((Date.parse(first.completedAt!) + Date.parse(second.steps.Snapshot!.startedAt)) / 2).toISOString();
    const prepared = await prepareRestoreStep(services(), { name: config.vaults[0]!.name, bucket: 'local' }, {
      input: { plan: PLAN, pointInTime: between, targetNamespace: 'vector-db-pit' },
      execution: { id: 'arn:aws:states:local:000000000000:execution:milvus-guard-restore:pit', startTime: new Date().toISOString() },
    });

    expect(prepared.backupId).toBe(first.backupId);
  });

  it('refuses, before creating anything, a storage class the target cluster does not have, and takes one mapped to a class it has', async () => {
    const prepare = (storageClassMap: Record<string, string>, name: string) =>
      prepareRestoreStep(services(), { name: config.vaults[0]!.name, bucket: 'local' }, {
        input: { backupId: second.backupId, targetNamespace: `vector-db-${name}`, storageClassMap, restoreName: name },
        execution: { id: `arn:aws:states:local:000000000000:execution:milvus-guard-restore:${name}`, startTime: new Date().toISOString() },
      });
    // The backup's PVCs are of class gp3, which the local cluster serves (as EKS with the EBS CSI driver does).
    const mapped = prepare({ gp3: 'io2' }, 'no-io2');

    await expect(mapped).rejects.toMatchObject({ name: 'InvalidInput' });
    await expect(mapped).rejects.toThrow(/storageClassMap: storage class "io2" of PVC \S+ \(mapped from "gp3"\) does not exist in cluster \S+; map it to one that does/);
    expect(await namespaceExists('vector-db-no-io2')).toBe(false);
    await expect(prepare({ gp2: 'io2' }, 'unmapped')).resolves.toMatchObject({ storageClassMap: { gp2: 'io2' } });
  });

  it('fails clearly for a backup id the catalog does not have', async () => {
    const result = await restore(c, config, { backupId: 'no-such-backup', targetNamespace: 'vector-db-x' });

    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('BackupNotFound');
    expect(result.error?.message).toMatch(/backup no-such-backup is not in the catalog/);
    expect(await namespaceExists('vector-db-x')).toBe(false);
  });

  it('refuses a target namespace that is not empty, and touches nothing in it', async () => {
    const before = (await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items.map((p) => p.metadata?.uid).sort();
    expect(before).toHaveLength(7);

    const result = await restore(c, config, { backupId: second.backupId, targetNamespace: NAMESPACE });

    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('TargetNamespaceNotEmpty');
    expect(result.error?.message).toMatch(/vector-db/);
    expect((await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items.map((p) => p.metadata?.uid).sort()).toEqual(before);
  });
});

describe('a restore that fails', () => {
  it('fails at hydration naming the damaged file when a vault pack is corrupted', async () => {
    const packs = join(c.stateDir, 'vault', 'data', 'packs');
    const files: string[] = [];
    for (const dir of await readdir(packs)) for (const f of await readdir(join(packs, dir))) files.push(join(packs, dir, f));
    const sizes = await Promise.all(files.map(async (f) => ({ f, size: (await stat(f)).size })));
    const largest = sizes.sort((a, b) => b.size - a.size)[0]!.f;
    const original = await readFile(largest);
    const damaged = Buffer.from(original);
    for (let i = 4096; i < damaged.length; i += 65536) damaged[i] = damaged[i]! ^ 0xff;
    await writeFile(largest, damaged);
    try {
      const result = await restore(c, config, { backupId: second.backupId, targetNamespace: 'vector-db-damaged', source: 'vault', restoreName: 'damaged' });
      const record = await restoreRecord('damaged');

      expect(result.status).toBe('FAILED');
      expect(result.error?.name).toBe('VolumeHydrationFailed');
      expect(result.error?.message).toMatch(/\/[^\s]+/);
      expect(record.status).toBe('Failed');
      expect(record.failure?.step).toBe('Volumes');
      expect(record.failure?.state).toBe(result.states[result.states.indexOf('CleanUpRestore') - 1]);
      expect(record.failure?.state).toBe('CheckVolumes');
      expect(record.failure?.leftBehind).toMatch(/for inspection/);
      expect(record.phases?.at(-1)).toMatchObject({ phase: 'hydration', outcome: 'Failed' });
      expect(await namespaceExists('vector-db-damaged')).toBe(true);
    } finally {
      await writeFile(largest, original);
    }
  }, FULL_RUN);

  it('fails at VerifyBackup, creating nothing, when backup.json is not the one Finalize wrote (a version added later)', async () => {
    // A new version of backup.json on S3 (Object Lock protects versions, not keys): one field
    // changed, valid JSON, every commitment in it intact.
    const key = join(c.stateDir, 'vault', 'backups', second.backupId, 'backup.json');
    const original = await readFile(key);
    expect(second.indexSha256).toBe(createHash('sha256').update(original).digest('hex'));
    await writeFile(key, JSON.stringify({ ...(JSON.parse(original.toString('utf8')) as object), completedAt: '2026-11-23T09:00:00.000Z' }, null, 2));
    try {
      const result = await restore(c, config, { backupId: second.backupId, targetNamespace: 'vector-db-replaced', source: 'vault', restoreName: 'replaced' });
      const record = await restoreRecord('replaced');

      expect(result.status).toBe('FAILED');
      expect(result.error?.name).toBe('BackupCorrupt');
      expect(result.error?.message).toContain(`backups/${second.backupId}/backup.json is not the document the backup wrote`);
      expect(record.failure).toMatchObject({ step: 'Verify', state: 'VerifyBackup' });
      expect(await namespaceExists('vector-db-replaced')).toBe(false);
    } finally {
      await writeFile(key, original);
    }
  }, FULL_RUN);

  it('fails validation naming the collection and both counts when a count differs', async () => {
    // The backup recorded one row more than the volumes hold: what a restore that lost data sees.
    const tampered = second.rowCounts.map((r, i) => (i === 0 ? countsRaisedBy(r, 1) : r));
    await services().catalog.updateBackup(second.backupId, { rowCounts: tampered });
    try {
      const result = await restore(c, config, { backupId: second.backupId, targetNamespace: 'vector-db-mismatch', source: 'vault', restoreName: 'mismatch', cleanupOnFailure: true });
      const record = await restoreRecord('mismatch');
      const wrong = tampered[0]!;

      expect(result.status).toBe('FAILED');
      expect(result.error?.name).toBe('RestoreValidationFailed');
      expect(result.error?.message).toContain(`${wrong.database}.${wrong.collection}`);
      expect(result.error?.message).toContain(String(wrong.rows));
      expect(result.error?.message).toContain(String(wrong.rows - 1));
      expect(record.validation?.passed).toBe(false);
      expect(record.failure?.leftBehind).toMatch(/cleanup deleted namespace vector-db-mismatch/);
      expect(await namespaceExists('vector-db-mismatch')).toBe(false);
    } finally {
      await services().catalog.updateBackup(second.backupId, { rowCounts: second.rowCounts });
    }
  }, FULL_RUN);
});

describe('a drill', () => {
  it('restores the newest backup from the vault, writes its evidence and deletes its namespace', async () => {
    const result = await drill(c, config, { plan: PLAN });
    const evidence = await listDrillEvidence(services().vault, PLAN);

    expect(result.error).toBeUndefined();
    expect(result.status).toBe('SUCCEEDED');
    expect(evidence).toHaveLength(1);
    expect(evidence[0]).toMatchObject({ passed: true, plan: PLAN, backup: { backupId: second.backupId }, restore: { status: 'Completed', source: 'vault', targetNamespace: `${NAMESPACE}-drill` }, cleanup: { requested: true, namespaceDeleted: true } });
    expect(evidence[0]!.achievedRpoSeconds).toBeGreaterThanOrEqual(0);
    expect(evidence[0]!.achievedRtoSeconds).toBeGreaterThan(0);
    expect(evidence[0]!.collections.map((x) => ({ name: x.name, rows: x.restored })).sort((x, y) => x.name.localeCompare(y.name))).toEqual(expectedCounts(second));
    expect(await namespaceExists(`${NAMESPACE}-drill`)).toBe(false);
    // The drill's nested restore is a restore record like any other, with its RTO in phases.
    const nested = (await services().catalog.listRestores()).find((r) => r.drillId !== undefined)!;
    expect(nested.phases?.map((p) => p.phase)).toEqual(['prepare', 'thaw', 'hydration', 'manifests', 'readiness', 'validation']);
    expect(nested.phases!.reduce((sum, p) => sum + p.seconds!, 0)).toBeCloseTo(nested.rtoSeconds!, 3);
  }, FULL_RUN);
});

it('published Backup Available, Restore Completed and Failed and Drill Passed events, each as docs/events.md documents it', async () => {
  const types = await publishedEventTypes(c.stateDir);
  expect(new Set(types)).toEqual(new Set(['Backup Available', 'Restore Completed', 'Restore Failed', 'Drill Passed']));
});

// The snapshot objects a restore makes in its namespace are removed at the end; the source's stay.
it('keeps the backup\'s own VolumeSnapshots through every restore', async () => {
  const snapshots = (await custom.listNamespacedCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', namespace: NAMESPACE, plural: 'volumesnapshots', labelSelector: `milvus-guard.io/backup=${second.backupId}` })) as { items: { status?: { readyToUse?: boolean } }[] };
  expect(snapshots.items.length).toBeGreaterThan(0);
  expect(snapshots.items.every((s) => s.status?.readyToUse)).toBe(true);
});
