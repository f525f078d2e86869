import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { backupVolume } from '../../core/datamover/backup.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupRecordKey, manifestKey } from '../../core/vault/layout.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { verifyVault } from '../../core/datamover/verify.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { MilvusClient } from '../../core/milvus/client.js';
import type { RowCount } from '../../core/catalog/record.js';
import type { BackupServices } from '../../core/backup/context.js';
import { applyManifests } from '../../core/restore/manifests.js';
import { createNamespace } from '../../core/restore/namespace.js';
import { hydrateJobName, RESTORE_LABEL, restoreLabels } from '../../core/restore/names.js';
import { checkReadiness } from '../../core/restore/readiness.js';
import { checkValidation, validationFailure } from '../../core/restore/validate.js';
import { checkVolumeRestore, deleteRestoreTemporaries, readBackupVolumes, SnapshotUnavailableError, snapshotsAvailable, startQueuedHydrations, startVolumeRestore, VolumeHydrationFailedError, VolumeRestoreTimeoutError, type HydrationContext } from '../../core/restore/volumes.js';
import { DEFAULT_HYDRATION_CONCURRENCY } from '../../core/restore/context.js';
import type { PreparedRestore, ValidationProgress, VolumeRestore } from '../../core/workflow/restore-state.js';
import type { StoreEvent } from '../../local/server/store.js';
import { backup, MILVUS, NAMESPACE, PLAN, servicesOf, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { countsRaisedBy, snapshotDir as snapshotDirOf, tree, volumeDir as volumeDirOf } from './helpers.js';
import { loadConfigFile } from '../../core/config/parse.js';

// A real backup of the seeded local cluster (the backup workflow's ASL and handlers), then the
// restore's task functions against the same cluster: volumes hydrated from the file:// vault by
// data-mover Jobs that run the real data mover, the captured manifests applied to another
// namespace, the Milvus Operator and the simulated Milvus brought up on the restored volumes.

const TARGET = 'vector-db-restored';
const BACKUP_ID = 'nightly-1';
// The steps' clock: they only compare it with the deadlines they set from it, and nothing here
// waits on time (the cluster's settle() is the event the checks wait for).
const NOW = new Date('2026-11-23T02:05:00.000Z');
const SETTLE_MS = 120_000;

let c: SeededCluster;
let services: BackupServices;
let kube: KubeClients;

/** The restore as the workflow's Prepare step would hand it over. */
const prepared = (restoreId: string, namespace: string): PreparedRestore => ({
  restoreId,
  backupId: BACKUP_ID,
  plan: PLAN,
  source: 'vault',
  from: { cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' }, namespace: NAMESPACE },
  to: { cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' }, namespace },
  vault: { name: 'primary', bucket: services.vault.url, region: 'us-east-1' },
  milvus: { service: `${MILVUS}-milvus`, restPort: 19530, managementPort: 9091 },
  storageClassMap: {},
  cleanupOnFailure: false,
  validateRowCounts: true,
  executionId: 'test',
  requestedAt: '2026-11-23T02:00:00.000Z',
});

/** Calls `check` once the cluster has settled: every Job has run to its end and no controller has work left. */
async function afterSettling<T>(check: () => Promise<T>): Promise<T> {
  await c.cluster.settle(SETTLE_MS);
  return check();
}

/**
 * Validates as the workflow does, each round handed the previous one's progress, until a round
 * is done or `rounds` have run: a load finishes on a later poll, not after a time.
 */
async function validateInRounds(milvus: MilvusClient, expected: readonly RowCount[], rounds = 5) {
  let progress: ValidationProgress = { done: false, loading: [] };
  for (let round = 1; ; round++) {
    const result = await checkValidation(milvus, expected, progress, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
    if (result.progress.done || round === rounds) return result;
    progress = result.progress;
  }
}

/**
 * Polls a vault restore as CheckVolumes does (check, then start queued volumes in the free
 * slots), each poll once the cluster has settled, until every volume is done.
 */
async function hydrate(ctx: HydrationContext, restore: PreparedRestore, started: VolumeRestore, polls = 10): Promise<VolumeRestore> {
  let state = started;
  for (let poll = 1; poll <= polls; poll++) {
    state = await afterSettling(() => checkVolumeRestore(kube, restore, state, NOW));
    if (state.ready) return state;
    state = (await startQueuedHydrations(ctx, kube, restore, state, NOW)).state;
  }
  throw new Error(`the volumes were not ready after ${polls} polls: ${JSON.stringify(state.items)}`);
}

/** The most hydration Jobs of `namespace` that ran at once on the cluster, and the order they started in. */
function hydrationsOf(namespace: string): { peak: number; order: string[] } {
  let running = 0;
  let peak = 0;
  const order: string[] = [];
  for (const e of c.cluster.timeline.events) {
    if (e.namespace !== namespace || !String(e.name).startsWith('hydrate-')) continue;
    if (e.type === 'JobStarted') {
      order.push(String(e.name));
      peak = Math.max(peak, ++running);
    } else if (e.type === 'JobSucceeded' || e.type === 'JobFailed') {
      running--;
    }
  }
  return { peak, order };
}

const volumeDir = (namespace: string, pvc: string) => volumeDirOf(c, kube, namespace, pvc);
/** The frozen files of the cloud snapshot behind one of the backup's VolumeSnapshots. */
const snapshotDir = (snapshot: string) => snapshotDirOf(c, kube, NAMESPACE, snapshot);

beforeAll(async () => {
  c = await startSeededCluster();
  const config = await loadConfigFile('examples/production.yaml');
  kube = makeKubeClients(kubeConfigFromFile(c.cluster.kubeconfigPath));
  await kube.core.createNamespacedSecret({
    namespace: NAMESPACE,
    body: { metadata: { name: 'milvus-root', labels: { 'app.kubernetes.io/instance': MILVUS } }, data: { password: Buffer.from('hunter2-root').toString('base64') } },
  });
  const result = await backup(c, config, { backupName: BACKUP_ID });
  if (result.status !== 'SUCCEEDED') throw new Error(`the backup failed: ${JSON.stringify(result.error)}`);
  services = servicesOf(c, config);
}, 180_000);

afterAll(async () => {
  await c?.dispose();
});

describe('a restore from the vault into another namespace', () => {
  const restore = () => prepared('nightly-1-r-1', TARGET);
  let volumes: VolumeRestore;
  let ctx: HydrationContext;
  const created: StoreEvent[] = [];

  beforeAll(async () => {
    await createNamespace(kube, TARGET, restoreLabels(restore().restoreId));
  });

  it('reads the volumes of the backup with their sizes, access modes and labels', async () => {
    const list = await readBackupVolumes(services.vault, BACKUP_ID);
    expect(list.map((v) => `${v.pvc}:${v.role}`)).toEqual([
      'data-production-milvus-etcd-0:etcd',
      'data-production-milvus-etcd-1:etcd',
      'data-production-milvus-etcd-2:etcd',
      'export-production-milvus-minio-0:object-storage',
      'export-production-milvus-minio-1:object-storage',
      'export-production-milvus-minio-2:object-storage',
      'export-production-milvus-minio-3:object-storage',
    ]);
    expect(list[0]).toMatchObject({ size: '10Gi', accessModes: ['ReadWriteOnce'], storageClass: 'gp3', snapshot: `${BACKUP_ID}-data-production-milvus-etcd-0` });
  });

  it('hydrates every PVC with a data-mover Job until each is done: the default number of large volumes at once, the small etcd ones beside them', async () => {
    // The defaults: the etcd volumes are small by their role, the MinIO ones never, whatever size.
    ctx = { dataMover: services.dataMover, timings: { volumeTimeoutSeconds: 300 } };

    const started = await startVolumeRestore(ctx, kube, services.vault, restore(), NOW);

    expect(started.items).toHaveLength(7);
    expect(started.items.every((i) => i.job?.startsWith('hydrate-') && !i.done)).toBe(true);
    expect(started.items.filter((i) => !i.small)).toHaveLength(DEFAULT_HYDRATION_CONCURRENCY);
    expect(started.items.filter((i) => i.small).map((i) => i.role)).toEqual(['etcd', 'etcd', 'etcd']);
    expect((await kube.core.listNamespacedPersistentVolumeClaim({ namespace: TARGET })).items).toHaveLength(7);
    // Each Job refuses any summary but the one backup.json commits to for its volume.
    const committed = JSON.parse((await services.vault.get(backupRecordKey(BACKUP_ID))).toString('utf8')) as { volumes: { pvc: string; summarySha256: string }[] };
    for (const job of (await kube.batch.listNamespacedJob({ namespace: TARGET })).items) {
      const args = job.spec!.template.spec!.containers[0]!.args!;
      const pvc = args[args.indexOf('--volume') + 1];
      expect([pvc, args[args.indexOf('--summary-sha256') + 1]]).toEqual([pvc, committed.volumes.find((v) => v.pvc === pvc)!.summarySha256]);
    }

    volumes = await hydrate(ctx, restore(), started);

    expect(volumes.ready).toBe(true);
    expect(volumes.items).toHaveLength(7);
    expect(volumes.items.every((i) => i.done && i.job?.startsWith('hydrate-'))).toBe(true);
  }, 150_000);

  it('restores every file of every volume as the backup snapshot held it', async () => {
    expect(volumes.items).toHaveLength(7);
    for (const item of volumes.items) {
      const restored = await tree(await volumeDir(TARGET, item.pvc));
      const original = await tree(await snapshotDir(`${BACKUP_ID}-${item.pvc}`));
      expect(Object.keys(restored).length).toBeGreaterThan(0);
      expect(restored).toEqual(original);
    }
  });

  it('gives the PVCs their original names and labels plus the restore label', async () => {
    const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ namespace: TARGET, name: 'data-production-milvus-etcd-0' });
    expect(pvc.metadata?.labels?.[RESTORE_LABEL]).toBe('nightly-1-r-1');
    expect(pvc.spec?.resources?.requests?.storage).toBe('10Gi');
  });

  it('is idempotent: starting again finds the same PVCs and Jobs', async () => {
    const again = await startVolumeRestore(ctx, kube, services.vault, restore(), NOW);
    expect(again.items.map((i) => i.job)).toEqual(volumes.items.map((i) => i.job));
    expect(again.items.map((i) => i.small)).toEqual(volumes.items.map((i) => i.small));
    const checked = await checkVolumeRestore(kube, restore(), again, NOW);
    expect(checked.ready).toBe(true);
  });

  it('removes the hydration Jobs and keeps the PVCs', async () => {
    const removed = await deleteRestoreTemporaries(kube, restore());
    expect(removed.sort()).toEqual(volumes.items.map((i) => `Job/${i.job}`).sort());
    const pvcs = await kube.core.listNamespacedPersistentVolumeClaim({ namespace: TARGET });
    expect(pvcs.items.map((p) => p.metadata!.name).sort()).toEqual(volumes.items.map((i) => i.pvc).sort());
  });

  it('creates the captured objects in restore order, Secrets unsealed', async () => {
    const stop = c.cluster.store.onChange((e) => {
      if (e.type === 'ADDED' && e.object.metadata.namespace === TARGET && e.object.metadata.labels?.[RESTORE_LABEL]) created.push(e);
    });
    let summary;
    try {
      summary = await applyManifests(services, kube, restore());
    } finally {
      stop();
    }

    expect(summary.secrets).toBe(2); // milvus-root, and the operator's MinIO Secret the CR names
    expect(summary.created + summary.existing).toBeGreaterThanOrEqual(created.length);
    const kinds = created.map((e) => e.object.kind!);
    const firstOf = (kind: string) => kinds.indexOf(kind);
    expect(firstOf('ServiceAccount')).toBeLessThan(firstOf('ConfigMap'));
    expect(firstOf('ConfigMap')).toBeLessThan(firstOf('Secret'));
    expect(firstOf('Secret')).toBeLessThan(firstOf('Service'));
    expect(firstOf('Service')).toBeLessThan(firstOf('Milvus'));
    expect(kinds).not.toContain('PersistentVolumeClaim');
    const secret = await kube.core.readNamespacedSecret({ namespace: TARGET, name: 'milvus-root' });
    expect(Buffer.from(secret.data!.password!, 'base64').toString()).toBe('hunter2-root');
  });

  it('points the restored configuration at the target namespace', async () => {
    const cm = await kube.core.readNamespacedConfigMap({ namespace: TARGET, name: MILVUS });
    expect(cm.data!['user.yaml']).toContain(`${MILVUS}-etcd.${TARGET}:2379`);
    expect(cm.data!['user.yaml']).not.toContain(`.${NAMESPACE}:`);
  });

  it('counts what already exists instead of overwriting it on a second apply', async () => {
    const summary = await applyManifests(services, kube, restore());
    expect(summary.created + summary.existing).toBeGreaterThan(0);
    expect(summary.secrets).toBe(2); // made by this restore's first attempt
  });

  it('becomes ready once the operator has built Milvus on the restored volumes', async () => {
    const milvus = new MilvusClient(kube.kc, { namespace: TARGET, service: `${MILVUS}-milvus`, restPort: 19530, managementPort: 9091 });
    const first = await checkReadiness(kube, milvus, restore(), { ready: false, waitingFor: [] }, NOW, 120);
    expect(first.deadline).toBeDefined();

    const ready = await afterSettling(() => checkReadiness(kube, milvus, restore(), first, NOW, 120));

    expect(ready.ready).toBe(true);
    expect(ready.waitingFor).toEqual([]);
  }, 70_000);

  describe('validation', () => {
    let expected: RowCount[];
    let milvus: MilvusClient;

    beforeAll(async () => {
      expected = (await services.catalog.getBackup(BACKUP_ID))!.rowCounts;
      milvus = new MilvusClient(kube.kc, { namespace: TARGET, service: `${MILVUS}-milvus`, restPort: 19530, managementPort: 9091 });
    });

    it('first looks: a collection the source had released is named, not loaded, and the next round comes at once', async () => {
      const round = await checkValidation(milvus, expected, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
      expect(round.progress).toMatchObject({ done: false, released: ['analytics.session_vectors'], again: true });
      expect(round.checks).toBeUndefined();
      expect(await milvus.loadState('analytics', 'session_vectors')).toBe('LoadStateNotLoad');
    });

    it('passes when every collection has the recorded rows and answers a search', async () => {
      const result = await validateInRounds(milvus, expected);

      expect(result.progress.done).toBe(true);
      expect(result.checks!.map((x) => `${x.database}.${x.collection}:${x.ok}`).sort()).toEqual(['analytics.session_vectors:true', 'default.product_embeddings:true', 'default.user_profiles:true']);
      expect(result.checks!.every((x) => x.restored === x.expected && (x.searchHits ?? 0) > 0)).toBe(true);
      expect(validationFailure(result.checks!)).toBeUndefined();
    });

    it('fails naming the collection with the expected and the restored count when they differ', async () => {
      const wrong = expected.map((e) => (e.collection === 'user_profiles' ? countsRaisedBy(e, 7) : e));
      const restoredRows = expected.find((e) => e.collection === 'user_profiles')!.rows;

      const result = await validateInRounds(milvus, wrong);
      const failure = validationFailure(result.checks!);

      expect(failure?.name).toBe('RestoreValidationFailed');
      expect(failure?.message).toContain(`default.user_profiles: expected ${restoredRows + 7} rows, restored ${restoredRows}`);
      expect(failure?.message).not.toContain('product_embeddings');
    });

    it('fails naming a collection the restore does not have', async () => {
      const result = await checkValidation(milvus, [...expected, { database: 'default', collection: 'lost', rows: 5, confirmedBy: 'count' }], { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
      expect(validationFailure(result.checks!)?.message).toContain('default.lost: missing: database default has no collection lost (expected 5 rows)');
    });
  });
});

describe('hydrating volumes in parallel, a bounded number at once', () => {
  const restore = () => prepared('nightly-1-r-2', 'vector-db-bounded');
  // No etcd volume small (a cap of 0 makes none so): the bound holds all seven.
  const ctx = () => ({ dataMover: services.dataMover, timings: { volumeTimeoutSeconds: 300, hydrationConcurrency: 2, smallEtcdBytes: 0 } });

  beforeAll(async () => {
    await createNamespace(kube, restore().to.namespace, restoreLabels(restore().restoreId));
  });

  it('runs two hydrations at a time, never more, the largest volumes first, until all seven are done', async () => {
    const largest = (await readBackupVolumes(services.vault, BACKUP_ID)).sort((a, b) => (b.bytes ?? 0) - (a.bytes ?? 0)).slice(0, 2);

    const started = await startVolumeRestore(ctx(), kube, services.vault, restore(), NOW);
    expect(started.items.filter((i) => i.job)).toHaveLength(2);
    expect(started.items.filter((i) => !i.job).map((i) => i.pvc)).toHaveLength(5);
    // A retried Task finds its first attempt's Jobs holding the slots and starts no more.
    const retried = await startVolumeRestore(ctx(), kube, services.vault, restore(), NOW);
    expect(retried.items.filter((i) => i.job).map((i) => i.pvc).sort()).toEqual(started.items.filter((i) => i.job).map((i) => i.pvc).sort());
    const done = await hydrate(ctx(), restore(), started);

    expect(done.items.every((i) => i.done)).toBe(true);
    const { peak, order } = hydrationsOf(restore().to.namespace);
    expect(peak).toBe(2);
    expect(order).toHaveLength(7);
    expect(order.slice(0, 2).sort()).toEqual(largest.map((v) => hydrateJobName(restore().restoreId, v.pvc)).sort());
  }, 150_000);

  it('names a queued volume as waiting for a slot when the deadline passes', async () => {
    const state: VolumeRestore = { items: [{ pvc: 'data-production-milvus-etcd-0', role: 'etcd', done: false }], ready: false, deadline: '2026-11-23T02:00:00.000Z' };

    await expect(checkVolumeRestore(kube, restore(), state, new Date('2026-11-23T02:00:01.000Z'))).rejects.toThrow('data-production-milvus-etcd-0 (queued: waiting for a hydration slot)');
  });

  afterAll(async () => {
    await deleteRestoreTemporaries(kube, restore());
  });
});

describe('a restore from the backup\'s snapshots into another namespace', () => {
  const restore = (): PreparedRestore => ({ ...prepared('nightly-1-r-3', 'vector-db-from-snapshots'), source: 'snapshot', storageClassMap: { gp3: 'gp3-encrypted' } });
  let volumes: VolumeRestore;

  beforeAll(async () => {
    // The class the map names, served as EKS serves an encrypted EBS class (a provisioner leaves a PVC of a class it lacks Pending).
    await kube.custom.createClusterCustomObject({
      group: 'storage.k8s.io',
      version: 'v1',
      plural: 'storageclasses',
      body: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'gp3-encrypted' }, provisioner: 'ebs.csi.aws.com', parameters: { type: 'gp3', encrypted: 'true' }, volumeBindingMode: 'Immediate' },
    });
    await createNamespace(kube, restore().to.namespace, restoreLabels(restore().restoreId));
  });

  it('finds every snapshot of the backup usable', async () => {
    expect(await snapshotsAvailable(kube, NAMESPACE, await readBackupVolumes(services.vault, BACKUP_ID))).toBe(true);
  });

  it('binds each PVC to a snapshot pre-provisioned from the backup snapshot handle', async () => {
    const started = await startVolumeRestore({ dataMover: services.dataMover, timings: { volumeTimeoutSeconds: 300 } }, kube, services.vault, restore(), NOW);
    expect(started.items).toHaveLength(7);
    expect(started.items.every((i) => i.snapshot?.startsWith('nightly-1-r-3-') && i.job === undefined)).toBe(true);

    volumes = await afterSettling(() => checkVolumeRestore(kube, restore(), started, NOW));

    expect(volumes.ready).toBe(true);
    expect(volumes.items).toHaveLength(7);
    for (const item of volumes.items) {
      expect(await tree(await volumeDir(restore().to.namespace, item.pvc))).toEqual(await tree(await snapshotDir(`${BACKUP_ID}-${item.pvc}`)));
    }
  }, 40_000);

  it('maps the storage class of the restored PVCs', async () => {
    const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ namespace: restore().to.namespace, name: volumes.items[0]!.pvc });
    expect(pvc.spec?.storageClassName).toBe('gp3-encrypted');
  });

  it('removes its VolumeSnapshots and contents, and the backup snapshots stay usable', async () => {
    const removed = await deleteRestoreTemporaries(kube, restore());

    expect(removed.filter((r) => r.startsWith('VolumeSnapshot/')).length).toBe(volumes.items.length);
    expect(removed.filter((r) => r.startsWith('VolumeSnapshotContent/')).length).toBe(volumes.items.length);
    await c.cluster.settle();
    expect(await snapshotsAvailable(kube, NAMESPACE, await readBackupVolumes(services.vault, BACKUP_ID))).toBe(true);
  });
});

describe('a restore of a one-volume backup whose vault is damaged', () => {
  // A backup made by the data mover in-process into a vault of its own, so one Job (and its
  // retries) runs instead of seven, and the shared vault stays intact.
  const BACKUP = 'damaged-1';
  const PVC = 'data-small-etcd-0';
  let vaultDir: string;
  let vault: FileVaultStore;
  const restore = (source: 'vault' | 'snapshot'): PreparedRestore => ({ ...prepared(`damaged-1-r-${source}`, `vector-db-${source}-damaged`), backupId: BACKUP, source });

  beforeAll(async () => {
    vaultDir = join(c.stateDir, 'vault-damaged');
    vault = new FileVaultStore(vaultDir);
    const source = join(c.stateDir, 'small-volume');
    await mkdir(join(source, 'member', 'snap'), { recursive: true });
    await writeFile(join(source, 'member', 'snap', 'db'), randomBytes(2 * 1024 * 1024));
    await writeFile(join(source, 'member', 'note.txt'), 'etcd member\n');
    await backupVolume({ source, vault, volume: PVC, backupId: BACKUP, now: new Date('2026-11-23T02:00:00Z') });
    await vault.put(backupRecordKey(BACKUP), Buffer.from(JSON.stringify({ backupId: BACKUP, namespace: NAMESPACE, volumes: [{ pvc: PVC, role: 'etcd', snapshot: `${BACKUP}-${PVC}` }] })));
    await vault.put(
      manifestKey(BACKUP, { group: 'core', kind: 'PersistentVolumeClaim', namespace: NAMESPACE, name: PVC }),
      Buffer.from(stringify({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: PVC, namespace: NAMESPACE }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } })),
    );
  });

  it('fails with SnapshotUnavailable when the backup snapshot no longer exists', async () => {
    await createNamespace(kube, restore('snapshot').to.namespace, restoreLabels(restore('snapshot').restoreId));

    const attempt = startVolumeRestore({ dataMover: services.dataMover, timings: { volumeTimeoutSeconds: 300 } }, kube, vault, restore('snapshot'), NOW);

    await expect(attempt).rejects.toThrow(SnapshotUnavailableError);
    await expect(attempt).rejects.toThrow(`VolumeSnapshot ${NAMESPACE}/${BACKUP}-${PVC} cannot be restored from: it no longer exists`);
    expect((await kube.core.listNamespacedPersistentVolumeClaim({ namespace: restore('snapshot').to.namespace })).items).toEqual([]);
  });

  it('fails with VolumeHydrationFailed naming the PVC, the Job and the damaged file', async () => {
    // Prepare: flip one byte in the middle of the largest pack.
    const packs: { path: string; size: number }[] = [];
    for (const fan of await readdir(join(vaultDir, 'data', 'packs'))) {
      for (const name of await readdir(join(vaultDir, 'data', 'packs', fan))) {
        const path = join(vaultDir, 'data', 'packs', fan, name);
        packs.push({ path, size: (await lstat(path)).size });
      }
    }
    const largest = packs.sort((a, b) => b.size - a.size)[0]!;
    const bytes = await readFile(largest.path);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(largest.path, bytes);
    const damaged = (await verifyVault({ vault, readData: true })).problems.filter((p) => p.kind === 'chunk').map((p) => p.path);
    expect(damaged).toEqual(['member/snap/db']);
    const r = restore('vault');
    await createNamespace(kube, r.to.namespace, restoreLabels(r.restoreId));
    const dataMover = { ...services.dataMover, vaultUrl: pathToFileURL(vaultDir).href };

    // Act
    const started = await startVolumeRestore({ dataMover, timings: { volumeTimeoutSeconds: 300 } }, kube, vault, r, NOW);
    const error = await afterSettling(() => checkVolumeRestore(kube, r, started, NOW).then(() => undefined, (e: unknown) => e));

    // Assess
    expect(error).toBeInstanceOf(VolumeHydrationFailedError);
    const message = (error as Error).message;
    expect(message).toContain(`the restore of PVC ${PVC} failed: Job ${started.items[0]!.job} failed (BackoffLimitExceeded`);
    expect(message).toMatch(/data mover: error: cannot restore member\/snap\/db: chunk [0-9a-f]{64} .*does not match its hash/);
  }, 70_000);

  it('fails with VolumeRestoreTimeout naming what is still pending past the deadline', async () => {
    const r = restore('vault');
    const state: VolumeRestore = { items: [{ pvc: PVC, role: 'etcd', job: 'hydrate-never-made', done: false }], ready: false, deadline: '2026-11-23T02:00:00.000Z' };
    await kube.batch.createNamespacedJob({ namespace: r.to.namespace, body: { metadata: { name: 'hydrate-never-made' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'x', command: ['sleep', '600'] }] } } } } });

    const attempt = checkVolumeRestore(kube, r, state, new Date('2026-11-23T02:00:01.000Z'));

    await expect(attempt).rejects.toThrow(VolumeRestoreTimeoutError);
    await expect(attempt).rejects.toThrow(`${PVC} (Job hydrate-never-made)`);
    await kube.batch.deleteNamespacedJob({ namespace: r.to.namespace, name: 'hydrate-never-made', propagationPolicy: 'Background' });
  });
});
